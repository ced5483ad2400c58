"""Peer supervision: states from observations, NHS keep-up with back-off, charon restarts."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from frrdmvpn.adapters.neighbors import parse_neighbors
from frrdmvpn.core.authorize import ChildSa, protects_gre
from frrdmvpn.core.supervisor import (
    NEIGHBOR_PATIENCE,
    Backoff,
    CleanOrphans,
    FlushLarval,
    IkeSa,
    Initiate,
    Neighbor,
    NhrpBinding,
    Observation,
    ObservationIndex,
    RepairNeighbor,
    Role,
    State,
    Supervisor,
    Transition,
    assess,
    assess_indexed,
)
from tests.fakes.observations import HUB, ME, S2, UP_HUB, IPAddress, child, ip, obs

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("observation", "state"),
    [
        (obs(charon=False, children=(child(HUB),)), State.DOWN),
        (obs(), State.DOWN),
        (obs(ike=(IkeSa(1, ME, HUB, "CONNECTING"),)), State.IKE),
        (obs(ike=(IkeSa(1, ME, HUB, "DELETING"),)), State.DOWN),
        (
            obs(children=(child(HUB, mode="TUNNEL"),), ike=(IkeSa(1, ME, HUB, "ESTABLISHED"),)),
            State.IKE,
        ),
        (obs(children=(child(HUB),)), State.IPSEC),
        (obs(children=(child(HUB),), nhrp=(NhrpBinding(ip("192.0.2.1"), HUB, "nhs"),)), State.NHRP),
        (UP_HUB, State.UP),
    ],
)
def test_assess(observation: Observation, state: State) -> None:
    assert assess(observation, ME, HUB)[0] is state


def test_nhs_is_initiated_with_capped_backoff_until_protected() -> None:
    sup = Supervisor(ME, nhs=[HUB], backoff=Backoff(base=1, cap=8, jitter=0))
    tries = []
    for t in range(0, 40):
        for a in sup.step(obs(), float(t)):
            if isinstance(a, Initiate):
                tries.append((t, a.attempt))
    assert tries[:5] == [(0, 1), (1, 2), (3, 3), (7, 4), (15, 5)]
    assert all(b - a <= 8 for (a, _), (b, _) in itertools.pairwise(tries))
    assert sup.peers[HUB].initiations == len(tries)
    actions = sup.step(UP_HUB, 40.0)
    assert not any(isinstance(a, Initiate) for a in actions)
    assert sup.peers[HUB].attempt == 0


def test_jitter_stays_within_bounds() -> None:
    b = Backoff(base=2, cap=30, jitter=0.25)
    assert b.delay(3, 0.0) == pytest.approx(6.0)
    assert b.delay(3, 0.999999) == pytest.approx(10.0, rel=1e-5)
    assert b.delay(50, 0.5) == 30


def test_transitions_are_reported_with_reason_and_time() -> None:
    sup = Supervisor(ME, nhs=[HUB])
    sup.step(obs(), 0.0)
    actions = sup.step(UP_HUB, 5.0)
    (tr,) = [a for a in actions if isinstance(a, Transition)]
    assert (tr.old, tr.new, tr.at) == (State.DOWN, State.UP, 5.0)
    assert "nhrpd sees 1 SA" in tr.reason
    assert sup.peers[HUB].since == 5.0
    assert sup.peers[HUB].transitions == 1
    down = sup.step(obs(), 9.0)
    assert any(isinstance(a, Transition) and a.new is State.DOWN for a in down)
    assert any(isinstance(a, Initiate) for a in down), "an SA loss re-initiates at once"


def test_charon_return_flushes_larval_states_and_retries_at_once() -> None:
    sup = Supervisor(ME, nhs=[HUB], backoff=Backoff(base=30, cap=30, jitter=0))
    sup.step(obs(), 0.0)
    assert sup.step(obs(charon=False), 1.0) == [
        a for a in sup.step(obs(charon=False), 1.0) if not isinstance(a, Initiate)
    ]
    actions = sup.step(obs(), 2.0)
    assert isinstance(actions[0], CleanOrphans)
    assert isinstance(actions[1], FlushLarval)
    assert Initiate(ME, HUB, 1) in actions, "no waiting out the back-off after a restart"


def test_no_initiation_while_charon_is_down() -> None:
    sup = Supervisor(ME, nhs=[HUB])
    assert not any(isinstance(a, Initiate) for a in sup.step(obs(charon=False), 0.0))


def test_dynamic_peers_are_tracked_and_forgotten() -> None:
    sup = Supervisor(ME, nhs=[HUB])
    shortcut = obs(
        children=(child(S2),),
        nhrp=(NhrpBinding(ip("192.0.2.12"), S2, "dynamic"),),
        sas={(ME, S2): 2},
    )
    actions = sup.step(shortcut, 0.0)
    assert sup.peers[S2].role is Role.DYNAMIC
    assert sup.peers[S2].state is State.UP
    assert not any(isinstance(a, Initiate) and a.remote == S2 for a in actions)
    sup.step(obs(), 10.0)
    assert S2 not in sup.peers
    assert HUB in sup.peers


def _nhs_over_gre1(neighbors: tuple[Neighbor, ...]) -> Observation:
    """The hub protected, bound as the NHS 192.0.2.1 on gre1, and the kernel's ``neighbors``."""
    nhs = (NhrpBinding(ip("192.0.2.1"), HUB, "nhs", "gre1"),)
    return Observation(True, (), (child(HUB),), nhs, {(ME, HUB): 1}, neighbors)


