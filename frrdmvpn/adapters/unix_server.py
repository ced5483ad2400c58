"""A unix-socket listener only root and one group may use (VICI controls charon; the
event socket decides NHRP bindings), and who is on the other end of a connection."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pwd
import shutil
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from frrdmvpn.adapters.journald import fields
from frrdmvpn.core.admission import Admission, Refusal, Ticket

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def listen_restricted(
    path: Path, handler: Handler, group: str | None, own_dir: bool = False
) -> asyncio.AbstractServer:
    """Listen on ``path`` (replacing a stale socket), mode 0660, owned by ``group``.
    With ``own_dir`` the parent directory is created and opened to the group too."""
    if own_dir:
        path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    server = await asyncio.start_unix_server(handler, path=str(path))
    os.chmod(path, 0o660)
    if group:
        with contextlib.suppress(LookupError, OSError):
            shutil.chown(path, group=group)
            if own_dir:
                shutil.chown(path.parent, group=group)
                # the group lists it; others (the API's clients, group frrdmvpn) may only pass
                # through to a socket whose own mode admits them
                os.chmod(path.parent, 0o751)  # noqa: S103
    return server


_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


@dataclass(frozen=True)
class PeerCred:
    """A unix socket's peer as the kernel recorded it at ``connect()`` (``SO_PEERCRED``:
    nothing the peer says about itself)."""

    pid: int
    uid: int
    gid: int

    @property
    def principal(self) -> str:
        """The key of :mod:`frrdmvpn.core.admission`: ``uid 101``."""
        return principal_of_uid(self.uid)

    def __str__(self) -> str:
        return f"{user_name(self.uid)} pid {self.pid}"


def principal_of_uid(uid: int) -> str:
    return f"uid {uid}"


def user_name(uid: int) -> str:
    """``uid 101 (frr)``, or ``uid 101`` for a user without a name."""
    with contextlib.suppress(KeyError):
        return f"uid {uid} ({pwd.getpwuid(uid).pw_name})"
    return f"uid {uid}"


def uid_of(user: str) -> int | None:
    """The uid of ``user``, None if there is no such user."""
    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        return None


def peer_credentials(connection: socket.socket | asyncio.StreamWriter) -> PeerCred:
    """The credentials of the peer of a connected unix socket (or of a stream's socket)."""
    sock = (
        connection if isinstance(connection, socket.socket) else connection.get_extra_info("socket")
    )
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    pid, uid, gid = _UCRED.unpack(raw)
    return PeerCred(pid, uid, gid)


def admit(
    admission: Admission | None, writer: asyncio.StreamWriter, log: logging.Logger
) -> Ticket | Refusal | None:
    """Admit a new connection's peer; a refused one is closed, counted by ``admission`` and
    logged with its reason (the 1st, 2nd, 4th, 8th ... refusal of a user: a flood of them
    cannot flood the journal). None: no admission policy, everyone is served."""
    if admission is None:
        return None
    peer = peer_credentials(writer)
    admitted = admission.admit(peer.principal)
    if isinstance(admitted, Refusal):
        writer.close()
        warn_refusal(
            log,
            admission.refused[peer.principal],
            peer,
            "connection-refused",
            "refused a connection of %s: %s",
            peer,
            admitted.reason,
            reason=admitted.reason,
        )
    return admitted


async def close_server(server: asyncio.AbstractServer) -> None:
    """Stop listening and close every client: from Python 3.12 (Debian 13: 3.13)
    ``wait_closed()`` waits for every connection, and nhrpd never closes its own (3.13 has
    ``close_clients``; on 3.11 ``wait_closed()`` returns anyway)."""
    server.close()
    close_clients = getattr(server, "close_clients", None)
    if close_clients is not None:
        close_clients()
    await server.wait_closed()


def warn_refusal(
    log: logging.Logger,
    count: int,
    peer: PeerCred,
    event: str,
    message: str,
    *args: object,
    **extra: object,
) -> None:
    """Log the ``count``-th refusal of ``peer``'s user when ``count`` is 1, 2, 4, 8 ... (a
    flood of refusals cannot flood the journal): ``message % args`` and the count, with the
    journal fields ``event``, the peer's and ``extra``."""
    if count & (count - 1) == 0:
        log.warning(
            message + " (refusal %d of %s)",
            *args,
            count,
            peer.principal,
            extra=fields(event=event, uid=peer.uid, pid=peer.pid, **extra, refused=count),
        )


def admitted(admission: Admission | None, serve: Handler, log: logging.Logger) -> Handler:
    """``serve``, for the connections ``admission`` admits (:func:`admit`); each gives its
    slot back when ``serve`` ends."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        ticket = admit(admission, writer, log)
        if isinstance(ticket, Refusal):
            return
        try:
            await serve(reader, writer)
        finally:
            if ticket is not None and admission is not None:
                admission.release(ticket)

    return handler
