"""Keeps a :class:`~frrdmvpn.core.sa_table.SaTable` in step with charon: one event
connection, a full listing each time it opens, and a listing every ``audit_period`` seconds
that reports any drift it finds (issue 17). Only moves messages; the table decides."""

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


class SaFeed:
    """Feeds ``table`` from charon at ``upstream``; ``on_audit(drift)`` after each audit
    that found the table in sync before (``drift`` is falsy when nothing differed)."""

    def __init__(
        self,
        upstream: Path,
        table: SaTable,
        on_audit: Callable[[Drift], None] | None = None,
        audit_period: float = AUDIT_PERIOD,
        retry: float = RETRY,
    ) -> None:
        self.upstream = upstream
        self.table = table
        self.on_audit = on_audit
        self.audit_period = audit_period
        self.retry = retry
        self._resync = asyncio.Event()
        self._syncing: asyncio.Task[None] | None = None

    async def run(self) -> None:
        """Until cancelled: listen, list when the connection opens, audit while it holds."""
        while True:
            try:
                await listen(self.upstream, list(EVENTS), self._event, on_connected=self._opened)
            except ViciError as exc:
                log.info("charon's SA events: %s; the SA table is out of sync", exc)
            finally:
                self.table.closed()
                if self._syncing is not None:
                    self._syncing.cancel()
                    self._syncing = None
            await asyncio.sleep(self.retry)

    def _opened(self) -> None:
        self.table.opened()
        self._syncing = asyncio.create_task(self._sync())

    def _event(self, name: str, message: Message) -> None:
        why = self.table.event(name, message)
        if why is not None:
            log.warning("%s; the SA table is out of sync until the next listing", why)
            self._resync.set()

    async def _sync(self) -> None:
        while True:
            self._resync.clear()  # an unreadable event from now on asks for another
            await self.listing()
            wait = self.audit_period if self.table.in_sync else self.retry
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._resync.wait(), wait)

    async def listing(self) -> None:
        """One full listing into the table: the first sync, or an audit."""
        self.table.listing_started()
        try:
            messages = await list_sa_messages(self.upstream)
        except ViciError as exc:
            self.table.listing_failed()
            log.warning("listing charon's SAs failed: %s", exc)
            return
        found = self.table.listed(messages)
        if isinstance(found, str):
            log.warning("%s; the SA table is out of sync", found)
        elif found is None:
            if self.table.in_sync:
                log.info("SA table in sync with charon: %d CHILD_SAs", len(self.table.children()))
        else:
            if found:
                log.warning("SA table drift found by the audit, now corrected: %s", found.summary())
            if self.on_audit is not None:
                self.on_audit(found)
