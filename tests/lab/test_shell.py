"""frrdmvpn-shell on the lab's hub: what an operator (and a Cisco parser) sees."""

from __future__ import annotations

import os
import subprocess

import pexpect  # type: ignore[import-untyped]
import pytest

from frrdmvpn.client import Client
from frrdmvpn.v1 import types_pb2
from lab import topology as topo
from lab.netns import Lab
from tests.lab.helpers import wait_for

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("frrdmvpn_mode")]

HUB, S1, S2 = topo.node("hub"), topo.node("spoke1"), topo.node("spoke2")
PROMPT = "hub#"


def _both_up(lab: Lab) -> bool:
    with Client(f"unix:{lab.api_socket('hub')}") as api:
        peers = api.peers()
    return len(peers) == 2 and all(p.state == types_pb2.PEER_STATE_UP for p in peers)


def _shell(lab: Lab, *commands: str) -> subprocess.CompletedProcess[str]:
    argv = [lab.program("frrdmvpn-shell"), *[a for c in commands for a in ("-c", c)]]
    return subprocess.run(
        lab.argv("hub", argv), capture_output=True, text=True, timeout=120, check=False
    )


def test_show_dmvpn_on_the_hub_parses_with_ntc_templates(lab: Lab) -> None:
    parse = pytest.importorskip("ntc_templates.parse")
    wait_for("both spokes UP", lambda: _both_up(lab), 90)
    done = _shell(lab, "show dmvpn")
    assert done.returncode == 0, done.stderr
    rows = parse.parse_output(platform="cisco_ios", command="show dmvpn", data=done.stdout)
    got = {(r["peer_nbma"], r["peer_tunnel"], r["state"], r["attribute"]) for r in rows}
    assert got == {(str(n.nbma.ip), str(n.overlay.ip), "UP", "D") for n in (S1, S2)}
    assert all(r["uptime"] for r in rows)
    abbreviated = _shell(lab, "sh dm | i UP")
    assert abbreviated.returncode == 0
    assert len(abbreviated.stdout.splitlines()) == 2


def test_an_operator_sees_a_cleared_session_go_down_and_up_live(lab: Lab) -> None:
    wait_for("both spokes UP", lambda: _both_up(lab), 90)
    argv = lab.argv("hub", [lab.program("frrdmvpn-shell")])
    env = dict(os.environ, TERM="vt100", LANG="C.UTF-8")
    child = pexpect.spawn(
        argv[0], argv[1:], env=env, encoding="utf-8", timeout=60, dimensions=(24, 200)
    )
    try:
        child.expect_exact(PROMPT)
        child.sendline("terminal length 0")
        child.expect_exact(PROMPT)
        child.sendline("show dmvpn")
        child.expect_exact(PROMPT)
        table = child.before.replace("\r", "")
        for n in (S1, S2):
            assert any(str(n.nbma.ip) in line and " UP " in line for line in table.splitlines())
        child.sendline("debug dmvpn")
        child.expect_exact("DMVPN debugging is on")
        child.expect_exact(PROMPT)
        ike_sa = rf"%DMVPN-5-CRYPTO_SS: IKE_SA #(\d+) .*\(peer {S1.nbma.ip}\) is "
        other = _shell(lab, f"clear crypto session remote {S1.nbma.ip}")
        assert other.returncode == 0, other.stderr
        # The cleared IKE_SA goes and a newer one (charon numbers them upwards) comes up,
        # live; one step of the hub may report both, in either order. The peer may go DOWN
        # and UP too, or (spoke1 initiating again before the hub looked) stay UP
        # throughout: its state is not asserted here.
        down: set[int] = set()
        up: set[int] = set()
        while not any(u > d for u in up for d in down):
            child.expect([ike_sa + "DOWN", ike_sa + "UP"], timeout=120)
            (down, up)[child.match_index].add(int(child.match.group(1)))
        child.sendline("undebug all")
        child.expect_exact("All possible debugging has been turned off")
        child.expect_exact(PROMPT)
        wait_for("both spokes UP again", lambda: _both_up(lab), 90)
        child.sendline("sh dm")
        child.expect_exact(PROMPT)
        lines = child.before.replace("\r", "").splitlines()
        assert sum(1 for line in lines if " UP " in line) == 2
        child.sendline("exit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
