"""The SA table's feed (frrdmvpn/adapters/sa_feed.py) against a fake charon on a unix
socket: in sync only once its registrations are confirmed and a listing read; out of sync
the moment the event connection breaks, back after it reconnects, with one sync loop, not
one per connection; an audit whose report fails does not stop the audits."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from frrdmvpn.adapters.sa_feed import SaFeed
from frrdmvpn.core.sa_table import Drift, SaTable
from tests.fakes.charon import DroppingCharon as Charon
from tests.fakes.proxy import SPOKE2_SA

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]


async def until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.01)


def test_sync_breaks_with_the_event_connection_and_comes_back(tmp_path: Path) -> None:
    path = tmp_path / "charon.vici"
    charon, table = Charon(SPOKE2_SA), SaTable()
    audits: list[Drift] = []
    feed = SaFeed(path, table, audits.append, audit_period=0.2, retry=0.05, grace=0.01)

    async def main() -> None:
        server = await asyncio.start_unix_server(charon.serve, path=str(path))
        running = asyncio.create_task(feed.run())
        try:
            await until(lambda: table.in_sync)
            assert [sa.remote_id for sa in table.children()] == ["198.51.100.12"]
            await until(lambda: len(audits) >= 2)
            assert not any(audits), [a.summary() for a in audits]
            for _ in range(3):
                charon.drop_events()
                await until(lambda: not table.in_sync)
                await until(lambda: table.in_sync)
            # one sync loop: listings keep the audit period's pace, not three times it
            before = charon.listings
            await asyncio.sleep(1.0)
            assert charon.listings - before <= 6
        finally:
            running.cancel()
            server.close()

    asyncio.run(main())


def test_a_failing_audit_report_does_not_stop_the_audits(tmp_path: Path) -> None:
    path = tmp_path / "charon.vici"
    charon, table = Charon(SPOKE2_SA), SaTable()
    reports: list[Drift] = []

    def report(drift: Drift) -> None:
        reports.append(drift)
        raise OSError("No space left on device")  # e.g. the journal's write

    feed = SaFeed(path, table, report, audit_period=0.05, retry=0.05, grace=0.01)

    async def main() -> None:
        server = await asyncio.start_unix_server(charon.serve, path=str(path))
        running = asyncio.create_task(feed.run())
        try:
            await until(lambda: len(reports) >= 3)
            await until(lambda: table.in_sync)
        finally:
            running.cancel()
            server.close()

    asyncio.run(main())


def test_a_sync_cancelled_as_it_wakes_ends_and_lists_no_more(tmp_path: Path) -> None:
    """A reconnect cancels the old sync while an unreadable event may be waking it; the
    cancellation must win (Python 3.11's wait_for could drop it, leaving two sync loops
    listing and reading over each other)."""
    table = SaTable()
    feed = SaFeed(tmp_path / "charon.vici", table, audit_period=60.0)
    listed: list[int] = []

    async def listing() -> None:
        listed.append(1)

    feed.listing = listing  # type: ignore[method-assign]

    async def main() -> None:
        task = asyncio.create_task(feed._sync())
        await until(lambda: len(listed) == 1)
        await asyncio.sleep(0.01)  # waiting for the next audit
        feed._resync.set()
        task.cancel()
        await asyncio.wait([task], timeout=1.0)
        assert task.cancelled()
        assert len(listed) == 1

    asyncio.run(main())
