"""Peer supervision: one state machine per peer, derived afresh from what charon, nhrpd and
the kernel report, and the actions that keep NHS SAs up. Pure: no I/O, no clock.

States, in order: DOWN (nothing), IKE (an IKE_SA, no CHILD_SA protecting GRE), IPSEC (GRE
protected, nhrpd has no binding), NHRP (binding, but nhrpd counts no SA for the pair) and
UP. Nothing is cached between steps except each peer's history (since, reason, counters,
back-off): the state itself is recomputed from every observation, so a restart of the
daemon rebuilds it exactly.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from frrdmvpn.core.authorize import ChildSa, protects_gre
from frrdmvpn.core.identity_memo import IdentityMemo

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
PeerKey = tuple[IPAddress, IPAddress]  # (local NBMA, remote NBMA)


class State(enum.IntEnum):
    """How far a peer has come; higher is better."""

    DOWN = 0
    IKE = 1
    IPSEC = 2
    NHRP = 3
    UP = 4


class Role(enum.Enum):
    NHS = "nhs"  # configured next-hop server: kept up always
    DYNAMIC = "dynamic"  # learnt (a spoke registered with us, or a shortcut)


@dataclass(frozen=True)
class IkeSa:
    """One IKE_SA as charon reports it."""

    uniqueid: int
    local_host: IPAddress
    remote_host: IPAddress
    state: str  # CREATED, CONNECTING, ESTABLISHED, REKEYING, DELETING, ...


@dataclass(frozen=True)
class NhrpBinding:
    """One nhrpd cache entry that points at a peer."""

    protocol: IPAddress
    nbma: IPAddress
    type: str  # nhs, dynamic, cached, ...
    interface: str = ""


@dataclass(frozen=True)
class Neighbor:
    """One kernel neighbour entry on a GRE interface (lladdr = the peer's NBMA address)."""

    interface: str
    dst: IPAddress
    lladdr: str | None
    state: str


@dataclass(frozen=True)
class Observation:
    """Everything one supervision step looks at."""

    charon_up: bool
    ike_sas: tuple[IkeSa, ...] = ()
    child_sas: tuple[ChildSa, ...] = ()
    nhrp: tuple[NhrpBinding, ...] = ()
    nhrpd_sas: Mapping[PeerKey, int] = field(default_factory=dict)  # `show dmvpn json`
    neighbors: tuple[Neighbor, ...] = ()


@dataclass(frozen=True)
class Backoff:
    """Capped exponential back-off with jitter (seconds)."""

    base: float = 1.0
    cap: float = 30.0
    jitter: float = 0.2

    def delay(self, attempt: int, rand: float) -> float:
        """Delay before attempt ``attempt + 1``; ``rand`` is uniform in [0, 1)."""
        raw: float = min(self.cap, self.base * 2.0 ** max(attempt - 1, 0))
        return raw * (1 + self.jitter * (2 * rand - 1))


@dataclass
class SupervisedPeer:
    """A peer's history; its state is recomputed on every step."""

    local: IPAddress
    remote: IPAddress
    role: Role
    state: State = State.DOWN
    since: float = 0.0
    reason: str = "not seen yet"
    transitions: int = 0
    initiations: int = 0
    attempt: int = 0
    next_try: float = 0.0


@dataclass(frozen=True)
class Initiate:
    """Bring up the GRE CHILD_SA ``local -> remote`` now."""

    local: IPAddress
    remote: IPAddress
    attempt: int


@dataclass(frozen=True)
class FlushLarval:
    """charon (re)appeared: drop stale larval XFRM states that would stall its acquires."""


@dataclass(frozen=True)
class CleanOrphans:
    """charon (re)appeared: remove kernel SAs and policies it does not know (a crash's)."""


@dataclass(frozen=True)
class RepairNeighbor:
    """The kernel maps ``protocol`` to something else than nhrpd's binding: set it right."""

    interface: str
    protocol: IPAddress
    nbma: IPAddress
    found: str | None


@dataclass(frozen=True)
class Transition:
    """A peer changed state (for logs and the watch stream)."""

    local: IPAddress
    remote: IPAddress
    old: State
    new: State
    reason: str
    at: float


Action = Initiate | FlushLarval | CleanOrphans | Transition | RepairNeighbor
#: A mismatch must persist this many steps before it is repaired (nhrpd may be mid-update).
NEIGHBOR_PATIENCE = 3


@dataclass(frozen=True)
class ObservationIndex:
    """One observation grouped by NBMA pair and address, built once per step: assessing a
    peer then costs what its own SAs and bindings cost, so a step grows linearly with the
    number of peers (a scan of the whole observation per peer grew with its square)."""

    obs: Observation
    children: Mapping[PeerKey, list[ChildSa]]
    ike_up: frozenset[PeerKey]
    bindings: Mapping[IPAddress, list[NhrpBinding]]
    child_remotes: frozenset[IPAddress]

    @classmethod
    def of(cls, obs: Observation) -> ObservationIndex:
        children: dict[PeerKey, list[ChildSa]] = {}
        for c in obs.child_sas:
            children.setdefault((c.local_host, c.remote_host), []).append(c)
        bindings: dict[IPAddress, list[NhrpBinding]] = {}
        for b in obs.nhrp:
            bindings.setdefault(b.nbma, []).append(b)
        ike_up = frozenset(
            (i.local_host, i.remote_host) for i in obs.ike_sas if i.state != "DELETING"
        )
        remotes = frozenset(c.remote_host for c in obs.child_sas)
        return cls(obs, children, ike_up, bindings, remotes)

    def gone(self, remote: IPAddress) -> bool:
        """Nothing refers to a dynamic peer any more: forget it."""
        return remote not in self.bindings and remote not in self.child_remotes


# Whether a CHILD_SA protects GRE between its own hosts, by the SA itself: a step at rest
# assesses the same listing's SAs again (their selectors parsed each time were most of it).
_protecting: IdentityMemo[ChildSa, bool] = IdentityMemo(
    lambda c: protects_gre(c, c.local_host, c.remote_host)
)


def assess(obs: Observation, local: IPAddress, remote: IPAddress) -> tuple[State, str]:
    """A peer's state and why, from one observation."""
    return assess_indexed(ObservationIndex.of(obs), local, remote)


def assess_indexed(
    index: ObservationIndex, local: IPAddress, remote: IPAddress
) -> tuple[State, str]:
    """:func:`assess` over an observation already indexed (every peer of one step)."""
    obs = index.obs
    if not obs.charon_up:
        return State.DOWN, "charon is not running"
    # protecting needs exactly this orientation of the hosts (authorize.gre_protection_problem)
    candidates = index.children.get((local, remote), [])  # exactly these hosts
    protected = [c for c in candidates if _protecting(c)]
    bound = index.bindings.get(remote, [])
    nhrpd_sas = obs.nhrpd_sas.get((local, remote), 0)
    if not protected:
        if (local, remote) in index.ike_up:
            return State.IKE, "IKE_SA up, no CHILD_SA protecting GRE"
        return State.DOWN, "no IKE_SA"
    if not bound:
        return State.IPSEC, f"GRE protected by {len(protected)} CHILD_SA(s), no NHRP binding"
    if nhrpd_sas <= 0:
        return State.NHRP, "NHRP binding, but nhrpd counts no SA for the pair"
    kinds = ",".join(sorted({b.type for b in bound}))
    return State.UP, f"GRE protected, NHRP {kinds} binding, nhrpd sees {nhrpd_sas} SA(s)"


class Supervisor:
    """Every peer of one local NBMA address; NHS peers are kept up."""

    def __init__(
        self,
        local: IPAddress,
        nhs: Iterable[IPAddress] = (),
        backoff: Backoff | None = None,
        rand: Callable[[], float] | None = None,
    ) -> None:
        self.local = local
        self.backoff = backoff or Backoff()
        self._rand = rand or (lambda: 0.5)
        self.peers: dict[IPAddress, SupervisedPeer] = {
            r: SupervisedPeer(local, r, Role.NHS) for r in nhs
        }
        self._charon_was_up = False
        self._bad_neighbors: dict[tuple[str, IPAddress], int] = {}

    def _seen(self, obs: Observation) -> set[IPAddress]:
        remotes = {c.remote_host for c in obs.child_sas if c.local_host == self.local}
        remotes |= {i.remote_host for i in obs.ike_sas if i.local_host == self.local}
        remotes |= {b.nbma for b in obs.nhrp}
        remotes |= {r for (loc, r) in obs.nhrpd_sas if loc == self.local}
        remotes.discard(self.local)
        return remotes

    def step(self, obs: Observation, now: float) -> list[Action]:
        """Recompute every peer's state; say what changed and what to initiate."""
        out: list[Action] = []
        if obs.charon_up and not self._charon_was_up:
            out += [CleanOrphans(), FlushLarval()]
            for p in self.peers.values():  # charon is back: retry NHS peers at once
                p.attempt, p.next_try = 0, now
        self._charon_was_up = obs.charon_up
        for remote in self._seen(obs) - set(self.peers):
            self.peers[remote] = SupervisedPeer(self.local, remote, Role.DYNAMIC, since=now)
        index = ObservationIndex.of(obs)
        for p in self.peers.values():
            state, reason = assess_indexed(index, self.local, p.remote)
            if state != p.state:
                out.append(Transition(self.local, p.remote, p.state, state, reason, now))
                p.state, p.since, p.reason = state, now, reason
                p.transitions += 1
            p.reason = reason
            if state >= State.IPSEC:
                p.attempt, p.next_try = 0, 0.0
            elif p.role is Role.NHS and obs.charon_up and now >= p.next_try:
                p.attempt += 1
                p.initiations += 1
                p.next_try = now + self.backoff.delay(p.attempt, self._rand())
                out.append(Initiate(self.local, p.remote, p.attempt))
        out += self._neighbors(obs)
        for remote in [
            r
            for r, p in self.peers.items()
            if p.role is Role.DYNAMIC and p.state is State.DOWN and index.gone(r)
        ]:
            del self.peers[remote]
        return out

    def due(self) -> float | None:
        """When a step must come even if nothing reports a change: the earliest retry of an
        NHS peer that is not protected yet (None while charon is away: its return is an
        event)."""
        if not self._charon_was_up:
            return None
        tries = [
            p.next_try for p in self.peers.values() if p.role is Role.NHS and p.state < State.IPSEC
        ]
        return min(tries, default=None)

    @property
    def watching(self) -> bool:
        """A wrong neighbour entry is being counted step by step (:data:`NEIGHBOR_PATIENCE`)."""
        return bool(self._bad_neighbors)

    def _neighbors(self, obs: Observation) -> list[Action]:
        """nhrpd (FRR 8.4) can leave a protected peer's kernel neighbour at ``0.0.0.0``, which
        silently black-holes unicast to it; repair entries that stay wrong. A FAILED entry is
        repaired at once: packets sent while the SA was down asked the kernel to resolve the
        peer when nhrpd had no binding, and nhrpd does not answer again once it has one, so
        the kernel drops unicast to the peer until its own timers run out (seconds)."""
        kernel = {(n.interface, n.dst): n for n in obs.neighbors}
        bad: dict[tuple[str, IPAddress], int] = {}
        out: list[Action] = []
        for b in obs.nhrp:
            peer = self.peers.get(b.nbma)
            if b.type not in ("dynamic", "nhs") or peer is None or peer.state < State.IPSEC:
                continue
            entry = kernel.get((b.interface, b.protocol))
            if entry is None or entry.lladdr == str(b.nbma) or entry.state == "INCOMPLETE":
                continue
            key = (b.interface, b.protocol)
            bad[key] = self._bad_neighbors.get(key, 0) + 1
            if bad[key] >= NEIGHBOR_PATIENCE or entry.state == "FAILED":
                out.append(RepairNeighbor(b.interface, b.protocol, b.nbma, entry.lladdr))
                bad[key] = 0
        self._bad_neighbors = bad
        return out


def neighbor_changed(old: Neighbor | None, new: Neighbor | None) -> bool:
    """Whether a kernel neighbour change can matter to :meth:`Supervisor.step`: an entry
    that came or went, points elsewhere, or became or stopped being FAILED or INCOMPLETE
    (REACHABLE, STALE, DELAY and PROBE are the kernel's own ageing of a good entry)."""
    if old is None or new is None:
        return old is not new
    watched = ("FAILED", "INCOMPLETE")
    kind = (old.state if old.state in watched else "", new.state if new.state in watched else "")
    return old.lladdr != new.lladdr or kind[0] != kind[1]
