"""frrdmvpn's VICI client: asyncio for what the enforcer and the daemon ask charon directly
(list-sas, events, terminate), and one blocking :func:`command` for the configuration
commands the apply step sends from its worker thread (:mod:`.vici_config`)."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from frrdmvpn.codec.nhrp_events import IPAddress
from frrdmvpn.codec.vici import (
    Message,
    Packet,
    PacketType,
    StreamDecoder,
    ViciWireError,
    decode_packet,
    encode_packet,
    frame,
    text,
)
from frrdmvpn.core.authorize import ChildSa
from frrdmvpn.core.sa_table import child_sas_from_list_sa, ike_sas_from_list_sa
from frrdmvpn.core.supervisor import IkeSa

TIMEOUT = 5.0


class ViciError(RuntimeError):
    """charon could not be asked, or refused."""


async def _packets(reader: asyncio.StreamReader) -> AsyncIterator[Packet]:
    """The packets charon sends on ``reader``, decoded, until it closes the connection."""
    decoder = StreamDecoder()
    while data := await reader.read(65536):
        for payload in decoder.feed(data):
            yield decode_packet(payload)


async def _exchange(path: Path, requests: list[Packet], until: PacketType) -> list[Packet]:
    """Send ``requests``; collect packets until ``until`` answers the last one."""
    reader, writer = await asyncio.open_unix_connection(str(path))
    try:
        for p in requests:
            writer.write(frame(encode_packet(p)))
        await writer.drain()
        got: list[Packet] = []
        answers = 0
        async for pkt in _packets(reader):
            got.append(pkt)
            if pkt.type in (PacketType.CMD_UNKNOWN, PacketType.EVENT_UNKNOWN):
                raise ViciError(f"charon does not know {requests[answers].name!r}")
            if pkt.type in (PacketType.EVENT_CONFIRM, PacketType.CMD_RESPONSE):
                answers += 1
                if pkt.type is until and answers == len(requests):
                    return got
        raise ViciError("charon closed the VICI connection")
    finally:
        writer.close()


def command(path: Path, name: str, message: Message, timeout: float = TIMEOUT) -> Message:
    """Send one command request to charon at ``path`` and return its response message,
    blocking for at most ``timeout`` seconds per read (no event is registered, so nothing
    but the response may come back)."""
    request = frame(encode_packet(Packet(PacketType.CMD_REQUEST, name, message)))
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall(request)
            decoder = StreamDecoder()
            while data := sock.recv(65536):
                for payload in decoder.feed(data):
                    answer = decode_packet(payload)
                    if answer.type is PacketType.CMD_RESPONSE:
                        return answer.message or {}
                    if answer.type is PacketType.CMD_UNKNOWN:
                        raise ViciError(f"charon does not know {name!r}")
                    raise ViciError(f"{name} via {path}: unexpected {answer.type.name} packet")
    except (OSError, ViciWireError) as exc:
        raise ViciError(f"{name} via {path}: {exc}") from exc
    raise ViciError(f"{name} via {path}: charon closed the VICI connection")


async def list_sas(path: Path) -> tuple[list[IkeSa], list[ChildSa]]:
    """Every IKE_SA and CHILD_SA charon knows."""
    ikes, children, _ = await list_sas_raw(path)
    return ikes, children


async def list_sas_raw(path: Path) -> tuple[list[IkeSa], list[ChildSa], list[Message]]:
    """:func:`list_sas` plus charon's ``list-sa`` messages themselves (for the API)."""
    ikes: list[IkeSa] = []
    children: list[ChildSa] = []
    messages = await _list_sa_events(path)
    for msg in messages:
        try:
            ikes += ike_sas_from_list_sa(msg)
            children += child_sas_from_list_sa(msg)
        except (ViciWireError, ValueError) as exc:
            raise ViciError(f"unexpected list-sa from charon: {exc}") from exc
    return ikes, children, messages


