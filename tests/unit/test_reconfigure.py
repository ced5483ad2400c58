"""A daemon that restarts or loses part of its configuration is configured again: the
restart seen on its vty connection (tests/fakes/vty.py) leads to a re-apply, an audit finds
what drifted (tests.unit.test_apply's fake node) and applies only that."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import logging
import os
import pwd
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from frrdmvpn import supervision
from frrdmvpn.adapters.vtysh import Frr
from frrdmvpn.config.frr import render_frr
from frrdmvpn.core.stuck_exit import ProcessInfo, refusal
from frrdmvpn.datastores import Datastores
from frrdmvpn.management import _reconfigure
from frrdmvpn.supervision import (
    AFTER_RESTART_AUDITS,
    AFTER_WATCHFRR_AUDITS,
    Reconfigure,
    Service,
)
from tests.fakes.vty import FakeDaemon
from tests.fakes.world import EXAMPLES, SPOKE, World

pytestmark = pytest.mark.unit


def _service(tmp_path: Path, frr: Frr, reconfigure: Reconfigure | None = None) -> Service:
    """A spoke's service over ``frr``, charon and its status files in ``tmp_path``."""
    return Service(
        IPv4Address("198.51.100.11"),
        [],
        tmp_path / "charon.vici",
        tmp_path,
        reconfigure=reconfigure,
        frr=frr,
    )


@contextlib.asynccontextmanager
async def _watching(tmp_path: Path, daemon: FakeDaemon) -> AsyncIterator[Service]:
    """``daemon`` started, and a spoke service that hears what ``Frr`` sees of it, once
    connected; Frr closed at the end."""
    await daemon.start()
    frr = Frr(tmp_path, timeout=1.0)
    service = _service(tmp_path, frr)
    frr.listeners.append(service._frr_event)
    keeper = asyncio.create_task(frr.keep([daemon.name]))
    try:
        await until(lambda: frr.connected(daemon.name), f"{daemon.name} connected")
        yield service
    finally:
        keeper.cancel()
        await frr.close()


async def until(check: Callable[[], object], what: str) -> None:
    for _ in range(500):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never: {what}")


def test_a_restart_is_configured_again_once_every_daemon_is_back(tmp_path: Path) -> None:
    calls: list[tuple[str, bool]] = []

    async def reconfigure(reason: str, audit: bool) -> None:
        calls.append((reason, audit))

    async def main() -> None:
        zebra, nhrpd = FakeDaemon(tmp_path, "zebra", 10), FakeDaemon(tmp_path, "nhrpd", 20)
        for d in (zebra, nhrpd):
            await d.start()
        frr = Frr(tmp_path, timeout=1.0)
        service = _service(tmp_path, frr, reconfigure)
        frr.listeners.append(service._frr_event)
        tasks = [
            asyncio.create_task(frr.keep(["zebra", "nhrpd"])),
            asyncio.create_task(service._configuration()),
        ]
        try:
            # First contact: only an audit (startup applied already, or will find it missing).
            await until(lambda: calls == [("audit", True)], "an audit after first contact")
            # zebra's crash: watchfrr restarts every daemon, zebra first.
            await zebra.restart(11)
            await nhrpd.stop()
            await until(lambda: not frr.connected("nhrpd"), "nhrpd lost")
            await asyncio.sleep(0.3)
            assert calls == [("audit", True)]  # nothing while nhrpd is away
            await nhrpd.restart(21)
            await until(lambda: len(calls) == 2, "the restart re-applied")
            assert calls[1] == ("restart of nhrpd, zebra", False)
            now = asyncio.get_running_loop().time()
            assert [round(t - now) for t in service.audits.extra] == list(AFTER_RESTART_AUDITS)
        finally:
            for task in tasks:
                task.cancel()
            await frr.close()
            await zebra.stop()
            await nhrpd.stop()

    asyncio.run(main())


def test_watchfrr_restarting_schedules_audits(tmp_path: Path) -> None:
    async def main() -> None:
        watchfrr = FakeDaemon(tmp_path, "watchfrr", 5)
        async with _watching(tmp_path, watchfrr) as service:
            service.audits.extra = []
            await watchfrr.stop()  # `systemctl reload frr`: frr-reload runs after it
            await until(lambda: service.audits.extra, "audits scheduled")
            now = asyncio.get_running_loop().time()
            assert [round(t - now) for t in service.audits.extra] == list(AFTER_WATCHFRR_AUDITS)
            assert service.wake.is_set()

    asyncio.run(main())


