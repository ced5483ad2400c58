"""The VICI proxy: listens on nhrpd's compiled-in socket, one upstream connection per client.

Each client gets its own connection to charon's relocated socket and a
:class:`~frrdmvpn.core.vici_translate.ClientSession` deciding what crosses, in the role its uid
(``SO_PEERCRED``) gives it (:mod:`frrdmvpn.core.vici_access`): root everything, nhrpd's
user nhrpd's requests on DMVPN's SAs, anyone else nothing (such a client gets no connection
to charon at all). A refused request is answered by the session, counted by user and
logged. If either side closes or breaks the protocol, both connections are closed (nhrpd
then resets its VCs and reconnects, which is what it does when charon restarts).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections import Counter
from collections.abc import Callable, Collection
from pathlib import Path

from frrdmvpn.adapters.unix_server import (
    PeerCred,
    admitted,
    close_server,
    listen_restricted,
    peer_credentials,
    warn_refusal,
)
from frrdmvpn.adapters.vici_client import ViciError, list_ike_sa
from frrdmvpn.codec.vici import StreamDecoder, ViciStreamError, ViciWireError, frame
from frrdmvpn.config.charon_socket import CHARON_SOCKET, PROXY_SOCKET
from frrdmvpn.core.admission import Admission
from frrdmvpn.core.vici_access import Forbidden, Role, client_of
from frrdmvpn.core.vici_translate import (
    CONFIRM_ATTEMPTS,
    Action,
    ClientSession,
    Confirm,
    InitiateChild,
    ProtocolError,
    ToClient,
    ToUpstream,
)

log = logging.getLogger(__name__)

DEFAULT_LISTEN = PROXY_SOCKET  # nhrpd's compiled-in path, and swanctl's
DEFAULT_UPSTREAM = CHARON_SOCKET  # charon, relocated on a configured node
CONFIRM_DELAY = 0.2  # seconds before a confirming listing is asked again (Confirm)
CONFIRM_SLOTS = 2  # confirming listings under way at once, for all clients


def kick_gre(request: InitiateChild) -> None:
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
            log.debug(
                "GRE kick %s -> %s held by the kernel (EPERM)", request.my_host, request.other_host
            )


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
    """Serve VICI clients on ``listen``, relaying to charon at ``upstream``; ``nhrpd_uid``
    (None: no such user) gets nhrpd's requests on the IPsec profiles in ``profiles``
    (frrdmvpn.enforcement replaces it when the configuration changes)."""

    def __init__(
        self,
        listen: Path = DEFAULT_LISTEN,
        upstream: Path = DEFAULT_UPSTREAM,
        *,
        initiate: Callable[[InitiateChild], None] = kick_gre,
        group: str | None = "frr",
        admission: Admission | None = None,
        nhrpd_uid: int | None = None,
        profiles: Collection[str] = frozenset(),
    ) -> None:
        self.listen = listen
        self.upstream = upstream
        self.initiate = initiate
        self.group = group
        self.admission = admission  # per-UID caps (frrdmvpn.enforcement sets them)
        self.nhrpd_uid = nhrpd_uid
        self.profiles = profiles
        self.refused: Counter[str] = Counter()  # requests refused, by principal, since start
        self.clients = 0
        self._server: asyncio.AbstractServer | None = None
        # listings of one IKE_SA (Confirm) at once, whichever client's: each is a VICI
        # connection and, in charon, a walk over every IKE_SA
        self._listing_slots = asyncio.Semaphore(CONFIRM_SLOTS)

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
            await close_server(self._server)

    def _forbidden(self, cid: int, peer: PeerCred, forbidden: Forbidden) -> None:
        """Count a refused request; log it at the 1st, 2nd, 4th ... refusal of its user (a
        flood of them cannot flood the journal)."""
        self.refused[peer.principal] += 1
        warn_refusal(
            log,
            self.refused[peer.principal],
            peer,
            "vici-request-refused",
            "client %d: refused %s of %s: %s",
            cid,
            forbidden.request,
            peer,
            forbidden.reason,
            request=forbidden.request,
            reason=forbidden.reason,
        )

    def _initiate(self, cid: int, request: InitiateChild) -> None:
        log.info(
            "client %d: initiate %s %s -> %s",
            cid,
            request.child,
            request.my_host,
            request.other_host,
        )
        try:
            self.initiate(request)
        except OSError as exc:
            log.warning("client %d: initiate failed: %s", cid, exc)

    def _aside(
        self,
        cid: int,
        action: InitiateChild | Confirm,
        session: ClientSession,
        act: Callable[[list[Action]], None],
        tasks: set[asyncio.Task[None]],
    ) -> None:
        """What the session asks beside its two connections: a GRE kick, or a listing of
        one IKE_SA (a task in ``tasks``, whose result goes to ``act``)."""
        if isinstance(action, InitiateChild):
            self._initiate(cid, action)
            return
        task = asyncio.create_task(self._confirm(cid, session, action, act))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _confirm(
        self,
        cid: int,
        session: ClientSession,
        request: Confirm,
        act: Callable[[list[Action]], None],
    ) -> None:
        """List the IKE_SA on a connection of its own (the client's carries its requests)
        and hand the listing to the session."""
        await asyncio.sleep(CONFIRM_DELAY * (request.attempt - 1))
        try:
            async with self._listing_slots:  # a storm of them must not swamp charon
                listed = await list_ike_sa(self.upstream, request.ike_id)
        except ViciError as exc:
            log.warning("client %d: confirming IKE_SA #%d: %s", cid, request.ike_id, exc)
            if request.attempt < CONFIRM_ATTEMPTS:
                act([Confirm(request.ike_id, request.attempt + 1)])
            else:
                session.confirm_failed(request.ike_id)
            return
        except Exception:  # never leave the IKE_SA marked as being confirmed
            log.exception("client %d: confirming IKE_SA #%d", cid, request.ike_id)
            session.confirm_failed(request.ike_id)
            return
        act(session.confirmed(request.ike_id, request.attempt, listed))

    async def _connect(self, cid: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        try:
            return await asyncio.open_unix_connection(str(self.upstream))
        except OSError as exc:
            log.warning("client %d: charon unreachable at %s: %s", cid, self.upstream, exc)
            return None

    async def _serve(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        self.clients += 1
        cid = self.clients
        peer = peer_credentials(c_writer)
        client = client_of(peer.uid, self.nhrpd_uid)
        upstream = None
        if client.role is not Role.OTHER:  # such a client is refused everything, here
            upstream = await self._connect(cid)
            if upstream is None:
                c_writer.close()
                return
        session = ClientSession(client, lambda: self.profiles)
        writers = [c_writer] + ([upstream[1]] if upstream else [])
        confirming: set[asyncio.Task[None]] = set()

        def act(actions: list[Action]) -> None:
            for a in actions:
                if isinstance(a, ToClient):
                    c_writer.write(frame(a.payload))
                elif isinstance(a, ToUpstream):
                    if upstream is None:
                        raise ProtocolError("nothing may reach charon for this client")
                    upstream[1].write(frame(a.payload))
                elif isinstance(a, Forbidden):
                    self._forbidden(cid, peer, a)
                else:
                    self._aside(cid, a, session, act, confirming)

        async def pump(
            reader: asyncio.StreamReader, handle: Callable[[bytes], list[Action]], side: str
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
                for writer in writers:  # a client that does not read is not read either
                    await writer.drain()
            log.debug("client %d: %s closed", cid, side)

        tasks = [asyncio.create_task(pump(c_reader, session.from_client, "client"))]
        if upstream is not None:
            tasks.append(asyncio.create_task(pump(upstream[0], session.from_upstream, "charon")))
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                error = t.exception()
                if isinstance(error, ProtocolError | ViciWireError):
                    log.warning("client %d: closing: %s", cid, error)
                elif error is not None and not isinstance(error, ConnectionError):
                    log.error("client %d: closing on unexpected error: %r", cid, error)
        finally:
            for t in [*tasks, *confirming]:
                t.cancel()
            for w in writers:
                w.close()
                with contextlib.suppress(OSError, ConnectionError):
                    await w.wait_closed()
