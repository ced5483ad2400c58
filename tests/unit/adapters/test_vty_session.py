"""The vty adapter against a daemon speaking FRR's framing (tests/fakes/vty.py): one
persistent session, ``enable`` once, one command at a time, configuration batches, every
failure an error with the daemon's words, and the loss and return of the daemon reported."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import cast

import pytest

from frrdmvpn.adapters.vtysh import Frr, SyncFrr, VtyEvent, VtyshError, nhrp_tables, read_pid
from frrdmvpn.config.frr import FRR_8_4, FrrVersion
from tests.fakes.vty import FakeDaemon

pytestmark = pytest.mark.unit


def run(
    test: Callable[[FakeDaemon, Frr, list[VtyEvent]], Awaitable[None]],
    tmp: Path,
    timeout: float = 2.0,
) -> None:
    async def main() -> None:
        daemon = FakeDaemon(tmp)
        await daemon.start()
        frr = Frr(tmp, timeout=timeout)
        events: list[VtyEvent] = []
        frr.listeners.append(events.append)
        try:
            await test(daemon, frr, events)
        finally:
            await frr.close()
            await daemon.stop()

    asyncio.run(main())


def test_one_session_enabled_once_one_command_at_a_time(tmp_path: Path) -> None:
    async def test(daemon: FakeDaemon, frr: Frr, events: list[VtyEvent]) -> None:
        tables = await asyncio.gather(*(nhrp_tables(frr) for _ in range(5)))
        assert all(t.bindings == [] and t.cache == [] and t.nhs == [] for t in tables)
        assert await frr.running_config("nhrpd") == "frr version 8.4.4\n!\n"
        assert daemon.connections == 1
        assert daemon.received[0] == "enable"
        assert daemon.received.count("enable") == 1
        assert len(daemon.received) == 1 + 5 * 3 + 1
        assert not daemon.overlapped
        assert events == [VtyEvent("nhrpd", True, 1000, None)]

    run(test, tmp_path)


def test_refusals_carry_the_daemons_words(tmp_path: Path) -> None:
    async def test(daemon: FakeDaemon, frr: Frr, events: list[VtyEvent]) -> None:
        with pytest.raises(
            VtyshError,
            match=r"nhrpd refused 'show bogus': % \[NHRP\] Unknown "
            r"command: show bogus",
        ):
            await frr.command("nhrpd", "show bogus")
        with pytest.raises(VtyshError, match="no JSON in the output"):
            await frr.show_json("echo not json")
        assert await frr.command("nhrpd", "echo still here") == "still here\n"
        assert daemon.connections == 1  # a refusal leaves the session as it was

    run(test, tmp_path)


def test_configuration_is_one_batch_ended_even_after_a_refusal(tmp_path: Path) -> None:
    async def test(daemon: FakeDaemon, frr: Frr, events: list[VtyEvent]) -> None:
        lines = ["configure terminal", "interface gre1", "ip nhrp network-id 1", "exit", "end"]
        await frr.configure("nhrpd", lines)
        assert daemon.received[1:] == lines
        assert daemon.configured == ["interface gre1", "ip nhrp network-id 1", "exit"]
        daemon.refuse.add("ip nhrp holdtime 0")
        daemon.received.clear()
        bad = [
            "configure terminal",
            "interface gre1",
            "ip nhrp holdtime 0",
            "ip nhrp shortcut",
            "exit",
            "end",
        ]
        with pytest.raises(
            VtyshError,
            match=r"nhrpd refused 'ip nhrp holdtime 0': % \[NHRP\] "
            "cannot ip nhrp holdtime 0",
        ):
            await frr.configure("nhrpd", bad)
        assert daemon.received == [
            "configure terminal",
            "interface gre1",
            "ip nhrp holdtime 0",
            "end",
        ]
        assert await frr.running_config("nhrpd")  # back in the enable node
        await frr.configure("nhrpd", ["configure terminal", "end"])  # nothing to do: nothing sent
        assert daemon.received[-1] == "show running-config"

    run(test, tmp_path)


def test_a_command_too_long_for_frr_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    async def test(daemon: FakeDaemon, frr: Frr, events: list[VtyEvent]) -> None:
        await frr.command("nhrpd", "echo first")
        sent = list(daemon.received)
        with pytest.raises(VtyshError, match="nhrpd: vty command of 4005 bytes is longer"):
            await frr.command("nhrpd", "echo " + "x" * 4000)
        with pytest.raises(VtyshError, match="cannot contain NUL, CR or LF"):
            await frr.configure("nhrpd", ["configure terminal", "description a\nb", "end"])
        assert daemon.received == sent

    run(test, tmp_path)


def test_an_unanswered_command_times_out_and_the_next_one_starts_afresh(tmp_path: Path) -> None:
    async def test(daemon: FakeDaemon, frr: Frr, events: list[VtyEvent]) -> None:
        daemon.silent.add("show dmvpn json")
        with pytest.raises(VtyshError, match=r"nhrpd did not answer 'show dmvpn json' in 0\.3 s"):
            await frr.command("nhrpd", "show dmvpn json")
        assert not frr.connected("nhrpd")
        assert await frr.command("nhrpd", "echo again") == "again\n"
        assert daemon.connections == 2
        assert [e.connected for e in events] == [True, False, True]
        assert not events[2].restarted  # the same daemon

    run(test, tmp_path, timeout=0.3)


def test_a_reply_to_no_command_closes_the_session(tmp_path: Path) -> None:
    async def test(daemon: FakeDaemon, frr: Frr, events: list[VtyEvent]) -> None:
        daemon.chatty.add("echo twice")
        await frr.command("nhrpd", "echo twice")
        await frr.session("nhrpd").wait_lost()
        assert events[-1] == VtyEvent(
            "nhrpd", False, 1000, reason="nhrpd sent a reply to no command"
        )
        assert await frr.command("nhrpd", "echo fresh") == "fresh\n"

    run(test, tmp_path)


def test_a_restarted_daemon_is_reported_with_its_new_pid(tmp_path: Path) -> None:
    async def test(daemon: FakeDaemon, frr: Frr, events: list[VtyEvent]) -> None:
        keeper = asyncio.create_task(frr.keep(["nhrpd"]))
        while not frr.connected("nhrpd"):
            await asyncio.sleep(0.01)
        await daemon.stop()  # kill -9: the connection ends
        await frr.session("nhrpd").wait_lost()
        with pytest.raises(VtyshError, match="cannot reach nhrpd"):
            await frr.command("nhrpd", "echo anyone")
        await daemon.restart(pid=2000)
        while not frr.connected("nhrpd"):
            await asyncio.sleep(0.01)
        keeper.cancel()
        lost, back = events[1], events[-1]
        assert (lost.connected, lost.pid, lost.reason) == (
            False,
            1000,
            "nhrpd closed its vty connection",
        )
        assert back == VtyEvent("nhrpd", True, 2000, 1000)
        assert back.restarted
        assert daemon.received[0] == "enable"  # the new process is enabled too

    run(test, tmp_path)


def test_settled_waits_for_every_daemon_seen_before(tmp_path: Path) -> None:
    async def test(daemon: FakeDaemon, frr: Frr, events: list[VtyEvent]) -> None:
        zebra = FakeDaemon(tmp_path, "zebra", pid=10)
        await zebra.start()
        await frr.command("zebra", "echo z")
        await frr.command("nhrpd", "echo n")
        await zebra.stop()
        await frr.session("zebra").wait_lost()
        assert not await frr.settled(0.2)
        await zebra.restart(pid=11)
        await frr.session("zebra").connect()
        assert await frr.settled(0.2)

    run(test, tmp_path)


def test_blocking_callers_share_the_loops_session(tmp_path: Path) -> None:
    async def test(daemon: FakeDaemon, frr: Frr, events: list[VtyEvent]) -> None:
        sync = SyncFrr(frr, asyncio.get_running_loop())
        text = await asyncio.to_thread(sync.running_config, "nhrpd")
        assert text.startswith("frr version")
        await asyncio.to_thread(sync.configure, "nhrpd", ["configure terminal", "line", "end"])
        assert daemon.configured == ["line"]
        assert daemon.connections == 1
        with pytest.raises(RuntimeError, match="would deadlock"):
            sync.running_config("nhrpd")

    run(test, tmp_path)


def test_a_blocking_caller_without_a_loop_gets_a_connection_of_its_own(tmp_path: Path) -> None:
    ready, done = threading.Event(), threading.Event()
    fake = FakeDaemon(tmp_path)

    async def serve() -> None:
        await fake.start()
        ready.set()
        while not done.is_set():
            await asyncio.sleep(0.01)
        await fake.stop()

    server = threading.Thread(target=asyncio.run, args=(serve(),))
    server.start()
    try:
        ready.wait(5)
        assert SyncFrr(run_dir=tmp_path).running_config("nhrpd").startswith("frr version")
        SyncFrr(run_dir=tmp_path).configure(
            "nhrpd", ["configure terminal", "interface gre1", "end"]
        )
    finally:
        done.set()
        server.join(5)
    assert fake.connections == 2
    assert fake.configured == ["interface gre1"]


def test_the_frr_release_is_read_and_a_refused_secret_is_not_repeated(tmp_path: Path) -> None:
    async def main() -> None:
        fake = FakeDaemon(tmp_path, version="FRRouting 10.3 (hub) on Linux(6.12.118+deb13-amd64).")
        fake.refuse.add("ip nhrp authentication s3cr3t")
        await fake.start()
        frr = Frr(tmp_path)
        sync = SyncFrr(frr, asyncio.get_running_loop())
        try:
            assert await asyncio.to_thread(sync.version) == FrrVersion(10, 3)
            with pytest.raises(VtyshError) as refused:
                await frr.configure("nhrpd", ["interface gre1", "ip nhrp authentication s3cr3t"])
            assert "s3cr3t" not in str(refused.value)
            assert "ip nhrp authentication <removed>" in str(refused.value)
            fake.version = "FRRouting (a build without a number) on Linux."
            assert await asyncio.to_thread(sync.version) == FRR_8_4  # assumed when unnamed
        finally:
            await frr.close()
            await fake.stop()

    asyncio.run(main())


def test_pid_files() -> None:
    assert read_pid(Path("/nonexistent/nhrpd.pid")) is None


def test_the_supervisor_never_waits_for_a_daemon_that_is_not_connected(tmp_path: Path) -> None:
    async def test(daemon: FakeDaemon, frr: Frr, events: list[VtyEvent]) -> None:
        with pytest.raises(VtyshError, match="nhrpd is not connected"):
            await nhrp_tables(frr, connect=False)
        assert daemon.connections == 0
        await frr.session("nhrpd").connect()
        assert (await nhrp_tables(frr, connect=False)).cache == []
        daemon.silent.add("enable")  # hung: it accepts connections, answers nothing
        await daemon.stop()
        await daemon.start()
        await frr.session("nhrpd").wait_lost()
        with pytest.raises(VtyshError, match="nhrpd is not connected"):
            await nhrp_tables(frr, connect=False)
        with pytest.raises(VtyshError, match=r"nhrpd did not answer 'enable' in 0\.3 s"):
            await frr.session("nhrpd").connect()

    run(test, tmp_path, timeout=0.3)


class _Answers:
    """nhrpd's three tables as text, as :func:`nhrp_tables` asks them."""

    def __init__(self, cache: str) -> None:
        self.cache = cache

    async def command(self, daemon: str, command: str, *, connect: bool = True) -> str:
        assert daemon == "nhrpd"
        return self.cache if "cache" in command else '{"attr":{"entriesCount":0},"table":[]}'


_ENTRY = (
    '{"attr":{"entriesCount":1},"table":[{"interface":"dmvpn0","type":"dynamic",'
    '"protocol":"192.0.2.11","nbma":"198.51.100.11","claimed_nbma":"198.51.100.11",'
    '"used":false,"timeout":true,"auth":false,"identity":"198.51.100.11"}]}'
)


def test_the_same_answers_keep_the_tables_parsed_before() -> None:
    async def main() -> None:
        nhrpd = _Answers(_ENTRY)
        frr = cast("Frr", nhrpd)
        first = await nhrp_tables(frr)
        assert [str(b.nbma) for b in first.bindings] == ["198.51.100.11"]
        assert await nhrp_tables(frr, previous=first) is first  # nothing parsed again
        nhrpd.cache = _ENTRY.replace("198.51.100.11", "198.51.100.12")
        second = await nhrp_tables(frr, previous=first)
        assert [str(b.nbma) for b in second.bindings] == ["198.51.100.12"]
        nhrpd.cache = "not json"
        with pytest.raises(VtyshError, match="show ip nhrp cache json"):
            await nhrp_tables(frr, previous=second)

    asyncio.run(main())
