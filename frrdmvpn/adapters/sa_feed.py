"""Keeps a :class:`~frrdmvpn.core.sa_table.SaTable` in step with charon: one event
connection, a full listing each time it opens, and a listing every ``audit_period`` seconds
whose differences that no event explains within :data:`GRACE` seconds are reported as
drift (issue 17). Only moves messages and time; the table decides."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path

from frrdmvpn.adapters.vici_client import ViciError, list_sa_messages, listen
from frrdmvpn.codec.vici import Message
from frrdmvpn.core.sa_table import EVENTS, Drift, SaTable

log = logging.getLogger("frrdmvpn.sa_table")

AUDIT_PERIOD = 60.0  # seconds between audits; a listing of 1,000 IKE_SAs is ~1 MB
RETRY = 1.0  # seconds before a lost event connection or a failed listing is tried again
# Seconds an audit's differences wait for an event that explains them: charon may send an
# event before the listing's snapshot that this end reads only after the listing.
GRACE = 2.0


class SaFeed:
    """Feeds ``table`` from charon at ``upstream``; ``on_audit(drift)`` after each audit
    (``drift`` is falsy when the table agreed with charon)."""

    def __init__(
        self,
        upstream: Path,
        table: SaTable,
        on_audit: Callable[[Drift], None] | None = None,
        *,
        audit_period: float = AUDIT_PERIOD,
        retry: float = RETRY,
        grace: float = GRACE,
    ) -> None:
        self.upstream = upstream
        self.table = table
        self.on_audit = on_audit
        self.audit_period = audit_period
        self.retry = retry
        self.grace = grace
        self._resync = asyncio.Event()
        self._syncing: asyncio.Task[None] | None = None
        self._lost: str | None = None  # why the event connection is down (logged once)

    async def run(self) -> None:
        """Until cancelled: listen, list when the connection opens, audit while it holds."""
        while True:
            failure: Exception | None = None
            try:
                await listen(self.upstream, list(EVENTS), self._event, on_connected=self._opened)
                why = "charon closed the event connection"
            except ViciError as exc:
                why = str(exc)
            except Exception as exc:  # never die: a dead feed would leave the table unused
                why, failure = f"{type(exc).__name__}: {exc}", exc
            finally:
                self.table.closed()
                await self._stop_syncing()
            if why != self._lost:  # once per outage, not every retry
                log.info(
                    "charon's SA events: %s; the SA table is out of sync", why, exc_info=failure
                )
                self._lost = why
            await asyncio.sleep(self.retry)

    async def _stop_syncing(self) -> None:
        """Cancel the sync task and wait until it has ended, without taking a cancellation
        of :meth:`run` itself for the task's."""
        task, self._syncing = self._syncing, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])
            if not task.cancelled() and task.exception() is not None:
                log.error("the SA table's sync ended", exc_info=task.exception())

    def _opened(self) -> None:
        self._lost = None
        self.table.opened()
        self._syncing = asyncio.create_task(self._sync())

    def _event(self, name: str, message: Message) -> None:
        why = self.table.event(name, message)
        if why is not None:
            log.warning("%s; the SA table is out of sync until the next listing", why)
            self._resync.set()

    async def _sync(self) -> None:
        """The first listing, then an audit every ``audit_period`` (sooner when an
        unreadable event asks for one), for as long as the event connection holds."""
        while True:
            self._resync.clear()  # an unreadable event from now on asks for another
            try:
                await self.listing()
            except Exception:  # never end the audits: list again soon
                log.exception("listing charon's SAs")
                self.table.out_of_sync()
            wait = self.audit_period if self.table.in_sync else self.retry
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._resync.wait()

    async def listing(self) -> None:
        """One full listing into the table: the first sync, or an audit."""
        audit = self.table.in_sync
        generation = self.table.listing_started()
        try:
            messages = await list_sa_messages(self.upstream)
        except ViciError as exc:
            self.table.listing_failed(generation)
            log.warning("listing charon's SAs failed: %s", exc)
            return
        except BaseException:
            self.table.listing_failed(generation)
            raise
        why = self.table.listed(generation, messages)
        if why is not None:
            log.warning("%s; the SA table is out of sync", why)
            return
        if not audit:
            if self.table.in_sync:
                log.info("SA table in sync with charon: %d CHILD_SAs", len(self.table.children()))
            return
        await asyncio.sleep(self.grace)
        drift = self.table.drift()
        if drift:
            log.warning("SA table drift found by the audit, now corrected: %s", drift.summary())
        if self.on_audit is not None:
            try:
                self.on_audit(drift)
            except Exception:  # the report failed, not the audit: the table stays in sync
                log.exception("reporting the SA table's audit")
