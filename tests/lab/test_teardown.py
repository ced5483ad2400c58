"""`frrdmvpn-lab down` leaves no namespace, bridge, mount or process behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab import topology as topo
from lab.netns import Lab, wait_for

pytestmark = [pytest.mark.lab, pytest.mark.lab_last]


def _mount_lines_mentioning(path: Path) -> list[str]:
    found = []
    for info in Path("/proc").glob("[0-9]*/mountinfo"):
        try:
            found += [ln for ln in info.read_text().splitlines() if str(path) in ln]
        except OSError:
            continue
    return found


def test_down_leaves_nothing_behind(lab: Lab) -> None:
    if dest := os.environ.get("FRRDMVPN_LAB_ARTIFACTS"):
        lab.collect_logs(Path(dest))
    pids = [p for ps in lab.pids().values() for p in ps]
    assert pids, "the lab should be running before it is taken down"
    down = subprocess.run(
        [sys.executable, "-m", "lab.cli", "down"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert down.returncode == 0, down.stderr
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    assert topo.NS_PREFIX not in netns.stdout
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True)
    assert topo.BRIDGE not in links.stdout
    wait_for(
        "lab processes to be reaped", lambda: not any(Path(f"/proc/{p}").exists() for p in pids), 15
    )
    assert _mount_lines_mentioning(lab.state_dir) == []
    assert not lab.state_dir.exists()
