"""The API's unix socket: who is calling, and how many connections each user holds.

gRPC's Python server cannot tell who is on the other end of a unix socket. So frrdmvpnd's
socket is served here: each connection's peer is read with ``SO_PEERCRED`` and admitted by
a per-UID cap (:mod:`frrdmvpn.core.admission`), then relayed byte for byte to the gRPC
server, which listens on a socket in a directory only root may enter. The relay binds its
end of that connection to an abstract name of its own (``frrdmvpn-api/<random>``), which
gRPC reports as the call's peer (``context.peer()`` is ``unix-abstract:frrdmvpn-api/...``):
:meth:`UnixFront.caller` maps it back to the credentials. A TCP client (mutual TLS, served by
gRPC directly) is known by its certificate's subject.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from frrdmvpn.adapters.unix_server import PeerCred, admit, peer_credentials, principal_of_uid
from frrdmvpn.core.admission import Admission, Refusal, Ticket

log = logging.getLogger(__name__)

ABSTRACT_PREFIX = "frrdmvpn-api/"
GRPC_PEER_PREFIX = "unix-abstract:" + ABSTRACT_PREFIX
READ_SIZE = 65536


@dataclass(frozen=True)
class Caller:
    """Who made a call: the :mod:`~frrdmvpn.core.admission` principal and what it rests on
    (a unix peer's credentials, or a TCP client's certificate subject)."""

    principal: str
    unix: PeerCred | None = None
    certificate: str | None = None


UNKNOWN = Caller("unknown")


def tcp_caller(auth_context: Mapping[str, Any]) -> Caller:
    """A mutual-TLS client: its certificate's subject (gRPC verified the chain)."""
    for key in ("x509_subject", "x509_common_name"):
        values = auth_context.get(key) or []
        if values:
            subject = bytes(values[0]).decode(errors="replace")
            return Caller(f"certificate {subject}", certificate=subject)
    return UNKNOWN


class UnixFront:
    """Serve ``public`` (mode 0660, ``group``) and relay to gRPC on ``internal``."""

    def __init__(self, public: Path, internal: Path, admission: Admission | None = None) -> None:
        self.public, self.internal, self.admission = public, internal, admission
        self.peers: dict[str, PeerCred] = {}  # abstract name of the relay's end -> who
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def listen_socket(self) -> socket.socket:
        """The public socket, born 0660 (the umask is held only across the bind, which does
        not yield to other tasks)."""
        with contextlib.suppress(FileNotFoundError):
            self.public.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o117)
        try:
            sock.bind(str(self.public))
        finally:
            os.umask(old)
        return sock

    async def start(self) -> None:
        sock = self.listen_socket()
        self._server = await asyncio.start_unix_server(self._client, sock=sock)

    async def close(self) -> None:
        """Stop listening and close every relayed connection."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        if self._server is not None:
            await self._server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            self.public.unlink()

    def caller(self, grpc_peer: str) -> Caller | None:
        """The unix caller behind gRPC's ``context.peer()``; None if it is not relayed."""
        if not grpc_peer.startswith(GRPC_PEER_PREFIX):
            return None
        peer = self.peers.get(grpc_peer.removeprefix("unix-abstract:"))
        return None if peer is None else Caller(principal_of_uid(peer.uid), unix=peer)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        ticket = admit(self.admission, writer, log)
        if isinstance(ticket, Refusal):
            return
        name = ABSTRACT_PREFIX + secrets.token_hex(12)
        self._writers.add(writer)
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.peers[name] = peer_credentials(writer)
            upstream.setblocking(False)
            upstream.bind("\0" + name)
            await asyncio.get_running_loop().sock_connect(upstream, str(self.internal))
            u_reader, u_writer = await asyncio.open_unix_connection(sock=upstream)
        except OSError as exc:
            log.warning("API relay: gRPC unreachable at %s: %s", self.internal, exc)
            upstream.close()
            self._done(name, writer, ticket)
            return
        self._writers.add(u_writer)
        pumps = [
            asyncio.create_task(_pump(reader, u_writer)),
            asyncio.create_task(_pump(u_reader, writer)),
        ]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pumps:
                task.cancel()
            u_writer.close()
            self._writers.discard(u_writer)
            self._done(name, writer, ticket)

    def _done(self, name: str, writer: asyncio.StreamWriter, ticket: Ticket | None) -> None:
        writer.close()
        self._writers.discard(writer)
        self.peers.pop(name, None)
        if self.admission is not None and ticket is not None:
            self.admission.release(ticket)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(READ_SIZE):
            writer.write(data)
            await writer.drain()
