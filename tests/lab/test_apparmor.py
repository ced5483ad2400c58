"""The lab runs under AppArmor as Debian loads it, and nothing of ours, charon's or FRR's is
refused or would be (issue 16).

The guest loads every profile in /etc/apparmor.d at boot as ``apparmor.service`` does
(lab/guest-init.sh). This module runs after every other lab test (``lab_audit``), so the
kernel log it reads holds what all of them did: charon restarted and killed, swanctl,
tcpdump captures, the package's units, the shell.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from lab import topology as topo
from lab.netns import Lab

pytestmark = [pytest.mark.lab, pytest.mark.lab_audit, pytest.mark.usefixtures("frrdmvpn_mode")]

#: The profiles Debian's strongSwan packages ship, with the mode each declares (both
#: releases; the starter's charon only where strongswan-charon is installed).
STRONGSWAN_PROFILES = {
    "/usr/sbin/swanctl": "enforce",
    "/usr/sbin/charon-systemd": "complain",
    "/usr/lib/ipsec/lookip": "enforce",
}
STARTER_CHARON = "/usr/lib/ipsec/charon"
AUDIT = re.compile(r'apparmor="(DENIED|ALLOWED)"')
#: A capability the kernel asks about only optionally, auditing nothing (e.g. CAP_SYS_ADMIN
#: for the memory reserve when a process maps memory: cap_vm_enough_memory): under enforce it
#: is refused silently and the caller goes on; only a complain-mode profile logs it (seen
#: for charon-systemd on Debian 13). Nothing would be refused that the program needs.
OPTIONAL = 'info="optional: no audit"'


def _aa_status() -> dict[str, object]:
    out = subprocess.run(["aa-status", "--json"], capture_output=True, text=True, check=True)
    status: dict[str, object] = json.loads(out.stdout)
    return status


def _audit_lines() -> list[str]:
    dmesg = subprocess.run(["dmesg"], capture_output=True, text=True, check=True).stdout
    return [ln for ln in dmesg.splitlines() if AUDIT.search(ln)]


def test_debians_profiles_are_loaded_in_their_modes() -> None:
    assert Path("/sys/module/apparmor/parameters/enabled").read_text().strip() == "Y"
    profiles = _aa_status()["profiles"]
    assert isinstance(profiles, dict)
    expected = dict(STRONGSWAN_PROFILES)
    if Path("/etc/apparmor.d/usr.lib.ipsec.charon").exists():  # Debian 12's strongswan-charon
        expected[STARTER_CHARON] = "enforce"
    assert {p: profiles.get(p) for p in expected} == expected
    assert profiles.get("tcpdump") == "enforce"


def test_every_charon_of_the_lab_runs_confined(lab: Lab) -> None:
    processes = _aa_status()["processes"]
    assert isinstance(processes, dict)
    confined = {int(p["pid"]) for p in processes.get(topo.CHARON, [])}
    charons = {lab.charon_pid(n.name) for n in topo.NODES}
    assert None not in charons, "a node's charon is not running"
    assert charons <= confined, f"charons {charons}, confined by {topo.CHARON}: {confined}"


def test_nothing_was_refused_or_would_have_been(lab: Lab, tmp_path: Path) -> None:
    # The kernel log shows a refusal at all: tcpdump (enforce) may not write this file.
    probe = f"/etc/frrdmvpn-apparmor-probe-{tmp_path.name}"  # outside its rules
    tcpdump = ["tcpdump", "-Z", "root", "-c", "1", "-w", probe]  # as root: only AppArmor refuses
    refused = subprocess.run(
        ["ip", "netns", "exec", topo.node("hub").netns, "timeout", "10", *tcpdump],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert refused.returncode != 0, refused.stdout
    lines = _audit_lines()
    if dest := os.environ.get("FRRDMVPN_LAB_ARTIFACTS"):  # every line, for whoever reads a failure
        Path(dest).mkdir(parents=True, exist_ok=True)
        (Path(dest) / "apparmor-audit.log").write_text("".join(f"{ln}\n" for ln in lines))
    assert any("DENIED" in ln and probe in ln for ln in lines), lines
    # Everything else: nothing refused (enforce), nothing a complain profile would refuse.
    others = [ln for ln in lines if probe not in ln and not ("ALLOWED" in ln and OPTIONAL in ln)]
    assert others == []
