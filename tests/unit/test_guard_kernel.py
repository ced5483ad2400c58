"""The guards follow the addresses against the real kernel (issue 14, hole 4): in a network
namespace of its own, frrdmvpnd's service reads rtnetlink's address notifications and its
guard keeper changes the real nftables set and XFRM block policies; GRE sent from a raw
socket shows what they stop. (The host kernel has no GRE or ESP: the lab sends real
tunnels, tests/lab/test_guards_follow.py.)"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.netns import in_netns

pytestmark = [
    pytest.mark.unit,
    pytest.mark.skipif(
        os.geteuid() != 0 or not all(shutil.which(p) for p in ("unshare", "nft", "ip")),
        reason="needs root, unshare, nft and ip",
    ),
]

SPOKE = Path(__file__).resolve().parents[2] / "docs/examples/lab-spoke1.conf"

SCRIPT = r"""
import asyncio, dataclasses, errno, json, socket, subprocess, sys, tempfile
from ipaddress import IPv4Address
from pathlib import Path
from frrdmvpn.adapters import config_store
from frrdmvpn.adapters.guard import KernelGuard
from frrdmvpn.config.parse import parse_strict
from frrdmvpn.guards import GuardKeeper
from frrdmvpn.core.guard_rules import GuardSpec
from frrdmvpn.supervision import Service, ensure_guard

OLD, NEW = "198.51.100.11", "198.51.100.111"
SPOKE = parse_strict(Path(sys.argv[1]).read_text())  # tunnel source eth0
MOVED = dataclasses.replace(SPOKE, interfaces=(
    dataclasses.replace(SPOKE.interfaces[0], source=IPv4Address(NEW)),))

def sh(cmd):
    subprocess.run(cmd, shell=True, check=True)

def guarded():
    listed = subprocess.run(["nft", "-j", "list", "set", "inet", "frrdmvpn_guard", "nbma"],
                            capture_output=True, text=True, check=True).stdout
    sets = [o["set"] for o in json.loads(listed)["nftables"] if "set" in o]
    nft = sorted(sets[0].get("elem", []))
    policies = subprocess.run(["ip", "xfrm", "policy", "show"], capture_output=True,
                              text=True, check=True).stdout
    xfrm = sorted(a for a in (OLD, NEW) if f"src {a}/32 dst 0.0.0.0/0 proto gre" in policies)
    return {"nft": nft, "xfrm": xfrm}

def gre_from(src):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_GRE)
    try:
        s.bind((src, 0))
        s.sendto(b"\0\0\x08\0" + bytes(20), ("198.51.100.1", 0))
        return "sent"
    except OSError as exc:
        return errno.errorcode[exc.errno]
    finally:
        s.close()

async def until(check):
    for _ in range(1000):
        if check():
            return
        await asyncio.sleep(0.01)
    raise SystemExit(f"never: {guarded()}")

async def main():
    sh("ip link set lo up && ip link add eth0 type veth peer name eth9 && ip link set eth9 up"
       f" && ip link set eth0 up && ip addr add {OLD}/24 dev eth0")
    running = Path(tempfile.mkdtemp()) / "running.conf"
    keeper = GuardKeeper(KernelGuard(GuardSpec((IPv4Address(OLD),))), [SPOKE],
                         apply_lock=lambda: config_store.locked_if_free(running))
    service = Service(IPv4Address(OLD), [], running.parent / "charon.vici", running.parent,
                      guards=keeper)
    await ensure_guard(keeper)
    seen = {"start": guarded()}
    service.addresses.open()
    follower = asyncio.create_task(service._follow_addresses())
    sh(f"ip addr add {NEW}/24 dev eth0")  # DHCP gives eth0 another address
    await until(lambda: NEW in guarded()["nft"])
    await until(lambda: NEW in guarded()["xfrm"])
    seen["added"], seen["gre_from_new"] = guarded(), gre_from(NEW)
    sh(f"ip addr del {NEW}/24 dev eth0")
    await until(lambda: NEW not in guarded()["nft"])
    seen["deleted"] = guarded()
    # An apply switching the tunnel to the new address (its steps are test_apply.py's).
    sh(f"ip addr add {NEW}/24 dev eth0")
    with config_store.locked(running):  # as Datastores.apply_text holds it
        await until(lambda: NEW in guarded()["xfrm"])
        addresses = {"eth0": (IPv4Address(OLD), IPv4Address(NEW))}
        seen["widen"] = keeper.widen((SPOKE, MOVED), addresses)
        seen["narrow"] = keeper.narrow(MOVED, addresses)
    seen["applied"] = guarded()
    follower.cancel()
    service.addresses.close()
    print(json.dumps(seen))

asyncio.run(main())
"""


def test_the_guards_follow_the_source_interfaces_addresses_in_the_kernel() -> None:
    seen = in_netns(SCRIPT, str(SPOKE))
    old, new = "198.51.100.11", "198.51.100.111"
    assert seen["start"] == {"nft": [old], "xfrm": [old]}
    assert seen["added"] == {"nft": [old, new], "xfrm": [old, new]}
    assert seen["gre_from_new"] == "EPERM"  # the block policy stopped it
    assert seen["deleted"] == {"nft": [old], "xfrm": [old]}
    assert seen["widen"] == []  # eth0 holds both: the notification widened already
    assert seen["narrow"] == [f"guard: release {old}"]
    assert seen["applied"] == {"nft": [new], "xfrm": [new]}


CLI = r"""
import json, subprocess, sys
from frrdmvpn.application.frrdmvpnd import main

def sh(cmd):
    subprocess.run(cmd, shell=True, check=True)

def guarded():
    listed = subprocess.run(["nft", "-j", "list", "set", "inet", "frrdmvpn_guard", "nbma"],
                            capture_output=True, text=True, check=True).stdout
    return sorted([o["set"] for o in json.loads(listed)["nftables"] if "set" in o][0]["elem"])

sh("ip link set lo up && ip link add eth0 type veth peer name eth9 && ip link set eth9 up"
   " && ip link set eth0 up && ip addr add 198.51.100.11/24 dev eth0")
config = ["-c", sys.argv[1], "--running", "/nonexistent/running.conf"]
seen = {"check_before": main(["guard", "check", *config])}
seen["install"] = main(["guard", "install", *config])
seen["installed"] = guarded()
sh("nft add element inet frrdmvpn_guard nbma { 198.51.100.111 }")  # an apply under way
seen["check_wider"] = main(["guard", "check", *config])
seen["reinstall"] = main(["guard", "install", *config])  # e.g. systemctl reload nftables
seen["reinstalled"] = guarded()
print(json.dumps(seen))
"""


def test_guard_install_keeps_what_an_apply_under_way_added_and_check_accepts_it() -> None:
    assert in_netns(CLI, str(SPOKE)) == {
        "check_before": 1,  # no guards on a configured node: FRR and charon must not start
        "install": 0,
        "installed": ["198.51.100.11"],  # eth0's address (tunnel source eth0)
        "check_wider": 0,
        "reinstall": 0,
        "reinstalled": ["198.51.100.11", "198.51.100.111"],
    }
