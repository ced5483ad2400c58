"""Fuzzers over the kernel codecs: NFLOG (it carries the peers' packets the guards dropped,
through :class:`~frrdmvpn.core.guard_report.GuardReport`), rtnetlink neighbour and address
messages (the addresses through :class:`~frrdmvpn.core.guard_set.AddressTable`) and inotify
events (frrdmvpn/codec/). Whatever the bytes: a result or the codec's ValueError, never
another exception, and memory bounded by the input."""

from __future__ import annotations

import socket
import struct

from hypothesis import given
from hypothesis import strategies as st

from frrdmvpn.codec import inotify, nflog, rtnl_addr, rtnl_neigh
from frrdmvpn.codec.netlink import NetlinkError, attr, message
from frrdmvpn.codec.nhrp import build_gre, encode, registration_request
from frrdmvpn.core.guard_report import GuardReport, decode_offender
from frrdmvpn.core.guard_set import AddressTable
from tests.fuzzing import MARKS, assert_bounded, budget, mutations, pieces

pytestmark = MARKS

_NFGEN = struct.pack("=BBH", socket.AF_INET, 0, 0)
_ULOG_PACKET = (nflog.NFNL_SUBSYS_ULOG << 8) | nflog.NFULNL_MSG_PACKET


def _ipv4(src: bytes, dst: bytes, proto: int, payload: bytes) -> bytes:
    return (
        struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, 0, 64, proto, 0, src, dst)
        + payload
    )


_REGISTRATION = encode(registration_request("198.51.100.66", "192.0.2.66", "192.0.2.1"))
ROGUE = _ipv4(
    bytes([198, 51, 100, 66]), bytes([198, 51, 100, 1]), 47, build_gre(0x2001, 42, _REGISTRATION)
)


def _logged(prefix: bytes, payload: bytes) -> bytes:
    body = _NFGEN + attr(nflog.NFULA_PREFIX, prefix + b"\0")
    body += attr(nflog.NFULA_IFINDEX_INDEV, struct.pack(">I", 2))
    return message(_ULOG_PACKET, 0, 0, body + attr(nflog.NFULA_PAYLOAD, payload))


def _neighbour(kind: int, family: int, dst: bytes, lladdr: bytes) -> bytes:
    body = struct.pack("=BBHiHBB", family, 0, 0, 7, 0x02, 0, 1)
    return message(
        kind, 0, 0, body + attr(rtnl_neigh.NDA_DST, dst) + attr(rtnl_neigh.NDA_LLADDR, lladdr)
    )


VALID_NFLOG = _logged(b"frrdmvpn-in", ROGUE) + message(2, 0, 0, struct.pack("=i", 0) + bytes(16))
VALID_NEIGH = _neighbour(
    rtnl_neigh.RTM_NEWNEIGH, socket.AF_INET, bytes([192, 0, 2, 2]), bytes([198, 51, 100, 2])
) + message(3, 2, 0, bytes(4))


def _address(kind: int, ifindex: int, local: bytes, flags: int = 0) -> bytes:
    body = struct.pack("=BBBBI", socket.AF_INET, 24, 0x80, 0, ifindex)
    body += attr(rtnl_addr.IFA_ADDRESS, local) + attr(rtnl_addr.IFA_LOCAL, local)
    return message(kind, flags, 0, body + attr(3, b"eth0\0"))


VALID_ADDR = (
    _address(rtnl_addr.RTM_NEWADDR, 2, bytes([198, 51, 100, 11]), 2)
    + _address(rtnl_addr.RTM_DELADDR, 2, bytes([198, 51, 100, 12]))
    + message(3, 2, 0, bytes(4))
)
VALID_INOTIFY = struct.pack("=iIII", 1, 0x80, 0, 16) + b"decisions.json\0\0"


@budget(300)
@given(st.one_of(st.binary(max_size=512), mutations(VALID_NFLOG)))
def test_nflog_bytes_parse_or_fail_as_netlink_errors(data: bytes) -> None:
    result = assert_bounded(lambda: nflog.parse(data), len(data))
    if isinstance(result, BaseException):
        assert isinstance(result, NetlinkError), repr(result)
    else:
        logged, errors = result
        assert all(isinstance(e, int) for e in errors)
        assert all(p.payload in data for p in logged)


