"""Fail-closed: frrdmvpn's guards keep GRE off the underlay in clear while charon is down."""

from __future__ import annotations

import datetime
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from lab import topology as topo
from lab.netns import Lab
from tests.lab.helpers import (
    Pinger,
    capture_underlay,
    guard_status,
    ping,
    protected_peer,
    record,
    wait_for,
)

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("frrdmvpn_mode")]

HUB, S1, S2 = topo.node("hub"), topo.node("spoke1"), topo.node("spoke2")
RAW_GRE = (
    "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_GRE); "
    "s.bind(('{0}', 0)); s.sendto(b'\\0\\0\\x08\\0' + bytes(20), ('{1}', 0))"
)


def test_guards_are_installed_on_every_node(lab: Lab) -> None:
    for n in topo.NODES:
        status = guard_status(lab, n.name)
        assert status["installed"] is True, (n.name, status)
        assert status["rc"] == 0
        assert set(status["counters"]) == {"gre_out_cleartext", "gre_in_cleartext"}
        policies = lab.run(n.name, ["ip", "xfrm", "policy"]).stdout
        assert f"src {n.nbma.ip}/32 dst 0.0.0.0/0 proto gre" in policies
        assert "priority 1000000" in policies


def _accepted_nhs_at(lab: Lab, node: str, after: float) -> float:
    """Wall-clock time of the first NHS binding the node's proxy accepted after ``after``."""
    log = lab.run(node, ["cat", "/var/log/frrdmvpn-proxy.log"]).stdout
    stamps = re.findall(
        r"^(\S+ \S+) \S+ INFO authorize-binding \S+ type=nhs .* -> accept", log, re.M
    )
    times = [datetime.datetime.strptime(t, "%Y-%m-%d %H:%M:%S,%f").timestamp() for t in stamps]
    later = [t for t in times if t >= after]
    assert later, f"no NHS binding accepted on {node} since the restart"
    return later[0]


def test_no_cleartext_gre_while_charon_is_stopped(lab: Lab, tmp_path: Path) -> None:
    """The VyOS T4667 case: a clean charon stop flushes every policy charon owns."""
    dst = str(S2.lan.ip)
    wait_for("spoke1 -> spoke2 traffic", lambda: ping(lab, "spoke1", str(S1.lan.ip), dst))
    before = guard_status(lab, "spoke1")["xfrm"].get("XfrmOutPolBlock", 0)
    with capture_underlay(tmp_path) as cap:
        pingers = [Pinger(lab, dst), Pinger(lab, str(HUB.lan.ip))]
        time.sleep(1)
        t_stop = time.monotonic()
        lab.stop_charon("spoke1")
        time.sleep(3)  # OSPF hellos, NHRP and the pings all try to leave meanwhile
        kicks = 5  # and cleartext GRE straight from a raw socket, as a leak would look
        for _ in range(kicks):
            code = RAW_GRE.format(S1.nbma.ip, S2.nbma.ip)
            lab.run("spoke1", [sys.executable, "-c", code], check=False)  # EPERM: blocked
        time.sleep(1)
        gre_while_down = cap.count("ip proto 47")
        t0 = time.monotonic()
        lab.start_charon("spoke1")
        t_config = time.monotonic()  # charon runs and has its connections and credentials
        wall_config = time.time()
        wait_for(
            "spoke1's NHS protected and registered again",
            lambda: protected_peer(lab, "spoke1", str(HUB.nbma.ip)),
            timeout=90,
        )
        # When, by spoke1's own log, the NHS binding was authorized over a new SA (polling
        # vtysh from here costs seconds under emulation).
        protected = _accepted_nhs_at(lab, "spoke1", wall_config) - wall_config
        wait_for(
            "spoke1 -> spoke2 LAN after charon restart",
            lambda: ping(lab, "spoke1", str(S1.lan.ip), dst),
            timeout=90,
        )
        restored = time.monotonic() - t_config
        outage = time.monotonic() - t_stop
        for p in pingers:
            p.stop()
    # frrdmvpn's part (IKE, NHRP registration, authorization) apart from charon's own start
    # and from routing: OSPF (dead 8 s) has lost the adjacency and must rebuild it.
    record("charon_start_with_config_s", t_config - t0)
    record("charon_restart_nhrp_protected_s", protected)
    record("charon_restart_time_to_restore_s", restored)
    record("charon_restart_outage_from_stop_s", outage)
    assert gre_while_down == 0, "cleartext GRE on the underlay while charon was down"
    assert cap.count("ip proto 47") == 0, "cleartext GRE on the underlay during recovery"
    after = guard_status(lab, "spoke1")
    blocked = after["xfrm"].get("XfrmOutPolBlock", 0) - before
    dropped = after["counters"]["gre_out_cleartext"][0]
    assert blocked + dropped >= kicks, f"the guards should have stopped GRE: {after}"


ROGUE_REGISTRATION = """
import socket, struct
from frrdmvpn.codec.nhrp import build_gre, encode, registration_request
nhrp = encode(registration_request("198.51.100.66", "192.0.2.66", "192.0.2.1"))
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_GRE)
for _ in range(3):
    s.sendto(build_gre(0x2001, {key}, nhrp), ("{hub}", 0))
"""


def test_cleartext_registration_from_a_rogue_is_dropped_and_reported(lab: Lab) -> None:
    """F6: a node without IPsec injects an NHRP Registration Request claiming 192.0.2.66."""
    before = guard_status(lab, "hub")["counters"]["gre_in_cleartext"][0]
    rogue = lab.add_host("rogue", "198.51.100.66/24")
    code = ROGUE_REGISTRATION.format(key=topo.GRE_KEY, hub=HUB.nbma.ip)
    subprocess.run(["ip", "netns", "exec", rogue, sys.executable, "-c", code], check=True)
    report = lab.node_dir(HUB) / "run" / "frrdmvpn" / "guard.json"

    def reported() -> list[dict[str, Any]]:
        last: list[dict[str, Any]] = json.loads(report.read_text())["last"]
        return [o for o in last if o["claimed_proto"] == "192.0.2.66"]

    wait_for("the hub's guard report of the rogue registration", lambda: bool(reported()), 30)
    offender = reported()[0]
    assert offender["direction"] == "in"
    assert offender["src"] == "198.51.100.66"
    assert offender["claimed_nbma"] == "198.51.100.66"
    assert offender["gre_key"] == topo.GRE_KEY
    assert "Registration Request" in offender["summary"]
    after = guard_status(lab, "hub")["counters"]["gre_in_cleartext"][0]
    assert after - before >= 3
    cache = lab.vtysh_json("hub", "show ip nhrp cache json")["table"]
    assert all(e["protocol"] != "192.0.2.66" for e in cache)


def test_guards_come_back_after_being_removed(lab: Lab) -> None:
    """An nftables reload or a hand removes the table: the supervisor puts it back."""

    def log() -> str:
        return lab.run("spoke1", ["cat", "/var/log/frrdmvpnd.log"]).stdout

    before = len(log())
    lab.run("spoke1", ["nft", "delete", "table", "inet", "frrdmvpn_guard"])
    # the supervisor may put it back before anything here could look (it reacts at once)
    wait_for(
        "spoke1's supervisor to reinstall the guards",
        lambda: (
            "the guards were missing or altered: reinstalling" in log()[before:]
            and guard_status(lab, "spoke1")["installed"] is True
        ),
        180,
    )
