"""NHRP packet codec: hand-built golden wire fixtures, GRE/IPv4 framing, round-trips, errors.

The fixtures were written field by field from the RFC 2332 §5.2 layout; only the
checksums were computed, by :func:`ones_complement` below (independent of the codec's).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from frrdmvpn.codec.nhrp import (
    AFN_IPV4,
    AFN_IPV6,
    ETHERTYPE_IPV6,
    FLAG_REGISTRATION_UNIQUE,
    GRE_PROTO_NHRP,
    Cie,
    ErrorIndication,
    Extension,
    ExtType,
    GreHeader,
    NhrpDecodeError,
    NhrpPacket,
    Op,
    Packet,
    TrafficIndication,
    build_gre,
    cisco_authentication,
    decode,
    decode_from_ip,
    describe,
    encode,
    extension,
    internet_checksum,
    pack_cies,
    parse_cisco_authentication,
    parse_gre,
    parse_ipv4,
    registration_request,
    unpack_cies,
)
from tests.fakes.nhrp_packets import ones_complement, packets, reseal

pytestmark = pytest.mark.unit
FIXTURES = Path(__file__).parent / "fixtures" / "nhrp"

ip4 = ipaddress.IPv4Address
ip6 = ipaddress.IPv6Address


def wire(text: str) -> bytes:
    """Hex with ``#`` comments and any whitespace."""
    return bytes.fromhex("".join(line.split("#", 1)[0] for line in text.splitlines()))


def golden(name: str) -> bytes:
    """A commented wire fixture of ``fixtures/nhrp/`` (hex, ``#`` comments)."""
    return wire((FIXTURES / f"{name}.hex").read_text())


def patch(data: bytes, offset: int, raw: bytes) -> bytes:
    """``data`` with ``raw`` written at ``offset``, resealed."""
    return reseal(data[:offset] + raw + data[offset + len(raw) :])


# --- golden fixtures: fixtures/nhrp/*.hex ----------------------------------------------

GOLDEN_REG = golden("registration")

NAT_CIE = Cie(prefix_length=32, mtu=1400, nbma=ip4("203.0.113.1"), proto=ip4("192.0.2.1"))

GOLDEN_REG_EXT = golden("registration-extensions")

REG = NhrpPacket(
    op=Op.REGISTRATION_REQUEST,
    hop_count=64,
    src_nbma=ip4("198.51.100.66"),
    src_proto=ip4("192.0.2.66"),
    dst_proto=ip4("192.0.2.1"),
    request_id=1,
    cies=(
        Cie(
            prefix_length=32,
            mtu=1400,
            holding_time=600,
            nbma=ip4("198.51.100.66"),
            proto=ip4("192.0.2.66"),
        ),
    ),
)
REG_EXTENSIONS = (
    Extension(ExtType.FORWARD_TRANSIT_NHS, compulsory=True),
    Extension(ExtType.REVERSE_TRANSIT_NHS, compulsory=True),
    Extension(ExtType.RESPONDER_ADDRESS, compulsory=True),
    Extension(
        ExtType.NAT_ADDRESS,
        compulsory=False,
        value=wire("""
        00 20 0000 0578 0000 04 00 04 00 cb007101 c0000201
    """),
    ),
)
REG_EXT = dataclasses.replace(REG, extensions=REG_EXTENSIONS)

GOLDEN_FRR_REG = golden("frr-registration")
FRR_REG = NhrpPacket(
    op=Op.REGISTRATION_REQUEST,
    hop_count=1,
    src_nbma=ip4("198.51.100.66"),
    src_proto=ip4("192.0.2.66"),
    dst_proto=ip4("192.0.2.1"),
    request_id=7,
    flags=FLAG_REGISTRATION_UNIQUE,
    cies=(Cie(prefix_length=0xFF, mtu=1400, holding_time=7200),),
)

