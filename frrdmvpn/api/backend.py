"""What the gRPC services call: the node's state, its configuration and its operations.

The supervision loop (:class:`frrdmvpn.supervision.Service`) feeds every step in through
:meth:`Backend.supervised` (its :class:`~frrdmvpn.supervision.Observer`); the handlers in
:mod:`frrdmvpn.api.server` only translate requests and answers. Everything here runs in
the daemon's event loop; blocking adapters (apply, vtysh, nft) run in threads.
"""

from __future__ import annotations

import collections
import ipaddress
import logging
import socket
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from frrdmvpn import __version__
from frrdmvpn.adapters import vtysh
from frrdmvpn.api import convert
from frrdmvpn.api import state as api_state
from frrdmvpn.api.convert import SaRecord, sa_records
from frrdmvpn.api.tables import Store, _order
from frrdmvpn.api.watch import Broker
from frrdmvpn.codec.vici import Message
from frrdmvpn.config.diagnostics import ConfigError
from frrdmvpn.config.model import Config
from frrdmvpn.config.validate import check
from frrdmvpn.core.supervisor import SupervisedPeer
from frrdmvpn.datastores import ApplyOutcome, ApplyReport, Datastores, Revision
from frrdmvpn.v1 import authorization_pb2 as apb
from frrdmvpn.v1 import config_pb2 as cpb
from frrdmvpn.v1 import (
    guard_pb2,
    nhrp_pb2,
    node_pb2,
    operations_service_pb2,
    ospf_pb2,
    peer_pb2,
    types_pb2,
)
from frrdmvpn.v1 import watch_service_pb2 as wpb

log = logging.getLogger("frrdmvpn.api")


class OperationError(RuntimeError):
    """An operation that cannot be carried out as asked (the message says why)."""


class FrrShow(Protocol):
    """The port to FRR's ``show ... json`` (:mod:`frrdmvpn.adapters.vtysh`); raises
    :class:`~frrdmvpn.adapters.vtysh.VtyshError` when the daemon cannot answer."""

    async def show_json(self, command: str, daemon: str = "nhrpd") -> Any: ...


class _Vtysh:
    """:class:`FrrShow` over this node's FRR (the daemon's shared vty sessions)."""

    async def show_json(self, command: str, daemon: str = "nhrpd") -> Any:
        return await vtysh.show_json(command, daemon)


#: Seconds a listing of charon's SAs serves the full view's counters.
COUNTERS_FRESH = 1.0
#: Seconds a full-view request waits for the supervision step that lists charon anew.
COUNTERS_WAIT = 5.0


class FreshListing(Protocol):
    """The supervision loop's promise of a listing (:meth:`frrdmvpn.supervision.Service.
    fresh_listing`): returns once a step has published charon's SAs as listed at most
    ``within`` seconds ago, or after ``wait`` seconds (the view then has the latest)."""

    async def __call__(self, within: float, wait: float) -> None: ...


@dataclass
class Counters:
    """Baselines subtracted after ClearCounters (the sources themselves keep counting)."""

    guard: dict[str, tuple[int, int]] = field(default_factory=dict)
    guard_logged: dict[str, int] = field(default_factory=dict)
    authorization: dict[str, int] = field(default_factory=dict)
    guard_since: float = 0.0
    authorization_since: float = 0.0