@budget(300)
@given(st.one_of(st.binary(max_size=256), mutations(ROGUE)), st.binary(max_size=40))
def test_a_dropped_packet_is_described_never_raised(payload: bytes, prefix: bytes) -> None:
    """What a peer put on the wire reaches the report through NFLOG: decoded or described."""
    (logged,), _ = nflog.parse(_logged(prefix.replace(b"\0", b""), payload))
    assert logged.payload == payload
    offender = decode_offender("in", logged.payload, 1.0)
    assert offender.summary
    report = GuardReport(keep=4)
    for _ in range(6):
        report.add(logged.prefix, logged.payload, 1.0)
    assert len(report.as_dict()["last"]) <= 4


@budget(300)
@given(st.one_of(st.binary(max_size=512), mutations(VALID_NEIGH)))
def test_neighbour_messages_parse_or_fail_as_netlink_errors(data: bytes) -> None:
    result = assert_bounded(lambda: rtnl_neigh.parse(data), len(data))
    if isinstance(result, BaseException):
        assert isinstance(result, NetlinkError), repr(result)
    else:
        for change in result.changes:
            assert change.state


@budget(300)
@given(st.lists(st.one_of(st.binary(max_size=256), mutations(VALID_ADDR)), max_size=4))
def test_address_messages_parse_or_fail_and_the_table_holds_what_they_said(
    datagrams: list[bytes],
) -> None:
    """Datagram by datagram into the table the guards follow: each parses or fails as a
    netlink error, and the table holds exactly the addresses added and not deleted since."""
    table = AddressTable()
    table.dumping()
    for data in datagrams:
        result = assert_bounded(lambda d=data: rtnl_addr.parse(d), len(data))  # type: ignore[misc]
        if isinstance(result, BaseException):
            assert isinstance(result, NetlinkError), repr(result)
            continue
        before = {i: set(a) for i, a in table.addresses.items()}
        changed = table.update(result)
        after = {i: set(a) for i, a in table.addresses.items()}
        assert changed == {i for i in {*before, *after} if before.get(i) != after.get(i)}
        if result.done:
            continue  # the dump ended: what it did not list is gone
        want = {i: set(a) for i, a in before.items()}
        for c in result.changes:
            held = want.setdefault(c.ifindex, set())
            if c.deleted:
                held.discard(c.address)
            else:
                held.add(c.address)
        assert after == {i: a for i, a in want.items() if a}


@budget(300)
@given(st.one_of(st.binary(max_size=512), mutations(VALID_INOTIFY)), st.lists(st.integers()))
def test_inotify_reads_parse_or_fail_as_inotify_errors(data: bytes, cuts: list[int]) -> None:
    for piece in [*pieces(data, cuts), data]:
        result = assert_bounded(lambda p=piece: inotify.parse(p), len(piece))  # type: ignore[misc]
        if isinstance(result, BaseException):
            assert isinstance(result, inotify.InotifyError), repr(result)


def test_the_seeds_are_what_the_kernel_sends() -> None:
    """The fuzzers mutate real messages: each seed parses to what it says."""
    (logged,), errors = nflog.parse(VALID_NFLOG)
    assert (logged.prefix, logged.payload, logged.indev, errors) == ("frrdmvpn-in", ROGUE, 2, [0])
    assert "198.51.100.66" in decode_offender("in", ROGUE, 0.0).summary
    received = rtnl_neigh.parse(VALID_NEIGH)
    assert received.done
    assert [str(c.dst) for c in received.changes] == ["192.0.2.2"]
    assert inotify.parse(VALID_INOTIFY) == [inotify.FileEvent(1, 0x80, "decisions.json")]
    addresses = rtnl_addr.parse(VALID_ADDR)
    assert addresses.done
    assert [(c.ifindex, str(c.address), c.deleted) for c in addresses.changes] == [
        (2, "198.51.100.11", False),
        (2, "198.51.100.12", True),
    ]
