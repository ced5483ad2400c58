"""``frrdmvpnd run``: install the guards, then supervise every peer of one NBMA address.

Each step asks charon (VICI, its own socket), nhrpd (vtysh JSON) for the current state; the
pure :class:`~frrdmvpn.core.supervisor.Supervisor` says what changed and what to initiate.
The peer table is written to ``/run/frrdmvpn/peers.json`` after every step.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import os
import random
import signal
from collections.abc import Callable
from pathlib import Path

from frrdmvpn.adapters.guard import GuardError, KernelGuard
from frrdmvpn.adapters.initiator import Initiator
from frrdmvpn.adapters.neighbors import gre_neighbors, replace_neighbor
from frrdmvpn.adapters.nflog import NflogListener
from frrdmvpn.adapters.vici_client import ViciError, list_sas
from frrdmvpn.adapters.vici_proxy import DEFAULT_UPSTREAM
from frrdmvpn.adapters.vtysh import VtyshError, nhrp_view
from frrdmvpn.core.guard_report import GuardReport
from frrdmvpn.core.orphans import KernelPolicy, KernelSa, orphan_policies, orphan_sas
from frrdmvpn.core.supervisor import (
    CleanOrphans,
    FlushLarval,
    Initiate,
    Observation,
    RepairNeighbor,
    Supervisor,
    Transition,
)
from frrdmvpn.kernel.nflog import Logged
from frrdmvpn.render.guard import GuardSpec
from frrdmvpn.vici.translate import Initiate as ProxyInitiate

log = logging.getLogger("frrdmvpn.supervisor")
ORPHAN_CONFIRM = 3.0  # seconds between the two sweeps of an orphan clean-up
GUARD_CHECK_EVERY = 30  # steps between checks that the guards are still in place
STATUS = Path("/run/frrdmvpn/peers.json")


def _write_status(sup: Supervisor, path: Path) -> None:
    table = [
        {
            "local": str(p.local), "remote": str(p.remote), "role": p.role.value,
            "state": p.state.name, "since": round(p.since, 3), "reason": p.reason,
            "transitions": p.transitions, "initiations": p.initiations,
        }
        for p in sorted(sup.peers.values(), key=lambda p: p.remote)
    ]  # fmt: skip
    _write_json(path, table)


def _write_json(path: Path, data: object) -> None:
    """Replace ``path`` atomically (readers never see half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


class Service:
    """One node's supervision loop and guard reporting."""

    def __init__(
        self,
        nbma: ipaddress.IPv4Address,
        nhs: list[ipaddress.IPv4Address],
        upstream: Path = DEFAULT_UPSTREAM,
        status_dir: Path = STATUS.parent,
        reapply: Callable[[], None] | None = None,
    ) -> None:
        self.nbma = nbma
        self.reapply = reapply
        self.upstream = upstream
        self.status_dir = status_dir
        self.guard = KernelGuard(GuardSpec((nbma,)))
        self.sup = Supervisor(nbma, nhs, rand=random.random)
        self.report = GuardReport()
        self.initiator = Initiator(upstream, self._flush_count)

    def dropped(self, p: Logged) -> None:
        """A packet the guards logged to their NFLOG group."""
        offender = self.report.add(p.prefix, p.payload, asyncio.get_running_loop().time())
        if offender is not None:
            log.warning("guard dropped cleartext GRE %s %s -> %s (key %s): %s",
                        offender.direction, offender.src, offender.dst, offender.gre_key,
                        offender.summary)  # fmt: skip

    async def observe(self) -> Observation:
        """charon's and nhrpd's current view."""
        try:
            ikes, children = await list_sas(self.upstream)
            charon_up = True
        except ViciError as exc:
            log.debug("charon: %s", exc)
            ikes, children, charon_up = [], [], False
        try:
            bindings, sas = await nhrp_view()
        except VtyshError as exc:
            log.debug("nhrpd: %s", exc)
            bindings, sas = [], {}
        neighbors = await gre_neighbors({b.interface for b in bindings if b.interface})
        return Observation(
            charon_up, tuple(ikes), tuple(children), tuple(bindings), sas, tuple(neighbors)
        )

    async def act(
        self, actions: list[Transition | Initiate | FlushLarval | CleanOrphans | RepairNeighbor]
    ) -> None:
        if self.reapply is not None and any(isinstance(a, FlushLarval) for a in actions):
            # charon (re)appeared: it has no connection until frrdmvpn loads them again
            log.info("charon is back: applying the configuration again")
            await asyncio.to_thread(self.reapply)
        # Initiations go out before the orphan clean-up (two sweeps seconds apart): a kick
        # an orphaned SA swallows is repeated by the initiator's follow-up after it.
        order = {FlushLarval: 0, Transition: 1, Initiate: 1, RepairNeighbor: 2, CleanOrphans: 3}
        for action in sorted(actions, key=lambda a: order[type(a)]):
            if isinstance(action, Transition):
                log.info("peer %s: %s -> %s: %s", action.remote, action.old.name,
                         action.new.name, action.reason)  # fmt: skip
            elif isinstance(action, Initiate):
                log.info("peer %s: initiate (attempt %d)", action.remote, action.attempt)
                # Kicks the trap and follows up within seconds (a kick sent before charon has
                # its trap, or swallowed by a larval state, is repeated after clearing them).
                self.initiator.request(ProxyInitiate("dmvpn", action.local, action.remote))
            elif isinstance(action, RepairNeighbor):
                log.warning("neighbour %s on %s pointed at %s, not %s (nhrpd left it stale): "
                            "repairing", action.protocol, action.interface, action.found,
                            action.nbma)  # fmt: skip
                error = await replace_neighbor(action.interface, action.protocol, str(action.nbma))
                if error:
                    log.warning("repairing neighbour %s: %s", action.protocol, error)
            elif isinstance(action, CleanOrphans):
                await self._clean_orphans()
            else:
                await self._flush_larval()

    async def _orphans(self) -> tuple[list[KernelSa], list[KernelPolicy]]:
        """Kernel first, then charon: whatever charon installs meanwhile it also reports.
        Only SAs from or to this node's NBMA address are considered."""
        sas, policies = await asyncio.to_thread(self.guard.kernel_ipsec)
        _, children = await list_sas(self.upstream)
        mine = [s for s in orphan_sas(sas, children) if self.nbma in (s.src, s.dst)]
        return mine, orphan_policies(policies, children, [self.nbma])

    async def _clean_orphans(self) -> None:
        """Delete what charon does not know in two sweeps ``ORPHAN_CONFIRM`` apart: a CHILD_SA
        under negotiation has its SPI in the kernel before charon lists it."""
        try:
            first_sas, first_policies = await self._orphans()
            if not first_sas and not first_policies:
                return
            await asyncio.sleep(ORPHAN_CONFIRM)
            sas, policies = await self._orphans()
            stale_sas = [s for s in sas if s in first_sas]
            stale_policies = [p for p in policies if p in first_policies]
            for sa in stale_sas:
                await asyncio.to_thread(self.guard.delete_sa, sa)
            for pol in stale_policies:
                await asyncio.to_thread(self.guard.delete_policy, pol)
        except (GuardError, ViciError) as exc:
            log.warning("cleaning orphaned kernel IPsec state: %s", exc)
            return
        if stale_sas or stale_policies:
            log.warning("removed %d SAs and %d policies charon does not know (left by a crash)",
                        len(stale_sas), len(stale_policies))  # fmt: skip

    async def _ensure_guards(self) -> None:
        """Something (`nft flush ruleset`, an nftables reload, a hand) may remove the guards."""
        if not await asyncio.to_thread(self.guard.installed):
            log.warning("the guards were missing or altered: reinstalling")
            await asyncio.to_thread(self.guard.install)

    async def _flush_count(self) -> int:
        return await asyncio.to_thread(self.guard.flush_larval_states)

    async def _flush_larval(self) -> None:
        try:
            flushed = await asyncio.to_thread(self.guard.flush_larval_states)
        except GuardError as exc:
            log.warning("flushing larval states: %s", exc)
            return
        if flushed:
            log.info("flushed %d stale larval XFRM states", flushed)

    async def run(self, interval: float = 1.0) -> None:
        """Until SIGTERM/SIGINT; the guards stay installed on exit (fail-closed)."""
        if not await asyncio.to_thread(self.guard.installed):
            await asyncio.to_thread(self.guard.install)
            log.info("guards installed for %s", self.nbma)
        loop = asyncio.get_running_loop()
        listener = NflogListener(self.guard.spec.nflog_group, self.dropped)
        try:
            listener.open()
        except OSError as exc:
            log.warning("cannot read the guards' NFLOG group: %s (drops still counted)", exc)
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        log.info("supervising %s", self.nbma)
        steps = 0
        while not stop.is_set():
            steps += 1
            try:
                if steps % GUARD_CHECK_EVERY == 0:
                    await self._ensure_guards()
                await self.act(self.sup.step(await self.observe(), loop.time()))
                _write_status(self.sup, self.status_dir / "peers.json")
                _write_json(self.status_dir / "guard.json", self.report.as_dict())
            except Exception:  # one bad step must not end supervision: log it, go on
                log.exception("supervision step failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
        listener.close()
        log.info("stopping; the guards stay in place")
