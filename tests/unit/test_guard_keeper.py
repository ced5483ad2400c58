"""The guards follow the configuration and the tunnel source's addresses (issue 14, hole 4):
:class:`~frrdmvpn.guards.GuardKeeper` over an in-memory kernel guard, and the service taking
rtnetlink's address messages. The same against the real kernel (nft, XFRM, rtnetlink in a
network namespace of its own): tests/unit/test_guard_kernel.py."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Iterable, Iterator
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from frrdmvpn.adapters.guard import GuardError, KernelGuard
from frrdmvpn.codec.rtnl_addr import AddressChange, Received
from frrdmvpn.config.model import Config
from frrdmvpn.config.parse import parse_strict
from frrdmvpn.core.guard_rules import GuardSpec, ListedGuard
from frrdmvpn.guards import GuardKeeper
from frrdmvpn.supervision import Service

pytestmark = pytest.mark.unit

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
SPOKE = parse_strict((EXAMPLES / "lab-spoke1.conf").read_text())  # tunnel source eth0
A, B, C = (IPv4Address(f"198.51.100.{n}") for n in (11, 111, 12))
ETH0 = 2
INDEXES = {"eth0": ETH0, "eth1": 3}


def source(address: IPv4Address | str) -> Config:
    tunnel = dataclasses.replace(SPOKE.interfaces[0], source=address)
    return dataclasses.replace(SPOKE, interfaces=(tunnel,))


class MemoryGuard(KernelGuard):
    """The kernel's guards in memory: the nft set (None: no table) and the block policies."""

    def __init__(self, held: Iterable[IPv4Address] | None = (A,)) -> None:
        super().__init__(GuardSpec((A,)))
        self.set = None if held is None else set(held)
        self.blocked = set(self.set or ())
        self.altered: str | None = None
        self.calls: list[str] = []

    def listed(self) -> ListedGuard | None:
        if self.set is None:
            return None
        return ListedGuard(frozenset(self.set), self.altered)

    def install(self) -> None:
        self.calls.append(f"install {' '.join(map(str, self.spec.sorted_nbma))}")
        self.set, self.altered = set(self.spec.nbma), None
        self.blocked |= self.set

    def add(self, nbma: Iterable[IPv4Address]) -> None:
        if self.set is None:
            raise GuardError(
                "nft -f - failed (exit 1): No such file or directory",
                "Error: No such file or directory",
            )
        self.calls.append(f"add {' '.join(map(str, sorted(nbma)))}")
        self.set |= set(nbma)
        self.blocked |= set(nbma)

    def discard(self, nbma: Iterable[IPv4Address]) -> None:
        self.calls.append(f"discard {' '.join(map(str, sorted(nbma)))}")
        if self.set is not None:
            self.set -= set(nbma)
        self.blocked -= set(nbma)

    def unblocked(self, nbma: Iterable[IPv4Address]) -> frozenset[IPv4Address]:
        return frozenset(a for a in nbma if a not in self.blocked)


class Lock:
    """The apply lock: ``busy`` while an apply runs (in this process or another)."""

    def __init__(self) -> None:
        self.busy = False

    @contextlib.contextmanager
    def __call__(self) -> Iterator[bool]:
        yield not self.busy


def keeper(
    guard: MemoryGuard,
    configs: tuple[Config, ...] = (SPOKE,),
    *,
    running: Config | None = None,
    lock: Lock | None = None,
    pinned: tuple[IPv4Address, ...] = (),
) -> GuardKeeper:
    return GuardKeeper(
        guard,
        configs,
        pinned=pinned,
        running=lambda: running,
        apply_lock=lock,
        index_of=INDEXES.get,
    )


def addresses(*changes: AddressChange, done: bool = False) -> Received:
    return Received(list(changes), done=done)


def dumped(k: GuardKeeper, *present: tuple[int, IPv4Address]) -> None:
    """The monitor's first dump: the table is complete."""
    k.dumping()
    k.observe(addresses(*(AddressChange(i, a, 24) for i, a in present), done=True))


# --- the apply's port -------------------------------------------------------------------------


def test_widen_adds_both_configurations_and_narrow_releases_the_old_one() -> None:
    guard = MemoryGuard({A})
    k = keeper(guard)
    eth0 = {"eth0": (A, B)}
    assert k.widen((SPOKE, source(B)), eth0) == ["guard: protect 198.51.100.111"]
    assert guard.set == {A, B}
    assert k.narrow(source(B), eth0) == ["guard: release 198.51.100.11"]
    assert guard.set == {B}
    assert guard.calls == ["add 198.51.100.111", "discard 198.51.100.11"]
    assert guard.spec.nbma == (B,)