async def terminate_ike(path: Path, uniqueid: int) -> None:
    """Close one IKE_SA (and its CHILD_SAs) without waiting for the peer's answer."""
    args: Message = {"ike-id": str(uniqueid).encode(), "timeout": b"-1"}
    try:
        # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a cancellation
        async with asyncio.timeout(TIMEOUT):
            packets = await _exchange(
                path, [Packet(PacketType.CMD_REQUEST, "terminate", args)], PacketType.CMD_RESPONSE
            )
    except (OSError, TimeoutError, ViciWireError) as exc:
        raise ViciError(f"terminate IKE_SA #{uniqueid} via {path}: {exc}") from exc
    answer = packets[-1].message or {}
    if text(answer.get("success"), "no") != "yes":
        raise ViciError(
            f"charon refused to terminate IKE_SA #{uniqueid}: "
            f"{text(answer.get('errmsg'), 'no reason given')}"
        )


async def listen(
    path: Path,
    events: list[str],
    on_event: Callable[[str, Message], None],
    on_connected: Callable[[], None] | None = None,
) -> None:
    """Register for charon's ``events`` and call ``on_event(name, message)`` for each
    until the connection ends (ViciError) or the task is cancelled; ``on_connected`` once
    charon confirmed every registration (an event from then on is not missed)."""
    try:
        reader, writer = await asyncio.open_unix_connection(str(path))
    except OSError as exc:
        raise ViciError(f"events via {path}: {exc}") from exc
    try:
        for name in events:
            writer.write(frame(encode_packet(Packet(PacketType.EVENT_REGISTER, name))))
        await writer.drain()
        confirmed = 0
        async for pkt in _packets(reader):
            if pkt.type is PacketType.EVENT_UNKNOWN:
                raise ViciError("charon does not know one of the events " + ", ".join(events))
            if pkt.type is PacketType.EVENT_CONFIRM:
                confirmed += 1
                if confirmed == len(events) and on_connected is not None:
                    on_connected()
            elif pkt.type is PacketType.EVENT:
                on_event(pkt.name or "", pkt.message or {})
        raise ViciError("charon closed the event connection")
    except (OSError, ViciWireError) as exc:  # a reset or a broken pipe is charon gone too
        raise ViciError(f"events via {path}: {exc}") from exc
    finally:
        writer.close()


async def list_child_sas(path: Path) -> list[ChildSa]:
    """Every CHILD_SA charon knows, as the authorizer sees them."""
    return (await list_sas(path))[1]


async def list_sa_messages(path: Path) -> list[Message]:
    """charon's ``list-sa`` messages, one per IKE_SA, unparsed."""
    return await _list_sa_events(path)


async def list_ike_sa(path: Path, ike_id: int) -> list[Message]:
    """charon's ``list-sa`` messages of IKE_SA ``ike_id`` alone (none once it is gone)."""
    return await _streamed(path, "list-sas", "list-sa", {"ike-id": str(ike_id).encode()})


async def _list_sa_events(path: Path) -> list[Message]:
    # Not `noblock`: it skips IKE_SAs another thread holds, i.e. exactly the ones being
    # installed or rekeyed, which would look like missing SAs.
    return await _streamed(path, "list-sas", "list-sa", {})


async def _streamed(path: Path, command: str, event: str, args: Message) -> list[Message]:
    """Run a streaming VICI command; the messages of its ``event``."""
    requests = [
        Packet(PacketType.EVENT_REGISTER, event),
        Packet(PacketType.CMD_REQUEST, command, args),
    ]
    try:
        async with asyncio.timeout(TIMEOUT):  # not wait_for: see terminate_ike
            packets = await _exchange(path, requests, PacketType.CMD_RESPONSE)
    except (OSError, TimeoutError, ViciWireError) as exc:
        raise ViciError(f"{command} via {path}: {exc}") from exc
    return [
        p.message for p in packets if p.type is PacketType.EVENT and p.name == event and p.message
    ]


@dataclass(frozen=True)
class RemoteAuth:
    """How a connection's remote end authenticates: ``pubkey`` when every remote round is
    public key, else the first other class seen; and its remote identity rule (the ``id``
    of the first remote round as charon prints it; ``None``: unset, any identity)."""

    auth: str
    identity: str | None