INNER_IP = wire("4500 0054 0000 4000 3f 01 0000 0a010001 0a020001")  # ICMP 10.1.0.1 -> 10.2.0.1
GOLDEN_TRAFFIC = golden("traffic-indication")
TRAFFIC = TrafficIndication(
    hop_count=1,
    src_nbma=ip4("203.0.113.1"),
    src_proto=ip4("192.0.2.1"),
    dst_proto=ip4("10.2.0.1"),
    body=INNER_IP,
)

GOLDEN_ERROR = golden("error-indication")
ERROR = ErrorIndication(
    hop_count=64,
    src_nbma=ip4("203.0.113.1"),
    src_proto=ip4("192.0.2.1"),
    dst_proto=ip4("192.0.2.66"),
    error_code=6,
    error_offset=0,
    body=GOLDEN_REG,
)

GOLDEN_GRE = golden("gre-header")
GOLDEN_IP = golden("ipv4-gre-registration")

GOLDENS = [
    pytest.param(GOLDEN_REG, REG, id="registration"),
    pytest.param(GOLDEN_REG_EXT, REG_EXT, id="registration-extensions"),
    pytest.param(GOLDEN_FRR_REG, FRR_REG, id="frr-registration"),
    pytest.param(GOLDEN_TRAFFIC, TRAFFIC, id="traffic-indication"),
    pytest.param(GOLDEN_ERROR, ERROR, id="error-indication"),
]


@pytest.mark.parametrize(("golden", "model"), GOLDENS)
def test_encode_matches_golden(golden: bytes, model: Packet) -> None:
    assert encode(model) == golden


@pytest.mark.parametrize(("golden", "model"), GOLDENS)
def test_decode_golden(golden: bytes, model: Packet) -> None:
    assert decode(golden) == model


@pytest.mark.parametrize(("golden", "model"), GOLDENS)
def test_golden_checksum_is_the_internet_checksum(golden: bytes, model: Packet) -> None:
    del model
    assert ones_complement(golden) == 0  # the sum including ar$chksum is 0xffff
    zeroed = golden[:12] + b"\0\0" + golden[14:]
    assert internet_checksum(zeroed) == ones_complement(zeroed) == int.from_bytes(golden[12:14])


@given(st.binary(max_size=300))
def test_internet_checksum_matches_independent_implementation(data: bytes) -> None:
    assert internet_checksum(data) == ones_complement(data)


def test_registration_request_builder() -> None:
    assert registration_request("198.51.100.66", "192.0.2.66", "192.0.2.1") == REG
    built = registration_request(
        ip4("198.51.100.66"),
        ip4("192.0.2.66"),
        ip4("192.0.2.1"),
        holding_time=7200,
        request_id=7,
        unique=True,
        hop_count=1,
        extensions=REG_EXTENSIONS,
    )
    assert built.flags == FLAG_REGISTRATION_UNIQUE
    assert built.cies[0].prefix_length == 0xFF
    assert built.extensions == REG_EXTENSIONS
    assert decode(encode(built)) == built


def test_registration_request_builder_ipv6_overlay() -> None:
    built = registration_request("198.51.100.66", "2001:db8::66", "2001:db8::1")
    assert (built.afn, built.protocol) == (AFN_IPV4, ETHERTYPE_IPV6)
    assert built.cies[0].prefix_length == 128
    assert decode(encode(built)) == built
    with pytest.raises(ValueError, match="differ in family"):
        registration_request("198.51.100.66", "192.0.2.66", "2001:db8::1")


