"""The supervision loop of ``frrdmvpnd run``: install the guards, then supervise every peer
of one NBMA address and keep the node configured.

Each step asks nhrpd (its vty session) and reads the proxy's decision journal; it lists
charon's SAs (VICI) when charon reported a change since the last listing, else every
:data:`LISTING_AUDIT` seconds; it takes the kernel's neighbour entries from rtnetlink's
notifications;
the pure :class:`~frrdmvpn.core.supervisor.Supervisor` says what changed and what to
initiate. Steps follow events (:mod:`frrdmvpn.core.cadence`): charon's SA events, neighbour
changes on the tunnels, the proxy's decisions, an FRR daemon's connection closing or
opening; with nothing happening one step every ``rest`` seconds audits the rest. Each
step's view goes to the :class:`Observer` (the API's backend: it publishes what changed, and
depends on this loop, never the other way round); the status files are rewritten when they
changed.

A restarted FRR daemon (another pid behind its vty socket) or charon is configured again at
once; the configuration is also audited on a schedule (something may have removed part of
it: ``systemctl reload frr``, ``swanctl --load-all``, a hand in vtysh) and repaired.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import json
import logging
import math
import random
import signal
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from frrdmvpn.adapters import config_store, decision_journal, processes, systemd
from frrdmvpn.adapters.addresses import AddressMonitor
from frrdmvpn.adapters.file_events import DirectoryWatch
from frrdmvpn.adapters.guard import GuardError, KernelGuard, xfrm_stats
from frrdmvpn.adapters.guard_watch import GuardWatch
from frrdmvpn.adapters.initiator import Initiator
from frrdmvpn.adapters.journald import fields
from frrdmvpn.adapters.neighbors import NeighborMonitor, replace_neighbor
from frrdmvpn.adapters.nflog_listener import NflogListener
from frrdmvpn.adapters.vici_client import ViciError, list_sas, list_sas_raw, listen
from frrdmvpn.adapters.vici_proxy import DEFAULT_UPSTREAM
from frrdmvpn.adapters.vtysh import (
    WATCHED,
    Frr,
    NhrpTables,
    VtyEvent,
    VtyshError,
    default,
    nhrp_tables,
)
from frrdmvpn.codec.nflog import Logged
from frrdmvpn.codec.rtnl_addr import Received
from frrdmvpn.codec.vici import Message
from frrdmvpn.core import stuck_exit
from frrdmvpn.core.authorize import ChildSa, reads_garbled
from frrdmvpn.core.cadence import Audits, Cadence
from frrdmvpn.core.guard_report import GuardReport
from frrdmvpn.core.guard_rules import GuardSpec
from frrdmvpn.core.orphans import KernelPolicy, KernelSa, orphan_policies, orphan_sas
from frrdmvpn.core.supervisor import (
    CleanOrphans,
    FlushLarval,
    IkeSa,
    Initiate,
    IPAddress,
    Observation,
    RepairNeighbor,
    SupervisedPeer,
    Supervisor,
    Transition,
)
from frrdmvpn.core.vici_translate import InitiateChild
from frrdmvpn.guards import GuardKeeper

log = logging.getLogger("frrdmvpn.supervisor")
ORPHAN_CONFIRM = 3.0  # seconds between the two sweeps of an orphan clean-up
GUARD_CHECK_PERIOD = 30.0  # seconds between checks that the guards are still in place, and
# when the kernel announces XFRM policy and nftables changes (GuardWatch): seconds between
# checks at rest (an audit), and the least between checks after changes
GUARD_AUDIT_PERIOD = 300.0
GUARD_EVENT_GAP = 10.0
#: Listings in a row a CHILD_SA may read garbled (authorize.reads_garbled) before a listing
#: showing it is held (see :meth:`Service.charon_sas`)
GARBLED_RELISTS = 3
GUARD_COUNTERS_PERIOD = 30.0  # seconds between readings of the guards' counters (API), and
# at the next step after the guards logged a drop
STATUS = Path("/run/frrdmvpn/peers.json")
#: Seconds between audits of the configuration (see docs/enforcement.md: what an audit costs
#: does not grow with the peers, and a restart is seen at once without it).
AUDIT_PERIOD = 30.0
#: After FRR restarted a daemon: seconds to wait for every FRR daemon seen before to be back
#: (zebra's restart restarts them all), then re-configure; audit again a little later, when
#: a ``vtysh -b`` replaying frr.conf has surely finished.
RESTART_SETTLE = 30.0
AFTER_RESTART_AUDITS = (10.0,)
#: watchfrr restarted: ``systemctl restart frr`` (the daemons follow, each seen by its own
#: connection) or ``systemctl reload frr``, whose frr-reload then removes what frr.conf lacks.
AFTER_WATCHFRR_AUDITS = (5.0, 15.0, 30.0, 60.0)
#: nhrpd lost its vty connection and still runs this many seconds later, not answering on
#: its vty socket: it hangs (FRR 8.4.4 on its way out under ``systemctl restart frr``,
#: docs/enforcement.md), and FRR's stop would wait for systemd's SIGKILL (4 minutes):
#: frrdmvpnd ends it.
STUCK_EXIT = 10.0
STUCK_EXIT_DAEMONS = ("nhrpd",)
FRR_USER = "frr"  # the only user whose processes frrdmvpnd may end
_GATHER = 0.2  # seconds to gather the requests that come together (FRR restarts them all)
#: Seconds a listing of charon's SAs stands for charon while charon reports no change over
#: its event connection: an audit of what changes without an event (an SA on its way out,
#: a half-open one), docs/enforcement.md.
LISTING_AUDIT = 30.0
#: A listing the API asks for (:meth:`Service.fresh_listing`) waits until the last one is
#: this many times as old as it took: clients cannot keep the loop listing.
LISTING_SHARE = 10.0
Reconfigure = Callable[[str, bool], Awaitable[None]]


@dataclasses.dataclass(frozen=True)
class _Listing:
    """One ``list-sas`` as the supervisor read it, and when."""

    changes: int  # charon's changes counted before it began
    at: float  # loop time of the step that took it
    ikes: list[IkeSa]
    children: list[ChildSa]


class Observer(Protocol):
    """Who hears what the loop sees (:class:`frrdmvpn.api.backend.Backend`)."""

    def supervised(
        self,
        peers: tuple[SupervisedPeer, ...],
        sas: Sequence[Message],
        *,
        cache: Sequence[Mapping[str, Any]],
        nhs: Sequence[Mapping[str, Any]],
        now: float,
        wall_offset: float,
        journal: dict[str, Any] | None,
    ) -> None:
        """One step's view: the supervisor's peers, charon's ``list-sa`` messages, nhrpd's
        cache and NHSs; the proxy's decision journal if it changed (else None)."""

    def guard_observed(
        self,
        installed: bool,
        counters: dict[str, tuple[int, int]],
        report: dict[str, Any],
        xfrm: dict[str, int],
    ) -> None:
        """The guards: installed, their counters, the drops they logged, XFRM's errors."""

    def sa_down(self, local: str, remote: str, what: str, uid: int, at: float) -> None:
        """charon deleted an IKE_SA or CHILD_SA (``what``) between the NBMA addresses."""