def spoke_stores(tmp_path: Path, world: World) -> Datastores:
    stores = Datastores(
        saved=tmp_path / "saved.conf",
        running=tmp_path / "running.conf",
        ports=lambda: world.ports(SPOKE),
    )
    report = stores.apply_text((EXAMPLES / "lab-spoke1.conf").read_text(), origin="startup")
    assert report.ok
    world.log.clear()
    return stores


def test_an_audit_that_finds_nothing_changes_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    world = World()
    stores = spoke_stores(tmp_path, world)
    revisions = len(stores.revisions)
    asyncio.run(_reconfigure(stores, "audit", True))
    assert world.log == []
    assert len(stores.revisions) == revisions
    assert "drifted" not in caplog.text


def test_an_audit_restores_what_drifted_and_says_what(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    world = World()
    stores = spoke_stores(tmp_path, world)
    desired = render_frr(SPOKE).nhrpd
    # `swanctl --load-all` unloaded the connection; a hand removed the event socket.
    world.conns.clear()
    world.frr["nhrpd"] = "\n".join(
        x for x in desired.splitlines() if not x.startswith("nhrp event socket")
    )
    with caplog.at_level(logging.INFO):
        asyncio.run(_reconfigure(stores, "audit", True))
    assert (
        "the configuration drifted (audit): missing or changed: charon: load-conn dmvpn; "
        "nhrpd: nhrp event socket /run/frrdmvpn/nhrp-events.sock; applying it again" in caplog.text
    )
    assert "dmvpn" in world.conns
    assert world.frr["nhrpd"] == desired
    assert stores.revisions[-1].origin == "audit"


def test_a_restarted_nhrpd_gets_its_configuration_without_a_dry_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    world = World()
    stores = spoke_stores(tmp_path, world)
    world.frr["nhrpd"] = "frr version 8.4.4\n!\n"  # what a restarted nhrpd holds
    with caplog.at_level(logging.INFO):
        asyncio.run(_reconfigure(stores, "restart of nhrpd", False))
    assert world.log == ["vtysh nhrpd"]
    assert world.frr["nhrpd"] == render_frr(SPOKE).nhrpd
    assert "configured again (restart of nhrpd): nhrpd: " in caplog.text


def test_nothing_applied_yet_the_saved_file_is_or_nothing(tmp_path: Path) -> None:
    world = World()
    stores = Datastores(
        saved=tmp_path / "s", running=tmp_path / "r", ports=lambda: world.ports(SPOKE)
    )
    asyncio.run(_reconfigure(stores, "audit", True, saved=True))  # no file yet
    asyncio.run(_reconfigure(stores, "audit", True))
    assert world.log == []
    # The start's apply failed (nhrpd was not running); nhrpd appears: the file is applied.
    stores.saved.write_text((EXAMPLES / "lab-spoke1.conf").read_text())
    asyncio.run(_reconfigure(stores, "audit", True))
    assert world.log == []  # a daemon started without -c supervises what runs
    asyncio.run(_reconfigure(stores, "audit", True, saved=True))
    assert world.frr["nhrpd"] == render_frr(SPOKE).nhrpd
    assert stores.running_text()


def test_a_step_rewrites_status_files_and_reads_counters_only_when_needed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def no_sas(path: Path) -> tuple[list[object], list[object], list[object]]:
        return [], [], []

    monkeypatch.setattr(supervision, "list_sas_raw", no_sas)

    async def main() -> None:
        nhrpd = FakeDaemon(tmp_path)
        await nhrpd.start()
        frr = Frr(tmp_path, timeout=1.0)
        service = _service(tmp_path, frr)
        reads: list[int] = []
        service.observer = type(
            "Observer",
            (),
            {"supervised": lambda *a, **kw: None, "guard_observed": lambda *a: reads.append(1)},
        )()
        monkeypatch.setattr(service.guard, "counters", dict)
        checks = {"counters": 0.0}
        try:
            await frr.session("nhrpd").connect()  # Frr.keep's work; a step never connects
            await service.step(100.0, checks)
            status = tmp_path / "peers.json"
            first = status.stat().st_mtime_ns
            await service.step(101.0, checks)
            assert status.stat().st_mtime_ns == first  # nothing changed: not rewritten
            assert len(reads) == 1  # counters read at the first step, next after the period
            service._guard_dirty = True  # the guards logged a drop
            await service.step(102.0, checks)
            assert len(reads) == 2
            assert nhrpd.received.count("show ip nhrp cache json") == 3
            assert nhrpd.connections == 1
        finally:
            await frr.close()
            await nhrpd.stop()

    asyncio.run(main())


def test_no_audit_while_a_daemon_is_away(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Its return is configured; an audit meanwhile could only fail to reach it."""
    calls: list[tuple[str, bool]] = []

    async def reconfigure(reason: str, audit: bool) -> None:
        calls.append((reason, audit))

    async def main() -> None:
        nhrpd = FakeDaemon(tmp_path, "nhrpd", 20)
        await nhrpd.start()
        frr = Frr(tmp_path, timeout=1.0)
        service = _service(tmp_path, frr, reconfigure)
        await frr.session("nhrpd").connect()  # seen before the watch starts
        frr.seen.add("nhrpd")
        await nhrpd.stop()
        await frr.session("nhrpd").wait_lost()
        worker = asyncio.create_task(service._configuration())
        try:
            service.audits.soon(asyncio.get_running_loop().time(), 0.0)
            service._reconfig.set()
            await until(lambda: "audit skipped: nhrpd not running" in caplog.text, "a skip")
            assert calls == []
        finally:
            worker.cancel()
            await frr.close()

    with caplog.at_level(logging.INFO):
        asyncio.run(main())


def test_an_apply_made_meanwhile_is_not_undone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The audit read the running file, then ``frrdmvpnd apply`` (another process) applied a
    new configuration before the audit took the apply lock: the audit must not put the old
    one back (the lab saw charon's certificate connection replaced by the PSK one)."""
    world = World()
    stores = spoke_stores(tmp_path, world)
    old = stores.running_text()
    newer = (EXAMPLES / "lab-spoke1.conf").read_text().replace(" ip mtu 1400\n", " ip mtu 1380\n")
    assert newer != (EXAMPLES / "lab-spoke1.conf").read_text()

    def read_then_apply_elsewhere() -> str:
        del stores.running_text  # once: the apply reads the file itself
        other = Datastores(
            saved=stores.saved, running=stores.running, ports=lambda: world.ports(SPOKE)
        )
        report = other.apply_text(newer, origin="cli")
        assert report.ok, report.message
        world.log.clear()
        world.conns.clear()  # drift an audit would repair with the configuration it read
        return old

    stores.running_text = read_then_apply_elsewhere  # type: ignore[method-assign]
    with caplog.at_level(logging.INFO):
        asyncio.run(_reconfigure(stores, "audit", True))
    assert world.log == []
    assert " ip mtu 1380\n" in stores.running.read_text()
    assert (
        "not configuring again (audit): the running configuration changed meanwhile" in caplog.text
    )


@pytest.fixture
def fake_nhrpd(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A real process whose program is named nhrpd (a copy of sleep), run as this user."""
    program = tmp_path / "bin" / "nhrpd"
    program.parent.mkdir()
    shutil.copy(shutil.which("sleep") or "/bin/sleep", program)
    proc = subprocess.Popen([str(program), "60"])
    yield proc
    proc.kill()
    proc.wait()


def _frr_is(monkeypatch: pytest.MonkeyPatch, uid: int) -> None:
    monkeypatch.setattr(supervision, "FRR_USER", pwd.getpwuid(uid).pw_name)


def test_an_nhrpd_hung_on_its_way_out_is_ended(
    tmp_path: Path,
    fake_nhrpd: subprocess.Popen[bytes],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Seen under `systemctl restart frr`: nhrpd closed its vty and never exited."""
    monkeypatch.setattr(supervision, "STUCK_EXIT", 0.2)
    _frr_is(monkeypatch, os.getuid())  # the fake runs as this user

    async def main() -> None:
        nhrpd = FakeDaemon(tmp_path, "nhrpd", fake_nhrpd.pid)
        async with _watching(tmp_path, nhrpd):
            await nhrpd.stop()  # its vty socket closed, the process still runs
            for _ in range(300):
                if fake_nhrpd.poll() is not None:
                    break
                await asyncio.sleep(0.01)

    asyncio.run(main())
    assert fake_nhrpd.returncode == -signal.SIGKILL
    said = f"nhrpd (pid {fake_nhrpd.pid}) lost its vty connection 0.2 s ago, still runs"
    assert said in caplog.text


def test_a_live_foreign_or_other_users_process_is_not_ended(
    tmp_path: Path,
    fake_nhrpd: subprocess.Popen[bytes],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """docs/security.md P5: what user frr writes (the pid file, the vty socket) ends nothing
    but an nhrpd of its own on its way out."""
    _frr_is(monkeypatch, os.getuid())

    async def main() -> list[bool]:
        nhrpd = FakeDaemon(tmp_path, "nhrpd", fake_nhrpd.pid)
        await nhrpd.start()  # accepts: the connection broke, the daemon lives
        frr = Frr(tmp_path, timeout=1.0)
        service = _service(tmp_path, frr)
        ended = [await service.end_stuck_exit("nhrpd", fake_nhrpd.pid, 0.0)]
        await nhrpd.stop()
        ended.append(await service.end_stuck_exit("zebra", fake_nhrpd.pid, 0.0))  # not zebra
        ended.append(await service.end_stuck_exit("nhrpd", 2**22 + 1, 0.0))  # no such pid
        _frr_is(monkeypatch, os.getuid() + 1 if os.getuid() == 0 else 0)  # another user's
        ended.append(await service.end_stuck_exit("nhrpd", fake_nhrpd.pid, 0.0))
        monkeypatch.setattr(supervision, "FRR_USER", "no-such-user-here")
        ended.append(await service.end_stuck_exit("nhrpd", fake_nhrpd.pid, 0.0))
        return ended

    assert asyncio.run(main()) == [False] * 5
    assert fake_nhrpd.poll() is None
    assert "left alone: it answers on its vty socket: it lives" in caplog.text
    assert "left alone: it runs as uids" in caplog.text
    assert "left alone: no user no-such-user-here on this node" in caplog.text


def test_without_a_pidfd_the_hung_nhrpd_is_ended_by_pid(
    tmp_path: Path, fake_nhrpd: subprocess.Popen[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A seccomp filter (a container's) may refuse pidfd_open: the checks still hold and the
    signal goes by pid."""
    _frr_is(monkeypatch, os.getuid())

    def refused(pid: int, flags: int = 0) -> int:
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "pidfd_open", refused)

    async def main() -> bool:
        frr = Frr(tmp_path, timeout=1.0)  # no vty socket: refused
        service = _service(tmp_path, frr)
        return await service.end_stuck_exit("nhrpd", fake_nhrpd.pid, 0.0)

    assert asyncio.run(main())
    assert fake_nhrpd.wait(5) == -signal.SIGKILL


def test_why_a_process_is_left_alone_is_said() -> None:
    info = ProcessInfo("nhrpd", "S", (106, 106, 106, 106))
    assert refusal(info, "nhrpd", 106, "frr") is None
    assert refusal(info, "nhrpd", None, "frr") == "no user frr on this node"
    assert "'nhrpd''s now" in (refusal(info, "zebra", 106, "frr") or "")
    zombie = dataclasses.replace(info, state="Z")
    assert refusal(zombie, "nhrpd", 106, "frr") == "it is exiting (state Z)"
    setuid = dataclasses.replace(info, uids=(106, 0, 0, 0))
    assert refusal(setuid, "nhrpd", 106, "frr") == "it runs as uids 106 0 0 0, not frr's (106)"


def test_an_nhrpd_that_accepts_but_never_answers_is_ended(
    tmp_path: Path, fake_nhrpd: subprocess.Popen[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Simulation 9: nhrpd hung before closing its vty socket; frrdmvpnd's own command timed
    out and dropped the connection. The kernel still queues connections on the socket, so
    only an answer tells a live daemon from a hung one."""
    _frr_is(monkeypatch, os.getuid())

    async def main() -> bool:
        nhrpd = FakeDaemon(tmp_path, "nhrpd", fake_nhrpd.pid)
        nhrpd.silent.add("enable")  # hung: it accepts connections, answers nothing
        await nhrpd.start()
        frr = Frr(tmp_path, timeout=1.0)
        service = _service(tmp_path, frr)
        try:
            return await service.end_stuck_exit("nhrpd", fake_nhrpd.pid, 0.0)
        finally:
            await nhrpd.stop()

    assert asyncio.run(main())
    assert fake_nhrpd.wait(5) == -signal.SIGKILL
