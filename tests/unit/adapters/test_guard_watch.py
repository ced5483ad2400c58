"""The guards are checked when the kernel announces a change they may have suffered, and
rarely at rest (issue 17): GuardWatch against the real kernel, in a network namespace of
its own (XFRM policies and nftables tables, as a hand or an nftables reload changes them),
and the supervision step's schedule around it."""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from frrdmvpn import supervision
from frrdmvpn.adapters.guard import GuardError
from frrdmvpn.adapters.guard_watch import GuardWatch
from frrdmvpn.supervision import Service
from tests.netns import in_netns

pytestmark = pytest.mark.unit

SCRIPT = r"""
import asyncio, json, subprocess
from frrdmvpn.adapters.guard_watch import GuardWatch

async def main():
    calls = []
    watch = GuardWatch(lambda: calls.append(1))
    watch.open()
    seen = {"watching": watch.watching}

    async def after(name, *argv):
        calls.clear()
        subprocess.run(argv, check=True, capture_output=True)
        for _ in range(40):
            await asyncio.sleep(0.05)
            if calls:
                break
        await asyncio.sleep(0.1)
        seen[name] = len(calls)

    policy = ["src", "198.51.100.11/32", "dst", "0.0.0.0/0", "proto", "gre", "dir", "out"]
    await after("policy added", "ip", "xfrm", "policy", "add", *policy, "action", "block")
    await after("policies read", "ip", "xfrm", "policy", "show")
    await after("table added", "nft", "add", "table", "inet", "t")
    await after("tables read", "nft", "-j", "list", "ruleset")
    await after("table deleted", "nft", "delete", "table", "inet", "t")
    await after("policy deleted", "ip", "xfrm", "policy", "delete", *policy)
    watch.close()
    seen["closed"] = watch.watching
    print(json.dumps(seen))

asyncio.run(main())
"""


@pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(p) for p in ("unshare", "nft", "ip")),
    reason="needs root, unshare, nft and ip",
)
def test_the_kernel_announces_what_may_change_the_guards_and_not_what_reads_them() -> None:
    seen = in_netns(SCRIPT)
    assert seen == {
        "watching": True,
        "policy added": 1,  # one call per batch read
        "policies read": 0,
        "table added": 1,
        "tables read": 0,
        "table deleted": 1,
        "policy deleted": 1,
        "closed": False,
    }


def _checking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, watching: bool, fail_first: bool = False
) -> tuple[Service, list[float]]:
    """A service whose guard checks only record when they ran (loop time since the start)."""
    service = Service(IPv4Address("198.51.100.1"), [], tmp_path / "c.vici", tmp_path)
    loop = asyncio.get_running_loop()
    start = loop.time()
    checked: list[float] = []
    failing = [fail_first]

    async def ensure() -> None:
        checked.append(loop.time() - start)
        if failing[0]:
            failing[0] = False
            raise GuardError("nft: the ruleset is being replaced")

    monkeypatch.setattr(service, "_ensure_guards", ensure)
    service.guard_watch.watching = watching
    service._guard_checked = start  # the start installed them
    return service, checked


async def _until(checked: list[float], n: int) -> None:
    async with asyncio.timeout(30):
        while len(checked) < n:
            await asyncio.sleep(0.01)


def test_changes_are_checked_after_the_gap_once_and_rest_only_audits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guards' checks run beside the steps: changes announced are checked once, not
    before GUARD_EVENT_GAP after the last check; a check that fails is tried again after
    the gap; with nothing announced, the audit comes after GUARD_AUDIT_PERIOD. (Periods
    scaled down; only lower bounds on time, which load cannot break.)"""
    gap, audit = 0.2, 1.0
    monkeypatch.setattr(supervision, "GUARD_EVENT_GAP", gap)
    monkeypatch.setattr(supervision, "GUARD_AUDIT_PERIOD", audit)
    monkeypatch.setattr(supervision, "GUARD_CHECK_PERIOD", 0.01)  # must not be used

    async def main() -> None:
        service, checked = _checking(tmp_path, monkeypatch, watching=True)
        task = asyncio.create_task(service._check_guards())
        for _ in range(50):  # a burst of changes, all before the first check
            service._guards_changed()
        await _until(checked, 1)
        assert checked[0] >= gap - 0.01  # not before the gap after the last check
        assert not service._guard_changed.is_set()  # all of them taken by that check
        await _until(checked, 2)  # nothing more announced: the audit
        assert checked[1] - checked[0] >= audit - 0.05
        task.cancel()

    asyncio.run(main())


def test_a_failed_check_is_tried_again_after_the_gap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gap = 0.2
    monkeypatch.setattr(supervision, "GUARD_EVENT_GAP", gap)
    monkeypatch.setattr(supervision, "GUARD_AUDIT_PERIOD", 1000.0)

    async def main() -> None:
        service, checked = _checking(tmp_path, monkeypatch, watching=True, fail_first=True)
        task = asyncio.create_task(service._check_guards())
        service._guards_changed()
        await _until(checked, 2)  # the first failed: again, without another change
        assert checked[1] - checked[0] >= gap - 0.01
        task.cancel()

    asyncio.run(main())


def test_unheard_changes_mean_polling(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the kernel's changes cannot be heard, every GUARD_CHECK_PERIOD (the audit
    period would be far longer: the second check proves which one ran)."""
    monkeypatch.setattr(supervision, "GUARD_EVENT_GAP", 0.1)
    monkeypatch.setattr(supervision, "GUARD_AUDIT_PERIOD", 1000.0)
    monkeypatch.setattr(supervision, "GUARD_CHECK_PERIOD", 0.2)

    async def main() -> None:
        service, checked = _checking(tmp_path, monkeypatch, watching=False)
        task = asyncio.create_task(service._check_guards())
        await _until(checked, 2)
        assert checked[1] - checked[0] >= 0.2 - 0.05
        task.cancel()

    asyncio.run(main())


class _Failing:
    """A netlink socket whose next read fails with ``error`` after ``data``."""

    def __init__(self, error: int, data: list[bytes]) -> None:
        self.error, self.data = error, data

    def recv(self, _: int) -> bytes:
        if self.data:
            return self.data.pop(0)
        raise OSError(self.error, os.strerror(self.error))


def test_lost_messages_mean_a_check_and_a_broken_socket_means_polling() -> None:
    async def main() -> None:
        calls: list[int] = []
        watch = GuardWatch(lambda: calls.append(1))
        watch.watching = True
        watch._readable(_Failing(errno.ENOBUFS, []))  # type: ignore[arg-type]
        assert calls == [1]  # the kernel dropped some: anything may have changed
        assert watch.watching
        watch._readable(_Failing(errno.EAGAIN, [b"x", b"y"]))  # type: ignore[arg-type]
        assert calls == [1, 1]  # one call per batch read
        watch._readable(_Failing(errno.EBADF, []))  # type: ignore[arg-type]
        assert calls == [1, 1, 1]
        assert not watch.watching  # the step polls every GUARD_CHECK_PERIOD again

    asyncio.run(main())
