"""A minimal asyncio VICI client for what the enforcer asks charon directly (list-sas)."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Awaitable, Callable
from pathlib import Path

from frrdmvpn.core.authorize import ChildSa
from frrdmvpn.core.supervisor import IkeSa
from frrdmvpn.vici.wire import (
    Message,
    Packet,
    PacketType,
    StreamDecoder,
    ViciWireError,
    decode_packet,
    encode_packet,
    frame,
    text,
    texts,
)

TIMEOUT = 5.0


class ViciError(RuntimeError):
    """charon could not be asked, or refused."""


async def _exchange(path: Path, requests: list[Packet], until: PacketType) -> list[Packet]:
    """Send ``requests``; collect packets until ``until`` answers the last one."""
    reader, writer = await asyncio.open_unix_connection(str(path))
    try:
        for p in requests:
            writer.write(frame(encode_packet(p)))
        await writer.drain()
        decoder = StreamDecoder()
        got: list[Packet] = []
        answers = 0
        while True:
            data = await reader.read(65536)
            if not data:
                raise ViciError("charon closed the VICI connection")
            for payload in decoder.feed(data):
                pkt = decode_packet(payload)
                got.append(pkt)
                if pkt.type in (PacketType.CMD_UNKNOWN, PacketType.EVENT_UNKNOWN):
                    raise ViciError(f"charon does not know {requests[answers].name!r}")
                if pkt.type in (PacketType.EVENT_CONFIRM, PacketType.CMD_RESPONSE):
                    answers += 1
                    if pkt.type is until and answers == len(requests):
                        return got
    finally:
        writer.close()


def child_sas_from_list_sa(msg: Message) -> list[ChildSa]:
    """Flatten one ``list-sa`` event (one IKE_SA) into its CHILD_SAs."""
    out: list[ChildSa] = []
    for ike in msg.values():
        if not isinstance(ike, dict):
            continue
        children = ike.get("child-sas")
        if not isinstance(children, dict):
            continue
        for child in children.values():
            if not isinstance(child, dict):
                continue
            out.append(
                ChildSa(
                    ike_uniqueid=int(text(ike.get("uniqueid"), "0")),
                    child_uniqueid=int(text(child.get("uniqueid"), "0")),
                    local_host=ipaddress.ip_address(text(ike.get("local-host"))),
                    remote_host=ipaddress.ip_address(text(ike.get("remote-host"))),
                    local_id=text(ike.get("local-id"), ""),
                    remote_id=text(ike.get("remote-id"), ""),
                    state=text(child.get("state"), ""),
                    mode=text(child.get("mode"), ""),
                    protocol=text(child.get("protocol"), ""),
                    local_ts=tuple(texts(child.get("local-ts"))),
                    remote_ts=tuple(texts(child.get("remote-ts"))),
                    spi_in=int(text(child.get("spi-in"), "0"), 16),
                    spi_out=int(text(child.get("spi-out"), "0"), 16),
                )
            )
    return out


def ike_sas_from_list_sa(msg: Message) -> list[IkeSa]:
    """The IKE_SA(s) of one ``list-sa`` event."""
    out = []
    for ike in msg.values():
        if isinstance(ike, dict):
            out.append(
                IkeSa(
                    uniqueid=int(text(ike.get("uniqueid"), "0")),
                    local_host=ipaddress.ip_address(text(ike.get("local-host"))),
                    remote_host=ipaddress.ip_address(text(ike.get("remote-host"))),
                    state=text(ike.get("state"), ""),
                )
            )
    return out


async def list_sas(path: Path) -> tuple[list[IkeSa], list[ChildSa]]:
    """Every IKE_SA and CHILD_SA charon knows."""
    ikes: list[IkeSa] = []
    children: list[ChildSa] = []
    for msg in await _list_sa_events(path):
        try:
            ikes += ike_sas_from_list_sa(msg)
            children += child_sas_from_list_sa(msg)
        except (ViciWireError, ValueError) as exc:
            raise ViciError(f"unexpected list-sa from charon: {exc}") from exc
    return ikes, children


async def list_child_sas(path: Path) -> list[ChildSa]:
    """Every CHILD_SA charon knows, as the authorizer sees them."""
    return (await list_sas(path))[1]


async def _list_sa_events(path: Path) -> list[Message]:
    requests = [
        Packet(PacketType.EVENT_REGISTER, "list-sa"),
        # Not `noblock`: it skips IKE_SAs another thread holds, i.e. exactly the ones being
        # installed or rekeyed, which would look like missing SAs.
        Packet(PacketType.CMD_REQUEST, "list-sas", {}),
    ]
    try:
        packets = await asyncio.wait_for(
            _exchange(path, requests, PacketType.CMD_RESPONSE), TIMEOUT
        )
    except (OSError, TimeoutError, ViciWireError) as exc:
        raise ViciError(f"list-sas via {path}: {exc}") from exc
    return [
        p.message
        for p in packets
        if p.type is PacketType.EVENT and p.name == "list-sa" and p.message
    ]


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
