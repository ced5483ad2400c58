"""What the guards must cover (issue 14, hole 4), pure: the NBMA addresses of a configuration
with its tunnel source interface's addresses, the address table kept from rtnetlink, and the
step from what is guarded to what is needed."""

from __future__ import annotations

import dataclasses
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from frrdmvpn.codec.rtnl_addr import AddressChange, Received
from frrdmvpn.config.kernel import guard_nbma
from frrdmvpn.config.model import Config
from frrdmvpn.config.parse import parse_strict
from frrdmvpn.core.guard_set import AddressTable, GuardStep, guard_step

pytestmark = pytest.mark.unit

EXAMPLES = Path(__file__).resolve().parents[3] / "docs" / "examples"
SPOKE = parse_strict((EXAMPLES / "lab-spoke1.conf").read_text())  # tunnel source eth0
A, B, C = (IPv4Address(f"198.51.100.{n}") for n in (11, 111, 12))


def _source(source: IPv4Address | str | None) -> Config:
    tunnel = dataclasses.replace(SPOKE.interfaces[0], source=source)
    return dataclasses.replace(SPOKE, interfaces=(tunnel,))


def test_an_interface_source_is_every_address_of_that_interface() -> None:
    assert guard_nbma(SPOKE, {"eth0": (A, B), "eth1": (C,)}) == {A, B}
    assert guard_nbma(SPOKE, {"eth0": (), "eth1": (C,)}) == set()  # DHCP has not answered
    assert guard_nbma(SPOKE, {}) == set()


def test_an_address_source_is_that_address_whatever_the_interfaces_hold() -> None:
    assert guard_nbma(_source(B), {"eth0": (A,)}) == {B}
    assert guard_nbma(_source(None), {"eth0": (A,)}) == set()
    assert guard_nbma(Config(), {"eth0": (A,)}) == set()  # no tunnel: nothing to guard


def test_what_cannot_be_a_local_unicast_address_is_left_out() -> None:
    odd = (IPv4Address("0.0.0.0"), IPv4Address("224.0.0.5"), IPv4Address("255.255.255.255"))
    assert guard_nbma(SPOKE, {"eth0": (*odd, A)}) == {A}
    assert guard_nbma(_source(IPv4Address("0.0.0.0")), {}) == set()


def _received(*changes: AddressChange, done: bool = False) -> Received:
    return Received(list(changes), done=done)


def test_the_table_follows_notifications() -> None:
    table = AddressTable()
    assert table.update(_received(AddressChange(2, A, 24), AddressChange(3, C, 24))) == {2, 3}
    assert table.update(_received(AddressChange(2, B, 24))) == {2}
    assert table.of(2) == {A, B}
    assert table.update(_received(AddressChange(2, B, 24))) == set()  # nothing new
    assert table.update(_received(AddressChange(2, A, 24, deleted=True))) == {2}
    assert table.update(_received(AddressChange(3, A, 24, deleted=True))) == set()
    assert table.of(2) == {B}
    assert table.update(_received(AddressChange(3, C, 24, deleted=True))) == {3}
    assert table.addresses == {2: {B}}
    assert table.of(None) == set()
    assert not table.complete


def test_the_end_of_a_dump_removes_what_it_did_not_list() -> None:
    table = AddressTable()
    table.update(_received(AddressChange(2, A, 24), AddressChange(3, C, 24)))
    table.dumping()  # after ENOBUFS: the kernel lists A, and B appears meanwhile
    assert table.update(_received(AddressChange(2, A, 24))) == set()
    assert table.update(_received(AddressChange(2, B, 24))) == {2}
    assert table.update(_received(done=True)) == {3}
    assert table.addresses == {2: {A, B}}
    assert table.complete
    assert table.update(_received(done=True)) == set()  # no dump under way: nothing goes


def test_a_dump_the_kernel_marks_inconsistent_removes_nothing_and_is_not_trusted() -> None:
    table = AddressTable()
    table.update(_received(AddressChange(2, A, 24), AddressChange(3, C, 24)))
    table.dumping()
    interrupted = _received(AddressChange(2, A, 24))
    interrupted.interrupted = True  # NLM_F_DUMP_INTR: C may exist and be missing here
    table.update(interrupted)
    assert table.update(_received(done=True)) == set()
    assert table.addresses == {2: {A}, 3: {C}}
    assert not table.complete
    table.dumping()  # the next one reads whole
    table.update(_received(AddressChange(2, A, 24)))
    assert table.update(_received(done=True)) == {3}
    assert table.complete


def test_a_step_adds_what_is_needed_and_removes_only_what_the_caller_lets_go() -> None:
    step = guard_step(held={A}, need={A, B})
    assert step == GuardStep(frozenset({B}), frozenset())
    assert step.changes() == ["guard: protect 198.51.100.111"]
    # Only addresses named unused go, and never one that is needed.
    step = guard_step(held={A, B, C}, need={B}, unused={A, B})
    assert step == GuardStep(frozenset(), frozenset({A}))
    assert step.changes() == ["guard: release 198.51.100.11"]
    # A needed address whose block policies are missing is added again.
    step = guard_step(held={A}, need={A}, unblocked={A, C})
    assert step == GuardStep(frozenset({A}), frozenset())
    assert guard_step(held={A}, need={A}).empty


def test_the_last_address_is_never_removed() -> None:
    step = guard_step(held={A, B}, need=set(), unused={A, B})
    assert len(step.remove) == 1
    assert guard_step(held={A}, need=set(), unused={A}).empty
