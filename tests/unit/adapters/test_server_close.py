"""The proxy's servers stop while nhrpd stays connected: since Python 3.12 (Debian 13 runs
3.13) ``Server.wait_closed()`` waits for every connection, and nhrpd never closes its own;
frrdmvpn-proxy then hung on SIGTERM (found in the lab on Debian 13, issue 16)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from frrdmvpn.adapters.nhrp_event_server import NhrpEventServer
from frrdmvpn.adapters.vici_proxy import ViciProxy
from frrdmvpn.codec.nhrp_events import AuthorizeBinding
from frrdmvpn.core.authorize import Decision

pytestmark = pytest.mark.unit


class NewStyleServer:
    """An asyncio server as Python 3.13 has it: wait_closed() returns only once every client
    connection is closed (close_clients() closes them)."""

    def __init__(self) -> None:
        self.clients_closed = asyncio.Event()

    def close(self) -> None:
        pass

    def close_clients(self) -> None:
        self.clients_closed.set()

    async def wait_closed(self) -> None:
        await self.clients_closed.wait()


async def deny(event: AuthorizeBinding) -> Decision:
    return Decision(False, "test")


@pytest.mark.parametrize(
    "make",
    [
        lambda p: NhrpEventServer(deny, p / "ev.sock", group=None),
        lambda p: ViciProxy(p / "charon.vici", p / "up.vici", group=None),
    ],
    ids=["nhrp-event-server", "vici-proxy"],
)
def test_close_does_not_wait_for_a_client_that_stays(tmp_path: Path, make: Any) -> None:
    server = make(tmp_path)

    async def main() -> None:
        server._server = NewStyleServer()
        await asyncio.wait_for(server.close(), 5)

    asyncio.run(main())


def test_the_event_server_closes_with_nhrpd_still_connected(tmp_path: Path) -> None:
    server = NhrpEventServer(deny, tmp_path / "ev.sock", group=None)

    async def main() -> None:
        await server.start()
        _reader, writer = await asyncio.open_unix_connection(str(tmp_path / "ev.sock"))
        try:
            await asyncio.wait_for(server.close(), 5)
        finally:
            writer.close()

    asyncio.run(main())