def remote_auths(msg: Message) -> dict[str, RemoteAuth]:
    """Connection name -> :class:`RemoteAuth`, from one ``list-conn`` event."""
    out: dict[str, RemoteAuth] = {}
    for name, conn in msg.items():
        if not isinstance(conn, dict):
            continue
        rounds = sorted(
            (
                (key, cfg)
                for key, cfg in conn.items()
                if key.startswith("remote") and isinstance(cfg, dict)
            ),
            key=lambda kv: kv[0],
        )
        classes = [text(cfg.get("class"), "") for _, cfg in rounds]
        odd = [c for c in classes if c != "public key"]
        auth = "pubkey" if classes and not odd else (odd[0] if odd else "none")
        identity = text(rounds[0][1].get("id"), "") if rounds else ""
        out[name] = RemoteAuth(auth, identity if identity not in ("", "%any") else None)
    return out


async def conn_remote_auths(path: Path) -> dict[str, RemoteAuth]:
    """Every loaded connection's :class:`RemoteAuth`."""
    out: dict[str, RemoteAuth] = {}
    for msg in await _streamed(path, "list-conns", "list-conn", {}):
        try:
            out.update(remote_auths(msg))
        except ViciWireError as exc:
            raise ViciError(f"unexpected list-conn from charon: {exc}") from exc
    return out


async def peer_certificates(path: Path, subject: str) -> list[bytes]:
    """DER of the end-entity X.509 certificates charon holds for ``subject`` without their
    private key: those of IKE peers it verified (its certificate cache) or was given.
    charon matches ``subject`` as a pattern against subject DNs and subjectAltNames."""
    args: Message = {"type": b"X509", "subject": subject.encode()}
    found: list[bytes] = []
    for msg in await _streamed(path, "list-certs", "list-cert", args):
        data = msg.get("data")
        if (
            isinstance(data, bytes)
            and msg.get("flag", b"NONE") == b"NONE"
            and msg.get("has_privkey") != b"yes"
            and data not in found
        ):
            found.append(data)
    return found


async def with_certificates(path: Path, sas: list[ChildSa], pair: set[IPAddress]) -> list[ChildSa]:
    """``sas`` with those between the NBMA ``pair`` completed for certificate policy: how the
    peer authenticated and its connection's remote identity rule (``list-conns``), and
    every certificate charon holds for its identity (``list-certs``): the authorizer ties
    them to the identity and lets each of them veto."""
    relevant = [sa for sa in sas if {sa.local_host, sa.remote_host} == pair]
    if not relevant:
        return sas
    conns = await conn_remote_auths(path)
    certs: dict[str, list[bytes]] = {}
    out = [sa for sa in sas if {sa.local_host, sa.remote_host} != pair]
    for sa in relevant:
        conn = conns.get(sa.ike_name, RemoteAuth("unknown connection", None))
        if conn.auth != "pubkey":
            out.append(dataclasses.replace(sa, remote_auth=conn.auth))
            continue
        if sa.remote_id not in certs:
            certs[sa.remote_id] = await peer_certificates(path, sa.remote_id)
        out.append(
            dataclasses.replace(
                sa,
                remote_auth="pubkey",
                conn_remote_id=conn.identity,
                remote_certs=tuple(certs[sa.remote_id]),
            )
        )
    return out


class SharedListing:
    """At most one ``list-sas`` in flight and one waiting, however many ask at once.

    Every caller gets a listing that *started after it asked* (an SA installed just before a
    binding event must be seen), but callers that ask while the next listing has not started
    yet share it: after a hub restart N spokes cost 2 dumps, not N.
    """

    def __init__(self, fetch: Callable[[], Awaitable[list[ChildSa]]]) -> None:
        self._fetch = fetch
        self._next: asyncio.Future[list[ChildSa]] | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def get(self) -> list[ChildSa]:
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
            asyncio.get_running_loop().create_task(self._run(self._next))
        return await asyncio.shield(self._next)

    async def _run(self, fut: asyncio.Future[list[ChildSa]]) -> None:
        async with self._lock:
            if self._next is fut:
                self._next = None  # later callers need a listing that starts after them
            self.fetches += 1
            try:
                fut.set_result(await self._fetch())
            except Exception as exc:  # handed to every waiter
                fut.set_exception(exc)
