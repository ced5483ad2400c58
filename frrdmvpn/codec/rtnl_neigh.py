"""Kernel neighbour entries over rtnetlink: the dump request and what the kernel sends (a
dump's entries and, to a socket bound to the neighbour group, every change). Pure: the
socket lives in :mod:`frrdmvpn.adapters.neighbors`.

On a GRE interface an entry maps a peer's tunnel address to its NBMA address (the link-layer
address is 4 or 16 bytes of IP address); nhrpd writes them for its bindings.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass

from frrdmvpn.codec import netlink
from frrdmvpn.codec.netlink import NLM_F_DUMP, NLM_F_REQUEST, attrs, message, messages

RTM_NEWNEIGH = 28
RTM_DELNEIGH = 29
RTM_GETNEIGH = 30
RTMGRP_NEIGH = 0x4  # the neighbour group as a bind() mask (group 3)
NDA_DST = 1
NDA_LLADDR = 2
_NDMSG = struct.Struct("=BBHiHBB")  # family, pad, pad, ifindex, state, flags, type
#: NUD_* bits in the order ``ip neigh`` prints them (its first is what a state is called).
STATES = (
    (0x01, "INCOMPLETE"),
    (0x02, "REACHABLE"),
    (0x04, "STALE"),
    (0x08, "DELAY"),
    (0x10, "PROBE"),
    (0x20, "FAILED"),
    (0x40, "NOARP"),
    (0x80, "PERMANENT"),
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class NeighborChange:
    """One entry as the kernel reports it (``deleted``: an RTM_DELNEIGH)."""

    ifindex: int
    dst: IPAddress
    lladdr: str | None
    state: str
    deleted: bool = False


Received = netlink.Received[NeighborChange]  # what one datagram held


def dump_request(seq: int, family: int = socket.AF_UNSPEC) -> bytes:
    """Ask for every neighbour entry (of every interface)."""
    return message(
        RTM_GETNEIGH, NLM_F_REQUEST | NLM_F_DUMP, seq, _NDMSG.pack(family, 0, 0, 0, 0, 0, 0)
    )


def state_name(bits: int) -> str:
    """``REACHABLE`` for 0x02; ``NONE`` for 0 (as ``ip neigh`` prints them)."""
    return next((name for bit, name in STATES if bits & bit), "NONE")


def lladdr_text(raw: bytes) -> str:
    """A link-layer address as ``ip neigh`` prints it: an IP address on GRE, else hex."""
    if len(raw) in (4, 16):
        return str(ipaddress.ip_address(raw))
    return ":".join(f"{b:02x}" for b in raw)


def parse(datagram: bytes) -> Received:
    """Every neighbour message of one datagram; NetlinkError if it does not frame."""
    out = Received()
    for msg in messages(datagram):
        if out.control(msg):
            continue
        if msg.kind in (RTM_NEWNEIGH, RTM_DELNEIGH) and len(msg.body) >= _NDMSG.size:
            family, _, _, ifindex, state, _, _ = _NDMSG.unpack_from(msg.body)
            found = attrs(msg.body[_NDMSG.size :])
            dst = found.get(NDA_DST)
            if family not in (socket.AF_INET, socket.AF_INET6) or dst is None:
                continue
            if len(dst) != (4 if family == socket.AF_INET else 16):
                continue
            raw = found.get(NDA_LLADDR)
            out.changes.append(
                NeighborChange(
                    ifindex,
                    ipaddress.ip_address(dst),
                    None if raw is None else lladdr_text(raw),
                    state_name(state),
                    deleted=msg.kind == RTM_DELNEIGH,
                )
            )
    return out
