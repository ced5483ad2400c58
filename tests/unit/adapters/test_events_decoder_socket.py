"""The event socket over a real unix socket: a broken stream still gets its answers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from frrdmvpn.adapters.nhrp_event_server import NhrpEventServer
from frrdmvpn.codec.nhrp_events import MAX_MESSAGE, AuthorizeBinding
from frrdmvpn.core.authorize import Decision

pytestmark = pytest.mark.unit

BODY = (
    "event=authorize-binding\ntype=dynamic\nold_type=invalid\nnum_nhs=0\ninterface=gre1\n"
    "local_addr=192.0.2.1\nlocal_nbma=198.51.100.1\nremote_addr=192.0.2.11\n"
    "remote_nbma=198.51.100.11\n"
)


def event(eventid: int) -> bytes:
    return f"eventid={eventid}\n{BODY}\n".encode()


def oversized(eventid: int) -> bytes:
    """An authorize-binding whose remote_cert alone is over the bound (no blank line yet)."""
    return f"eventid={eventid}\n{BODY}remote_cert=".encode() + b"30" * MAX_MESSAGE


async def accept_odd(event: AuthorizeBinding) -> Decision:
    await asyncio.sleep(0.01)  # answers come after the fault was seen
    return Decision(event.eventid % 2 == 1, "test")


async def replies_until_eof(reader: asyncio.StreamReader) -> dict[str, str]:
    """eventid -> result of every reply until the server closes the connection."""
    data = await asyncio.wait_for(reader.read(), 5)
    replies: dict[str, str] = {}
    for block in data.split(b"\n\n"):
        if block:
            fields = dict(line.split("=", 1) for line in block.decode().splitlines())
            assert fields["eventid"] not in replies, "answered twice"
            replies[fields["eventid"]] = fields["result"]
    return replies


def serve(
    tmp_path: Path, client: Callable[[Path, NhrpEventServer], Awaitable[None]]
) -> NhrpEventServer:
    """Run client against a fresh server; return the server for its counters."""
    server = NhrpEventServer(accept_odd, tmp_path / "ev.sock", group=None)

    async def main() -> None:
        await server.start()
        try:
            await client(tmp_path / "ev.sock", server)
        finally:
            await server.close()

    asyncio.run(asyncio.wait_for(main(), 20))
    return server


async def send(path: Path, *chunks: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_unix_connection(str(path))
    for chunk in chunks:
        writer.write(chunk)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
    return reader, writer


def test_events_before_a_malformed_line_in_the_same_read_are_answered(tmp_path: Path) -> None:
    async def client(path: Path, _server: NhrpEventServer) -> None:
        # Small enough to arrive in one read(): two events, then a line that is no field.
        reader, writer = await send(path, event(1) + event(2) + b"garbage\n\n" + event(3))
        assert await replies_until_eof(reader) == {"1": "accept", "2": "deny"}
        writer.close()

    server = serve(tmp_path, client)
    assert server.counters == {"accept": 1, "deny": 1, "malformed": 1}


def test_events_before_an_oversized_one_are_answered_and_it_is_denied(tmp_path: Path) -> None:
    async def client(path: Path, _server: NhrpEventServer) -> None:
        reader, writer = await send(path, event(1) + event(3) + oversized(5) + b"\n\n" + event(7))
        # 1 and 3 decided, 5 denied at once (not left to nhrpd's 10 s timeout), 7 comes
        # after the fault, so the connection closes without it (nhrpd reconnects).
        assert await replies_until_eof(reader) == {"1": "accept", "3": "accept", "5": "deny"}
        writer.close()

    server = serve(tmp_path, client)
    assert server.counters == {"accept": 2, "malformed": 1}


def test_oversized_split_across_reads_then_valid_events(tmp_path: Path) -> None:
    async def client(path: Path, server: NhrpEventServer) -> None:
        big = oversized(9)
        chunks = [big[i : i + 4096] for i in range(0, len(big), 4096)]
        reader, writer = await send(path, event(1), *chunks, b"\n\n", event(11))
        assert await replies_until_eof(reader) == {"1": "accept", "9": "deny"}
        writer.close()
        # The server keeps serving new connections.
        reader, writer = await send(path, event(13))
        data = await asyncio.wait_for(reader.readuntil(b"\n\n"), 5)
        assert data == b"eventid=13\nresult=accept\n\n"
        writer.close()
        assert server.counters["malformed"] == 1

    serve(tmp_path, client)