def test_narrowing_leaves_what_the_apply_did_not_cover() -> None:
    """Pinned addresses (--nbma), and addresses another process guards, stay."""
    guard = MemoryGuard({A, C})
    k = keeper(guard, pinned=(A,))
    k.widen((SPOKE, source(B)), {"eth0": (A,)})
    k.narrow(source(B), {"eth0": (A,)})
    assert guard.set == {A, B, C}


def test_a_source_interface_without_addresses_releases_nothing_it_may_still_need() -> None:
    guard = MemoryGuard({A})
    k = keeper(guard)
    assert k.widen((SPOKE, SPOKE), {"eth0": ()}) == []
    assert k.narrow(SPOKE, {"eth0": ()}) == []  # the last address never goes
    assert guard.set == {A}


def test_the_first_guards_are_made_when_there_were_none() -> None:
    k = GuardKeeper(index_of=INDEXES.get)  # `frrdmvpnd apply`: no guard object yet
    assert k.widen((SPOKE,), {"eth0": ()}) == []
    assert k.guard is None


# --- following the addresses ------------------------------------------------------------------


def test_observe_says_when_a_source_interface_changed() -> None:
    k = keeper(MemoryGuard())
    k.dumping()
    assert k.observe(addresses(AddressChange(ETH0, A, 24)))  # widened even before the end
    assert k.observe(addresses(done=True))  # the dump ended: the table can be trusted
    assert not k.observe(addresses(done=True))
    assert k.observe(addresses(AddressChange(ETH0, B, 24)))
    assert not k.observe(addresses(AddressChange(ETH0, B, 24)))  # nothing new
    assert not k.observe(addresses(AddressChange(3, C, 24)))  # eth1 is no tunnel source
    assert k.observe(addresses(AddressChange(ETH0, B, 24, deleted=True)))


def test_a_new_address_is_guarded_at_once_even_during_an_apply() -> None:
    guard, lock = MemoryGuard({A}), Lock()
    k = keeper(guard, lock=lock)
    dumped(k, (ETH0, A))
    lock.busy = True
    k.observe(addresses(AddressChange(ETH0, B, 24)))
    assert k.refresh() == ["guard: protect 198.51.100.111"]
    assert guard.set == {A, B}
    # Gone again, but an apply runs (it may take B): released only once the lock is free.
    k.observe(addresses(AddressChange(ETH0, B, 24, deleted=True)))
    assert k.refresh() == []
    assert guard.set == {A, B}
    lock.busy = False
    assert k.refresh() == ["guard: release 198.51.100.111"]
    assert guard.set == {A}


def test_without_known_addresses_nothing_is_released() -> None:
    guard = MemoryGuard({A, B})
    assert keeper(guard, lock=Lock()).refresh() == []  # no dump read, nothing to read with
    assert guard.set == {A, B}
    read = GuardKeeper(
        guard,
        (SPOKE,),
        running=lambda: None,
        apply_lock=Lock(),
        read_addresses=lambda: {"eth0": (A,)},
        index_of=INDEXES.get,
    )
    assert read.refresh() == ["guard: release 198.51.100.111"]  # read now: known


def test_addresses_are_read_for_what_runs_once_the_apply_lock_is_held() -> None:
    """`frrdmvpnd apply` moved the tunnel from eth1 to eth0 and released the lock while the
    check read eth1's addresses (no dump read whole: read now). What runs is read again
    under the lock, and so are its source's addresses: eth0's A stays, eth1's B goes."""
    guard, lock = MemoryGuard({A, B}), Lock()
    runs = iter([source("eth1")])
    k = GuardKeeper(
        guard,
        (source("eth1"),),
        running=lambda: next(runs, SPOKE),
        apply_lock=lock,
        read_addresses=lambda: {"eth0": (A,), "eth1": (B,)},
        index_of=INDEXES.get,
    )
    assert k.refresh() == ["guard: release 198.51.100.111"]
    assert guard.set == {A}


def test_a_configuration_applied_by_another_process_is_followed() -> None:
    """`frrdmvpnd apply` switched the tunnel to B: the daemon's checks read the running
    configuration; A goes once no apply holds the lock."""
    guard, lock = MemoryGuard({A}), Lock()
    lock.busy = True
    k = keeper(guard, running=source(B), lock=lock)
    dumped(k, (ETH0, A))
    assert k.refresh() == ["guard: protect 198.51.100.111"]
    assert guard.set == {A, B}
    lock.busy = False
    assert k.refresh() == ["guard: release 198.51.100.11"]
    assert k.configs == (source(B),)