@dataclass
class Backend:
    """The node as the API sees it."""

    datastores: Datastores
    store: Store = field(default_factory=Store)
    hostname: str = field(default_factory=socket.gethostname)
    started: float = field(default_factory=time.time)
    ready: bool = False
    baselines: Counters = field(default_factory=Counters)
    journal: dict[str, Any] | None = None
    guard_raw: tuple[bool, dict[str, tuple[int, int]], dict[str, Any], dict[str, int]] = (
        False,
        {},
        {},
        {},
    )
    wall_offset: float = 0.0
    on_ready: Callable[[], None] | None = None
    frr: FrrShow = field(default_factory=_Vtysh)
    fresh_listing: FreshListing | None = None  # the supervision loop's, set by management
    broker: Broker = field(init=False)
    builder: api_state.StateBuilder = field(init=False)
    applies_failed: int = 0
    _parsed: tuple[str, Config | None] = ("", None)
    _seen_decision: int = 0
    _records: tuple[Sequence[Message], tuple[SaRecord, ...]] = ((), ())
    _cache: tuple[Sequence[Mapping[str, Any]], tuple[Mapping[str, Any], ...]] = ((), ())

    def __post_init__(self) -> None:
        self.broker = Broker(self.store)
        self.builder = api_state.StateBuilder(self.store)

    # --- FRR, asked when a client asks --------------------------------------------------
    async def shortcuts(self, interface: str = "") -> list[nhrp_pb2.Shortcut]:
        """nhrpd's shortcut routes (of one tunnel if ``interface``)."""
        try:
            data = await self.frr.show_json("show ip nhrp shortcut json")
        except vtysh.VtyshError as exc:
            raise OperationError(f"nhrpd: {exc}") from exc
        return convert.shortcuts(data, interface)

    async def ospf_neighbors(self, interface: str = "") -> list[ospf_pb2.OspfNeighbor] | None:
        """ospfd's neighbours (of one tunnel if ``interface``); None when ospfd cannot say."""
        try:
            data = await self.frr.show_json("show ip ospf neighbor json", daemon="ospfd")
        except vtysh.VtyshError:
            return None
        return convert.ospf_neighbors(data, interface)

    # --- charon, asked when a client asks -----------------------------------------------
    async def fresh_counters(self) -> None:
        """The full view's SAs and traffic counters as charon lists them now: the steps
        hold a listing while charon reports no change, so theirs may be older. The loop
        takes a step with a new listing unless one at most :data:`COUNTERS_FRESH` seconds
        old was published; concurrent requests share it (one listing, whatever asks)."""
        if self.fresh_listing is not None:
            await self.fresh_listing(COUNTERS_FRESH, COUNTERS_WAIT)

    # --- feeding ------------------------------------------------------------------------
    def observed(self, obs: api_state.Observed, journal: dict[str, Any] | None = None) -> None:
        """One supervision step's view (and the proxy's journal if it changed): update the
        tables, publish the changes in causal order (SAs, decisions, NHRP, peers)."""
        self.wall_offset = obs.wall_offset
        events = self.builder.update(obs, lambda: self._decisions(journal))
        events += self.store.set_singleton(wpb.EVENT_KIND_NODE, self.node_summary())
        self.broker.publish(events)

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
        """A supervision step's view (charon's ``list-sa`` messages as records):
        :meth:`observed`. The listing and the nhrpd cache the previous step passed (the
        very objects: the supervisor keeps them while they do not change) keep their
        records and entries, so the builder knows them unchanged at a glance."""
        listing, records = self._records
        if sas is not listing:
            records = tuple(sa_records(sas))
            self._records = (sas, records)
        answer, entries = self._cache
        if cache is not answer:
            entries = tuple(cache)
            self._cache = (cache, entries)
        self.observed(
            api_state.Observed(peers, records, entries, tuple(nhs), now, wall_offset), journal
        )

    def sa_down(self, local: str, remote: str, what: str, uid: int, at: float) -> None:
        """charon reported the IKE_SA (``what`` = "IKE_SA") or a CHILD_SA of a peer deleted:
        the peer is DOWN (or back to IKE) now, not at the next observation, which then
        says whether it came back meanwhile. A flap shorter than one observation is
        thus still seen."""
        peer = self.store.get(wpb.EVENT_KIND_PEER, (local, remote))
        if not isinstance(peer, peer_pb2.Peer):
            return
        state = types_pb2.PEER_STATE_DOWN if what == "IKE_SA" else types_pb2.PEER_STATE_IKE
        if peer.state <= state:
            return

        def deleted(ike: Any, child: Any) -> bool:
            return bool((child.unique_id if what == "CHILD_SA" else ike.unique_id) == uid)

        if any(
            c.protects_gre and not deleted(i, c) for i in peer.crypto.ike_sas for c in i.child_sas
        ):
            return  # a duplicate went; another SA still protects the peer
        down = peer_pb2.Peer()
        down.CopyFrom(peer)
        down.state = state
        down.state_reason = f"{what} #{uid} deleted (charon)"
        down.state_since.FromNanoseconds(int(at * 1e9))
        down.counters.transitions += 1
        self.broker.publish(self.store.override(wpb.EVENT_KIND_PEER, (local, remote), down))

    def guard_observed(
        self,
        installed: bool,
        counters: dict[str, tuple[int, int]],
        report: dict[str, Any],
        xfrm: dict[str, int],
    ) -> None:
        self.guard_raw = (installed, counters, report, xfrm)
        self.broker.publish(self.store.set_singleton(wpb.EVENT_KIND_GUARD, self.guard_status()))

    def journal_read(self, journal: dict[str, Any] | None) -> None:
        """The proxy's decision journal as last read: new decisions become events."""
        self.broker.publish(self._decisions(journal))

    def _decisions(self, journal: dict[str, Any] | None) -> list[wpb.WatchResponse]:
        """Events for the journal's decisions not seen yet."""
        if journal is None:
            return []
        if float(journal.get("started", 0)) != float((self.journal or {}).get("started", -1)):
            self._seen_decision = 0  # the proxy restarted: its ids start again
        self.journal = journal
        events = []
        for d in api_state.iter_decisions(journal):
            if int(d.get("id", 0)) > self._seen_decision:
                self._seen_decision = int(d.get("id", 0))
                decision = api_state.decision_message(d)
                event = wpb.AuthorizationEvent(decision=decision)
                events += self.store.record(wpb.EVENT_KIND_AUTHORIZATION, event)
        return events

    def config_changed(self, what: str, report: ApplyReport | None) -> None:
        """Called (in the loop) when the datastores changed."""
        if what == "apply-failed":
            self.applies_failed += 1
        kinds = {
            "applied": wpb.CONFIG_EVENT_TYPE_APPLIED,
            "apply-failed": wpb.CONFIG_EVENT_TYPE_APPLY_FAILED,
            "saved": wpb.CONFIG_EVENT_TYPE_SAVED,
            "candidate": wpb.CONFIG_EVENT_TYPE_CANDIDATE_CHANGED,
        }
        event = wpb.ConfigEvent(type=kinds[what], status=self.config_status())
        if report is not None:
            event.apply.CopyFrom(apply_result(report))
            if report.running is not None:
                event.revision.CopyFrom(revision_message(report.running))
        self.broker.publish(self.store.record(wpb.EVENT_KIND_CONFIG, event))

    def set_ready(self) -> None:
        if not self.ready:
            self.ready = True
            if self.on_ready is not None:
                self.on_ready()

    # --- views --------------------------------------------------------------------------
    def metrics_view(self) -> Any:
        """What Prometheus scrapes (frrdmvpn.adapters.metrics.MetricsView)."""
        from frrdmvpn.adapters.metrics import MetricsView  # noqa: PLC0415

        peers = self.store.items(wpb.EVENT_KIND_PEER)
        by_state: dict[str, int] = {}
        for p in peers:
            name = types_pb2.PeerState.Name(p.state).removeprefix("PEER_STATE_").lower()  # type: ignore[attr-defined]
            by_state[name] = by_state.get(name, 0) + 1
        guard = self.guard_status().counters
        auth = self.authorization_counters()
        report = self.datastores.last_report
        return MetricsView(
            ready=self.ready,
            peers_by_state=by_state,
            sas=len(self.store.items(wpb.EVENT_KIND_IPSEC_SA)),
            guard_dropped={
                "in": (guard.dropped_in.packets, guard.dropped_in.bytes),
                "out": (guard.dropped_out.packets, guard.dropped_out.bytes),
            },
            authorization={
                "accepted": auth.accepted,
                "denied": auth.denied,
                "weak_accepted": auth.weak_accepted,
            },
            config_revision=self.datastores.running_revision.number,
            applies_failed=self.applies_failed if report is not None else 0,
        )

    def running_config(self) -> Config | None:
        """The running configuration, parsed once per text (not at every step)."""
        text = self.datastores.running_text()
        if text != self._parsed[0]:
            self._parsed = (text, check(text)[0] if text else None)
        return self._parsed[1]

    def config_current(self) -> None:
        """Publish the configuration's standing (a Watch snapshot carries the latest)."""
        event = wpb.ConfigEvent(type=wpb.CONFIG_EVENT_TYPE_CURRENT, status=self.config_status())
        self.broker.publish(self.store.record(wpb.EVENT_KIND_CONFIG, event))

    def peers(self, full: bool = False) -> list[peer_pb2.Peer]:
        if full:
            table = self.builder.full_peers()
            return [table[k] for k in sorted(table, key=_order)]
        return list(self.store.items(wpb.EVENT_KIND_PEER))  # type: ignore[arg-type]

    def guard_status(self) -> guard_pb2.GuardStatus:
        installed, counters, report, xfrm = self.guard_raw
        base = self.baselines
        counters = {
            k: (p - base.guard.get(k, (0, 0))[0], b - base.guard.get(k, (0, 0))[1])
            for k, (p, b) in counters.items()
        }
        counts = {
            k: int(v) - base.guard_logged.get(k, 0)
            for k, v in dict(report.get("counts", {})).items()
        }
        msg = api_state.guard_status(
            installed, counters, {**report, "counts": counts}, xfrm, self.wall_offset
        )
        if base.guard_since:
            msg.counters.counters_since.FromNanoseconds(int(base.guard_since * 1e9))
        return msg

    def authorization_counters(self) -> apb.AuthorizationCounters:
        raw = dict((self.journal or {}).get("counters", {}))
        base = self.baselines.authorization
        out = apb.AuthorizationCounters(
            accepted=max(0, int(raw.get("accepted", 0)) - base.get("accepted", 0)),
            denied=max(0, int(raw.get("denied", 0)) - base.get("denied", 0)),
            weak_accepted=max(0, int(raw.get("weak_accepted", 0)) - base.get("weak_accepted", 0)),
        )
        since = self.baselines.authorization_since or float((self.journal or {}).get("started", 0))
        if since:
            out.counters_since.FromNanoseconds(int(since * 1e9))
        return out

    def authorization_latency(self) -> apb.AuthorizationLatency:
        samples = [float(d.get("latency", 0)) for d in api_state.iter_decisions(self.journal)]
        out = apb.AuthorizationLatency(samples=len(samples))
        if samples:
            samples.sort()
            out.p50.FromNanoseconds(int(statistics.median(samples) * 1e9))
            out.p99.FromNanoseconds(
                int(samples[min(len(samples) - 1, int(len(samples) * 0.99))] * 1e9)
            )
            out.max.FromNanoseconds(int(samples[-1] * 1e9))
        return out

    def authorization_policy(self) -> apb.AuthorizationPolicy:
        from frrdmvpn.config.policy import authorization_policy  # noqa: PLC0415

        config = self.running_config()
        if config is None:
            return apb.AuthorizationPolicy()
        try:
            policy = authorization_policy(config)
        except ValueError:
            policy = None
        if policy is None:
            return apb.AuthorizationPolicy()
        msg = apb.AuthorizationPolicy(
            mode=api_state.MODES.get(policy.mode.value, 0),  # type: ignore[arg-type]
            weak=policy.mode.value == "any-authenticated",
            tunnel_subnet="" if policy.tunnel_subnet is None else str(policy.tunnel_subnet),
        )
        for identity, prefixes in sorted(policy.psk_map.items()):
            msg.psk_map.add(identity=identity, prefixes=[str(p) for p in prefixes])
        return msg

    def config_status(self) -> node_pb2.ConfigStatus:
        ds = self.datastores
        running = ds.running_revision
        status = node_pb2.ConfigStatus(running=revision_message(running))
        try:
            saved = ds.saved_text()
        except ConfigError:  # not UTF-8: GetConfig of SAVED says where
            saved = None
        if saved is not None:
            status.saved.CopyFrom(revision_message(Revision(0, saved, 0.0)))
        status.unsaved_changes = saved != running.text
        status.candidate_pending = ds.candidate is not None
        if ds.last_report is not None:
            status.last_apply_outcome = OUTCOMES[ds.last_report.outcome]
            status.last_apply_message = ds.last_report.message
        return status

    def node_summary(self) -> node_pb2.NodeSummary:
        """Everything `show frrdmvpn` would print first (no clocks, so it changes rarely)."""
        node = node_pb2.NodeSummary(
            hostname=self.hostname,
            version=__version__,
            api_versions=["v1"],
            epoch=self.store.epoch,
            ready=self.ready,
        )
        node.started_at.FromNanoseconds(int(self.started * 1e9))
        peers = self.store.items(wpb.EVENT_KIND_PEER)
        node.peers.CopyFrom(_counts(peers))  # type: ignore[arg-type]
        node.config.CopyFrom(self.config_status())
        node.guard.installed = self.guard_raw[0]
        config = self.running_config()
        if config is not None:
            for t in config.interfaces:
                ts = node.tunnels.add(
                    name=t.name,
                    linux_name=t.linux_name,
                    description=t.description or "",
                    address="" if t.address is None else str(t.address),
                    mtu=t.mtu or 0,
                    tcp_mss=t.tcp_adjust_mss or 0,
                    protection_profile=t.protection_profile or "",
                    nhrp_network_id=t.nhrp_network_id or 0,
                    nhrp_redirect=t.nhrp_redirect,
                    nhrp_shortcut=t.nhrp_shortcut,
                    nhs_count=len(t.nhrp_nhs),
                    admin_up=True,
                )
                if isinstance(t.source, ipaddress.IPv4Address):
                    ts.source_address = str(t.source)
                elif t.source:
                    ts.source_interface = str(t.source)
                if t.key is not None:
                    ts.key = t.key
                if t.nhrp_holdtime:
                    ts.nhrp_holdtime.FromSeconds(t.nhrp_holdtime)
                ts.type = node_pb2.TUNNEL_TYPE_SPOKE if t.nhrp_nhs else node_pb2.TUNNEL_TYPE_HUB
                ts.peers.CopyFrom(_counts([p for p in peers if p.interface == t.name]))  # type: ignore[attr-defined,misc]
        node.local_nbma_addresses.extend(sorted({p.key.local_nbma for p in peers}))  # type: ignore[attr-defined]
        return node