def test_describe() -> None:
    assert describe(REG) == (
        "Registration Request 192.0.2.66 (nbma 198.51.100.66) -> 192.0.2.1, 1 CIE, holding 600 s"
    )
    assert describe(REG_EXT) == (
        "Registration Request 192.0.2.66 (nbma 198.51.100.66) -> 192.0.2.1, 1 CIE, "
        "holding 600 s, ext forward-transit reverse-transit responder nat"
    )
    assert describe(FRR_REG) == (
        "Registration Request 192.0.2.66 (nbma 198.51.100.66) -> 192.0.2.1, 1 CIE, "
        "holding 7200 s, unique"
    )
    reply = dataclasses.replace(
        REG, op=Op.REGISTRATION_REPLY, cies=(Cie(code=14, holding_time=600),), src_nbma=None
    )
    assert describe(reply) == (
        "Registration Reply 192.0.2.66 (nbma -) -> 192.0.2.1, 1 CIE, holding 600 s, code 14"
    )
    purge = dataclasses.replace(REG, op=Op.PURGE_REQUEST, cies=())
    assert describe(purge) == "Purge Request 192.0.2.66 (nbma 198.51.100.66) -> 192.0.2.1, 0 CIEs"
    assert describe(TRAFFIC) == (
        "Traffic Indication 192.0.2.1 (nbma 203.0.113.1) -> 10.2.0.1, traffic 10.1.0.1 -> 10.2.0.1"
    )
    odd = dataclasses.replace(TRAFFIC, body=b"\x60" * 40, extensions=(Extension(0x401, False),))
    assert describe(odd).endswith(", 40-byte body, ext huawei-identity")
    assert describe(dataclasses.replace(odd, extensions=(Extension(0x77, True),))).endswith(
        ", ext 0x0077"
    )
    assert describe(ERROR) == (
        "Error Indication 192.0.2.1 (nbma 203.0.113.1) -> 192.0.2.66, error 6 at offset 0"
    )


def test_cies_in_extension_values() -> None:
    nat = REG_EXT.extensions[3]
    assert unpack_cies(nat.value) == (NAT_CIE,)
    assert pack_cies([NAT_CIE]) == nat.value
    assert unpack_cies(b"") == ()
    v6 = Cie(nbma=ip6("2001:db8::1"), proto=ip4("192.0.2.1"), nbma_subaddress=b"\x01\x02")
    assert unpack_cies(pack_cies([v6], afn=AFN_IPV6), afn=AFN_IPV6) == (v6,)
    with pytest.raises(NhrpDecodeError, match="unsupported ar\\$afn 3"):
        unpack_cies(nat.value, afn=3)
    with pytest.raises(NhrpDecodeError, match="truncated CIE protocol address"):
        unpack_cies(nat.value[:-1])
    with pytest.raises(ValueError, match=re.escape("unsupported ar$pro.type 0x0806")):
        pack_cies([NAT_CIE], protocol=0x0806)


def test_extension_helpers() -> None:
    assert extension(ExtType.RESPONDER_ADDRESS) == Extension(3, compulsory=True)
    assert extension(ExtType.NAT_ADDRESS, b"x") == Extension(9, compulsory=False, value=b"x")
    auth = cisco_authentication(b"secret")
    assert auth == Extension(7, compulsory=True, value=b"\0\0\0\x01secret")
    assert parse_cisco_authentication(auth.value) == (1, b"secret")
    with pytest.raises(ValueError, match=re.escape("1..8 bytes")):
        cisco_authentication(b"too-long-pw")
    with pytest.raises(NhrpDecodeError, match="truncated authentication SPI"):
        parse_cisco_authentication(b"\0\0\0")
    huawei = dataclasses.replace(REG, extensions=(auth, Extension(0x0401, False, b"AR-1")))
    assert decode(encode(huawei)) == huawei


def test_byte_round_trip_of_goldens() -> None:
    for golden in (GOLDEN_REG, GOLDEN_REG_EXT, GOLDEN_FRR_REG, GOLDEN_TRAFFIC, GOLDEN_ERROR):
        assert encode(decode(golden)) == golden


def test_lone_end_extension_decodes_to_no_extensions() -> None:
    lone = reseal(GOLDEN_REG + wire("8000 0000"), extoff=60)
    assert decode(lone) == REG
    uncompulsory_end = reseal(GOLDEN_REG + wire("0000 0000"), extoff=60)
    assert decode(uncompulsory_end) == REG


def test_unused_fields_are_ignored() -> None:
    noisy = patch(GOLDEN_REG, 42, b"\xff\xff")  # the CIE's unused field
    assert decode(noisy) == REG
    assert encode(decode(noisy)) == GOLDEN_REG