def test_an_apply_that_did_not_end_keeps_its_configurations() -> None:
    """Its undo failed too: the running file still names the old configuration, the kernel
    may hold the new one's tunnel."""
    guard, lock = MemoryGuard({A}), Lock()
    k = keeper(guard, running=SPOKE, lock=lock)
    dumped(k, (ETH0, A))
    k.widen((SPOKE, source(B)), {"eth0": (A,)})
    assert k.refresh() == []
    assert guard.set == {A, B}


def test_missing_guards_are_installed_and_altered_ones_reinstalled_with_their_addresses(
    caplog: pytest.LogCaptureFixture,
) -> None:
    guard = MemoryGuard(None)
    k = keeper(guard, pinned=(C,))
    dumped(k, (ETH0, A))
    with caplog.at_level(logging.INFO):
        assert k.refresh() == ["guard: installed for 198.51.100.11, 198.51.100.12"]
    assert "missing or altered" not in caplog.text  # the first install: nothing removed them
    guard.set, guard.altered = {B}, "chain output: rule 2 is not `... drop`"
    assert k.refresh() == ["guard: installed for 198.51.100.11, 198.51.100.12, 198.51.100.111"]
    assert "the guards were missing or altered: reinstalling (altered: chain output" in caplog.text
    guard.blocked.discard(A)  # a block policy deleted by hand
    assert k.refresh() == ["guard: protect 198.51.100.11"]
    assert A in guard.blocked


# --- the service ------------------------------------------------------------------------------


def test_the_service_guards_a_new_source_address_when_the_kernel_reports_it(
    tmp_path: Path,
) -> None:
    guard, lock = MemoryGuard({A}), Lock()
    k = keeper(guard, lock=lock)

    async def main() -> None:
        service = Service(A, [], tmp_path / "charon.vici", tmp_path, guards=k)
        follower = asyncio.create_task(service._follow_addresses())
        try:
            service.guards.dumping()
            service._addresses_changed(addresses(AddressChange(ETH0, A, 24), done=True))
            service._addresses_changed(addresses(AddressChange(ETH0, B, 24)))  # DHCP
            await until(lambda: guard.set == {A, B})
            assert service.wake.is_set()  # the API hears of it at the next step
            service._addresses_changed(addresses(AddressChange(ETH0, B, 24, deleted=True)))
            await until(lambda: guard.set == {A})
            service._addresses_changed(addresses(AddressChange(3, C, 24)))  # not a source
            await asyncio.sleep(0.05)
            assert guard.calls == ["add 198.51.100.111", "discard 198.51.100.111"]
        finally:
            follower.cancel()

    asyncio.run(main())


async def until(check: object) -> None:
    assert callable(check)
    for _ in range(500):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("never happened")


def test_an_apply_in_its_own_process_only_widens() -> None:
    # `frrdmvpnd apply` cannot see what `frrdmvpnd run` pins (its start-up address): it
    # leaves the narrowing to the daemon's next check.
    guard = MemoryGuard({A})
    k = GuardKeeper(guard, (SPOKE,), narrows=False, index_of=INDEXES.get)
    moved = source("eth1")
    assert k.widen((SPOKE, moved), {"eth0": (A,), "eth1": (C,)}) == [f"guard: protect {C}"]
    assert k.narrow(moved, {"eth0": (A,), "eth1": (C,)}) == []
    assert guard.set == {A, C}
    narrowing = GuardKeeper(MemoryGuard({A}), (SPOKE,), index_of=INDEXES.get)
    narrowing.widen((SPOKE, moved), {"eth0": (A,), "eth1": (C,)})
    assert narrowing.narrow(moved, {"eth0": (A,), "eth1": (C,)}) == [f"guard: release {A}"]


def test_an_address_a_tunnel_still_uses_in_the_kernel_is_never_released() -> None:
    # An apply cut short after its kernel step: dmvpn0 sends from B, the running file
    # still says eth0 (A). B stays guarded while the link uses it.
    guard, lock = MemoryGuard({A, B}), Lock()
    kernel = {"dmvpn0": B}

    def locals_(names: set[str]) -> set[IPv4Address]:
        return {kernel[n] for n in names & kernel.keys()}

    k = GuardKeeper(
        guard,
        (SPOKE,),
        running=lambda: SPOKE,
        apply_lock=lock,
        index_of=INDEXES.get,
        tunnel_locals=locals_,
    )
    dumped(k, (ETH0, A))
    assert k.refresh() == []
    assert guard.set == {A, B}
    kernel["dmvpn0"] = A  # applied again: the link is back on A
    assert k.refresh() == ["guard: release 198.51.100.111"]
    assert guard.set == {A}
