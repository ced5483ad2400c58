"""The VICI proxy: listens on nhrpd's compiled-in socket, one upstream connection per client.

Each client gets its own connection to charon's relocated socket and a
:class:`~frrdmvpn.vici.translate.ClientSession` deciding what crosses. If either side closes
or breaks the protocol, both connections are closed (nhrpd then resets its VCs and
reconnects, which is what it does when charon restarts).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from pathlib import Path

from frrdmvpn.adapters.unix_server import admitted, listen_restricted
from frrdmvpn.config.charon_socket import CHARON_SOCKET, PROXY_SOCKET
from frrdmvpn.core.admission import Admission
from frrdmvpn.vici.translate import (
    ClientSession,
    Initiate,
    ProtocolError,
    ToClient,
    ToUpstream,
)
from frrdmvpn.vici.wire import StreamDecoder, ViciStreamError, ViciWireError, frame

log = logging.getLogger(__name__)

DEFAULT_LISTEN = PROXY_SOCKET  # nhrpd's compiled-in path, and swanctl's
DEFAULT_UPSTREAM = CHARON_SOCKET  # charon, relocated on a configured node


def kick_gre(request: Initiate) -> None:
    """Send one GRE packet ``my_host -> other_host``: it hits the wildcard transport trap and
    the kernel's ACQUIRE makes charon negotiate with exactly that peer. The kernel answers
    EPERM while the SA is being negotiated (larval drop) or blocked: the ACQUIRE went out
    (or the guards hold), so that is not a failure."""
    family = socket.AF_INET if request.my_host.version == 4 else socket.AF_INET6
    with socket.socket(family, socket.SOCK_RAW, socket.IPPROTO_GRE) as sock:
        sock.bind((str(request.my_host), 0))
        try:
            sock.sendto(b"\x00\x00\x00\x00", (str(request.other_host), 0))
        except PermissionError:
            log.debug("GRE kick %s -> %s held by the kernel (EPERM)", request.my_host,
                      request.other_host)  # fmt: skip


class ListenPathBusyError(RuntimeError):
    """Something (charon itself, before it moved to its relocated socket) still serves the
    path the proxy would listen on."""


async def _served(path: Path) -> bool:
    """Whether a process accepts connections on the unix socket ``path`` (a socket file
    left behind by a process that is gone refuses them)."""
    try:
        _, writer = await asyncio.open_unix_connection(str(path))
    except OSError:
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


class ViciProxy:
    """Serve VICI clients on ``listen``, relaying to charon at ``upstream``."""

    def __init__(
        self,
        listen: Path = DEFAULT_LISTEN,
        upstream: Path = DEFAULT_UPSTREAM,
        initiate: Callable[[Initiate], None] = kick_gre,
        group: str | None = "frr",
        admission: Admission | None = None,
    ) -> None:
        self.listen = listen
        self.upstream = upstream
        self.initiate = initiate
        self.group = group
        self.admission = admission  # per-UID caps (frrdmvpn.enforcer sets them)
        self.clients = 0
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        """Listen; ListenPathBusyError, taking nothing over, when something serves
        ``listen`` (charon has not restarted onto its relocated socket yet: swanctl and the
        operator's tools keep it). A socket file nobody serves is replaced."""
        if await _served(self.listen):
            raise ListenPathBusyError(
                f"something still serves {self.listen} (charon, before it restarts onto "
                f"{self.upstream}?): not taking it over; restart strongswan.service, which "
                "starts this proxy first"
            )
        serve = admitted(self.admission, self._serve, log)
        self._server = await listen_restricted(self.listen, serve, self.group)
        log.info("vici proxy listening on %s, upstream %s", self.listen, self.upstream)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        self.clients += 1
        cid = self.clients
        try:
            u_reader, u_writer = await asyncio.open_unix_connection(str(self.upstream))
        except OSError as exc:
            log.warning("client %d: charon unreachable at %s: %s", cid, self.upstream, exc)
            c_writer.close()
            return
        session = ClientSession()

        def act(actions: list[ToClient | ToUpstream | Initiate]) -> None:
            for a in actions:
                if isinstance(a, ToClient):
                    c_writer.write(frame(a.payload))
                elif isinstance(a, ToUpstream):
                    u_writer.write(frame(a.payload))
                else:
                    log.info("client %d: initiate %s %s -> %s", cid, a.child, a.my_host,
                             a.other_host)  # fmt: skip
                    try:
                        self.initiate(a)
                    except OSError as exc:
                        log.warning("client %d: initiate failed: %s", cid, exc)

        async def pump(
            reader: asyncio.StreamReader,
            writer: asyncio.StreamWriter,
            handle: Callable[[bytes], list[ToClient | ToUpstream | Initiate]],
            side: str,
        ) -> None:
            decoder = StreamDecoder()
            while data := await reader.read(65536):
                try:
                    payloads = decoder.feed(data)
                except ViciStreamError as exc:  # what came before the fault, then close
                    for payload in exc.payloads:
                        act(handle(payload))
                    raise
                for payload in payloads:
                    act(handle(payload))
                await writer.drain()
            log.debug("client %d: %s closed", cid, side)

        tasks = [
            asyncio.create_task(pump(c_reader, u_writer, session.from_client, "client")),
            asyncio.create_task(pump(u_reader, c_writer, session.from_upstream, "charon")),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                error = t.exception()
                if isinstance(error, ProtocolError | ViciWireError):
                    log.warning("client %d: closing: %s", cid, error)
                elif error is not None and not isinstance(error, ConnectionError):
                    log.error("client %d: closing on unexpected error: %r", cid, error)
        finally:
            for t in tasks:
                t.cancel()
            for w in (c_writer, u_writer):
                w.close()
                with contextlib.suppress(OSError, ConnectionError):
                    await w.wait_closed()
