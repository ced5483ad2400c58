"""Carry out nhrpd's ``initiate`` on stock strongSwan: kick the trap until the SA is there.

Stock VICI cannot initiate a wildcard connection towards one peer, so the proxy sends one
GRE packet into charon's wildcard transport trap (:func:`kick_gre`) and the kernel's ACQUIRE
makes charon negotiate with exactly that peer. An ACQUIRE can be lost: a larval ("acquire")
XFRM state left by a packet sent while the old SA was being deleted swallows further
ACQUIREs until it expires. So each request is followed up: if no INSTALLED GRE CHILD_SA
protects the pair shortly after the kick, the larval states are cleared and the trap kicked
again, with back-off, for a bounded time. One follow-up runs per NBMA pair.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from frrdmvpn.adapters.vici_client import ViciError, list_child_sas
from frrdmvpn.adapters.vici_proxy import kick_gre
from frrdmvpn.core.authorize import ChildSa, protects_gre
from frrdmvpn.core.vici_translate import InitiateChild

log = logging.getLogger(__name__)

# Seconds to wait after each kick before checking for the SA; their sum bounds a follow-up.
DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)


class Initiator:
    """Initiate GRE SAs towards single peers through the trap, following each one up."""

    def __init__(
        self,
        upstream: Path,
        flush_larval: Callable[[], Awaitable[int]],
        *,
        kick: Callable[[InitiateChild], None] = kick_gre,
        listing: Callable[[Path], Awaitable[list[ChildSa]]] = list_child_sas,
        delays: Sequence[float] = DELAYS,
    ) -> None:
        self.upstream = upstream
        self._flush = flush_larval
        self._kick = kick
        self._listing = listing
        self._delays = tuple(delays)
        self._running: dict[tuple[str, str], asyncio.Task[bool]] = {}
        self.kicks = 0
        self.flushes = 0

    def request(self, req: InitiateChild) -> None:
        """Start a follow-up for ``req``'s NBMA pair unless one is already running."""
        key = (str(req.my_host), str(req.other_host))
        if key in self._running:
            return
        task = asyncio.get_running_loop().create_task(self._follow_up(req))
        self._running[key] = task
        task.add_done_callback(lambda _: self._running.pop(key, None))

    async def wait_idle(self) -> None:
        """Until every follow-up has ended (for tests and clean shutdown)."""
        while self._running:
            await asyncio.gather(*self._running.values(), return_exceptions=True)

    async def _installed(self, req: InitiateChild) -> bool:
        try:
            sas = await self._listing(self.upstream)
        except ViciError as exc:
            log.debug("initiate %s: cannot list SAs yet: %s", req.other_host, exc)
            return False
        return any(protects_gre(sa, req.my_host, req.other_host) for sa in sas)

    async def _follow_up(self, req: InitiateChild) -> bool:
        for attempt, delay in enumerate(self._delays, start=1):
            if attempt > 1:
                try:
                    self.flushes += 1
                    flushed = await self._flush()
                    log.info(
                        "initiate %s: no SA yet, %d larval state(s) cleared, kick %d",
                        req.other_host,
                        flushed,
                        attempt,
                    )
                except Exception as exc:  # a failing flush must not stop the retries
                    log.warning(
                        "initiate %s: clearing larval states failed: %s", req.other_host, exc
                    )
            try:
                self.kicks += 1
                self._kick(req)
            except OSError as exc:
                log.warning("initiate %s: kick failed: %s", req.other_host, exc)
            await asyncio.sleep(delay)
            if await self._installed(req):
                return True
        log.warning(
            "initiate %s -> %s: no GRE CHILD_SA after %d kicks over %.1f s; the "
            "supervisor keeps trying",
            req.my_host,
            req.other_host,
            len(self._delays),
            sum(self._delays),
        )
        return False