_COUNTED = {
    types_pb2.PeerState.Value(f"PEER_STATE_{name.upper()}"): name
    for name in ("down", "ike", "ipsec", "nhrp", "up")
}


def _counts(peers: list[peer_pb2.Peer]) -> node_pb2.PeerStateCounts:
    by_state = collections.Counter(p.state for p in peers)
    c = node_pb2.PeerStateCounts(total=len(peers))
    for state, name in _COUNTED.items():
        setattr(c, name, by_state[state])
    return c


OUTCOMES = {
    ApplyOutcome.APPLIED: cpb.APPLY_OUTCOME_APPLIED,
    ApplyOutcome.UNCHANGED: cpb.APPLY_OUTCOME_UNCHANGED,
    ApplyOutcome.DRY_RUN: cpb.APPLY_OUTCOME_DRY_RUN,
    ApplyOutcome.REJECTED: cpb.APPLY_OUTCOME_REJECTED,
    ApplyOutcome.FAILED_RESTORED: cpb.APPLY_OUTCOME_FAILED_RESTORED,
    ApplyOutcome.FAILED_NOT_RESTORED: cpb.APPLY_OUTCOME_FAILED_NOT_RESTORED,
}
_TARGETS = {
    "link": cpb.CONFIG_CHANGE_TARGET_KERNEL,
    "sysctl": cpb.CONFIG_CHANGE_TARGET_KERNEL,
    "iptables": cpb.CONFIG_CHANGE_TARGET_KERNEL,
    "charon": cpb.CONFIG_CHANGE_TARGET_CHARON,
    "nhrpd": cpb.CONFIG_CHANGE_TARGET_NHRPD,
    "ospfd": cpb.CONFIG_CHANGE_TARGET_OSPFD,
}


