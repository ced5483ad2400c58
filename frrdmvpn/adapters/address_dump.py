"""The kernel's IPv4 interface addresses as they are now: one rtnetlink dump on a blocking
socket, decoded by :mod:`frrdmvpn.codec.rtnl_addr`.

Neither pyroute2 nor asyncio: ``frrdmvpnd guard check`` reads these before charon and FRR
may start (their units' ExecStartPre), so it starts fast. The daemon follows changes with
:class:`frrdmvpn.adapters.addresses.AddressMonitor`.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket

from frrdmvpn.codec import rtnl_addr

#: dumps the kernel marks inconsistent (the addresses changed while listed) before giving up
TRIES = 5
TIMEOUT = 10.0  # seconds the kernel may take to answer


def read_addresses() -> dict[str, tuple[ipaddress.IPv4Address, ...]]:
    """Every interface's IPv4 addresses, as the kernel has them now, in its order (its
    primary one first). OSError when rtnetlink cannot be read or refuses the dump."""
    for _ in range(TRIES):
        changes, consistent = _dump()
        if consistent:
            break
    else:
        raise OSError(errno.EAGAIN, "the addresses kept changing while they were listed")
    out: dict[str, list[ipaddress.IPv4Address]] = {}
    for change in changes:
        try:
            name = socket.if_indextoname(change.ifindex)
        except OSError:  # the interface went away meanwhile
            continue
        out.setdefault(name, []).append(change.address)
    return {name: tuple(found) for name, found in out.items()}


def _dump() -> tuple[list[rtnl_addr.AddressChange], bool]:
    """One dump's addresses, and whether the kernel says it is consistent."""
    changes: list[rtnl_addr.AddressChange] = []
    consistent = True
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as sock:
        sock.settimeout(TIMEOUT)
        sock.bind((0, 0))
        sock.send(rtnl_addr.dump_request(1))
        while True:
            received = rtnl_addr.parse(sock.recv(1 << 16))
            changes += (c for c in received.changes if not c.deleted)
            consistent = consistent and not received.interrupted
            for code in received.errors:
                if code:
                    raise OSError(code, f"listing the addresses: {os.strerror(code)}")
            if received.done or received.errors:
                return changes, consistent