def test_a_stale_kernel_neighbour_is_repaired_after_patience() -> None:
    stale = tuple(
        parse_neighbors(
            "gre1",
            [
                {"dst": "192.0.2.1", "lladdr": "0.0.0.0", "state": ["DELAY"]},
                {"dst": "bogus"},
            ],
        )
    )
    broken = _nhs_over_gre1(stale)
    sup = Supervisor(ME, nhs=[HUB])
    repairs = []
    for t in range(NEIGHBOR_PATIENCE):
        repairs += [a for a in sup.step(broken, float(t)) if isinstance(a, RepairNeighbor)]
    assert repairs == [RepairNeighbor("gre1", ip("192.0.2.1"), HUB, "0.0.0.0")]
    fine = tuple(
        parse_neighbors("gre1", [{"dst": "192.0.2.1", "lladdr": str(HUB), "state": ["REACHABLE"]}])
    )
    healthy = _nhs_over_gre1(fine)
    for t in range(5):
        assert not any(isinstance(a, RepairNeighbor) for a in sup.step(healthy, 10.0 + t))


def test_a_failed_kernel_neighbour_of_a_protected_peer_is_repaired_at_once() -> None:
    failed = tuple(parse_neighbors("gre1", [{"dst": "192.0.2.1", "state": ["FAILED"]}]))
    obs_failed = _nhs_over_gre1(failed)
    sup = Supervisor(ME, nhs=[HUB])
    repairs = [a for a in sup.step(obs_failed, 0.0) if isinstance(a, RepairNeighbor)]
    assert repairs == [RepairNeighbor("gre1", ip("192.0.2.1"), HUB, None)]
    incomplete = tuple(parse_neighbors("gre1", [{"dst": "192.0.2.1", "state": ["INCOMPLETE"]}]))
    resolving = _nhs_over_gre1(incomplete)
    assert not any(isinstance(a, RepairNeighbor) for a in sup.step(resolving, 1.0))