def revision_message(rev: Revision) -> cpb.ConfigRevision:
    msg = cpb.ConfigRevision(number=rev.number, digest=rev.digest, change_count=rev.changes)
    if rev.at:
        msg.at.FromNanoseconds(int(rev.at * 1e9))
    msg.origin.kind, msg.origin.comment = rev.origin, rev.comment
    return msg


def diagnostic_message(d: Any) -> cpb.Diagnostic:
    msg = cpb.Diagnostic(message=d.message)
    if d.line is not None:
        msg.line = d.line
    if d.column is not None:
        msg.column = d.column
    if d.token is not None:
        msg.token = d.token
    if d.expected:
        msg.expected = d.expected
    msg.severity = cpb.DIAGNOSTIC_SEVERITY_ERROR if d.is_error else cpb.DIAGNOSTIC_SEVERITY_WARNING
    if getattr(d, "code", None):
        msg.code = d.code
    return msg


def apply_result(report: ApplyReport) -> cpb.ApplyResult:
    msg = cpb.ApplyResult(outcome=OUTCOMES[report.outcome], message=report.message)
    for change in report.changes:
        word = change.split(":", 1)[0].split(" ", 1)[0].lower()
        msg.changes.add(target=_TARGETS.get(word, 0), description=change)
    msg.diagnostics.extend(diagnostic_message(d) for d in report.diagnostics)
    if report.running is not None:
        msg.running.CopyFrom(revision_message(report.running))
    return msg


def results(
    peers: Iterable[peer_pb2.Peer], done: bool, message: str
) -> list[operations_service_pb2.PeerOperationResult]:
    """One PeerOperationResult per peer (what the operations answer)."""
    out = []
    for p in peers:
        r = operations_service_pb2.PeerOperationResult(done=done, message=message)
        r.peer.CopyFrom(p.key)
        out.append(r)
    return out
