"""Measure the lab: VM boot, lab up (by phase) and convergence milestones.

Run as root from the checkout: ``.venv/bin/python bench/lab_timings.py``. Where the kernel
lacks GRE/ESP it boots its own VM (``/var/tmp/frrdmvpn-lab/vm-bench``) and measures inside.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from lab import topology as topo
from lab.kernel import native_capable
from lab.netns import Lab, wait_for
from lab.vm import LabVm


def measure_inside() -> None:
    lab = Lab(Path("/var/tmp/frrdmvpn-lab/bench"))
    t0 = time.monotonic()
    for phase, at in lab.up().items():
        print(f"lab up: {phase} ready at {at:.1f} s")
    print(f"lab up: total {time.monotonic() - t0:.1f} s")
    t1 = time.monotonic()
    s1, s2 = topo.node("spoke1"), topo.node("spoke2")

    def milestone(what: str, check: Callable[[], bool]) -> None:
        wait_for(what, check)
        print(f"converged: {what} at +{time.monotonic() - t1:.1f} s after daemons up")

    def registered() -> bool:
        table = lab.vtysh_json("hub", "show ip nhrp cache json")["table"]
        return len([e for e in table if e["type"] == "dynamic"]) == 2

    def ospf_full() -> bool:
        nbrs = lab.vtysh_json("hub", "show ip ospf neighbor json")["neighbors"]
        return sum(bool(v[0]["converged"] == "Full") for v in nbrs.values()) == 2

    def lan_ping() -> bool:
        argv = ["ping", "-c1", "-W1", "-I", str(s1.lan.ip), str(s2.lan.ip)]
        return lab.run("spoke1", argv, check=False).returncode == 0

    def shortcut() -> bool:
        lan_ping()
        table = lab.vtysh_json("spoke1", "show ip nhrp shortcut json")["table"]
        return any(e["prefix"] == str(s2.lan.network) for e in table)

    milestone("both spokes registered at the hub", registered)
    milestone("hub has 2 OSPF neighbours Full", ospf_full)
    milestone("spoke1 LAN -> spoke2 LAN ping", lan_ping)
    milestone("NHRP shortcut spoke1 -> spoke2", shortcut)
    lab.down()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    if parser.parse_args().inside or native_capable():
        measure_inside()
        return 0
    vm = LabVm(Path("/var/tmp/frrdmvpn-lab/vm-bench"))
    try:
        print(f"vm: booted in {vm.start():.1f} s", flush=True)
        return vm.run([sys.executable, os.path.abspath(__file__), "--inside"])
    finally:
        vm.stop()


if __name__ == "__main__":
    raise SystemExit(main())
