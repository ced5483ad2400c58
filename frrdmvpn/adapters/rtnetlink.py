"""A rtnetlink socket bound to some of the kernel's notification groups, read from the event
loop: what arrives goes through a codec of :mod:`frrdmvpn.codec` to a callback. Shared by
the neighbour (:mod:`frrdmvpn.adapters.neighbors`) and address
(:mod:`frrdmvpn.adapters.addresses`) monitors."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Callable
from typing import Generic, TypeVar

from frrdmvpn.codec.netlink import NetlinkError

NETLINK_ROUTE = 0
log = logging.getLogger(__name__)
R = TypeVar("R")


class Subscription(Generic[R]):
    """``groups`` (a bind() mask) of NETLINK_ROUTE: each datagram decoded by ``parse`` goes
    to ``on_received``; ``on_lost`` is called when the kernel dropped notifications
    (ENOBUFS: read everything again)."""

    def __init__(
        self,
        groups: int,
        parse: Callable[[bytes], R],
        on_received: Callable[[R], None],
        on_lost: Callable[[], None],
        *,
        rcvbuf: int,
        what: str,
    ) -> None:
        self.groups, self.parse, self.rcvbuf, self.what = groups, parse, rcvbuf, what
        self.on_received, self.on_lost = on_received, on_lost
        self.sock: socket.socket | None = None

    def open(self) -> None:
        """OSError when rtnetlink cannot be read."""
        sock = socket.socket(
            socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK, NETLINK_ROUTE
        )
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        sock.bind((0, self.groups))
        self.sock = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._readable)

    def send(self, request: bytes) -> bool:
        """Send a request (a dump); False when it could not be sent (the caller asks again
        when the next notification or loss calls for it)."""
        if self.sock is None:
            return False
        try:
            self.sock.send(request)
        except OSError as exc:
            log.debug("%s: asking for a dump: %s", self.what, exc)
            return False
        return True

    def _readable(self) -> None:
        assert self.sock is not None
        while True:
            try:
                data = self.sock.recv(1 << 16)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    self.on_lost()
                    continue
                log.warning("%s: %s", self.what, exc)
                return
            try:
                received = self.parse(data)
            except NetlinkError as exc:
                log.warning("%s: %s", self.what, exc)
                continue
            self.on_received(received)

    def close(self) -> None:
        if self.sock is not None:
            asyncio.get_running_loop().remove_reader(self.sock.fileno())
            self.sock.close()
            self.sock = None
