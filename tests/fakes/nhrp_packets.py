"""NHRP packets built by hand for the codec's goldens and fuzzers."""

from __future__ import annotations

import ipaddress
import struct

from hypothesis import strategies as st

from frrdmvpn.codec.nhrp import (
    AFN_IPV4,
    AFN_IPV6,
    ETHERTYPE_IPV4,
    ETHERTYPE_IPV6,
    MANDATORY_OPS,
    Cie,
    ErrorIndication,
    Extension,
    NhrpPacket,
    Packet,
    TrafficIndication,
)


def ones_complement(data: bytes) -> int:
    """RFC 1071, word by word with the end-around carry folded at every step."""
    total = 0
    for i in range(0, len(data), 2):
        total += data[i] << 8 | (data[i + 1] if i + 1 < len(data) else 0)
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def reseal(data: bytes, *, pktsz: int | None = None, extoff: int | None = None) -> bytes:
    """``data`` with ar$pktsz (default: its length), ar$extoff and a correct ar$chksum."""
    out = bytearray(data)
    struct.pack_into("!H", out, 10, len(data) if pktsz is None else pktsz)
    if extoff is not None:
        struct.pack_into("!H", out, 14, extoff)
    struct.pack_into("!H", out, 12, 0)
    struct.pack_into("!H", out, 12, ones_complement(bytes(out)))
    return bytes(out)


u8 = st.integers(0, 0xFF)

u16 = st.integers(0, 0xFFFF)

u32 = st.integers(0, 0xFFFFFFFF)

subaddresses = st.binary(max_size=8)

extensions = st.lists(
    st.builds(Extension, st.integers(1, 0x7FFF), st.booleans(), st.binary(max_size=32)),
    max_size=4,
).map(tuple)


def _addresses(version: int) -> st.SearchStrategy[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    if version == 4:
        return st.ip_addresses(v=4)
    return st.ip_addresses(v=6)


@st.composite
def packets(draw: st.DrawFn) -> Packet:
    afn, nbma_version = draw(st.sampled_from([(AFN_IPV4, 4), (AFN_IPV6, 6)]))
    protocol, proto_version = draw(st.sampled_from([(ETHERTYPE_IPV4, 4), (ETHERTYPE_IPV6, 6)]))
    nbma = st.none() | _addresses(nbma_version)
    proto = st.none() | _addresses(proto_version)
    hop_count = draw(u8)
    src_nbma, src_proto, dst_proto = draw(nbma), draw(proto), draw(proto)
    exts = draw(extensions)
    sub = draw(subaddresses)
    kind = draw(st.sampled_from(["mandatory", "error", "traffic"]))
    if kind == "error":
        return ErrorIndication(
            hop_count=hop_count,
            src_nbma=src_nbma,
            src_proto=src_proto,
            dst_proto=dst_proto,
            error_code=draw(u16),
            error_offset=draw(u16),
            body=draw(st.binary(max_size=64)),
            extensions=exts,
            afn=afn,
            protocol=protocol,
            src_nbma_subaddress=sub,
        )
    if kind == "traffic":
        return TrafficIndication(
            hop_count=hop_count,
            src_nbma=src_nbma,
            src_proto=src_proto,
            dst_proto=dst_proto,
            traffic_code=draw(u16),
            body=draw(st.binary(max_size=64)),
            extensions=exts,
            afn=afn,
            protocol=protocol,
            src_nbma_subaddress=sub,
        )
    cies = st.builds(
        Cie,
        code=u8,
        prefix_length=u8,
        mtu=u16,
        holding_time=u16,
        nbma=nbma,
        proto=proto,
        preference=u8,
        nbma_subaddress=subaddresses,
    )
    return NhrpPacket(
        op=draw(st.sampled_from(sorted(MANDATORY_OPS))),
        hop_count=hop_count,
        src_nbma=src_nbma,
        src_proto=src_proto,
        dst_proto=dst_proto,
        request_id=draw(u32),
        flags=draw(u16),
        cies=tuple(draw(st.lists(cies, max_size=4))),
        extensions=exts,
        afn=afn,
        protocol=protocol,
        src_nbma_subaddress=sub,
    )
