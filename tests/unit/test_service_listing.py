"""The supervision step lists charon's SAs only when charon reported a change since the
last listing, its event connection dropped or opened, or the listing is older than the
audit period (issue 17: a hub at rest lists nothing between audits)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from frrdmvpn.codec.vici import Message
from frrdmvpn.supervision import LISTING_AUDIT, Service
from tests.fakes.charon import DroppingCharon

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]

LISTED: Message = {
    "dmvpn": {
        "uniqueid": b"3",
        "state": b"ESTABLISHED",
        "local-host": b"198.51.100.1",
        "remote-host": b"198.51.100.11",
        "child-sas": {
            "dmvpn-7": {
                "name": b"dmvpn",
                "uniqueid": b"7",
                "state": b"INSTALLED",
                "mode": b"TRANSPORT",
                "protocol": b"ESP",
                "local-ts": [b"198.51.100.1/32[gre]"],
                "remote-ts": [b"198.51.100.11/32[gre]"],
            }
        },
    }
}


async def _until(what: Callable[[], bool]) -> None:
    while not what():
        await asyncio.sleep(0.01)


def _run(tmp_path: Path, body: Callable[[Service, DroppingCharon], Awaitable[None]]) -> None:
    async def main() -> None:
        charon = DroppingCharon(LISTED)
        sock = tmp_path / "charon.vici"
        server = await asyncio.start_unix_server(charon.serve, path=str(sock))
        service = Service(IPv4Address("198.51.100.1"), [], sock, tmp_path)
        events = asyncio.create_task(service._charon_events())
        try:
            await body(service, charon)
        finally:
            events.cancel()
            server.close()

    asyncio.run(main())


def test_a_listing_stands_until_charon_reports_a_change(tmp_path: Path) -> None:
    async def body(service: Service, charon: DroppingCharon) -> None:
        await _until(lambda: service._hearing)
        up, ikes, children = await service.charon_sas(0.0)
        assert up
        assert [c.child_uniqueid for c in children] == [7]
        assert [i.uniqueid for i in ikes] == [3]
        assert charon.listings == 1
        raw = service.raw_sas
        for now in (1.0, 10.0, LISTING_AUDIT - 1):  # nothing reported: the same listing
            assert await service.charon_sas(now) == (True, ikes, children)
        assert charon.listings == 1
        assert service.raw_sas is raw  # the API knows it unchanged by its identity
        changes = service._charon_changes
        charon.announce("child-rekey", {"dmvpn": {"uniqueid": b"3"}})
        await _until(lambda: service._charon_changes > changes)
        await service.charon_sas(LISTING_AUDIT)
        assert charon.listings == 2
        assert service.raw_sas is not raw
        await service.charon_sas(LISTING_AUDIT + 1)
        assert charon.listings == 2
        await service.charon_sas(2 * LISTING_AUDIT + 0.5)  # the audit
        assert charon.listings == 3

    _run(tmp_path, body)


def test_without_charons_events_every_step_lists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Events unheard (not yet registered, or the connection lost): a listing cannot stand
    for charon, so each step takes a new one."""
    monkeypatch.setattr(asyncio, "sleep", _slow_retry)

    async def body(service: Service, charon: DroppingCharon) -> None:
        await _until(lambda: service._hearing)
        await service.charon_sas(0.0)
        charon.drop_events()
        await _until(lambda: not service._hearing)
        for now in (1.0, 2.0):
            await service.charon_sas(now)
        assert charon.listings == 3

    _run(tmp_path, body)


def test_charon_gone_is_no_listing(tmp_path: Path) -> None:
    async def body(service: Service, charon: DroppingCharon) -> None:
        await _until(lambda: service._hearing)
        await service.charon_sas(0.0)
        (tmp_path / "charon.vici").unlink()
        charon.drop_events()
        await _until(lambda: not service._hearing)
        assert await service.charon_sas(1.0) == (False, [], [])
        assert service.raw_sas == []

    _run(tmp_path, body)


_real_sleep = asyncio.sleep


async def _slow_retry(delay: float) -> None:
    """The event listener's retry after a lost connection, long enough for the test."""
    await _real_sleep(max(delay, 5.0) if delay >= 1.0 else delay)
