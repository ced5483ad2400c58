"""NFLOG netlink codec and the guard's report of what it dropped."""

from __future__ import annotations

import ipaddress
import struct

import pytest

from frrdmvpn.codec.nflog import (
    NFULA_IFINDEX_INDEV,
    NFULA_PAYLOAD,
    NFULA_PREFIX,
    NflogError,
    bind_messages,
    parse,
)
from frrdmvpn.codec.nhrp import build_gre, encode, registration_request
from frrdmvpn.core.guard_report import GuardReport, decode_offender

pytestmark = pytest.mark.unit


def attr(kind: int, value: bytes) -> bytes:
    length = 4 + len(value)
    return struct.pack("=HH", length, kind) + value + b"\0" * ((-length) % 4)


def nflog_packet(prefix: bytes, payload: bytes, indev: int = 2) -> bytes:
    body = struct.pack("=BBH", 2, 0, 3 << 8)
    body += attr(NFULA_PREFIX, prefix + b"\0") + attr(NFULA_IFINDEX_INDEV, struct.pack(">I", indev))
    body += attr(NFULA_PAYLOAD, payload)
    return struct.pack("=IHHII", 16 + len(body), 0x0400, 0, 0, 0) + body


def ipv4(src: str, dst: str, proto: int, payload: bytes) -> bytes:
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(payload),
        1,
        0,
        64,
        proto,
        0,
        ipaddress.IPv4Address(src).packed,
        ipaddress.IPv4Address(dst).packed,
    )
    return header + payload


ROGUE = ipv4(
    "198.51.100.66",
    "198.51.100.1",
    47,
    build_gre(0x2001, 42, encode(registration_request("198.51.100.66", "192.0.2.66", "192.0.2.1"))),
)


def test_bind_messages_address_the_group_in_network_order() -> None:
    bind, mode = bind_messages(3)
    length, kind, flags, seq, _ = struct.unpack_from("=IHHII", bind)
    assert (length, kind, flags, seq) == (len(bind), 0x0401, 5, 1)
    assert bind[16:20] == bytes([0, 0, 0, 3])
    assert bind[20:] == attr(1, b"\x01")
    assert mode[20:] == attr(2, struct.pack(">IBB", 0xFFFF, 2, 0))
    with pytest.raises(ValueError, match="outside"):
        bind_messages(70000)


def test_parse_packets_and_acks() -> None:
    ack = struct.pack("=IHHII", 36, 2, 0, 1, 0) + struct.pack("=i", 0) + bytes(16)
    logged, errors = parse(nflog_packet(b"frrdmvpn-guard-in", ROGUE) + ack)
    assert errors == [0]
    (p,) = logged
    assert (p.prefix, p.payload, p.indev, p.outdev) == ("frrdmvpn-guard-in", ROGUE, 2, None)
    nack = struct.pack("=IHHII", 36, 2, 0, 1, 0) + struct.pack("=i", -16) + bytes(16)
    assert parse(nack) == ([], [16])


def test_parse_rejects_bad_lengths() -> None:
    good = nflog_packet(b"x", b"y")
    with pytest.raises(NflogError, match="bad length"):
        parse(struct.pack("=I", 4) + good[4:])
    with pytest.raises(NflogError, match="attribute"):
        parse(good[:20] + struct.pack("=HH", 200, 9) + good[24:])


def test_a_rogue_registration_is_reported_with_its_claims() -> None:
    report = GuardReport(keep=2)
    offender = report.add("frrdmvpn-guard-in", ROGUE, 12.5)
    assert offender is not None
    assert (offender.direction, offender.src, offender.dst, offender.gre_key) == (
        "in",
        "198.51.100.66",
        "198.51.100.1",
        42,
    )
    assert offender.claimed_proto == "192.0.2.66"
    assert offender.claimed_nbma == "198.51.100.66"
    assert offender.summary.startswith("NHRP Registration Request 192.0.2.66")
    assert report.as_dict()["counts"] == {"in": 1, "in_nhrp": 1}


def test_report_is_bounded_and_ignores_other_prefixes() -> None:
    report = GuardReport(keep=2)
    assert report.add("something-else", ROGUE, 0) is None
    for t in range(5):
        report.add("frrdmvpn-guard-out", ROGUE, float(t))
    assert [o.at for o in report.last] == [3.0, 4.0]
    assert report.counts["out"] == 5


@pytest.mark.parametrize(
    ("packet", "summary"),
    [
        (b"\x00" * 3, "undecodable IP packet"),
        (
            ipv4("198.51.100.9", "198.51.100.1", 47, build_gre(0x0800, 42, bytes(20))),
            "GRE carrying protocol 0x0800",
        ),
        (
            ipv4("198.51.100.9", "198.51.100.1", 47, build_gre(0x2001, 42, b"\x00\x01")),
            "malformed NHRP",
        ),
        (ipv4("198.51.100.9", "198.51.100.1", 47, b"\x00"), "IP proto 47"),
    ],
)
def test_garbage_is_described_not_raised(packet: bytes, summary: str) -> None:
    assert decode_offender("in", packet, 0.0).summary.startswith(summary)
