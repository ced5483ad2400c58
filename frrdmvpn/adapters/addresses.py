"""The kernel's IPv4 interface addresses from rtnetlink: a dump, then every change.

Only moves bytes: what they say is decoded by :mod:`frrdmvpn.codec.rtnl_addr` and kept by
:class:`frrdmvpn.core.guard_set.AddressTable` (through :class:`frrdmvpn.guards.GuardKeeper`).
"""

from __future__ import annotations

from collections.abc import Callable

from frrdmvpn.adapters.rtnetlink import Subscription
from frrdmvpn.codec import rtnl_addr

RCVBUF = 1 << 18


class AddressMonitor:
    """Hands every datagram of address messages to ``on_received``; ``on_dump`` is called
    when a dump is asked for: when opened, and again when the kernel dropped notifications
    (ENOBUFS, an overrun), after the dump under way if there is one (the kernel refuses a
    second dump on the same socket meanwhile)."""

    def __init__(
        self, on_received: Callable[[rtnl_addr.Received], None], on_dump: Callable[[], None]
    ) -> None:
        self.on_received = on_received
        self.on_dump = on_dump
        self._sub = Subscription(
            rtnl_addr.RTMGRP_IPV4_IFADDR,
            rtnl_addr.parse,
            self._received,
            self._dump,
            rcvbuf=RCVBUF,
            what="address notifications",
        )
        self._seq = 0
        self._dumping = False  # a dump was asked for and has not ended
        self._again = False  # ask for another when it ends

    def open(self) -> None:
        """OSError when rtnetlink cannot be read."""
        self._sub.open()
        self._dump()

    def _dump(self) -> None:
        if self._dumping:
            self._again = True
            return
        self._seq += 1
        self.on_dump()
        self._dumping = self._sub.send(rtnl_addr.dump_request(self._seq))

    def _received(self, received: rtnl_addr.Received) -> None:
        self.on_received(received)
        if received.done or received.errors:  # only dumps are asked for: it ended
            self._dumping = False
        if received.overrun or (self._again and not self._dumping):
            self._again = False
            self._dump()

    def close(self) -> None:
        self._sub.close()