def test_subaddresses_decode() -> None:
    # ar$sstl 2 and a CIE subaddress of 1 byte, added to the FRR-shaped packet
    data = GOLDEN_FRR_REG[:19] + b"\x02" + GOLDEN_FRR_REG[20:32] + b"\xaa\xbb"
    data += GOLDEN_FRR_REG[32:40] + wire("00 ff 0000 0578 1c20 04 01 00 00 c6336442 cc")
    pkt = decode(reseal(data))
    assert isinstance(pkt, NhrpPacket)
    assert pkt.src_nbma_subaddress == b"\xaa\xbb"
    assert pkt.cies == (
        Cie(
            prefix_length=0xFF,
            mtu=1400,
            holding_time=7200,
            nbma=pkt.src_nbma,
            nbma_subaddress=b"\xcc",
        ),
    )
    assert encode(pkt) == reseal(data)


# --- GRE and IPv4 -----------------------------------------------------------------------


def test_decode_from_ip() -> None:
    assert ones_complement(GOLDEN_IP[:20]) == 0
    assert decode_from_ip(GOLDEN_IP) == (ip4("198.51.100.66"), ip4("203.0.113.1"), 42, REG_EXT)
    assert build_gre(GRE_PROTO_NHRP, 42, GOLDEN_REG_EXT) == GOLDEN_IP[20:]
    assert parse_gre(GOLDEN_IP[20:]) == (GRE_PROTO_NHRP, 42, GOLDEN_REG_EXT)


def test_decode_from_ip_passes_verify_checksum() -> None:
    bad = bytearray(GOLDEN_IP)
    bad[20 + 8 + 81] ^= 0x01  # MTU in the NAT extension's CIE
    with pytest.raises(NhrpDecodeError, match="checksum mismatch"):
        decode_from_ip(bytes(bad))
    assert decode_from_ip(bytes(bad), verify_checksum=False)[3] != REG_EXT


def test_ipv4_options_and_trailing_bytes() -> None:
    header = wire("46 00 0084 0000 4000 40 2f 0000 c6336442 cb007101 01010100")
    packet = header + GOLDEN_GRE + GOLDEN_REG_EXT + b"\0\0"  # link-layer padding
    src, dst, proto, payload = parse_ipv4(packet)
    assert (src, dst, proto, payload) == (
        ip4("198.51.100.66"),
        ip4("203.0.113.1"),
        47,
        GOLDEN_GRE + GOLDEN_REG_EXT,
    )
    assert decode_from_ip(packet)[3] == REG_EXT


def test_gre_without_key_and_with_checksum_and_sequence() -> None:
    assert build_gre(GRE_PROTO_NHRP, None, b"abc") == wire("0000 2001") + b"abc"
    assert parse_gre(wire("0000 2001") + b"abc") == (GRE_PROTO_NHRP, None, b"abc")
    header = GreHeader(GRE_PROTO_NHRP, key=42, sequence=7)
    packet = header.build(GOLDEN_REG, checksum=True)
    assert packet[:4] == wire("b000 2001")
    assert ones_complement(packet) == 0
    assert GreHeader.parse(packet) == (header, GOLDEN_REG)
    corrupt = packet[:-1] + bytes([packet[-1] ^ 1])
    with pytest.raises(NhrpDecodeError, match="GRE checksum mismatch"):
        parse_gre(corrupt)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (wire("2000 20"), "truncated GRE header"),
        (wire("2000 2001 0000"), "truncated GRE key"),
        (wire("8000 2001 00"), "truncated GRE checksum"),
        (wire("1000 2001"), "truncated GRE sequence number"),
        (wire("0001 2001"), "unsupported GRE version 1"),
        (wire("4000 2001"), "unsupported GRE flags 0x4000"),
        (wire("0800 2001"), "unsupported GRE flags 0x0800"),
    ],
)
def test_gre_errors(data: bytes, message: str) -> None:
    with pytest.raises(NhrpDecodeError, match=re.escape(message)):
        parse_gre(data)


