"""Receive what the guards log to their NFLOG group (a netlink socket on the event loop)."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

from frrdmvpn.codec.nflog import NETLINK_NETFILTER, Logged, NflogError, bind_messages, parse

log = logging.getLogger(__name__)


class NflogListener:
    """Bound to one NFLOG group of this network namespace; calls ``on_packet`` per packet."""

    def __init__(self, group: int, on_packet: Callable[[Logged], None]) -> None:
        self.group = group
        self.on_packet = on_packet
        self.sock: socket.socket | None = None

    def open(self) -> None:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        sock.bind((0, 0))
        sock.settimeout(5)
        for msg in bind_messages(self.group):
            sock.send(msg)
            _, errors = parse(sock.recv(65536))
            if any(errors):
                sock.close()
                raise OSError(errors[0], f"binding NFLOG group {self.group}: errno {errors[0]}")
        sock.setblocking(False)
        self.sock = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._readable)

    def _readable(self) -> None:
        assert self.sock is not None
        try:
            data = self.sock.recv(262144)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:  # ENOBUFS: the kernel dropped some; keep going
            log.warning("NFLOG group %d: %s", self.group, exc)
            return
        try:
            packets, _ = parse(data)
        except NflogError as exc:
            log.warning("NFLOG group %d: %s", self.group, exc)
            return
        for p in packets:
            self.on_packet(p)

    def close(self) -> None:
        if self.sock is not None:
            asyncio.get_running_loop().remove_reader(self.sock.fileno())
            self.sock.close()
            self.sock = None
