"""Fuzz: what the guards log (frrdmvpn/codec/nflog.py, frrdmvpn/core/guard_report.py) and
the NHRP, GRE and IPv4 codec under it (frrdmvpn/codec/nhrp.py), fed what a remote peer can
put on the wire (and the kernel wraps in NFLOG).

Properties: every decoder returns or raises its own error (NflogError, NhrpDecodeError), in
memory proportional to its input; a decoded NHRP packet re-encodes to a packet that decodes
to itself and can be described in one line; the guard report records any packet without
raising. Generation starts from valid packets (tests/unit/codec/test_nhrp_packet.py's strategy)
wrapped in GRE, IPv4 and NFLOG, then mutates any layer.
"""

from __future__ import annotations

import ipaddress
import struct
from functools import partial

from hypothesis import given
from hypothesis import strategies as st

from frrdmvpn.codec.nflog import (
    NFULA_IFINDEX_INDEV,
    NFULA_IFINDEX_OUTDEV,
    NFULA_PAYLOAD,
    NFULA_PREFIX,
    Logged,
    NflogError,
    parse,
)
from frrdmvpn.codec.nhrp import (
    GRE_PROTO_NHRP,
    GreHeader,
    NhrpDecodeError,
    decode,
    describe,
    encode,
    parse_cisco_authentication,
    parse_ipv4,
    unpack_cies,
)
from frrdmvpn.core.guard_report import IN_PREFIX, OUT_PREFIX, GuardReport, decode_offender
from tests.fakes.nhrp_packets import packets, reseal
from tests.fuzzing import MARKS, assert_bounded, budget, mutations

pytestmark = MARKS

ADDRESSES = st.sampled_from(["198.51.100.1", "198.51.100.11", "203.0.113.7"])


def ipv4(src: str, dst: str, proto: int, payload: bytes, ihl: int = 5) -> bytes:
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x40 | ihl,
        0,
        4 * ihl + len(payload),
        1,
        0,
        64,
        proto,
        0,
        ipaddress.IPv4Address(src).packed,
        ipaddress.IPv4Address(dst).packed,
    )
    return header + bytes(4 * ihl - 20) + payload


@st.composite
def gre_packets(draw: st.DrawFn) -> bytes:
    """NHRP (valid, or mutated and resealed so the checksum does not stop the decoder) in
    GRE with any options, in IPv4."""
    nhrp = encode(draw(packets()))
    if draw(st.booleans()):
        nhrp = draw(mutations(nhrp))
        if len(nhrp) >= 20 and draw(st.booleans()):
            nhrp = reseal(nhrp)
    header = GreHeader(
        draw(st.sampled_from([GRE_PROTO_NHRP, 0x0800, 0x86DD])),
        draw(st.none() | st.integers(0, 0xFFFFFFFF)),
        draw(st.none() | st.integers(0, 0xFFFFFFFF)),
    )
    gre = header.build(nhrp, checksum=draw(st.booleans()))
    return ipv4(
        draw(ADDRESSES),
        draw(ADDRESSES),
        draw(st.sampled_from([47, 47, 17])),
        gre,
        ihl=draw(st.sampled_from([5, 5, 6, 15])),
    )


ip_packets = gre_packets() | gre_packets().flatmap(mutations) | st.binary(max_size=120)


def attr(kind: int, value: bytes) -> bytes:
    length = 4 + len(value)
    return struct.pack("=HH", length, kind) + value + b"\0" * ((-length) % 4)


@st.composite
def datagrams(draw: st.DrawFn) -> bytes:
    """What the kernel sends to the NFLOG socket: packets logged with a guard's prefix,
    acknowledgements and errors, several to a datagram."""
    out = b""
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.integers(0, 4)) == 0:
            body = struct.pack("=i", -draw(st.integers(0, 200)))
            out += struct.pack("=IHHII", 16 + len(body), 2, 0, 1, 0) + body
            continue
        prefix = draw(st.sampled_from([IN_PREFIX, OUT_PREFIX, "other", ""])).encode()
        body = struct.pack("=BBH", 2, 0, 3 << 8)
        body += attr(NFULA_PREFIX, prefix + b"\0")
        body += attr(
            draw(st.sampled_from([NFULA_IFINDEX_INDEV, NFULA_IFINDEX_OUTDEV])),
            struct.pack(">I", draw(st.integers(0, 0xFFFFFFFF))),
        )
        body += attr(NFULA_PAYLOAD, draw(ip_packets))
        out += struct.pack("=IHHII", 16 + len(body), 0x0400, 0, 0, 0) + body
    return out


# --- NHRP -----------------------------------------------------------------------------------

nhrp_bytes = (
    packets().map(encode).flatmap(mutations).map(lambda d: reseal(d) if len(d) >= 20 else d)
    | packets().map(encode).flatmap(mutations)
    | st.binary(max_size=120)
)


@budget(300)
@given(nhrp_bytes)
def test_nhrp_decodes_to_a_packet_that_re_encodes_or_raises_decode_error(data: bytes) -> None:
    pkt = assert_bounded(lambda: decode(data), len(data))
    if isinstance(pkt, NhrpDecodeError):
        return
    assert not isinstance(pkt, BaseException), repr(pkt)
    assert decode(encode(pkt)) == pkt
    assert describe(pkt)


@budget(300)
@given(st.binary(max_size=200), st.sampled_from([(1, 0x0800), (2, 0x86DD), (1, 0x86DD)]))
def test_extension_values_decode_or_raise_decode_error(
    data: bytes, family: tuple[int, int]
) -> None:
    """The CIEs of a Responder/Transit/NAT extension, and an authentication value."""
    afn, protocol = family
    for call in (
        lambda: unpack_cies(data, afn=afn, protocol=protocol),
        lambda: parse_cisco_authentication(data),
    ):
        result = assert_bounded(call, len(data))
        assert not isinstance(result, BaseException) or isinstance(result, NhrpDecodeError), repr(
            result
        )


# --- the guard's report, and NFLOG ----------------------------------------------------------


@budget(200)
@given(ip_packets, st.sampled_from(["in", "out"]))
def test_any_logged_packet_is_reported_never_raised(packet: bytes, direction: str) -> None:
    offender = assert_bounded(lambda: decode_offender(direction, packet, 1.0), len(packet))
    assert not isinstance(offender, BaseException), repr(offender)
    assert offender.direction == direction
    assert offender.summary
    ip = assert_bounded(lambda: parse_ipv4(packet), len(packet))
    if isinstance(ip, NhrpDecodeError):
        assert offender.summary.startswith("undecodable IP packet")


datagram_bytes = datagrams() | datagrams().flatmap(mutations) | st.binary(max_size=100)


@budget(120)
@given(st.lists(datagram_bytes, max_size=3))
def test_nflog_datagrams_parse_or_raise_nflog_error_and_feed_the_report(
    received: list[bytes],
) -> None:
    report = GuardReport(keep=4)
    recorded = 0
    for datagram in received:
        parsed = assert_bounded(partial(parse, datagram), len(datagram))
        if isinstance(parsed, NflogError):
            continue
        assert not isinstance(parsed, BaseException), repr(parsed)
        logged, errors = parsed
        assert all(isinstance(code, int) for code in errors)
        for item in logged:
            assert isinstance(item, Logged)
            assert item.payload in datagram
            if report.add(item.prefix, item.payload, 1.0) is not None:
                recorded += 1
    assert report.counts["in"] + report.counts["out"] == recorded
    assert len(report.last) <= 4
