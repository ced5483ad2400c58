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
from frrdmvpn.supervision import GARBLED_RELISTS, LISTING_AUDIT, Service
from tests.fakes.charon import DroppingCharon, gre_child, ike_sa

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]

LISTED: Message = {"dmvpn": ike_sa(b"198.51.100.11", gre_child(b"198.51.100.11"))}


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


def test_a_fresh_listing_is_a_step_that_lists_anew_and_is_shared(tmp_path: Path) -> None:
    """The API's full view asks for a listing at most ``within`` old: a held one that
    young serves at once; else the next step lists (one whose listing may predate the
    request does not count), and requests that come together wait for the same step."""

    async def body(service: Service, charon: DroppingCharon) -> None:
        await _until(lambda: service._hearing)
        service._running = True
        loop = asyncio.get_running_loop()
        await service.charon_sas(loop.time())
        service._published()
        service.wake.clear()
        changes = service._charon_changes
        await asyncio.wait_for(service.fresh_listing(1.0, 5.0), 1)  # young enough: at once
        assert not service.wake.is_set()
        assert service._charon_changes == changes
        service._listing_cost = 0.0  # (a listing that took no time: no share to keep)
        service._stepping = True  # a step under way
        waiting = [asyncio.create_task(service.fresh_listing(0.0, 5.0)) for _ in range(3)]
        await asyncio.sleep(0.05)
        assert service.wake.is_set()
        assert service._charon_changes == changes + 1  # asked once, for all three
        service._stepping = False
        service._published()  # the step under way ends: it may have listed before
        await asyncio.sleep(0.05)
        assert not any(t.done() for t in waiting)
        await service.charon_sas(loop.time())  # the next step lists anew ...
        assert charon.listings == 2
        service._published()  # ... and publishes
        await asyncio.wait_for(asyncio.gather(*waiting), 1)

    _run(tmp_path, body)


def test_a_fresh_listing_waits_no_longer_than_asked(tmp_path: Path) -> None:
    async def body(service: Service, charon: DroppingCharon) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await service.fresh_listing(1.0, 0.2)  # the loop does not run: nothing to wait for
        assert loop.time() - started < 0.1
        service._running = True
        await asyncio.wait_for(service.fresh_listing(1.0, 0.2), 1)  # no step comes
        assert loop.time() - started >= 0.2

    _run(tmp_path, body)


def test_clients_cannot_keep_the_loop_listing(tmp_path: Path) -> None:
    """A listing that took 1 s serves the full view for 10 s (LISTING_SHARE)."""

    async def body(service: Service, charon: DroppingCharon) -> None:
        await _until(lambda: service._hearing)
        service._running = True
        loop = asyncio.get_running_loop()
        await service.charon_sas(loop.time() - 5.0)  # taken 5 s ago ...
        service._published()
        service._listing_cost = 1.0  # ... in 1 s
        changes = service._charon_changes
        await asyncio.wait_for(service.fresh_listing(1.0, 5.0), 1)
        assert service._charon_changes == changes  # no step asked for
        service._listing_cost = 0.1
        task = asyncio.create_task(service.fresh_listing(1.0, 5.0))
        await asyncio.sleep(0.05)
        assert service._charon_changes == changes + 1  # 5 s > 1 s: a new listing
        task.cancel()

    _run(tmp_path, body)


def test_without_charons_events_the_full_view_is_limited_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Events unheard, every step lists and no listing is held: a step published a
    moment ago still serves the full view (a client cannot make the loop step for each
    request)."""
    monkeypatch.setattr(asyncio, "sleep", _slow_retry)

    async def body(service: Service, charon: DroppingCharon) -> None:
        await _until(lambda: service._hearing)
        charon.drop_events()
        await _until(lambda: not service._hearing)
        service._running = True
        loop = asyncio.get_running_loop()
        await service.charon_sas(loop.time())
        service._published()
        assert service._listing is None
        changes = service._charon_changes
        await asyncio.wait_for(service.fresh_listing(1.0, 5.0), 1)
        assert service._charon_changes == changes

    _run(tmp_path, body)


def test_a_listing_with_a_garbled_child_is_not_held(tmp_path: Path) -> None:
    """charon printed a CHILD_SA's selectors wrongly (``[ip]``: its getprotobynumber()
    race): the step cannot tell whether it protects GRE, so the next one lists again
    rather than keep that reading until the audit."""

    async def body(service: Service, charon: DroppingCharon) -> None:
        await _until(lambda: service._hearing)
        garbled: Message = {
            "dmvpn": ike_sa(b"198.51.100.11", gre_child(b"198.51.100.11", b"198.51.100.11/32[ip]"))
        }
        charon.listed = garbled
        await service.charon_sas(0.0)
        await service.charon_sas(1.0)
        assert charon.listings == 2
        charon.listed = LISTED  # read right this time: held again
        await service.charon_sas(2.0)
        await service.charon_sas(3.0)
        assert charon.listings == 3
        charon.listed = garbled  # reads so for good (another connection's SA): held after
        changes = service._charon_changes
        charon.announce("child-updown", {"up": b"yes", **garbled})
        await _until(lambda: service._charon_changes > changes)
        for now in range(4, 4 + GARBLED_RELISTS + 2):
            await service.charon_sas(float(now))
        assert charon.listings == 3 + GARBLED_RELISTS

    _run(tmp_path, body)
