"""The daemon's start-up guard check survives nft/ip failing or timing out (a loaded host)."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from frrdmvpn.adapters.guard import GuardError, KernelGuard
from frrdmvpn.core.guard_rules import GuardSpec, ListedGuard
from frrdmvpn.guards import GuardKeeper
from frrdmvpn.supervision import ensure_guard

pytestmark = pytest.mark.unit


class FlakyGuard(KernelGuard):
    """Listing the table times out ``failures`` times, then finds no table."""

    def __init__(self, failures: int) -> None:
        super().__init__(GuardSpec((ipaddress.IPv4Address("198.51.100.1"),)))
        self.failures = failures
        self.calls: list[str] = []

    def listed(self) -> ListedGuard | None:
        self.calls.append("listed")
        if self.failures:
            self.failures -= 1
            raise GuardError("nft -j list table inet frrdmvpn_guard: timed out after 10.0 seconds")
        return None

    def install(self) -> None:
        self.calls.append("install")


def test_a_timed_out_check_is_retried_until_the_guards_are_installed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    guard = FlakyGuard(failures=2)
    keeper = GuardKeeper(guard, pinned=[ipaddress.IPv4Address("198.51.100.1")])
    asyncio.run(ensure_guard(keeper, delay=0.001))
    assert guard.calls == ["listed", "listed", "listed", "install"]
    assert caplog.text.count("trying again") == 2