def _ip_header(**fields: int) -> bytes:
    values = {"ver_ihl": 0x45, "total": 28, "frag": 0x4000, "proto": 47} | fields
    return struct.pack(
        "!BBHHHBBH4s4s",
        values["ver_ihl"],
        0,
        values["total"],
        0,
        values["frag"],
        64,
        values["proto"],
        0,
        bytes(4),
        bytes(4),
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_ip_header()[:19], "truncated IPv4 header"),
        (_ip_header(ver_ihl=0x65) + GOLDEN_GRE, "IP version 6 is not IPv4"),
        (_ip_header(ver_ihl=0x44) + GOLDEN_GRE, "IPv4 IHL 4 is below 5"),
        (_ip_header(ver_ihl=0x48) + GOLDEN_GRE, "truncated IPv4 options: need 32 bytes, have 28"),
        (_ip_header(total=29) + GOLDEN_GRE, "IPv4 total length 29 outside 20..28"),
        (_ip_header(total=19) + GOLDEN_GRE, "IPv4 total length 19 outside 20..28"),
        (_ip_header(frag=0x2000) + GOLDEN_GRE, "IPv4 fragment"),
        (_ip_header(frag=0x0001) + GOLDEN_GRE, "IPv4 fragment"),
    ],
)
def test_ipv4_errors(data: bytes, message: str) -> None:
    with pytest.raises(NhrpDecodeError, match=re.escape(message)):
        parse_ipv4(data)


def test_decode_from_ip_rejects_other_payloads() -> None:
    with pytest.raises(NhrpDecodeError, match="IP protocol 17 is not GRE"):
        decode_from_ip(_ip_header(proto=17) + GOLDEN_GRE)
    with pytest.raises(NhrpDecodeError, match="GRE protocol 0x0800 is not NHRP"):
        decode_from_ip(_ip_header() + wire("2000 0800 0000002a"))


# --- decode errors ----------------------------------------------------------------------

# (start, end, field) of GOLDEN_REG and of GOLDEN_REG_EXT's extension area.
REG_FIELDS = [
    (0, 20, "truncated fixed header"),
    (20, 28, "truncated mandatory part header"),
    (28, 32, "truncated source NBMA address"),
    (32, 36, "truncated source protocol address"),
    (36, 40, "truncated destination protocol address"),
    (40, 52, "truncated CIE header"),
    (52, 56, "truncated CIE NBMA address"),
    (56, 60, "truncated CIE protocol address"),
]
EXT_HEADERS = [60, 64, 68, 72, 96]  # where each extension header (the last: End) starts
NAT_VALUE = (76, 96)


def _truncation_expectation(golden: bytes, cut: int) -> str | None:
    """The error decoding ``golden`` cut to ``cut`` bytes (resealed) must name; None if valid."""
    if golden is GOLDEN_REG_EXT and cut >= 20:
        if cut < 60:
            return f"ar$extoff 60 beyond the end of the {cut}-byte packet"
        if cut in EXT_HEADERS:
            return "not terminated by an End extension"
        if NAT_VALUE[0] <= cut < NAT_VALUE[1]:
            return f"length 20 exceeds the {cut - NAT_VALUE[0]} bytes left"
        return "truncated extension header"
    if cut == 40:
        return None  # the CIE list ends on an entry boundary: a packet without CIEs
    return next(message for start, end, message in REG_FIELDS if start <= cut < end)


@pytest.mark.parametrize(
    ("golden", "cut"),
    [pytest.param(GOLDEN_REG, n, id=f"reg-{n}") for n in range(len(GOLDEN_REG))]
    + [pytest.param(GOLDEN_REG_EXT, n, id=f"ext-{n}") for n in range(len(GOLDEN_REG_EXT))],
)
def test_truncation_at_every_offset(golden: bytes, cut: int) -> None:
    data = golden[:cut] if cut < 20 else reseal(golden[:cut])
    expected = _truncation_expectation(golden, cut)
    if expected is None:
        assert decode(data) == dataclasses.replace(REG, cies=())
        return
    with pytest.raises(NhrpDecodeError, match=re.escape(expected)):
        decode(data)


