"""Peer supervision: states from observations, NHS keep-up with back-off, charon restarts."""

from __future__ import annotations

import itertools

import pytest

from frrdmvpn.adapters.neighbors import parse_neighbors
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
    RepairNeighbor,
    Role,
    State,
    Supervisor,
    Transition,
    assess,
)
from tests.fakes.observations import HUB, ME, S2, UP_HUB, child, ip, obs

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
