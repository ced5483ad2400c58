"""One observation of the node, folded into the store as events. Pure: no I/O.

Each supervision step's view is an :class:`Observed` (:meth:`.backend.Backend.supervised`);
:class:`StateBuilder` turns it into the PEER, IPSEC_SA, NHRP_CACHE and NHS tables (in that
order of events: the SA and NHRP facts first, then the peer state they explain), and the
singletons.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from frrdmvpn.api import convert
from frrdmvpn.api.convert import PeerStateValue
from frrdmvpn.api.tables import Store
from frrdmvpn.config.model import tunnel_name
from frrdmvpn.core.identity_memo import IdentityMemo
from frrdmvpn.core.supervisor import State, SupervisedPeer
from frrdmvpn.v1 import authorization_pb2 as apb
from frrdmvpn.v1 import guard_pb2, ipsec_pb2, nhrp_pb2, peer_pb2, types_pb2
from frrdmvpn.v1 import watch_service_pb2 as wpb


@dataclass(frozen=True)
class Observed:
    """What one step saw: supervisor peers, charon's SAs, nhrpd's tables; wall-clock now."""

    peers: tuple[SupervisedPeer, ...]
    sas: tuple[convert.SaRecord, ...]
    cache: tuple[Mapping[str, Any], ...]
    nhs: tuple[Mapping[str, Any], ...]
    now: float
    wall_offset: float  # wall clock minus the supervisor's monotonic clock


def _frozen_peer(p: SupervisedPeer) -> Hashable:
    """The supervisor's peer as a value (it mutates its Peer objects in place)."""
    return (
        p.role,
        p.state,
        p.since,
        p.reason,
        p.transitions,
        p.initiations,
        p.attempt,
        p.next_try if p.state < State.IPSEC else 0.0,
    )


# Addresses as text: every step names each peer by its addresses, which are the
# supervisor's same objects step after step; ipaddress formats them anew each time, and
# hashes them slowly (together, a third of a steady step of 10,000 peers).
_text: IdentityMemo[object, str] = IdentityMemo(str)
Pair = tuple[str, str]  # (local NBMA, remote NBMA) as text
_NOT_A_BINDING = ("local", "incomplete", "negative")