def test_bad_checksum() -> None:
    data = bytearray(GOLDEN_REG)
    data[45] ^= 0x01  # CIE MTU 1400 -> 1401
    with pytest.raises(NhrpDecodeError, match="checksum mismatch: ar\\$chksum 0x4317, computed"):
        decode(bytes(data))
    pkt = decode(bytes(data), verify_checksum=False)
    assert isinstance(pkt, NhrpPacket)
    assert pkt.cies[0].mtu == 1401


def test_zero_checksum_is_checked_too() -> None:
    with pytest.raises(NhrpDecodeError, match="checksum mismatch: ar\\$chksum 0x0000"):
        decode(GOLDEN_REG[:12] + b"\0\0" + GOLDEN_REG[14:])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (GOLDEN_REG + b"\0", "ar$pktsz 60 does not match the 61 bytes given"),
        (reseal(GOLDEN_REG, pktsz=59), "ar$pktsz 59 does not match the 60 bytes given"),
        (reseal(GOLDEN_REG, pktsz=0), "ar$pktsz 0 does not match the 60 bytes given"),
        (patch(GOLDEN_REG, 16, b"\x02"), "unsupported ar$op.version 2 (want 1)"),
        (patch(GOLDEN_REG, 17, b"\x00"), "unsupported ar$op.type 0"),
        (patch(GOLDEN_REG, 17, b"\x09"), "unsupported ar$op.type 9"),
        (patch(GOLDEN_REG, 0, b"\x00\x03"), "unsupported ar$afn 3"),
        (patch(GOLDEN_REG, 2, b"\x08\x06"), "unsupported ar$pro.type 0x0806"),
        (patch(GOLDEN_REG, 8, b"\x01"), "unsupported non-zero ar$pro.snap 0000000001"),
        (patch(GOLDEN_REG, 18, b"\x05"), "source NBMA address length 5 unsupported for ar$afn"),
        (patch(GOLDEN_REG, 18, b"\x44"), "unsupported source NBMA address type bits"),
        (patch(GOLDEN_REG, 19, b"\x80"), "unsupported source NBMA subaddress type bits"),
        (patch(GOLDEN_REG, 20, b"\x10"), "source protocol address length 16 unsupported"),
        (patch(GOLDEN_REG, 21, b"\x03"), "destination protocol address length 3 unsupported"),
        (patch(GOLDEN_REG, 48, b"\x03"), "CIE NBMA address length 3 unsupported for ar$afn"),
        (patch(GOLDEN_REG, 48, b"\x44"), "unsupported CIE NBMA address type bits"),
        (patch(GOLDEN_REG, 49, b"\x40"), "unsupported CIE NBMA subaddress type bits"),
        (patch(GOLDEN_REG, 50, b"\x05"), "CIE protocol address length 5 unsupported"),
        (reseal(GOLDEN_REG, extoff=61), "ar$extoff 61 beyond the end of the 60-byte packet"),
        (reseal(GOLDEN_REG, extoff=39), "ar$extoff 39 points into the mandatory part (ends at 40)"),
        (reseal(GOLDEN_REG, extoff=20), "ar$extoff 20 points into the mandatory part"),
        (reseal(GOLDEN_REG, extoff=60), "not terminated by an End extension at offset 60"),
        (
            # the CIE area is cut short by ar$extoff; the CIE spills into the extensions
            reseal(GOLDEN_REG + wire("8000 0000"), extoff=59),
            "truncated CIE protocol address: need 4 bytes at offset 56, 3 left",
        ),
        (
            patch(GOLDEN_REG_EXT, 74, b"\x00\x19"),
            "extension 0x0009 at offset 72: length 25 exceeds the 24 bytes left",
        ),
        (
            patch(GOLDEN_REG_EXT, 74, b"\xff\xff"),
            "length 65535 exceeds the 24 bytes left",
        ),
        (
            reseal(GOLDEN_REG_EXT[:96] + wire("8003 0000")),
            "not terminated by an End extension at offset 100",
        ),
        (reseal(GOLDEN_REG_EXT + b"\0\0"), "2 bytes after the End extension at offset 96"),
        (
            reseal(GOLDEN_REG_EXT[:96] + wire("8000 0002 0000")),
            "End extension at offset 96 has length 2",
        ),
    ],
)
def test_decode_errors(data: bytes, message: str) -> None:
    with pytest.raises(NhrpDecodeError, match=re.escape(message)):
        decode(data)


