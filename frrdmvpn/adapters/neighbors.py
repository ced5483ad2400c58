"""Kernel neighbour entries of the GRE interfaces: kept from rtnetlink's notifications
(:class:`NeighborMonitor`), repaired with iproute2."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Callable
from typing import Any

from frrdmvpn.adapters.rtnetlink import Subscription
from frrdmvpn.codec import rtnl_neigh
from frrdmvpn.core.supervisor import Neighbor, neighbor_changed

TIMEOUT = 60.0
RCVBUF = 1 << 20  # a hub's burst of registrations must not overflow it
log = logging.getLogger(__name__)


async def _ip(*args: str) -> tuple[int, str, str]:
    """Run ``ip``; a failure to run or a time-out is an exit status, never an exception."""
    try:
        proc = await asyncio.create_subprocess_exec(
            "ip", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
    except OSError as exc:
        return 127, "", str(exc)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return 124, "", f"ip {' '.join(args)} timed out"
    return proc.returncode or 0, out.decode(), err.decode()


def parse_neighbors(interface: str, data: Any) -> list[Neighbor]:
    """Entries of ``ip -j neigh show dev IF``; malformed ones are skipped."""
    out = []
    for e in data if isinstance(data, list) else []:
        try:
            dst = ipaddress.ip_address(e["dst"])
        except (KeyError, ValueError, TypeError):
            continue
        state = e.get("state") or ["NONE"]
        out.append(Neighbor(interface, dst, e.get("lladdr"), str(state[0])))
    return out


async def replace_neighbor(
    interface: str, protocol: ipaddress.IPv4Address | ipaddress.IPv6Address, nbma: str
) -> str:
    """Point ``protocol`` at ``nbma`` on ``interface``; returns iproute2's error, if any."""
    rc, _, err = await _ip(
        "neigh", "replace", str(protocol), "lladdr", nbma, "dev", interface, "nud", "reachable"
    )
    return err.strip() if rc else ""


Key = tuple[int, rtnl_neigh.IPAddress]


class NeighborMonitor:
    """The kernel's neighbour entries of the watched interfaces, kept up to date from
    rtnetlink's notifications: one dump when opened or when the watched interfaces change,
    another when the kernel dropped notifications (ENOBUFS). ``on_change`` is called for
    each change :func:`~frrdmvpn.core.supervisor.neighbor_changed` says can matter."""

    def __init__(self, on_change: Callable[[], None]) -> None:
        self.on_change = on_change
        self._sub = Subscription(
            rtnl_neigh.RTMGRP_NEIGH,
            rtnl_neigh.parse,
            self._apply,
            self._lost,
            rcvbuf=RCVBUF,
            what="neighbour notifications",
        )
        self.watched: dict[int, str] = {}  # ifindex -> name
        self.entries: dict[Key, Neighbor] = {}
        self._seq = 0
        self._dumping: set[Key] | None = None  # keys seen by the dump under way

    def open(self) -> None:
        """OSError when rtnetlink cannot be read (then :meth:`neighbors` returns nothing)."""
        self._sub.open()
        self._dump()

    def watch(self, interfaces: set[str]) -> None:
        """Keep the entries of these interfaces (by name; a recreated link is found again)."""
        indexes: dict[int, str] = {}
        for name in interfaces:
            try:
                indexes[socket.if_nametoindex(name)] = name
            except OSError:
                continue
        if indexes != self.watched:
            self.watched = indexes
            self.entries = {k: v for k, v in self.entries.items() if k[0] in indexes}
            self._dump()

    def neighbors(self) -> list[Neighbor]:
        return [n for (ifindex, _), n in self.entries.items() if ifindex in self.watched]

    def _dump(self) -> None:
        if self._sub.sock is None:
            return
        self._seq += 1
        self._dumping = set()
        if not self._sub.send(rtnl_neigh.dump_request(self._seq)):  # the next change asks again
            self._dumping = None

    def _lost(self) -> None:
        """Notifications were lost: read them all again."""
        self._dump()
        self.on_change()

    def _apply(self, received: rtnl_neigh.Received) -> None:
        changed = False
        for c in received.changes:
            name = self.watched.get(c.ifindex)
            if name is None:
                continue
            key = (c.ifindex, c.dst)
            old = self.entries.get(key)
            new = None if c.deleted else Neighbor(name, c.dst, c.lladdr, c.state)
            if new is None:
                self.entries.pop(key, None)
            else:
                self.entries[key] = new
            if self._dumping is not None:
                self._dumping.add(key)
            changed |= neighbor_changed(old, new)
        if received.done and self._dumping is not None:  # entries the dump did not list are gone
            gone = [k for k in self.entries if k not in self._dumping]
            for key in gone:
                changed |= neighbor_changed(self.entries.pop(key), None)
            self._dumping = None
        if received.overrun:
            self._dump()
        if changed:
            self.on_change()

    def close(self) -> None:
        self._sub.close()
