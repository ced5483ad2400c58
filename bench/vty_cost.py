"""CPU of one look at nhrpd's tables: a ``vtysh`` process per look (frrdmvpnd before issue 13)
against the persistent vty session (after), on this machine's real nhrpd.

Run as root: ``.venv/bin/python bench/vty_cost.py [--looks 200]``. nhrpd runs in a private
namespace (:mod:`lab.host_frr`), configured as the lab hub; its tables are empty
(no peers here), so this is the fixed cost of asking. Prints CPU milliseconds per look, for
frrdmvpnd (with the vtysh processes it reaped) and for nhrpd.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import time
from pathlib import Path

from frrdmvpn.adapters.vtysh import Frr, nhrp_tables
from frrdmvpn.config.frr import render_frr
from frrdmvpn.config.frrdiff import diff
from frrdmvpn.config.parse import parse_strict
from lab.host_frr import HostFrr

COMMANDS = ("show ip nhrp cache json", "show dmvpn json", "show ip nhrp nhs json")
HUB = Path(__file__).resolve().parents[1] / "docs" / "examples" / "lab-hub.conf"
TICK = os.sysconf("SC_CLK_TCK")


def _own_cpu() -> float:
    """Seconds of CPU of this process and of the children it reaped."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def _cpu_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def _spawning(run: Path, looks: int) -> None:
    argv = ["vtysh", "--vty_socket", str(run), "-d", "nhrpd"]
    for command in COMMANDS:
        argv += ["-c", command]
    for _ in range(looks):
        subprocess.run(argv, capture_output=True, check=True)


async def _session(run: Path, looks: int) -> None:
    frr = Frr(run)
    try:
        for _ in range(looks):
            await nhrp_tables(frr)
    finally:
        await frr.close()


async def _configure(run: Path) -> None:
    frr = Frr(run)
    try:
        desired = render_frr(parse_strict(HUB.read_text())).nhrpd
        await frr.configure("nhrpd", diff(await frr.running_config("nhrpd"), desired))
    finally:
        await frr.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--looks", type=int, default=200)
    looks = parser.parse_args().looks
    host = HostFrr()
    try:
        host.start()
        asyncio.run(_configure(host.run))
        nhrpd = host.pid("nhrpd")
        assert nhrpd is not None
        print(
            f"| way ({looks} looks at 3 tables) | frrdmvpnd CPU ms/look | nhrpd CPU ms/look "
            "| wall ms/look |\n|---|---|---|---|"
        )
        for name in ("vtysh process per look", "persistent vty session"):
            own, daemon, wall = _own_cpu(), _cpu_of(nhrpd), time.monotonic()
            if name.startswith("vtysh"):
                _spawning(host.run, looks)
            else:
                asyncio.run(_session(host.run, looks))
            own, daemon = _own_cpu() - own, _cpu_of(nhrpd) - daemon
            wall = time.monotonic() - wall
            print(
                f"| {name} | {1000 * own / looks:.2f} | {1000 * daemon / looks:.2f} "
                f"| {1000 * wall / looks:.2f} |"
            )
    finally:
        host.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