def test_an_unprotected_peer_neighbour_is_left_alone() -> None:
    stale = tuple(
        parse_neighbors("gre1", [{"dst": "192.0.2.1", "lladdr": "0.0.0.0", "state": ["DELAY"]}])
    )
    unprotected = Observation(
        True, (), (), (NhrpBinding(ip("192.0.2.1"), HUB, "nhs", "gre1"),), {}, stale
    )
    sup = Supervisor(ME, nhs=[HUB])
    for t in range(6):
        assert not any(isinstance(a, RepairNeighbor) for a in sup.step(unprotected, float(t)))


# --- the indexed step (issue 17): the same answers as scanning the whole observation ------

POOL = (ME, HUB, S2, ip("2001:db8::11"), ip("2001:db8::1"))
addresses = st.sampled_from(POOL)


def _scanned(o: Observation, local: IPAddress, remote: IPAddress) -> tuple[State, str]:
    """The state of a peer by scanning every SA and binding (what a step did before the
    index): the oracle."""
    if not o.charon_up:
        return State.DOWN, "charon is not running"
    protected = [c for c in o.child_sas if protects_gre(c, local, remote)]
    bound = [b for b in o.nhrp if b.nbma == remote]
    nhrpd_sas = o.nhrpd_sas.get((local, remote), 0)
    if not protected:
        ike = any(
            i.local_host == local and i.remote_host == remote and i.state != "DELETING"
            for i in o.ike_sas
        )
        return (
            (State.IKE, "IKE_SA up, no CHILD_SA protecting GRE")
            if ike
            else (
                State.DOWN,
                "no IKE_SA",
            )
        )
    if not bound:
        return State.IPSEC, f"GRE protected by {len(protected)} CHILD_SA(s), no NHRP binding"
    if nhrpd_sas <= 0:
        return State.NHRP, "NHRP binding, but nhrpd counts no SA for the pair"
    kinds = ",".join(sorted({b.type for b in bound}))
    return State.UP, f"GRE protected, NHRP {kinds} binding, nhrpd sees {nhrpd_sas} SA(s)"


@st.composite
def _children(draw: st.DrawFn) -> ChildSa:
    """A CHILD_SA between two pool addresses: mostly a protecting one, else broken in one way."""
    local, remote = draw(addresses), draw(addresses)

    def host(a: IPAddress) -> str:
        return f"{a}/{32 if a.version == 4 else 128}[gre]"

    good = child(remote, local=local, local_ts=(host(local),), remote_ts=(host(remote),))
    broken: dict[str, Any] = draw(
        st.sampled_from(
            [
                {},
                {"state": "REKEYED"},
                {"state": "DELETING"},
                {"mode": "TUNNEL"},
                {"local_ts": (host(draw(addresses)),)},
            ]
        )
    )
    return dataclasses.replace(good, **broken)


observations = st.builds(
    Observation,
    charon_up=st.booleans(),
    ike_sas=st.lists(
        st.builds(
            IkeSa,
            uniqueid=st.integers(1, 9),
            local_host=addresses,
            remote_host=addresses,
            state=st.sampled_from(["ESTABLISHED", "CONNECTING", "DELETING"]),
        ),
        max_size=6,
    ).map(tuple),
    child_sas=st.lists(_children(), max_size=8).map(tuple),
    nhrp=st.lists(
        st.builds(
            NhrpBinding,
            protocol=st.just(ip("192.0.2.1")),
            nbma=addresses,
            type=st.sampled_from(["nhs", "dynamic", "cached"]),
        ),
        max_size=6,
    ).map(tuple),
    nhrpd_sas=st.dictionaries(st.tuples(addresses, addresses), st.integers(0, 2), max_size=4),
)


@given(observations)
def test_the_indexed_assessment_is_the_scanned_one(o: Observation) -> None:
    index = ObservationIndex.of(o)
    for local, remote in itertools.product(POOL, POOL):
        assert assess_indexed(index, local, remote) == _scanned(o, local, remote)
    for remote in POOL:
        gone = not any(b.nbma == remote for b in o.nhrp) and not any(
            c.remote_host == remote for c in o.child_sas
        )
        assert index.gone(remote) is gone
