"""``frrdmvpnd run``: install the guards, then supervise every peer of one NBMA address.

Each step asks charon (VICI, its own socket), nhrpd (vtysh JSON) for the current state; the
pure :class:`~frrdmvpn.core.supervisor.Supervisor` says what changed and what to initiate.
The peer table is written to ``/run/frrdmvpn/peers.json`` after every step.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import json
import logging
import random
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from frrdmvpn.adapters import config_store, decision_journal, systemd
from frrdmvpn.adapters.guard import GuardError, KernelGuard, xfrm_stats
from frrdmvpn.adapters.initiator import Initiator
from frrdmvpn.adapters.journal import fields
from frrdmvpn.adapters.neighbors import gre_neighbors, replace_neighbor
from frrdmvpn.adapters.nflog import NflogListener
from frrdmvpn.adapters.vici_client import ViciError, list_sas, list_sas_raw, listen
from frrdmvpn.adapters.vici_proxy import DEFAULT_UPSTREAM
from frrdmvpn.adapters.vtysh import NhrpTables, VtyshError, nhrp_tables
from frrdmvpn.api.backend import OperationError, results
from frrdmvpn.api.convert import sa_records
from frrdmvpn.api.state import Observed
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
from frrdmvpn.vici.wire import Message

log = logging.getLogger("frrdmvpn.supervisor")
ORPHAN_CONFIRM = 3.0  # seconds between the two sweeps of an orphan clean-up
GUARD_CHECK_EVERY = 30  # steps between checks that the guards are still in place
GUARD_COUNTERS_EVERY = 5  # steps between readings of the guards' counters (API)
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
    """Replace ``path`` atomically (readers never see half a file); root only: peer data."""
    config_store.atomic_write(path, json.dumps(data, indent=1))


async def ensure_guard(guard: KernelGuard, delay: float = 1.0, retry_max: float = 10.0) -> None:
    """Install the guards unless they are in place; retry until that succeeds.

    nft and ip may fail or time out on a loaded machine: that is a reason to try again, not
    to exit (the daemon stays not-ready meanwhile, and nothing it manages has started)."""
    while True:
        try:
            if not await asyncio.to_thread(guard.installed):
                await asyncio.to_thread(guard.install)
                log.info("guards installed for %s", ", ".join(str(a) for a in guard.spec.nbma))
        except GuardError as exc:
            log.warning("checking the guards failed (%s); trying again in %.0f s", exc, delay)
        else:
            return
        await asyncio.sleep(delay)
        delay = min(retry_max, delay * 2)


class Service:
    """One node's supervision loop and guard reporting."""

    def __init__(
        self,
        nbma: ipaddress.IPv4Address,
        nhs: list[ipaddress.IPv4Address],
        upstream: Path = DEFAULT_UPSTREAM,
        status_dir: Path = STATUS.parent,
        *,
        reapply: Callable[[], None] | None = None,
        api: Any = None,
    ) -> None:
        self.nbma = nbma
        self.api = api  # frrdmvpn.api.backend.Backend, fed after every step
        self.wake = asyncio.Event()
        self.raw_sas: list[Any] = []
        self.tables = NhrpTables([], {}, [], [])
        self.guard_installed = False
        self._journal_mtime = 0.0
        self.journal: dict[str, Any] | None = None  # read during the last observation
        self._wall_offset: float | None = None
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
            peer = offender.src if offender.direction == "in" else offender.dst
            log.warning("guard dropped cleartext GRE %s %s -> %s (key %s): %s",
                        offender.direction, offender.src, offender.dst, offender.gre_key,
                        offender.summary,
                        extra=fields(peer=peer, event="guard-drop", reason=offender.summary,
                                     direction=offender.direction))  # fmt: skip

    async def observe(self) -> Observation:
        """nhrpd's and charon's current view, and the proxy's decisions read in between.

        In that order because each binding follows its decision, which follows its SA:
        a binding nhrpd shows has its decision in the journal read after it, and a
        decision read has its SA in charon's listing after it, so the API can publish
        SAs, decisions and bindings in causal order (``self.journal``)."""
        try:
            self.tables = await nhrp_tables()
        except VtyshError as exc:
            log.debug("nhrpd: %s", exc)
            self.tables = NhrpTables([], {}, [], [])
        self.journal = self.read_journal()
        try:
            ikes, children, self.raw_sas = await list_sas_raw(self.upstream)
            charon_up = True
        except ViciError as exc:
            log.debug("charon: %s", exc)
            ikes, children, charon_up, self.raw_sas = [], [], False, []
        bindings, sas = self.tables.bindings, self.tables.sas
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
                         action.new.name, action.reason,
                         extra=fields(peer=action.remote, event="transition",
                                      reason=action.reason, state=action.new.name))  # fmt: skip
            elif isinstance(action, Initiate):
                log.info("peer %s: initiate (attempt %d)", action.remote, action.attempt,
                         extra=fields(peer=action.remote, event="initiate",
                                      reason=f"attempt {action.attempt}"))  # fmt: skip
                # Kicks the trap and follows up within seconds (a kick sent before charon has
                # its trap, or swallowed by a larval state, is repeated after clearing them).
                self.initiator.request(ProxyInitiate("dmvpn", action.local, action.remote))
            elif isinstance(action, RepairNeighbor):
                stale = f"{action.protocol} on {action.interface} pointed at {action.found}"
                log.warning("neighbour %s on %s pointed at %s, not %s (nhrpd left it stale): "
                            "repairing", action.protocol, action.interface, action.found,
                            action.nbma,
                            extra=fields(peer=action.nbma, event="repair-neighbor",
                                         reason=stale))  # fmt: skip
                error = await replace_neighbor(action.interface, action.protocol, str(action.nbma))
                if error:
                    log.warning("repairing neighbour %s: %s", action.protocol, error,
                                extra=fields(peer=action.nbma, event="repair-neighbor",
                                             reason=error))  # fmt: skip
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
        self.guard_installed = True

    def read_journal(self) -> dict[str, Any] | None:
        """The proxy's decision journal if it changed since the last read, else None."""
        if self.api is None:
            return None
        try:
            mtime = decision_journal.PATH.stat().st_mtime
        except OSError:
            return None
        if mtime == self._journal_mtime:
            return None
        self._journal_mtime = mtime
        return decision_journal.read()

    def publish(self, loop_time: float, journal: dict[str, Any] | None) -> None:
        """Hand this step's view and the decisions recorded by then to the API."""
        if self.api is None:
            return
        now = time.time()
        if self._wall_offset is None:  # fixed once: times shown must not jitter step to step
            self._wall_offset = now - loop_time
        self.api.observed(Observed(
            tuple(dataclasses.replace(p) for p in self.sup.peers.values()),
            tuple(sa_records(self.raw_sas)),
            tuple(self.tables.cache), tuple(self.tables.nhs), now, self._wall_offset),
            journal)  # fmt: skip

    async def publish_guard(self) -> None:
        if self.api is None:
            return
        try:
            counters = await asyncio.to_thread(self.guard.counters)
        except GuardError:
            counters = {}
        self.api.guard_observed(self.guard_installed, counters, self.report.as_dict(),
                                {k: v for k, v in xfrm_stats().items() if v})  # fmt: skip

    def _charon_event(self, name: str, message: Message) -> None:
        """Step now; a deletion also reaches the API at once (see Backend.sa_down)."""
        self.wake.set()
        if self.api is None or name not in ("ike-updown", "child-updown") or "up" in message:
            return
        now = time.time()
        for section in message.values():
            if not isinstance(section, dict):
                continue
            local, remote = section.get("local-host"), section.get("remote-host")
            if not isinstance(local, bytes) or not isinstance(remote, bytes):
                continue
            uid = section.get("uniqueid")
            what = "IKE_SA" if name == "ike-updown" else "CHILD_SA"
            if what == "CHILD_SA":  # the deleted child's own id
                children = section.get("child-sas")
                kids = [c for c in children.values() if isinstance(c, dict)] if isinstance(
                    children, dict) else []  # fmt: skip
                uid = kids[0].get("uniqueid") if kids else uid
            try:
                number = int(uid.decode()) if isinstance(uid, bytes) else 0
                self.api.sa_down(local.decode(), remote.decode(), what, number, now)
            except (UnicodeDecodeError, ValueError):
                continue

    async def _charon_events(self) -> None:
        """Step at once when charon reports an IKE/CHILD_SA change (not a second later)."""
        while True:
            try:
                await listen(self.upstream, ["ike-updown", "child-updown", "ike-rekey",
                                             "child-rekey"], self._charon_event)  # fmt: skip
            except ViciError as exc:
                log.debug("charon events: %s", exc)
            await asyncio.sleep(1.0)

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

    async def run(
        self, interval: float = 1.0, on_started: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        """Until SIGTERM/SIGINT; the guards stay installed on exit (fail-closed)."""
        await ensure_guard(self.guard)
        self.guard_installed = True
        loop = asyncio.get_running_loop()
        listener = NflogListener(self.guard.spec.nflog_group, self.dropped)
        try:
            listener.open()
        except OSError as exc:
            log.warning("cannot read the guards' NFLOG group: %s (drops still counted)", exc)
        stop = asyncio.Event()

        def stopping() -> None:
            stop.set()
            self.wake.set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping)
        if on_started is not None:
            await on_started()
        events = asyncio.create_task(self._charon_events())
        watchdog = systemd.watchdog_interval()
        log.info("supervising %s", self.nbma)
        steps = 0
        last_ping = 0.0
        while not stop.is_set():
            steps += 1
            self.wake.clear()
            try:
                if steps % GUARD_CHECK_EVERY == 0:
                    await self._ensure_guards()
                await self.act(self.sup.step(await self.observe(), loop.time()))
                _write_status(self.sup, self.status_dir / "peers.json")
                _write_json(self.status_dir / "guard.json", self.report.as_dict())
                self.publish(loop.time(), self.journal)
                if steps % GUARD_COUNTERS_EVERY == 1:
                    await self.publish_guard()
            except Exception:  # one bad step must not end supervision: log it, go on
                log.exception("supervision step failed")
            if watchdog is not None and loop.time() - last_ping >= watchdog:
                systemd.watchdog_ping()
                last_ping = loop.time()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), interval)
            if self.wake.is_set() and not stop.is_set():
                await asyncio.sleep(0.05)  # let charon finish what it announced
        events.cancel()
        listener.close()
        log.info("stopping; the guards stay in place")


