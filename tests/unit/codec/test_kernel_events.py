"""The kernel's change notifications frrdmvpnd steps on: rtnetlink neighbour and address
messages, inotify events, and the neighbour table kept from them. Messages are built here by
hand from the kernel's layouts (struct ndmsg, struct ifaddrmsg, struct inotify_event)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import socket
import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from frrdmvpn.adapters.file_events import DirectoryWatch
from frrdmvpn.adapters.neighbors import NeighborMonitor
from frrdmvpn.codec import inotify, rtnl_addr, rtnl_neigh
from frrdmvpn.codec.netlink import NLM_F_DUMP, NLM_F_MULTI, NLMSG_DONE, NetlinkError, attr
from frrdmvpn.core.supervisor import Neighbor

pytestmark = pytest.mark.unit

ip = ipaddress.ip_address
GRE = 7


def nl(kind: int, body: bytes, flags: int = 0, seq: int = 0) -> bytes:
    return struct.pack("=IHHII", 16 + len(body), kind, flags, seq, 0) + body


def neighbour(kind: int, ifindex: int, dst: str, lladdr: bytes | None, state: int) -> bytes:
    addr = ip(dst)
    family = socket.AF_INET if addr.version == 4 else socket.AF_INET6
    body = struct.pack("=BBHiHBB", family, 0, 0, ifindex, state, 0, 0) + attr(1, addr.packed)
    if lladdr is not None:
        body += attr(2, lladdr)
    return nl(kind, body)


def test_dump_request_asks_for_every_entry() -> None:
    req = rtnl_neigh.dump_request(7)
    length, kind, flags, seq, _ = struct.unpack_from("=IHHII", req)
    assert (length, kind, flags, seq) == (len(req), rtnl_neigh.RTM_GETNEIGH, 1 | NLM_F_DUMP, 7)
    assert req[16:] == bytes(12)  # every family, every interface


def test_gre_entries_name_the_peers_nbma_address() -> None:
    data = (
        neighbour(rtnl_neigh.RTM_NEWNEIGH, GRE, "192.0.2.1", ip("198.51.100.1").packed, 0x02)
        + neighbour(rtnl_neigh.RTM_NEWNEIGH, GRE, "192.0.2.2", bytes(4), 0x04)  # nhrpd's 0.0.0.0
        + neighbour(rtnl_neigh.RTM_NEWNEIGH, GRE, "192.0.2.3", None, 0x20)
        + neighbour(rtnl_neigh.RTM_DELNEIGH, GRE, "2001:db8::1", ip("2001:db8:1::1").packed, 0)
        + neighbour(rtnl_neigh.RTM_NEWNEIGH, 2, "192.0.2.9", bytes.fromhex("020000000009"), 0x80)
        + nl(NLMSG_DONE, struct.pack("=i", 0), NLM_F_MULTI)
    )
    got = rtnl_neigh.parse(data)
    assert got.done
    assert [(c.ifindex, str(c.dst), c.lladdr, c.state, c.deleted) for c in got.changes] == [
        (GRE, "192.0.2.1", "198.51.100.1", "REACHABLE", False),
        (GRE, "192.0.2.2", "0.0.0.0", "STALE", False),
        (GRE, "192.0.2.3", None, "FAILED", False),
        (GRE, "2001:db8::1", "2001:db8:1::1", "NONE", True),
        (2, "192.0.2.9", "02:00:00:00:00:09", "PERMANENT", False),
    ]


def test_what_is_not_an_entry_is_skipped_and_errors_are_reported() -> None:
    no_dst = nl(rtnl_neigh.RTM_NEWNEIGH, struct.pack("=BBHiHBB", socket.AF_INET, 0, 0, 1, 2, 0, 0))
    bad_family = neighbour(rtnl_neigh.RTM_NEWNEIGH, 1, "192.0.2.1", None, 2)
    bad_family = bad_family[:16] + bytes([99]) + bad_family[17:]
    v6_header = struct.pack("=BBHiHBB", socket.AF_INET6, 0, 0, 1, 2, 0, 0)
    short_dst = nl(rtnl_neigh.RTM_NEWNEIGH, v6_header + attr(1, bytes(4)))
    error = nl(2, struct.pack("=i", -16) + bytes(16))
    got = rtnl_neigh.parse(no_dst + bad_family + short_dst + error + nl(4, b""))
    assert got.changes == []
    assert got.errors == [16]
    assert got.overrun
    with pytest.raises(NetlinkError, match="bad length"):
        rtnl_neigh.parse(struct.pack("=IHHII", 99, 28, 0, 0, 0))


@given(st.binary(max_size=300))
def test_any_bytes_give_entries_or_a_netlink_error(data: bytes) -> None:
    try:
        for change in rtnl_neigh.parse(data).changes:
            assert change.state in {name for _, name in rtnl_neigh.STATES} | {"NONE"}
    except NetlinkError:
        pass


def address(
    kind: int,
    ifindex: int,
    local: str | None,
    peer: str | None = None,
    family: int = socket.AF_INET,
) -> bytes:
    body = struct.pack("=BBBBI", family, 24, 0x80, 0, ifindex)  # IFA_F_PERMANENT, global
    if peer is not None:
        body += attr(rtnl_addr.IFA_ADDRESS, ip(peer).packed)
    if local is not None:
        body += attr(rtnl_addr.IFA_LOCAL, ip(local).packed)
    return nl(kind, body + attr(3, b"eth0\0"))  # IFA_LABEL


def test_address_dump_request_asks_for_every_ipv4_address() -> None:
    req = rtnl_addr.dump_request(9)
    length, kind, flags, seq, _ = struct.unpack_from("=IHHII", req)
    assert (length, kind, flags, seq) == (len(req), rtnl_addr.RTM_GETADDR, 1 | NLM_F_DUMP, 9)
    assert req[16:] == struct.pack("=BBBBI", socket.AF_INET, 0, 0, 0, 0)


def test_address_messages_name_the_interface_and_its_own_address() -> None:
    data = (
        address(rtnl_addr.RTM_NEWADDR, 2, "198.51.100.11", "198.51.100.11")
        + address(rtnl_addr.RTM_NEWADDR, 3, "198.51.100.12", peer="203.0.113.1")  # point-to-point
        + address(rtnl_addr.RTM_NEWADDR, 4, None, peer="198.51.100.13")  # IFA_ADDRESS only
        + address(rtnl_addr.RTM_DELADDR, 2, "198.51.100.11")
        + nl(NLMSG_DONE, struct.pack("=i", 0), NLM_F_MULTI)
    )
    got = rtnl_addr.parse(data)
    assert got.done
    assert [(c.ifindex, str(c.address), c.prefixlen, c.deleted) for c in got.changes] == [
        (2, "198.51.100.11", 24, False),
        (3, "198.51.100.12", 24, False),
        (4, "198.51.100.13", 24, False),
        (2, "198.51.100.11", 24, True),
    ]


def test_a_dump_the_kernel_marks_inconsistent_is_reported() -> None:
    marked = address(rtnl_addr.RTM_NEWADDR, 2, "198.51.100.11", "198.51.100.11")
    marked = marked[:6] + struct.pack("=H", NLM_F_MULTI | 0x10) + marked[8:]  # DUMP_INTR
    assert rtnl_addr.parse(marked).interrupted
    assert not rtnl_addr.parse(address(rtnl_addr.RTM_NEWADDR, 2, "198.51.100.11")).interrupted


def test_what_is_not_an_ipv4_address_is_skipped_and_errors_are_reported() -> None:
    ipv6 = nl(
        rtnl_addr.RTM_NEWADDR,
        struct.pack("=BBBBI", socket.AF_INET6, 64, 0, 0, 2)
        + attr(rtnl_addr.IFA_ADDRESS, ip("2001:db8::1").packed),
    )
    no_address = address(rtnl_addr.RTM_NEWADDR, 2, None)
    short = nl(
        rtnl_addr.RTM_NEWADDR,
        struct.pack("=BBBBI", socket.AF_INET, 24, 0, 0, 2) + attr(rtnl_addr.IFA_LOCAL, bytes(3)),
    )
    truncated_header = nl(rtnl_addr.RTM_NEWADDR, bytes(4))  # shorter than struct ifaddrmsg
    error = nl(2, struct.pack("=i", -16) + bytes(16))
    got = rtnl_addr.parse(ipv6 + no_address + short + truncated_header + error + nl(4, b""))
    assert got.changes == []
    assert got.errors == [16]
    assert got.overrun
    with pytest.raises(NetlinkError, match="bad length"):
        rtnl_addr.parse(struct.pack("=IHHII", 99, rtnl_addr.RTM_NEWADDR, 0, 0, 0))


def event(wd: int, mask: int, name: bytes) -> bytes:
    padded = name + bytes(-len(name) % 16 or (16 if name else 0))
    return struct.pack("=iIII", wd, mask, 0, len(padded)) + padded


def test_inotify_events_name_the_file() -> None:
    data = event(1, inotify.IN_MOVED_TO, b"authorization.json") + event(
        1, inotify.IN_Q_OVERFLOW, b""
    )
    assert inotify.parse(data) == [
        inotify.FileEvent(1, inotify.IN_MOVED_TO, "authorization.json"),
        inotify.FileEvent(1, inotify.IN_Q_OVERFLOW, ""),
    ]
    with pytest.raises(inotify.InotifyError, match="past the end"):
        inotify.parse(event(1, 8, b"x")[:-1])
    with pytest.raises(inotify.InotifyError, match="truncated"):
        inotify.parse(b"\x01\x00")


@given(st.binary(max_size=200))
def test_any_bytes_give_events_or_an_inotify_error(data: bytes) -> None:
    with contextlib.suppress(inotify.InotifyError):
        assert all(isinstance(e.name, str) for e in inotify.parse(data))


def monitor() -> tuple[NeighborMonitor, list[int]]:
    woken: list[int] = []
    mon = NeighborMonitor(lambda: woken.append(1))
    mon.watched = {GRE: "gre1"}
    return mon, woken


def change(
    dst: str,
    lladdr: str | None,
    state: str = "REACHABLE",
    deleted: bool = False,
    ifindex: int = GRE,
) -> rtnl_neigh.NeighborChange:
    return rtnl_neigh.NeighborChange(ifindex, ip(dst), lladdr, state, deleted)


def test_the_table_follows_notifications_and_wakes_only_for_what_matters() -> None:
    mon, woken = monitor()
    mon._apply(rtnl_neigh.Received([change("192.0.2.1", "198.51.100.1")]))
    assert mon.neighbors() == [Neighbor("gre1", ip("192.0.2.1"), "198.51.100.1", "REACHABLE")]
    assert len(woken) == 1
    mon._apply(rtnl_neigh.Received([change("192.0.2.1", "198.51.100.1", "STALE")]))
    assert len(woken) == 1  # ageing: kept, no step
    assert mon.neighbors()[0].state == "STALE"
    mon._apply(rtnl_neigh.Received([change("192.0.2.9", "02:00:00:00:00:09", ifindex=2)]))
    assert len(woken) == 1  # not a watched interface
    assert len(mon.neighbors()) == 1
    mon._apply(rtnl_neigh.Received([change("192.0.2.1", "0.0.0.0")]))
    assert len(woken) == 2
    mon._apply(rtnl_neigh.Received([change("192.0.2.1", None, "NONE", deleted=True)]))
    assert mon.neighbors() == []
    assert len(woken) == 3


def test_a_dump_replaces_the_table() -> None:
    mon, woken = monitor()
    mon._apply(
        rtnl_neigh.Received(
            [change("192.0.2.1", "198.51.100.1"), change("192.0.2.2", "198.51.100.2")]
        )
    )
    mon._dumping = set()  # a dump is under way (after ENOBUFS): it lists only 192.0.2.2
    mon._apply(rtnl_neigh.Received([change("192.0.2.2", "198.51.100.2")], done=True))
    assert [str(n.dst) for n in mon.neighbors()] == ["192.0.2.2"]
    assert len(woken) == 2
    assert mon._dumping is None


def test_a_file_renamed_into_the_watched_directory_is_reported(tmp_path: Path) -> None:
    async def main() -> list[str]:
        seen: list[str] = []
        watch = DirectoryWatch(tmp_path / "run", {"authorization.json"}, seen.append)
        watch.open()
        try:
            (tmp_path / "run" / "peers.json").write_text("[]")  # another name: not reported
            staged = tmp_path / "run" / "authorization.json.tmp"
            staged.write_text("{}")
            os.replace(staged, tmp_path / "run" / "authorization.json")  # as atomic_write does
            for _ in range(200):
                if seen:
                    break
                await asyncio.sleep(0.01)
        finally:
            watch.close()
        return seen

    assert asyncio.run(main()) == ["authorization.json"]