def _status_table(sup: Supervisor) -> list[dict[str, Any]]:
    return [
        {
            "local": str(p.local),
            "remote": str(p.remote),
            "role": p.role.value,
            "state": p.state.name,
            "since": round(p.since, 3),
            "reason": p.reason,
            "transitions": p.transitions,
            "initiations": p.initiations,
        }
        for p in sorted(sup.peers.values(), key=lambda p: p.remote)
    ]


def _write_json(path: Path, text: str) -> None:
    """Replace ``path`` atomically (readers never see half a file); root only: peer data."""
    config_store.atomic_write(path, text)


async def ensure_guard(guards: GuardKeeper, delay: float = 1.0, retry_max: float = 10.0) -> None:
    """Install the guards unless they are in place (:meth:`GuardKeeper.refresh`); retry until
    that succeeds.

    nft and ip may fail or time out on a loaded machine: that is a reason to try again, not
    to exit (the daemon stays not-ready meanwhile, and nothing it manages has started)."""
    while True:
        try:
            await asyncio.to_thread(guards.refresh)
        except GuardError as exc:
            log.warning("checking the guards failed (%s); trying again in %.0f s", exc, delay)
        else:
            return
        await asyncio.sleep(delay)
        delay = min(retry_max, delay * 2)


class Service:
    """One node's supervision loop, guard reporting and configuration watch."""

    def __init__(
        self,
        nbma: ipaddress.IPv4Address,
        nhs: list[ipaddress.IPv4Address],
        upstream: Path = DEFAULT_UPSTREAM,
        status_dir: Path = STATUS.parent,
        *,
        reconfigure: Reconfigure | None = None,
        observer: Observer | None = None,
        frr: Frr | None = None,
        tunnels: Callable[[], set[str]] | None = None,
        cadence: Cadence | None = None,
        guards: GuardKeeper | None = None,
    ) -> None:
        self.nbma = nbma
        self.observer = observer  # told after every step
        self.wake = asyncio.Event()
        self.raw_sas: list[Any] = []
        self.tables = NhrpTables([], {}, [], [])
        self.guard_installed = False
        self._journal_seen: tuple[int, int, int] | None = None  # inode, mtime ns, size
        self._decided: tuple[float, int] | None = None  # the journal's (start, decisions)
        self.journal: dict[str, Any] | None = None  # read during the last observation
        self._wall_offset: float | None = None
        self.reconfigure = reconfigure
        self.frr = frr or default()
        self.tunnels = tunnels or set
        self.cadence = cadence or Cadence()
        self.audits = Audits(AUDIT_PERIOD)
        self.upstream = upstream
        self.status_dir = status_dir
        # The guards follow the configuration and the source interfaces' addresses; without
        # a keeper from the daemon, they guard ``nbma`` alone.
        self.guards = guards or GuardKeeper(pinned=(nbma,))
        if self.guards.guard is None:
            self.guards.guard = KernelGuard(GuardSpec((nbma,)))
        self.guard = self.guards.guard
        self.addresses = AddressMonitor(self._addresses_changed, self.guards.dumping)
        self._guards_due = asyncio.Event()  # an address of a tunnel source came or went
        # the kernel announced a change the guards may have suffered (_check_guards)
        self.guard_watch = GuardWatch(self._guards_changed)
        self._guard_changed = asyncio.Event()
        self._guard_checked = -math.inf  # loop time of the last check
        self._garbled: dict[int, int] = {}  # CHILD_SA -> listings in a row it read garbled
        self.sup = Supervisor(nbma, nhs, rand=random.random)
        self.report = GuardReport()
        self.initiator = Initiator(upstream, self._flush_count)
        self.neighbors = NeighborMonitor(self.stir)
        self._written: dict[str, str] = {}  # status file -> what it holds
        self._guard_dirty = True  # publish the guards' state at the next step
        self._restarted: set[str] = set()  # FRR daemons restarted, not configured again yet
        self._reconfig = asyncio.Event()  # a restart to serve or an audit to (re)schedule
        self._exits: set[asyncio.Task[bool]] = set()  # watching daemons on their way out
        # charon's SA events and event connections opened or lost, counted; the last
        # listing with the count before it began, taken while events were heard
        self._charon_changes = 0
        self._hearing = False  # the event connection is open and registered
        self._listing: _Listing | None = None
        self._listed_decisions: tuple[float, int] | None = None  # the journal's then
        self._steps = 0  # steps published
        self._fresh: tuple[int, asyncio.Future[None]] | None = None  # served by step N
        self._stepping = False
        self._listing_cost = 0.0  # seconds the last listing took
        self._step_listed = self._listed_at = -math.inf  # when this step's, the last published
        # step's listing was taken (or charon found not answering)
        self._running = False

    def stir(self) -> None:
        """Something changed: step now, then every ``fast`` seconds while it settles."""
        with contextlib.suppress(RuntimeError):  # no loop (unit tests of the pure parts)
            self.cadence.stirred(asyncio.get_running_loop().time())
        self.wake.set()

    def initiate(self, local: IPAddress, remote: IPAddress) -> None:
        """Have charon initiate DMVPN's SA between the NBMA addresses (the trap's kick, and
        its follow-up)."""
        self.initiator.request(InitiateChild("dmvpn", local, remote))

    def reset_counters(self, remotes: Collection[str] | None) -> int:
        """Zero the transition and initiation counts of the peers at ``remotes`` (NBMA
        addresses as text; None: every peer); how many there were."""
        cleared = 0
        for p in self.sup.peers.values():
            if remotes is None or str(p.remote) in remotes:
                p.transitions = p.initiations = 0
                cleared += 1
        return cleared

    def dropped(self, p: Logged) -> None:
        """A packet the guards logged to their NFLOG group."""
        offender = self.report.add(p.prefix, p.payload, asyncio.get_running_loop().time())
        self._guard_dirty = True
        self.wake.set()
        if offender is not None:
            peer = offender.src if offender.direction == "in" else offender.dst
            log.warning(
                "guard dropped cleartext GRE %s %s -> %s (key %s): %s",
                offender.direction,
                offender.src,
                offender.dst,
                offender.gre_key,
                offender.summary,
                extra=fields(
                    peer=peer,
                    event="guard-drop",
                    reason=offender.summary,
                    direction=offender.direction,
                ),
            )

    async def observe(self) -> Observation:
        """nhrpd's and charon's current view, and the proxy's decisions read in between.

        In that order because each binding follows its decision, which follows its SA:
        a binding nhrpd shows has its decision in the journal read after it, and a
        decision read has its SA in charon's listing after it, so the API can publish
        SAs, decisions and bindings in causal order (``self.journal``)."""
        try:
            # Frr.keep connects; the same answers keep the same tables (the API skips them)
            self.tables = await nhrp_tables(self.frr, connect=False, previous=self.tables)
        except VtyshError as exc:
            log.debug("nhrpd: %s", exc)
            self.tables = NhrpTables([], {}, [], [])
        self.journal = self.read_journal()
        charon_up, ikes, children = await self.charon_sas(asyncio.get_running_loop().time())
        bindings, sas = self.tables.bindings, self.tables.sas
        self.neighbors.watch({b.interface for b in bindings if b.interface} | self.tunnels())
        return Observation(
            charon_up,
            tuple(ikes),
            tuple(children),
            tuple(bindings),
            sas,
            tuple(self.neighbors.neighbors()),
        )

    async def charon_sas(self, now: float) -> tuple[bool, list[IkeSa], list[ChildSa]]:
        """Whether charon answers, and its SAs: the last listing (``raw_sas`` kept, the
        same object) while charon has reported no change since it began, its events heard
        throughout, for at most :data:`LISTING_AUDIT` seconds; else a new listing.

        What a listing shows changes in three ways: an SA event, which charon sends for
        every SA that comes, goes or is rekeyed; the SAs' counters and clocks, which the API
        has a step list anew for when a client wants them (:meth:`fresh_listing`); and a state
        charon moves without an event (DELETING, a half-open IKE_SA), which the audit
        listing finds, as the step at rest did before."""
        held = self._listing
        if (
            held is not None
            and self._hearing
            and held.changes == self._charon_changes
            and now - held.at < LISTING_AUDIT
            and self._listed_decisions == self._decided
        ):
            self._step_listed = held.at
            return True, held.ikes, held.children
        self._step_listed = now  # a listing, or charon not answering, as of now
        changes, hearing = self._charon_changes, self._hearing
        self._listed_decisions = self._decided  # a new decision follows a new SA
        started = asyncio.get_running_loop().time()
        try:
            ikes, children, self.raw_sas = await list_sas_raw(self.upstream)
        except ViciError as exc:
            log.debug("charon: %s", exc)
            self._listing, self.raw_sas, self._garbled = None, [], {}  # its ids start over
            return False, [], []
        self._listing_cost = asyncio.get_running_loop().time() - started
        # A CHILD_SA whose selectors read garbled is listed again at the next step, up to
        # GARBLED_RELISTS listings: one that still reads so is taken as it reads (another
        # connection's SA between the hosts, e.g. L2TP's udp/1701, must not keep every
        # step listing)
        self._garbled = {
            c.child_uniqueid: self._garbled.get(c.child_uniqueid, 0) + 1
            for c in children
            if reads_garbled(c)
        }
        keep = hearing and all(n >= GARBLED_RELISTS for n in self._garbled.values())
        self._listing = _Listing(changes, now, ikes, children) if keep else None
        return True, ikes, children

    async def fresh_listing(self, within: float, wait: float) -> None:
        """Return once a step has published a listing of charon taken at most ``within``
        seconds ago (the API's full view: traffic counters a held listing does not show),
        or after ``wait`` seconds. Requests that come together share the next step."""
        loop = asyncio.get_running_loop()
        # clients cannot have the loop spend more than 1/LISTING_SHARE of its time listing
        within = max(within, LISTING_SHARE * self._listing_cost)
        if not self._running or loop.time() - self._listed_at < within:
            return
        if self._fresh is None or self._fresh[1].done():
            # a step under way may have listed already: the one after it then
            due = self._steps + (2 if self._stepping else 1)
            self._fresh = (due, loop.create_future())
            self._charon_changes += 1  # the next step lists
            self.wake.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                await asyncio.shield(self._fresh[1])

    def _published(self) -> None:
        """A step ended: a listing asked for before it began is served."""
        self._steps += 1
        self._listed_at = self._step_listed
        fresh = self._fresh
        if fresh is not None and self._steps >= fresh[0] and not fresh[1].done():
            fresh[1].set_result(None)

    async def act(
        self, actions: list[Transition | Initiate | FlushLarval | CleanOrphans | RepairNeighbor]
    ) -> None:
        if self.reconfigure is not None and any(isinstance(a, FlushLarval) for a in actions):
            # charon (re)appeared: it has no connection until frrdmvpn loads them again
            log.info("charon is back: checking its configuration")
            await self.reconfigure("charon-restart", True)
        # Initiations go out before the orphan clean-up (two sweeps seconds apart): a kick
        # an orphaned SA swallows is repeated by the initiator's follow-up after it.
        if any(isinstance(a, Initiate | FlushLarval | CleanOrphans) for a in actions):
            self._charon_changes += 1  # what they start, charon may not report at once
        order = {FlushLarval: 0, Transition: 1, Initiate: 1, RepairNeighbor: 2, CleanOrphans: 3}
        for action in sorted(actions, key=lambda a: order[type(a)]):
            if isinstance(action, Transition):
                log.info(
                    "peer %s: %s -> %s: %s",
                    action.remote,
                    action.old.name,
                    action.new.name,
                    action.reason,
                    extra=fields(
                        peer=action.remote,
                        event="transition",
                        reason=action.reason,
                        state=action.new.name,
                    ),
                )
            elif isinstance(action, Initiate):
                log.info(
                    "peer %s: initiate (attempt %d)",
                    action.remote,
                    action.attempt,
                    extra=fields(
                        peer=action.remote, event="initiate", reason=f"attempt {action.attempt}"
                    ),
                )
                # Kicks the trap and follows up within seconds (a kick sent before charon has
                # its trap, or swallowed by a larval state, is repeated after clearing them).
                self.initiator.request(InitiateChild("dmvpn", action.local, action.remote))
            elif isinstance(action, RepairNeighbor):
                stale = f"{action.protocol} on {action.interface} pointed at {action.found}"
                log.warning(
                    "neighbour %s on %s pointed at %s, not %s (nhrpd left it stale): repairing",
                    action.protocol,
                    action.interface,
                    action.found,
                    action.nbma,
                    extra=fields(peer=action.nbma, event="repair-neighbor", reason=stale),
                )
                error = await replace_neighbor(action.interface, action.protocol, str(action.nbma))
                if error:
                    log.warning(
                        "repairing neighbour %s: %s",
                        action.protocol,
                        error,
                        extra=fields(peer=action.nbma, event="repair-neighbor", reason=error),
                    )
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
            log.warning(
                "removed %d SAs and %d policies charon does not know (left by a crash)",
                len(stale_sas),
                len(stale_policies),
            )

    async def _ensure_guards(self) -> None:
        """Something (`nft flush ruleset`, an nftables reload, a hand) may remove the guards;
        another process may have applied a configuration (:meth:`GuardKeeper.refresh`)."""
        if await asyncio.to_thread(self.guards.refresh):
            self._guard_dirty = True
        self.guard_installed = True

    def _addresses_changed(self, received: Received) -> None:
        """rtnetlink's address messages: follow a tunnel source's addresses at once."""
        if self.guards.observe(received):
            self._guards_due.set()

    async def _follow_addresses(self) -> None:
        """Change the guards when a tunnel source's addresses changed (retried until done)."""
        while True:
            await self._guards_due.wait()
            self._guards_due.clear()
            try:
                if await asyncio.to_thread(self.guards.refresh):
                    self._guard_dirty = True
                    self.wake.set()
            except Exception as exc:  # nft, ip or reading the addresses: never end the task
                log.warning("the guards could not follow the addresses (%s); trying again", exc)
                await asyncio.sleep(1.0)
                self._guards_due.set()

    def read_journal(self) -> dict[str, Any] | None:
        """The proxy's decision journal if it changed since the last read, else None.

        Changed: another file (the proxy replaces it whole, a new inode each time), another
        modification time or size. The time alone misses a write within the same clock
        tick as the one read last (coarse timestamps), and with it a decision."""
        if self.observer is None:
            return None
        try:
            st = decision_journal.PATH.stat()
        except OSError:
            return None
        seen = (st.st_ino, st.st_mtime_ns, st.st_size)
        if seen == self._journal_seen:
            return None
        self._journal_seen = seen
        return decision_journal.read(decision_journal.PATH)

    def journal_written(self) -> None:
        """The proxy rewrote its journal: step now if it recorded a decision. An audit of its
        SA table rewrites the file too, with only the audit counters changed: they reach the
        API with the next step, and a step every second for ``Cadence.settle`` seconds after
        each audit (every 5 s in the lab) would keep a hub of any size stepping for ever."""
        journal = decision_journal.read(decision_journal.PATH)
        if journal is None:
            self._decided = None
            self.stir()  # unreadable: the step reads it (and says so)
            return
        counters = journal["counters"]  # since the proxy started: its start is part of it
        decided = (journal["started"], counters.get("accepted", 0) + counters.get("denied", 0))
        if decided != self._decided:
            self._decided = decided
            self.stir()

    def publish(self, loop_time: float, journal: dict[str, Any] | None) -> None:
        """Hand this step's view and the decisions recorded by then to the observer."""
        if self.observer is None:
            return
        now = time.time()
        if self._wall_offset is None:  # fixed once: times shown must not jitter step to step
            self._wall_offset = now - loop_time
        self.observer.supervised(
            tuple(dataclasses.replace(p) for p in self.sup.peers.values()),
            self.raw_sas,
            cache=self.tables.cache,
            nhs=self.tables.nhs,
            now=now,
            wall_offset=self._wall_offset,
            journal=journal,
        )

    async def publish_guard(self) -> None:
        if self.observer is None:
            return
        try:
            counters = await asyncio.to_thread(self.guard.counters)
        except GuardError:
            counters = {}
        self.observer.guard_observed(
            self.guard_installed,
            counters,
            self.report.as_dict(),
            {k: v for k, v in xfrm_stats().items() if v},
        )

    def _charon_event(self, name: str, message: Message) -> None:
        """Step now; a deletion also reaches the observer at once (:meth:`Observer.sa_down`)."""
        self._charon_changes += 1
        self.stir()
        if self.observer is None or name not in ("ike-updown", "child-updown") or "up" in message:
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
                kids = (
                    [c for c in children.values() if isinstance(c, dict)]
                    if isinstance(children, dict)
                    else []
                )
                uid = kids[0].get("uniqueid") if kids else uid
            try:
                number = int(uid.decode()) if isinstance(uid, bytes) else 0
                self.observer.sa_down(local.decode(), remote.decode(), what, number, now)
            except (UnicodeDecodeError, ValueError):
                continue

    async def _charon_events(self) -> None:
        """Step at once when charon reports an IKE/CHILD_SA change, and when the event
        connection opens or ends (charon came back or went away)."""
        while True:
            opened: list[bool] = []

            def connected(opened: list[bool] = opened) -> None:
                opened.append(True)
                self._charon_changes += 1
                self._hearing = True
                self.stir()

            try:
                await listen(
                    self.upstream,
                    ["ike-updown", "child-updown", "ike-rekey", "child-rekey", "ike-update"],
                    self._charon_event,
                    on_connected=connected,
                )
            except ViciError as exc:
                log.debug("charon events: %s", exc)
            finally:
                self._hearing = False
                self._charon_changes += 1
            if opened:  # charon went away (not: it is still away)
                self.stir()
            await asyncio.sleep(1.0)

    def _frr_event(self, event: VtyEvent) -> None:
        """An FRR daemon's vty connection closed (it stopped or crashed) or opened again."""
        now = asyncio.get_running_loop().time()
        if not event.connected:
            log.warning(
                "%s (pid %s) closed its vty connection: it stopped or crashed",
                event.daemon,
                event.pid,
                extra=fields(event="frr-lost", reason=event.reason),
            )
            if event.daemon == "watchfrr":  # FRR restarts or reloads (frr-reload follows)
                self.audits.soon(now, *AFTER_WATCHFRR_AUDITS)
                self._reconfig.set()
            if event.daemon in STUCK_EXIT_DAEMONS and event.pid is not None:
                task = asyncio.create_task(self.end_stuck_exit(event.daemon, event.pid))
                self._exits.add(task)
                task.add_done_callback(self._exits.discard)
        elif event.restarted:
            log.warning(
                "%s restarted (pid %s -> %s): configuring it again",
                event.daemon,
                event.previous,
                event.pid,
                extra=fields(event="frr-restart", reason=event.daemon),
            )
            self._restarted.add(event.daemon)
            self._reconfig.set()
        else:  # first seen, or the same process again: check it has what it should
            log.info("%s (pid %s) connected", event.daemon, event.pid)
            self.audits.soon(now, _GATHER)
            self._reconfig.set()
        self.stir()

    async def end_stuck_exit(self, daemon: str, pid: int, wait: float | None = None) -> bool:
        """SIGKILL ``daemon`` (``pid``) if, ``wait`` seconds (:data:`STUCK_EXIT`) after its vty
        connection was lost, it still runs as user frr and does not answer on its vty socket
        (one on its way out has closed it; a hung one accepts but never answers). True if it
        was ended; a process that is still there but left alone is logged, with why."""
        wait = STUCK_EXIT if wait is None else wait
        await asyncio.sleep(wait)
        with processes.held(pid) as handle:
            info = processes.inspect(pid)
            if handle is None or info is None:
                return False  # it exited
            why = stuck_exit.refusal(info, daemon, processes.uid_of(FRR_USER), FRR_USER)
            if why is None and await self.frr.session(daemon).answers():
                why = "it answers on its vty socket: it lives"
            if why is not None:
                log.warning(
                    "%s (pid %s) still there %g s after its vty connection was lost, "
                    "left alone: %s",
                    daemon,
                    pid,
                    wait,
                    why,
                )
                return False
            log.warning(
                "%s (pid %s) lost its vty connection %g s ago, still runs and does not "
                "answer on its vty socket: ending it",
                daemon,
                pid,
                wait,
                extra=fields(event="frr-stuck", reason=daemon),
            )
            try:
                handle.kill()
            except OSError as exc:  # no CAP_KILL (nhrpd runs as user frr), or seccomp
                log.warning("could not end %s (pid %s): %s", daemon, pid, exc)
                return False
        return True

    async def _configuration(self) -> None:
        """Configure restarted daemons again; audit the configuration on schedule."""
        loop = asyncio.get_running_loop()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._reconfig.wait(), self.audits.wait(loop.time()))
            if self._reconfig.is_set():
                await asyncio.sleep(_GATHER)
                self._reconfig.clear()
            if self.reconfigure is None:
                self._restarted.clear()
                continue
            away = sorted(d for d in self.frr.seen if not self.frr.connected(d))
            try:
                if self._restarted:
                    await self._configure_restarted()
                elif away and self.audits.due(loop.time()):  # its return is configured
                    log.info("audit skipped: %s not running", ", ".join(away))
                elif self.audits.due(loop.time()):
                    await self.reconfigure("audit", True)
            except Exception:  # the next audit tries again
                log.exception("configuring the node again failed")

    async def _configure_restarted(self) -> None:
        """Once every FRR daemon seen before is back. Not after ``vtysh -b`` (FRR replaying
        frr.conf into the new daemon, seconds under emulation): nhrpd takes both sessions'
        lines, frr.conf holds none of the DMVPN configuration (docs/enforcement.md), and
        the audit that follows finds whatever a replay changed after."""
        assert self.reconfigure is not None
        if not await self.frr.settled(RESTART_SETTLE):
            log.warning(
                "not every FRR daemon is back after %g s: configuring what runs", RESTART_SETTLE
            )
        restarted, self._restarted = self._restarted, set()
        await self.reconfigure("restart of " + ", ".join(sorted(restarted)), False)
        self.audits.soon(asyncio.get_running_loop().time(), *AFTER_RESTART_AUDITS)

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

    def _write_status(self) -> None:
        """The peer table and the guards' report as files, when they changed."""
        for name, data in (
            ("peers.json", _status_table(self.sup)),
            ("guard.json", self.report.as_dict()),
        ):
            text = json.dumps(data)  # one line: the C encoder (an indented dump is Python's)
            if self._written.get(name) != text:
                _write_json(self.status_dir / name, text)
                self._written[name] = text

    async def step(self, now: float, checks: dict[str, float]) -> None:
        """Observe, decide, act, publish; the guards' counters when they are due."""
        self._stepping = True
        try:
            await self._step(now, checks)
        finally:  # a failed step serves a waiting request too (with what was published)
            self._stepping = False
            self._published()

    def _guards_changed(self) -> None:
        """An XFRM policy or nftables change: :meth:`_check_guards` checks them."""
        self._guard_changed.set()

    async def _check_guards(self) -> None:
        """The guards' checks, beside the steps (a check spawns nft and ip: seconds under
        emulation, which a step after an SA's loss must not wait for): when the kernel
        announced a change, at most every :data:`GUARD_EVENT_GAP` seconds (a hub's SAs
        come with policies; other software changes nftables too), and every
        :data:`GUARD_AUDIT_PERIOD` seconds (:data:`GUARD_CHECK_PERIOD` while the kernel's
        changes are not heard). A check that fails is tried again after the gap."""
        loop = asyncio.get_running_loop()
        while True:
            period = GUARD_AUDIT_PERIOD if self.guard_watch.watching else GUARD_CHECK_PERIOD
            with contextlib.suppress(TimeoutError):
                due = self._guard_checked + period - loop.time()
                await asyncio.wait_for(self._guard_changed.wait(), max(due, 0.0))
            await asyncio.sleep(max(self._guard_checked + GUARD_EVENT_GAP - loop.time(), 0.0))
            self._guard_changed.clear()
            self._guard_checked = loop.time()
            try:
                await self._ensure_guards()
            except Exception as exc:  # nft or ip failed (an nftables reload): again later
                log.warning("checking the guards failed (%s): trying again", exc)
                self._guard_changed.set()
                continue
            if self._guard_dirty:
                self.wake.set()  # the API hears of it at the next step

    async def _step(self, now: float, checks: dict[str, float]) -> None:
        actions = self.sup.step(await self.observe(), now)
        if any(isinstance(a, Transition | RepairNeighbor | FlushLarval) for a in actions):
            self.cadence.stirred(now)  # a peer moves: watch it settle (a retry has its timer)
        await self.act(actions)
        self._write_status()
        self.publish(now, self.journal)
        if self._guard_dirty or now >= checks["counters"]:
            self._guard_dirty = False
            await self.publish_guard()
            checks["counters"] = now + GUARD_COUNTERS_PERIOD

    async def run(
        self, interval: float = 1.0, on_started: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        """Until SIGTERM/SIGINT; the guards stay installed on exit (fail-closed).
        ``interval``: seconds between steps while something changes."""
        await ensure_guard(self.guards)
        self.guard_installed = True
        self._guard_checked = asyncio.get_running_loop().time()
        self.cadence.fast = interval
        loop = asyncio.get_running_loop()
        sources = self._open_sources()
        stop = asyncio.Event()

        def stopping() -> None:
            stop.set()
            self.wake.set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping)
        if on_started is not None:
            await on_started()
        self.frr.listeners.append(self._frr_event)
        self.audits.next_at = loop.time() + AUDIT_PERIOD
        self._running = True
        tasks = [
            asyncio.create_task(self._charon_events()),
            asyncio.create_task(self.frr.keep(WATCHED)),
            asyncio.create_task(self._configuration()),
            asyncio.create_task(self._follow_addresses()),
            asyncio.create_task(self._check_guards()),
        ]
        watchdog = systemd.watchdog_interval()
        log.info("supervising %s", self.nbma)
        last_ping = 0.0
        checks = {"counters": 0.0}
        self.cadence.stirred(loop.time())
        while not stop.is_set():
            self.wake.clear()
            try:
                await self.step(loop.time(), checks)
            except Exception:  # one bad step must not end supervision: log it, go on
                log.exception("supervision step failed")
            # Pinged at least every half interval between steps: a step slowed by a daemon
            # that stopped answering (bounded by the adapters' timeouts) is no hang.
            if watchdog is not None and loop.time() - last_ping >= watchdog / 2:
                systemd.watchdog_ping()
                last_ping = loop.time()
            wait = self.cadence.wait(loop.time(), self.sup.due(), self.sup.watching)
            if watchdog is not None:
                wait = min(wait, watchdog / 2)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), wait)
            if self.wake.is_set() and not stop.is_set():
                await asyncio.sleep(0.05)  # let charon finish what it announced
        self._running = False
        if self._fresh is not None and not self._fresh[1].done():
            self._fresh[1].set_result(None)  # no step will come
        for task in [*tasks, *self._exits]:
            task.cancel()
        self.frr.listeners.remove(self._frr_event)
        for close in sources:
            close()
        log.info("stopping; the guards stay in place")

    def _open_sources(self) -> list[Callable[[], None]]:
        """Start listening to what reports changes; returns how to stop each."""
        nflog = NflogListener(self.guard.spec.nflog_group, self.dropped)
        journal = DirectoryWatch(
            decision_journal.PATH.parent,
            {decision_journal.PATH.name},
            lambda _: self.journal_written(),
        )
        opened: list[Callable[[], None]] = []
        sources: list[
            tuple[
                NflogListener | NeighborMonitor | DirectoryWatch | AddressMonitor | GuardWatch, str
            ]
        ] = [
            (nflog, "the guards' NFLOG group (drops are still counted)"),
            (
                self.guard_watch,
                f"the kernel's XFRM policy and nftables changes (the guards are checked "
                f"every {GUARD_CHECK_PERIOD:g} s instead)",
            ),
            (self.addresses, "the kernel's addresses (the guards follow them at each check)"),
            (self.neighbors, "the kernel's neighbour entries"),
            (journal, "the proxy's decision journal (it is read at each step)"),
        ]
        for source, what in sources:
            try:
                source.open()
                opened.append(source.close)
            except OSError as exc:
                log.warning("cannot follow %s: %s", what, exc)
        return opened