class Operations:
    """The API's operations on peers: clear (IPsec through charon, NHRP through nhrpd),
    re-initiate, clear counters."""

    def __init__(self, service: Service) -> None:
        self.service = service

    async def clear(self, peers: list[Any], *, nhrp: bool, ipsec: bool, everyone: bool,
                    include_static: bool, dry_run: bool) -> list[Any]:  # fmt: skip
        from frrdmvpn.adapters.vici_client import terminate_ike  # noqa: PLC0415
        from frrdmvpn.adapters.vtysh import run_command  # noqa: PLC0415

        out: list[Any] = []
        if nhrp and not everyone:
            return results(peers, False, "nhrpd (FRR 8.4) clears only its whole cache: clear "
                           "all peers, or clear IPsec, which also drops the peer's NHRP "
                           "entries")  # fmt: skip
        for peer in peers:
            done, notes = True, []
            if ipsec:
                ike_ids = [i.unique_id for i in peer.crypto.ike_sas]
                if not ike_ids:
                    notes.append("no IKE_SA")
                for uid in ike_ids:
                    if dry_run:
                        notes.append(f"would terminate IKE_SA #{uid}")
                        continue
                    try:
                        await terminate_ike(self.service.upstream, uid)
                        notes.append(f"terminated IKE_SA #{uid}")
                        log.info("peer %s: IKE_SA #%d cleared (API)", peer.key.remote_nbma, uid,
                                 extra=fields(peer=peer.key.remote_nbma, event="clear",
                                              reason=f"IKE_SA #{uid} terminated"))  # fmt: skip
                    except ViciError as exc:
                        done = False
                        notes.append(str(exc))
            out += results([peer], done, "; ".join(notes))
        if nhrp and everyone:
            command = "clear ip nhrp cache"
            if dry_run:
                note = f"would run {command!r}"
            else:
                try:
                    await run_command(command)
                    note = "nhrpd cache cleared (dynamic and cached entries)"
                except VtyshError as exc:
                    return results(peers, False, str(exc))
            if not out:
                out = results(peers, True, note)
            else:
                for r in out:
                    r.message = "; ".join(m for m in (r.message, note) if m)
        self.service.wake.set()
        return out

    async def reinitiate(self, peers: list[Any]) -> list[Any]:

        for peer in peers:
            local = ipaddress.ip_address(peer.key.local_nbma)
            remote = ipaddress.ip_address(peer.key.remote_nbma)
            self.service.initiator.request(ProxyInitiate("dmvpn", local, remote))
        self.service.wake.set()
        return results(peers, True, "initiation requested")

    def clear_counters(self, scope: int, peers: list[Any] | None) -> tuple[int, float]:
        """Reset peer counters; baseline the guard's and the authorizer's."""
        from frrdmvpn.v1 import operations_service_pb2 as opb  # noqa: PLC0415

        now = time.time()
        api = self.service.api
        cleared = 0
        if scope == opb.COUNTER_SCOPE_NHRP_TRAFFIC:
            raise OperationError("nhrpd (FRR 8.4) keeps no NHRP traffic counters")
        if scope in (opb.COUNTER_SCOPE_PEERS, opb.COUNTER_SCOPE_ALL):
            wanted = None if peers is None else {p.key.remote_nbma for p in peers}
            for p in self.service.sup.peers.values():
                if wanted is None or str(p.remote) in wanted:
                    p.transitions = p.initiations = 0
                    cleared += 1
        if api is not None and scope in (opb.COUNTER_SCOPE_GUARD, opb.COUNTER_SCOPE_ALL):
            _, counters, report, _ = api.guard_raw
            api.baselines.guard = dict(counters)
            api.baselines.guard_logged = {k: int(v) for k, v in report.get("counts", {}).items()}
            api.baselines.guard_since = now
        if api is not None and scope in (opb.COUNTER_SCOPE_AUTHORIZATION, opb.COUNTER_SCOPE_ALL):
            api.baselines.authorization = dict((api.journal or {}).get("counters", {}))
            api.baselines.authorization_since = now
        self.service.wake.set()
        return cleared, now
