"""The vty adapter against REAL FRR daemons: Debian's zebra, nhrpd and ospfd, started here in a
private network and mount namespace (/run is a private tmpfs there, so nhrpd cannot reach any
charon of this machine), their vty sockets and pid files in a directory of this test.

In the unit tier: it needs root and the frr package (both present where CI runs) and takes
well under a second. The kernel's neighbour notifications are checked the same way, in a
network namespace of their own."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from frrdmvpn.adapters.vtysh import Frr, VtyEvent, VtyshError, nhrp_tables, read_pid
from frrdmvpn.config.frr import render_frr
from frrdmvpn.config.frrdiff import diff, nhrp_enabled_unauthorized
from frrdmvpn.config.parse import parse_strict
from lab.host_frr import FRR, HostFrr
from tests.fakes.world import EXAMPLES

pytestmark = [
    pytest.mark.unit,
    pytest.mark.skipif(os.geteuid() != 0, reason="starting FRR daemons in a namespace needs root"),
    pytest.mark.skipif(not (FRR / "nhrpd").exists(), reason="needs Debian's frr package"),
]


@pytest.fixture
def daemons() -> Iterator[HostFrr]:
    frr = HostFrr(daemons=("nhrpd", "ospfd"))
    try:
        frr.start()
        yield frr
    finally:
        frr.stop()


def test_real_nhrpd_tables_configuration_and_refusals(daemons: HostFrr) -> None:
    async def main() -> None:
        frr = Frr(daemons.run)
        try:
            tables = await nhrp_tables(frr)  # empty tables answer CMD_WARNING with valid JSON
            assert (tables.bindings, tables.sas, tables.cache, tables.nhs) == ([], {}, [], [])
            examples = sorted(EXAMPLES.glob("*.conf"))
            for path in examples:  # one after the other: each diff starts from the last
                rendered = render_frr(parse_strict(path.read_text())).daemons()
                for daemon, desired in rendered.items():
                    running = await frr.running_config(daemon)
                    lines = diff(running, desired)
                    assert nhrp_enabled_unauthorized(running, lines, desired) == []
                    await frr.configure(daemon, lines)
                    assert diff(await frr.running_config(daemon), desired) == [], path.name
            with pytest.raises(VtyshError, match=r"% \[NHRP\] Unknown command: show bogus"):
                await frr.command("nhrpd", "show bogus")
            with pytest.raises(VtyshError, match=r"nhrpd refused 'ip nhrp holdtime 0': % "):
                await frr.configure(
                    "nhrpd",
                    ["configure terminal", "interface dmvpn0", "ip nhrp holdtime 0", "exit", "end"],
                )
            with pytest.raises(VtyshError, match="longer than 3583"):
                await frr.command("nhrpd", "echo " + "x" * 4000)
            assert await frr.command("nhrpd", "echo in step") == "in step\n"
            assert (await frr.command("zebra", "show version")).startswith("FRRouting")
            assert frr.session("nhrpd").pid == read_pid(daemons.run / "nhrpd.pid")
        finally:
            await frr.close()

    asyncio.run(main())


def test_a_killed_nhrpd_is_seen_at_once_and_its_successor_configured(daemons: HostFrr) -> None:
    hub = render_frr(parse_strict((EXAMPLES / "lab-hub.conf").read_text())).nhrpd

    async def main() -> None:
        frr = Frr(daemons.run)
        events: list[VtyEvent] = []
        frr.listeners.append(events.append)
        keeper = asyncio.create_task(frr.keep(["zebra", "nhrpd"]))
        try:
            while not (frr.connected("zebra") and frr.connected("nhrpd")):
                await asyncio.sleep(0.01)
            await frr.configure("nhrpd", diff(await frr.running_config("nhrpd"), hub))
            old = daemons.kill("nhrpd")
            assert old is not None
            await frr.session("nhrpd").wait_lost()
            assert events[-1] == VtyEvent(
                "nhrpd", False, old, reason="nhrpd closed its vty connection"
            )
            await asyncio.to_thread(daemons.start_daemon, "nhrpd")
            while not frr.connected("nhrpd"):
                await asyncio.sleep(0.01)
            back = events[-1]
            assert back.restarted
            assert (back.previous, back.pid) == (old, read_pid(daemons.run / "nhrpd.pid"))
            # The new nhrpd knows nothing of the tunnel: no event socket, no protection.
            running = await frr.running_config("nhrpd")
            assert "nhrp event socket" not in running
            assert "network-id" not in running
            lines = diff(running, hub)
            assert nhrp_enabled_unauthorized(running, lines, hub) == []
            await frr.configure("nhrpd", lines)
            assert diff(await frr.running_config("nhrpd"), hub) == []
            assert frr.connected("zebra")  # zebra's session never noticed
            assert [e.daemon for e in events if not e.connected] == ["nhrpd"]
        finally:
            keeper.cancel()
            await frr.close()

    asyncio.run(main())


MONITOR = """
import asyncio, json, subprocess
from frrdmvpn.adapters.neighbors import NeighborMonitor

def sh(cmd):
    subprocess.run(cmd, shell=True, check=True)

async def main():
    sh("ip link add t0 type veth peer name t1 && ip link set t0 up && ip link set t1 up"
       " && ip addr add 192.0.2.1/24 dev t0")
    woken, seen = [], []
    mon = NeighborMonitor(lambda: woken.append(1))
    mon.open()
    mon.watch({"t0"})
    def table():
        return sorted([str(x.dst), x.lladdr, x.state] for x in mon.neighbors()
                      if x.dst.version == 4)
    async def settle(lladdr):
        # until the change is seen (the kernel may notify more than once per change, and
        # a loaded machine delays the notification); what was seen last, after 20 s
        for _ in range(2000):
            if woken and [e[1] for e in table()] == ([lladdr] if lladdr else []):
                break
            await asyncio.sleep(0.01)
        seen.append(table())
    sh("ip neigh add 192.0.2.5 lladdr 02:00:00:00:00:05 dev t0 nud reachable")
    await settle("02:00:00:00:00:05")
    sh("ip neigh replace 192.0.2.5 lladdr 02:00:00:00:00:06 dev t0 nud reachable")
    await settle("02:00:00:00:00:06")
    sh("ip neigh del 192.0.2.5 dev t0")
    await settle(None)
    mon.close()
    print(json.dumps(seen))

asyncio.run(main())
"""


def test_the_neighbour_table_follows_the_kernel() -> None:
    done = subprocess.run(
        ["unshare", "--net", sys.executable, "-c", MONITOR],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [
        [["192.0.2.5", "02:00:00:00:00:05", "REACHABLE"]],
        [["192.0.2.5", "02:00:00:00:00:06", "REACHABLE"]],
        [],
    ]
