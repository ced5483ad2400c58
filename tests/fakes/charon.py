"""A fake charon on a unix socket, answering VICI as a script says (the proxy's tests)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from frrdmvpn.codec.vici import (
    Message,
    Packet,
    PacketType,
    StreamDecoder,
    decode_packet,
    encode_packet,
    frame,
)

T = PacketType


def gre_child(remote: bytes, remote_ts: bytes | None = None) -> Message:
    """CHILD_SA #7 protecting GRE from the hub (198.51.100.1) to ``remote`` as charon
    lists it; ``remote_ts`` instead of ``remote/32[gre]``."""
    return {
        "name": b"dmvpn",
        "uniqueid": b"7",
        "state": b"INSTALLED",
        "mode": b"TRANSPORT",
        "protocol": b"ESP",
        "local-ts": [b"198.51.100.1/32[gre]"],
        "remote-ts": [remote_ts or remote + b"/32[gre]"],
    }


def ike_sa(remote: bytes, child: Message) -> Message:
    """IKE_SA #3 from the hub to ``remote`` holding ``child``."""
    return {
        "uniqueid": b"3",
        "state": b"ESTABLISHED",
        "local-host": b"198.51.100.1",
        "remote-host": remote,
        "child-sas": {"dmvpn-7": child},
    }


async def fake_charon(path: Path) -> asyncio.AbstractServer:
    """Answers every command with success and every registration with a confirm; after
    `list-sas` it sends one list-sa event first, as charon does."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        dec = StreamDecoder()
        while data := await reader.read(65536):
            for payload in dec.feed(data):
                p = decode_packet(payload)
                if p.type is T.EVENT_REGISTER:
                    writer.write(frame(encode_packet(Packet(T.EVENT_CONFIRM))))
                elif p.type is T.CMD_REQUEST:
                    if p.name == "list-sas":
                        ev = Packet(T.EVENT, "list-sa", {"c": {"local-host": b"198.51.100.11"}})
                        writer.write(frame(encode_packet(ev)))
                    ok = Packet(T.CMD_RESPONSE, None, {"success": b"yes"})
                    writer.write(frame(encode_packet(ok)))
            await writer.drain()
        writer.close()

    return await asyncio.start_unix_server(serve, path=str(path))


async def scripted_charon(
    path: Path, events: dict[str, list[Packet]], seen: list[Packet]
) -> asyncio.AbstractServer:
    """Answers each command with the events scripted for it, then success; records requests."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        dec = StreamDecoder()
        while data := await reader.read(65536):
            for payload in dec.feed(data):
                p = decode_packet(payload)
                seen.append(p)
                if p.type is T.EVENT_REGISTER:
                    writer.write(frame(encode_packet(Packet(T.EVENT_CONFIRM))))
                elif p.type is T.CMD_REQUEST:
                    for ev in events.get(p.name or "", []):
                        writer.write(frame(encode_packet(ev)))
                    writer.write(frame(encode_packet(Packet(T.CMD_RESPONSE, None, {}))))
            await writer.drain()
        writer.close()

    return await asyncio.start_unix_server(serve, path=str(path))


class DroppingCharon:
    """Confirms registrations, lists ``listed``; can drop every event connection (the SA
    table's feed: tests/unit/adapters/test_sa_feed.py)."""

    def __init__(self, listed: Message) -> None:
        self.listed = listed
        self.listings = 0
        self.asked: list[Message] = []  # the arguments of each list-sas
        self.registered: list[asyncio.StreamWriter] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = StreamDecoder()
        while data := await reader.read(65536):
            for payload in decoder.feed(data):
                p = decode_packet(payload)
                if p.type is T.EVENT_REGISTER:
                    if p.name != "list-sa":
                        self.registered.append(writer)
                    writer.write(frame(encode_packet(Packet(T.EVENT_CONFIRM))))
                elif p.type is T.CMD_REQUEST and p.name == "list-sas":
                    self.listings += 1
                    self.asked.append(p.message or {})
                    writer.write(frame(encode_packet(Packet(T.EVENT, "list-sa", self.listed))))
                    writer.write(frame(encode_packet(Packet(T.CMD_RESPONSE, None, {}))))
            await writer.drain()
        writer.close()

    def announce(self, name: str, message: Message) -> None:
        """Send event ``name`` on every event connection."""
        for writer in dict.fromkeys(self.registered):
            writer.write(frame(encode_packet(Packet(T.EVENT, name, message))))

    def drop_events(self) -> None:
        for writer in self.registered:
            writer.close()
        self.registered.clear()
