"""The daemon's start-up guard check survives nft/ip failing or timing out (a loaded host)."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from frrdmvpn.adapters.guard import GuardError, KernelGuard
from frrdmvpn.render.guard import GuardSpec
from frrdmvpn.service import ensure_guard

pytestmark = pytest.mark.unit


class FlakyGuard(KernelGuard):
    """``installed`` times out ``failures`` times, then reports the guards missing."""

    def __init__(self, failures: int) -> None:
        super().__init__(GuardSpec((ipaddress.IPv4Address("198.51.100.1"),)))
        self.failures = failures
        self.calls: list[str] = []

    def installed(self) -> bool:
        self.calls.append("installed")
        if self.failures:
            self.failures -= 1
            raise GuardError("ip xfrm policy show: timed out after 10.0 seconds")
        return False

    def install(self) -> None:
        self.calls.append("install")


def test_a_timed_out_check_is_retried_until_the_guards_are_installed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    guard = FlakyGuard(failures=2)
    asyncio.run(ensure_guard(guard, delay=0.001))
    assert guard.calls == ["installed", "installed", "installed", "install"]
    assert caplog.text.count("trying again") == 2
