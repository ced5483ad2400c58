"""The kernel's IPv4 interface addresses over rtnetlink: the dump request and what the kernel
sends (a dump's addresses and, to a socket bound to the IPv4 address group, every change).
Pure: the socket lives in :mod:`frrdmvpn.adapters.addresses`.

The guards follow these (:mod:`frrdmvpn.guards`): a GRE tunnel whose ``tunnel source`` is an
interface may send from any of its addresses once it is applied again.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass

from frrdmvpn.codec import netlink
from frrdmvpn.codec.netlink import NLM_F_DUMP, NLM_F_REQUEST, attrs, message, messages

RTM_NEWADDR = 20
RTM_DELADDR = 21
RTM_GETADDR = 22
RTMGRP_IPV4_IFADDR = 0x10  # the IPv4 address group as a bind() mask (group 5)
IFA_ADDRESS = 1
IFA_LOCAL = 2
_IFADDRMSG = struct.Struct("=BBBBI")  # family, prefix length, flags, scope, ifindex


@dataclass(frozen=True)
class AddressChange:
    """One IPv4 address of an interface as the kernel reports it (``deleted``: RTM_DELADDR)."""

    ifindex: int
    address: ipaddress.IPv4Address
    prefixlen: int
    deleted: bool = False


Received = netlink.Received[AddressChange]  # what one datagram held


def dump_request(seq: int) -> bytes:
    """Ask for every IPv4 address (of every interface)."""
    return message(
        RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, seq, _IFADDRMSG.pack(socket.AF_INET, 0, 0, 0, 0)
    )


def parse(datagram: bytes) -> Received:
    """Every IPv4 address message of one datagram; NetlinkError if it does not frame.

    The address is ``IFA_LOCAL`` (the interface's own; ``IFA_ADDRESS`` is the peer's on a
    point-to-point link), else ``IFA_ADDRESS``. Other families, and messages without a
    4-byte address, are skipped.
    """
    out = Received()
    for msg in messages(datagram):
        if out.control(msg):
            continue
        if msg.kind in (RTM_NEWADDR, RTM_DELADDR) and len(msg.body) >= _IFADDRMSG.size:
            family, prefixlen, _, _, ifindex = _IFADDRMSG.unpack_from(msg.body)
            found = attrs(msg.body[_IFADDRMSG.size :])
            raw = found.get(IFA_LOCAL, found.get(IFA_ADDRESS))
            if family != socket.AF_INET or raw is None or len(raw) != 4:
                continue
            out.changes.append(
                AddressChange(
                    ifindex, ipaddress.IPv4Address(raw), prefixlen, deleted=msg.kind == RTM_DELADDR
                )
            )
    return out
