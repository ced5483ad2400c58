"""Measure what the lab costs at rest: CPU per process per node, and simple commands' wall time.

Run as root from the checkout, with the package the nodes run:
``FRRDMVPN_LAB_DEB=build/deb/frrdmvpn_*_all.deb .venv/bin/python bench/idle_cpu.py``.
Where the kernel lacks GRE/ESP it boots its own VM (``/var/tmp/frrdmvpn-lab/vm-bench``).
The lab converges (both spokes registered, OSPF full), settles, then nothing happens for
``--window`` seconds while every lab process's CPU time is read from /proc (a process's
time includes the children it reaped: frrdmvpnd's ``vtysh`` runs count as frrdmvpnd's).
``--swarm N`` adds N spokes of the spoke swarm first (a hub at rest with N peers).
``--sa-audit S``: the proxies audit their SA tables every S seconds (default 60, as a router
does; the lab's tests use 5).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from lab import topology as topo
from lab.kernel import native_capable
from lab.netns import Lab, LabError, program_name, wait_for
from lab.swarm import Swarm
from lab.vm import LabVm

TICK = os.sysconf("SC_CLK_TCK")
WATCHED = ("frrdmvpnd", "frrdmvpn-proxy", "nhrpd", "zebra", "ospfd", "charon", "vtysh")


def _ticks(pid: int) -> int | None:
    """utime + stime + cutime + cstime of ``pid`` in clock ticks."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return sum(int(f) for f in fields[11:15])


def _sample(lab: Lab) -> dict[tuple[str, int], tuple[str, int]]:
    """(node, pid) -> (program, ticks) for every watched process in the lab."""
    by_ns = {n.netns: n.name for n in lab.nodes}
    out = {}
    for ns, pids in lab.pids().items():
        for pid in pids:
            name, ticks = program_name(pid, WATCHED), _ticks(pid)
            if ns in by_ns and name is not None and ticks is not None:
                out[(by_ns[ns], pid)] = (name, ticks)
    return out


def _busy() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine (the guest, inside the VM)."""
    cpu = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = cpu[3] + cpu[4]
    return sum(cpu) - idle, sum(cpu)


def _timed(label: str, fn: Callable[[], object]) -> None:
    t0 = time.monotonic()
    fn()
    print(f"| `{label}` | {time.monotonic() - t0:.2f} s |")


def measure_inside(window: float, settle: float, spokes: int) -> None:
    lab = Lab(Path("/var/tmp/frrdmvpn-lab/bench"))
    lab.up()
    swarm = Swarm(lab)
    try:

        def converged() -> bool:
            table = lab.vtysh_json("hub", "show ip nhrp cache json")["table"]
            nbrs = lab.vtysh_json("hub", "show ip ospf neighbor json")["neighbors"]
            full = sum(bool(v[0]["converged"] == "Full") for v in nbrs.values())
            return len([e for e in table if e["type"] == "dynamic"]) == 2 and full == 2

        wait_for("the lab to converge", converged, 300)
        if spokes:
            swarm.up(spokes)
            with contextlib.suppress(LabError):  # measured anyway: the count is printed
                wait_for("the swarm registered", lambda: swarm.registered() == spokes, 300)
            print(f"swarm: {swarm.registered()} of {spokes} spokes registered with the hub")
        time.sleep(settle)
        before, busy0, t0 = _sample(lab), _busy(), time.monotonic()
        time.sleep(window)
        after, busy1, t1 = _sample(lab), _busy(), time.monotonic()
        wall = t1 - t0
        print(
            f"\nIdle window {wall:.0f} s, machine busy "
            f"{100 * (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]):.0f} % "
            f"of {os.cpu_count()} CPUs\n"
        )
        print("| node | " + " | ".join(WATCHED[:-1]) + " |")
        print("|---" * len(WATCHED) + "|")
        for n in lab.nodes:
            cells = []
            for prog in WATCHED[:-1]:
                used = sum(
                    after[k][1] - before[k][1]
                    for k in after
                    if k in before and k[0] == n.name and after[k][0] == prog
                )
                cells.append(f"{100 * used / TICK / wall:.1f} %")
            print(f"| {n.name} | " + " | ".join(cells) + " |")
        print("\n| command (wall) | time |\n|---|---|")
        _timed("run spoke2 true", lambda: lab.run("spoke2", ["true"]))
        _timed(
            "hub swanctl --list-sas",
            lambda: lab.run(
                "hub", ["swanctl", "--list-sas", "--uri", f"unix://{lab.charon_socket}"]
            ),
        )
        _timed("hub vtysh show dmvpn", lambda: lab.vtysh("hub", "show dmvpn"))
        _timed("status", lab.status)
        print(f"\n(nodes: {', '.join(n.name for n in lab.nodes)}; {topo.NS_PREFIX}*)")
    finally:
        if spokes:
            swarm.down()
        lab.down()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--window", type=float, default=60.0, help="seconds measured")
    parser.add_argument("--settle", type=float, default=20.0, help="seconds after converging")
    parser.add_argument(
        "--swarm", type=int, default=0, help="spokes of the spoke swarm to add (lab/swarm.py)"
    )
    parser.add_argument(
        "--sa-audit", type=int, default=60, help="seconds between the proxies' SA-table audits"
    )
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.inside:  # read by lab.topology: in this process, or passed to the VM's
        os.environ["FRRDMVPN_LAB_SA_AUDIT"] = str(args.sa_audit)
    if args.inside or native_capable():
        measure_inside(args.window, args.settle, args.swarm)
        return 0
    vm = LabVm(Path("/var/tmp/frrdmvpn-lab/vm-bench"))
    try:
        print(f"vm: booted in {vm.start():.1f} s", flush=True)
        deb = os.environ.get("FRRDMVPN_LAB_DEB", "")
        env = {
            "FRRDMVPN_LAB_DEB": os.path.abspath(deb) if deb else "",
            "FRRDMVPN_LAB_SA_AUDIT": str(args.sa_audit),
        }
        return vm.run(
            [
                sys.executable,
                os.path.abspath(__file__),
                "--inside",
                "--window",
                str(args.window),
                "--settle",
                str(args.settle),
                "--swarm",
                str(args.swarm),
            ],
            cwd=os.getcwd(),
            env=env,
        )
    finally:
        vm.stop()


if __name__ == "__main__":
    raise SystemExit(main())
