"""When the supervisor steps and the configuration is audited (pure): at once after an event,
fast while things settle, rarely at rest; never later than a peer's own timer."""

from __future__ import annotations

import dataclasses
import ipaddress

import pytest

from frrdmvpn.core.cadence import MIN_WAIT, Audits, Cadence
from frrdmvpn.core.supervisor import (
    Neighbor,
    NhrpBinding,
    Observation,
    State,
    Supervisor,
    neighbor_changed,
)
from tests.fakes.observations import HUB, ME, UP_HUB, child, obs

pytestmark = pytest.mark.unit

ip = ipaddress.ip_address


def test_fast_while_settling_then_at_rest() -> None:
    cadence = Cadence(fast=1.0, settle=10.0, rest=10.0)
    assert cadence.wait(0.0) == 10.0  # nothing happened yet
    cadence.stirred(5.0)
    assert cadence.wait(5.0) == 1.0
    assert cadence.wait(14.9) == 1.0
    assert cadence.wait(15.0) == 10.0
    cadence.stirred(3.0)  # a stir reported late never shortens the window
    assert cadence.busy_until == 15.0


def test_a_peer_timer_or_a_watched_neighbour_comes_first() -> None:
    cadence = Cadence(fast=1.0, settle=10.0, rest=30.0)
    assert cadence.wait(100.0, due=103.5) == 3.5
    assert cadence.wait(100.0, due=99.0) == MIN_WAIT  # overdue: next, but never a busy loop
    assert cadence.wait(100.0, watching=True) == 1.0


def test_audits_on_schedule_and_when_asked() -> None:
    audits = Audits(period=30.0, next_at=30.0)
    assert not audits.due(10.0)
    assert audits.wait(10.0) == 20.0
    audits.soon(10.0, 5.0, 15.0)
    assert audits.wait(10.0) == 5.0
    assert not audits.due(14.0)
    assert audits.due(15.0)  # the first extra one; the schedule restarts from here
    assert audits.next_at == 45.0
    assert audits.wait(15.0) == 10.0  # the second extra one is still to come
    assert audits.due(25.0)
    assert audits.extra == []
    assert not audits.due(44.0)
    assert audits.due(55.0)


def test_the_supervisor_says_when_an_nhs_retry_is_due() -> None:
    sup = Supervisor(ME, [HUB], rand=lambda: 0.5)
    assert sup.due() is None  # charon not seen yet: its return is an event
    sup.step(obs(), 100.0)  # charon up, hub down: first initiation, next try after back-off
    hub = sup.peers[HUB]
    assert hub.attempt == 1
    assert sup.due() == hub.next_try > 100.0
    sup.step(UP_HUB, 101.0)
    assert sup.peers[HUB].state is State.UP
    assert sup.due() is None
    sup.step(obs(charon=False), 102.0)
    assert sup.due() is None


def test_the_supervisor_says_while_it_counts_a_wrong_neighbour() -> None:
    sup = Supervisor(ME, [HUB], rand=lambda: 0.5)
    wrong = Neighbor("gre1", ip("192.0.2.1"), "0.0.0.0", "REACHABLE")
    binding = NhrpBinding(ip("192.0.2.1"), HUB, "nhs", "gre1")
    stale = Observation(True, (), (child(HUB),), (binding,), {(ME, HUB): 1}, (wrong,))
    sup.step(stale, 1.0)
    assert sup.watching
    sup.step(dataclasses.replace(stale, neighbors=()), 2.0)
    assert not sup.watching


GOOD = Neighbor("gre1", ip("192.0.2.1"), "198.51.100.1", "REACHABLE")


@pytest.mark.parametrize(
    ("old", "new", "matters"),
    [
        (None, GOOD, True),
        (GOOD, None, True),
        (None, None, False),
        (GOOD, dataclasses.replace(GOOD, state="STALE"), False),  # the kernel's ageing
        (dataclasses.replace(GOOD, state="DELAY"), dataclasses.replace(GOOD, state="PROBE"), False),
        (GOOD, dataclasses.replace(GOOD, lladdr="0.0.0.0"), True),  # nhrpd left it wrong
        (GOOD, dataclasses.replace(GOOD, state="FAILED"), True),
        (dataclasses.replace(GOOD, state="INCOMPLETE"), GOOD, True),
    ],
)
def test_which_neighbour_changes_wake_the_supervisor(
    old: Neighbor | None, new: Neighbor | None, matters: bool
) -> None:
    assert neighbor_changed(old, new) is matters