def test_decode_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="truncated fixed header: need 20 bytes, have 0"):
        decode(b"")


# --- encode errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (dataclasses.replace(REG, op=Op.ERROR_INDICATION), "needs ErrorIndication"),
        (dataclasses.replace(REG, op=Op.TRAFFIC_INDICATION), "needs ErrorIndication"),
        (dataclasses.replace(REG, src_nbma=ip6("2001:db8::1")), "source NBMA address 2001:db8"),
        (dataclasses.replace(REG, dst_proto=ip6("2001:db8::1")), "destination protocol address"),
        (dataclasses.replace(REG, afn=7), "unsupported ar$afn 0x0007"),
        (dataclasses.replace(REG, protocol=0x0806), "unsupported ar$pro.type 0x0806"),
        (dataclasses.replace(REG, hop_count=256), "hop count 256 does not fit 8 bits"),
        (dataclasses.replace(REG, flags=-1), "flags -1 does not fit 16 bits"),
        (dataclasses.replace(REG, request_id=1 << 32), "request id 4294967296 does not fit"),
        (dataclasses.replace(REG, src_nbma_subaddress=bytes(64)), "subaddress of 64 bytes"),
        (dataclasses.replace(REG, cies=(Cie(mtu=70000),)), "CIE MTU 70000 does not fit"),
        (dataclasses.replace(REG, cies=(Cie(proto=ip6("::1")),)), "CIE protocol address ::1"),
        (
            dataclasses.replace(REG, cies=(Cie(nbma_subaddress=bytes(64)),)),
            "CIE NBMA subaddress of 64 bytes",
        ),
        (dataclasses.replace(REG, extensions=(Extension(0, True),)), "extension type 0 outside"),
        (
            dataclasses.replace(REG, extensions=(Extension(0x8004, True),)),
            "extension type 32772 outside",
        ),
        (
            dataclasses.replace(REG, extensions=(Extension(8, False, bytes(65536)),)),
            "extension length 65536 does not fit 16 bits",
        ),
        (
            dataclasses.replace(REG, extensions=(Extension(8, False, bytes(65500)),)),
            "exceeds ar$pktsz's 65535",
        ),
        (dataclasses.replace(ERROR, error_code=1 << 16), "error code 65536 does not fit"),
        (dataclasses.replace(TRAFFIC, traffic_code=-1), "traffic code -1 does not fit"),
    ],
)
def test_encode_errors(model: Packet, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        encode(model)


def test_gre_build_errors() -> None:
    with pytest.raises(ValueError, match="GRE key 4294967296 does not fit 32 bits"):
        build_gre(GRE_PROTO_NHRP, 1 << 32, b"")
    with pytest.raises(ValueError, match="GRE protocol 65536 does not fit"):
        build_gre(1 << 16, None, b"")
    with pytest.raises(ValueError, match="GRE sequence number -1 does not fit"):
        GreHeader(GRE_PROTO_NHRP, sequence=-1).build(b"")


# --- generated packets ------------------------------------------------------------------


@given(packets())
def test_round_trip(pkt: Packet) -> None:
    data = encode(pkt)
    assert ones_complement(data) == 0
    assert int.from_bytes(data[10:12]) == len(data)
    assert decode(data) == pkt
    assert encode(decode(data)) == data
    framed = build_gre(GRE_PROTO_NHRP, 42, data)
    assert parse_gre(framed) == (GRE_PROTO_NHRP, 42, data)
