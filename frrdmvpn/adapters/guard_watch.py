"""The kernel saying the guards may have changed, so that they are checked then rather than
polled (issue 17: a node at rest spawns nothing).

Two netlink sockets joined to the groups the kernel announces changes on: XFRM's policy
group (a policy added, updated, deleted or flushed: charon's, or one of the guards' block
policies) and nftables' (any change to any table). Nothing they carry is decoded: any
message, or messages lost (ENOBUFS), means "check the guards" (``docs/enforcement.md``).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Callable

log = logging.getLogger(__name__)

NETLINK_XFRM = 6
XFRMNLGRP_POLICY = 4  # enum xfrm_nlgroups: NONE, ACQUIRE, EXPIRE, SA, POLICY
NETLINK_NETFILTER = 12
NFNLGRP_NFTABLES = 7  # enum nfnetlink_groups
SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP = 1
GROUPS = ((NETLINK_XFRM, XFRMNLGRP_POLICY), (NETLINK_NETFILTER, NFNLGRP_NFTABLES))
MAX_READS = 64  # messages read per turn of the event loop


class GuardWatch:
    """Call ``on_change()`` when the kernel announces an XFRM policy or nftables change
    (once per batch read). ``groups``: (netlink protocol, multicast group) pairs."""

    def __init__(
        self,
        on_change: Callable[[], None],
        groups: tuple[tuple[int, int], ...] = GROUPS,
    ) -> None:
        self.on_change = on_change
        self.groups = groups
        self.socks: list[socket.socket] = []
        self.watching = False  # every group joined and readable: no need to poll

    def open(self) -> None:
        """OSError if a group cannot be joined (the caller then polls); nothing stays open."""
        loop = asyncio.get_running_loop()
        try:
            for protocol, group in self.groups:
                sock = socket.socket(
                    socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK, protocol
                )
                self.socks.append(sock)
                sock.bind((0, 0))
                sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group)
                loop.add_reader(sock.fileno(), self._readable, sock)
        except OSError:
            self.close()
            raise
        self.watching = True

    def _readable(self, sock: socket.socket) -> None:
        changed = False
        for _ in range(MAX_READS):  # more waits for the next turn of the loop
            try:
                changed |= bool(sock.recv(65536))
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                changed = True  # messages lost, or no more: anything may have changed
                if exc.errno != errno.ENOBUFS:
                    log.warning("watching the guards' kernel state failed (%s): polling", exc)
                    self.close()
                break
        if changed:
            self.on_change()

    def close(self) -> None:
        loop = asyncio.get_running_loop()
        for sock in self.socks:
            if sock.fileno() >= 0:
                loop.remove_reader(sock.fileno())
            sock.close()
        self.socks = []
        self.watching = False