def _bindings(cache: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """nhrpd's cache entries that bind an address to a peer, by the peer's NBMA address."""
    by_nbma: dict[str, list[Mapping[str, Any]]] = {}
    for e in cache:
        if e.get("type") not in _NOT_A_BINDING:
            by_nbma.setdefault(str(e.get("nbma", "")), []).append(e)
    return by_nbma


def _by_pair(sas: Iterable[convert.SaRecord]) -> dict[Pair, list[convert.SaRecord]]:
    out: dict[Pair, list[convert.SaRecord]] = {}
    for rec in sas:
        out.setdefault((rec.local, rec.remote), []).append(rec)
    return out


_Entries = dict[Hashable, tuple[Mapping[str, Any], PeerStateValue]]
_Bound = dict[str, list[nhrp_pb2.NhrpCacheEntry]]


@dataclass
class StateBuilder:
    """Keeps the store's tables equal to the latest observation."""

    store: Store
    clock: convert.SaClock = field(default_factory=convert.SaClock)
    last: Observed | None = None
    _index: _Index | None = field(default=None, repr=False)
    # IKE_SA unique id -> (charon's message of it, its source): a message seen before (the
    # supervisor reuses its listing until charon reports a change) is not read again
    _sa_memo: dict[int, tuple[Mapping[str, Any], object]] = field(default_factory=dict, repr=False)
    # nhrpd's cache as last folded in (the very tuple), the peers' states then, its entries
    # and bindings: the supervisor passes nhrpd's answer again when it has not changed
    _cache_memo: tuple[object, dict[str, PeerStateValue], _Entries, _Bound] | None = field(
        default=None, repr=False
    )

    def update(
        self, obs: Observed, after_sas: Callable[[], list[wpb.WatchResponse]] | None = None
    ) -> list[wpb.WatchResponse]:
        """Fold one observation in; the events of what changed, SA and NHRP facts first
        (``after_sas`` adds events between the SAs' and the NHRP tables': the authorization
        decisions, which follow an SA and precede the binding they allow).

        Sources are compared, messages built only for what changed. A peer's source holds
        the messages of its SAs and NHRP entries as the store keeps them: an unchanged one
        is the very same object, so comparing a steady peer costs next to nothing; so does
        an SA whose message is the very object of the last observation (charon's messages
        are never changed in place)."""
        self.last = obs
        store, clock, now = self.store, self.clock, obs.now
        states = {_text(p.remote): convert.PEER_STATES[p.state] for p in obs.peers}

        records: dict[Hashable, convert.SaRecord] = {}
        sa_sources: dict[Hashable, object] = {}
        known, self._sa_memo = self._sa_memo, {}
        changed = False
        for rec in obs.sas:
            key = (rec.uid,)
            records[key] = rec
            memo = known.get(rec.uid)
            if memo is None or memo[0] is not rec.ike:
                memo = (rec.ike, convert.sa_source(rec, clock, now))
                changed = True
            self._sa_memo[rec.uid] = memo
            sa_sources[key] = memo[1]
        if changed or len(self._sa_memo) != len(known):
            clock.keep_only(
                [("ike", r.uid) for r in obs.sas]
                + [("child", convert._int(c.get("uniqueid"))) for r in obs.sas for c in r.children]
            )
        events = store.replace_from(
            wpb.EVENT_KIND_IPSEC_SA,
            sa_sources,
            lambda key: convert.ipsec_event(records[key], clock, now),
        )
        if after_sas is not None:
            events += after_sas()

        cached = self._cache_memo
        if cached is not None and cached[0] is obs.cache and cached[1] == states:
            entries, bound = cached[2], cached[3]  # nhrpd's very answer, the same states
        else:
            entries, bound, changes = self._cache(obs.cache, states)
            events += changes
            self._cache_memo = (obs.cache, states, entries, bound)

        servers: dict[Hashable, tuple[Mapping[str, Any], PeerStateValue]] = {}
        nhs_interfaces = {}
        for e in obs.nhs:
            nbma = str(e.get("nbma", ""))
            state = states.get(nbma, types_pb2.PEER_STATE_UNSPECIFIED)
            servers[(str(e.get("interface", "")), str(e.get("fqdn", "")), nbma)] = (e, state)
            nhs_interfaces[nbma] = tunnel_name(str(e.get("interface", "")))
        events += store.replace_from(
            wpb.EVENT_KIND_NHS,
            {key: convert.cache_source(*entry) for key, entry in servers.items()},
            lambda key: convert.nhs_entry(*servers[key]),
        )

        # the tables' messages by peer: the peers' parts, shared with the SA/NHRP tables
        ikes: dict[Pair, list[ipsec_pb2.IkeSa]] = {}
        sa_table = store.tables[wpb.EVENT_KIND_IPSEC_SA]
        for sa_key, rec in records.items():
            sa = sa_table[sa_key].message
            assert isinstance(sa, wpb.IpsecSaEvent)
            ikes.setdefault((rec.local, rec.remote), []).append(sa.ike_sa)
        peers: dict[Hashable, SupervisedPeer] = {}
        peer_sources: dict[Hashable, object] = {}
        for p in obs.peers:
            pair = (_text(p.local), _text(p.remote))
            peers[pair] = p
            peer_sources[pair] = (
                _frozen_peer(p),
                ikes.get(pair),
                bound.get(pair[1]),
                nhs_interfaces.get(pair[1]),
            )

        def build_peer(pair: Pair) -> peer_pb2.Peer:
            return convert.peer_message(
                peers[pair],
                obs.wall_offset,
                ikes.get(pair, []),
                bound.get(pair[1], []),
                nhs_interfaces,
            )

        events += store.replace_from(wpb.EVENT_KIND_PEER, peer_sources, build_peer)
        return events

    def _cache(
        self, cache: tuple[Mapping[str, Any], ...], states: Mapping[str, PeerStateValue]
    ) -> tuple[_Entries, _Bound, list[wpb.WatchResponse]]:
        """nhrpd's cache into its table: the entries by key, the bindings' messages by NBMA
        address, and the events of what changed."""
        store = self.store
        entries: _Entries = {}
        for e in cache:
            state = states.get(str(e.get("nbma", "")), types_pb2.PEER_STATE_UNSPECIFIED)
            entries[(str(e.get("interface", "")), str(e.get("protocol", "")))] = (e, state)
        events = store.replace_from(
            wpb.EVENT_KIND_NHRP_CACHE,
            {key: convert.cache_source(*entry) for key, entry in entries.items()},
            lambda key: convert.cache_entry(*entries[key]),
        )
        bound: _Bound = {}
        table = store.tables[wpb.EVENT_KIND_NHRP_CACHE]
        for key, (e, _) in entries.items():
            if e.get("type") not in _NOT_A_BINDING:
                entry = table[key].message
                assert isinstance(entry, nhrp_pb2.NhrpCacheEntry)
                bound.setdefault(str(e.get("nbma", "")), []).append(entry)
        return entries, bound, events

    def peer(
        self,
        p: SupervisedPeer,
        obs: Observed,
        entries: list[Mapping[str, Any]],
        nhs_interfaces: Mapping[str, str],
        records: Iterable[convert.SaRecord],
        *,
        counters: bool = False,
    ) -> peer_pb2.Peer:
        """One peer's message from its SAs' ``records``; with ``counters`` its SAs carry
        traffic counters."""
        state = convert.PEER_STATES[p.state]
        ikes = [convert.ike_sa(r, self.clock, obs.now, counters) for r in records]
        cached = [convert.cache_entry(e, state) for e in entries]
        return convert.peer_message(p, obs.wall_offset, ikes, cached, nhs_interfaces)

    def _last_index(self) -> _Index | None:
        """The latest observation by peer (built once per observation)."""
        obs = self.last
        if obs is None:
            return None
        if self._index is None or self._index.obs is not obs:
            self._index = _Index(
                obs,
                {(_text(p.local), _text(p.remote)): p for p in obs.peers},
                _bindings(obs.cache),
                _by_pair(obs.sas),
                {str(e.get("nbma", "")): tunnel_name(str(e.get("interface", ""))) for e in obs.nhs},
            )
        return self._index

    def full_peer(self, local: str, remote: str) -> peer_pb2.Peer | None:
        """One peer of the latest observation with traffic counters (PEER_VIEW_FULL)."""
        index = self._last_index()
        if index is None or (local, remote) not in index.peers:
            return None
        p = index.peers[(local, remote)]
        entries = index.bound.get(remote, [])
        sas = index.records.get((local, remote), [])
        return self.peer(p, index.obs, entries, index.nhs_interfaces, sas, counters=True)

    def full_peers(self) -> dict[tuple[str, str], peer_pb2.Peer]:
        """Every peer of the latest observation with traffic counters."""
        index = self._last_index()
        if index is None:
            return {}
        out = {}
        for local, remote in index.peers:
            full = self.full_peer(local, remote)
            assert full is not None
            out[(local, remote)] = full
        return out


@dataclass(frozen=True)
class _Index:
    obs: Observed
    peers: dict[Pair, SupervisedPeer]
    bound: dict[str, list[Mapping[str, Any]]]
    records: dict[Pair, list[convert.SaRecord]]
    nhs_interfaces: dict[str, str]


def decision_message(d: Mapping[str, Any]) -> apb.AuthorizationDecision:
    """One decision of the proxy's journal."""
    msg = apb.AuthorizationDecision(
        id=int(d.get("id", 0)),
        verdict=(
            apb.AUTHORIZATION_VERDICT_ACCEPT if d.get("accept") else apb.AUTHORIZATION_VERDICT_DENY
        ),
        weak=bool(d.get("weak")),
        reason=str(d.get("reason", "")),
        peer_identity=str(d.get("identity", "")),
        mode=MODES.get(str(d.get("mode")), 0),  # type: ignore[arg-type]
        event_id=int(d.get("eventid", 0)) & 0xFFFFFFFF,
        interface=tunnel_name(str(d.get("interface", ""))),
        binding_type=convert.CACHE_TYPES.get(str(d.get("type")), 0),  # type: ignore[arg-type]
        claimed_address=str(d.get("claimed", "")),
        local_nbma=str(d.get("local_nbma", "")),
        remote_nbma=str(d.get("remote_nbma", "")),
    )
    msg.decided_at.FromNanoseconds(int(float(d.get("at", 0)) * 1e9))
    msg.latency.FromNanoseconds(int(float(d.get("latency", 0)) * 1e9))
    return msg


MODES = {
    "psk-map": apb.AUTHORIZATION_MODE_PSK_MAP,
    "certificate": apb.AUTHORIZATION_MODE_CERTIFICATE,
    "any-authenticated": apb.AUTHORIZATION_MODE_ANY_AUTHENTICATED,
}


def guard_status(
    installed: bool,
    counters: Mapping[str, tuple[int, int]],
    report: Mapping[str, Any],
    xfrm: Mapping[str, int],
    wall_offset: float,
) -> guard_pb2.GuardStatus:
    """The guards: installed, nft counters (name -> packets, bytes), the NFLOG report (its
    times on the monotonic clock ``wall_offset`` converts)."""
    msg = guard_pb2.GuardStatus(installed=installed)
    c = msg.counters
    for name, target in (("dropped_in", c.dropped_in), ("dropped_out", c.dropped_out)):
        packets, size = _sum(counters, name.removeprefix("dropped_"))
        target.packets, target.bytes = packets, size
    counts = report.get("counts", {})
    c.logged_in, c.logged_out = int(counts.get("in", 0)), int(counts.get("out", 0))
    for key, value in xfrm.items():
        c.xfrm_stats[key] = value
    for o in report.get("last", []):
        off = msg.last_offenders.add(
            direction=types_pb2.DIRECTION_INBOUND
            if o.get("direction") == "in"
            else types_pb2.DIRECTION_OUTBOUND,
            source=str(o.get("src", "")),
            destination=str(o.get("dst", "")),
            summary=str(o.get("summary", "")),
        )
        if o.get("gre_key") is not None:
            off.gre_key = int(o["gre_key"])
        if o.get("at"):
            off.at.FromNanoseconds(int((float(o["at"]) + wall_offset) * 1e9))
        off.claimed_protocol_address = str(o.get("claimed_proto") or "")
        off.claimed_nbma_address = str(o.get("claimed_nbma") or "")
    msg.offenders_kept = len(msg.last_offenders)
    return msg


def _sum(counters: Mapping[str, tuple[int, int]], direction: str) -> tuple[int, int]:
    """Sum the guard's counters for one direction (``in`` or ``out`` in their names)."""
    packets = size = 0
    for name, (p, b) in counters.items():
        if direction in name.split("_"):  # gre_in_cleartext, gre_out_cleartext
            packets, size = packets + p, size + b
    return packets, size


def peer_matches(peer: peer_pb2.Peer, f: peer_pb2.PeerFilter) -> bool:
    """Whether a peer passes a ListPeers/Watch filter (empty fields match everything)."""
    if f.states and peer.state not in f.states:
        return False
    if f.roles and peer.role not in f.roles:
        return False
    if f.remote_nbma_addresses and peer.key.remote_nbma not in f.remote_nbma_addresses:
        return False
    if f.tunnel_addresses and peer.tunnel_address not in f.tunnel_addresses:
        return False
    if f.interface and peer.interface != f.interface:
        return False
    return not (f.identity and peer.identity != f.identity)


MAX_FILTER_ADDRESSES = 1000


def normalized_filter(f: peer_pb2.PeerFilter) -> peer_pb2.PeerFilter:
    """A copy of ``f`` with its addresses in canonical form ("::FFFF:1" -> "::ffff:1", as
    peers carry them); ValueError naming the first malformed field."""
    out = peer_pb2.PeerFilter()
    out.CopyFrom(f)
    for name in ("remote_nbma_addresses", "tunnel_addresses"):
        values = getattr(out, name)
        if len(values) > MAX_FILTER_ADDRESSES:
            raise ValueError(f"{name}: {len(values)} values, at most {MAX_FILTER_ADDRESSES}")
        for i, value in enumerate(values):
            try:
                values[i] = str(ipaddress.ip_address(value))
            except ValueError:
                raise ValueError(f"{name}: {value[:64]!r} is not an IP address") from None
    for s in f.states:
        if s not in types_pb2.PeerState.values() or s == types_pb2.PEER_STATE_UNSPECIFIED:
            raise ValueError(f"states: {s} is no PeerState")
    for r in f.roles:
        if r not in peer_pb2.PeerRole.values() or r == peer_pb2.PEER_ROLE_UNSPECIFIED:
            raise ValueError(f"roles: {r} is no PeerRole")
    return out


def check_filter(f: peer_pb2.PeerFilter) -> None:
    """ValueError naming the first malformed field of a filter."""
    normalized_filter(f)


class PeerLookup:
    """The store's peers by remote NBMA address (rebuilt when the store changed)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._at = -1
        self._by_remote: dict[str, peer_pb2.Peer] = {}

    def find(self, remote: str, local: str = "") -> peer_pb2.Peer | None:
        if local:
            found = self.store.get(wpb.EVENT_KIND_PEER, (local, remote))
            return found if isinstance(found, peer_pb2.Peer) else None
        if self._at != self.store.sequence:
            self._at = self.store.sequence
            self._by_remote = {}
            for p in self.store.items(wpb.EVENT_KIND_PEER):
                assert isinstance(p, peer_pb2.Peer)
                self._by_remote.setdefault(p.key.remote_nbma, p)
        return self._by_remote.get(remote)


def event_matches(event: wpb.WatchResponse, f: peer_pb2.PeerFilter, peers: PeerLookup) -> bool:
    """Whether a Watch event passes a peer filter: events about a peer (PEER, IPSEC_SA,
    NHRP_CACHE, NHS, AUTHORIZATION) if the peer matches as it is now (a peer the
    supervisor does not know is judged on what the event says of it); others always."""
    which = event.WhichOneof("event")
    if which == "peer":
        return peer_matches(event.peer.peer, f)
    if which == "ipsec_sa":
        key = event.ipsec_sa.peer
        ike = event.ipsec_sa.ike_sa
        known = peers.find(key.remote_nbma, key.local_nbma)
        return peer_matches(
            known or _peer(key.local_nbma, key.remote_nbma, identity=ike.remote_id), f
        )
    if which == "nhrp_cache":
        e = event.nhrp_cache.entry
        known = peers.find(e.nbma_address)
        guess = _peer("", e.nbma_address, e.protocol_address, e.interface, e.identity)
        return peer_matches(known or guess, f)
    if which == "nhs":
        n = event.nhs.nhs
        known = peers.find(n.nbma_address)
        return peer_matches(known or _peer("", n.nbma_address, n.protocol_address, n.interface), f)
    if which == "authorization":
        d = event.authorization.decision
        known = peers.find(d.remote_nbma, d.local_nbma) or peers.find(d.remote_nbma)
        guess = _peer(d.local_nbma, d.remote_nbma, d.claimed_address, d.interface, d.peer_identity)
        return peer_matches(known or guess, f)
    return True


def _peer(
    local: str, remote: str, tunnel: str = "", interface: str = "", identity: str = ""
) -> peer_pb2.Peer:
    """What an event says of a peer the supervisor does not know."""
    msg = peer_pb2.Peer(tunnel_address=tunnel, interface=interface, identity=identity)
    msg.key.local_nbma, msg.key.remote_nbma = local, remote
    return msg


def iter_decisions(journal: Mapping[str, Any] | None) -> Iterable[Mapping[str, Any]]:
    if not journal:
        return []
    decisions = journal.get("decisions", [])
    return [d for d in decisions if isinstance(d, dict)] if isinstance(decisions, list) else []
