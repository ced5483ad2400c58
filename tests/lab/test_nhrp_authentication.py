"""``ip nhrp authentication`` on the release's real nhrpd (issue 16): nhrpd of FRR 10.2 and
later (Debian 13) sends and checks it, and a spoke with another string is refused; where nhrpd
lacks it (FRR 8.4, Debian 12) frrdmvpnd refuses the configuration and changes nothing."""

from __future__ import annotations

import pytest

from frrdmvpn.config.frr import frr_version
from lab import topology as topo
from lab.netns import Lab
from tests.lab.helpers import edit_config, nhrp_cache, wait_for

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("frrdmvpn_mode", "restore_configs")]

HUB, S1, S2 = topo.node("hub"), topo.node("spoke1"), topo.node("spoke2")
KEY = "Nh4uth8c"  # 8 characters, the most Cisco allows: nhrpd stores it without a NUL
WRONG = "Wr0ngKey"
HOLDTIME = f" ip nhrp holdtime {topo.NHRP_HOLDTIME}\n"


def _with_key(lab: Lab, node: str, key: str) -> None:
    edit_config(lab, node, HOLDTIME, f" ip nhrp authentication {key}\n{HOLDTIME}")


def _registered(lab: Lab) -> set[str]:
    return {e["nbma"] for e in nhrp_cache(lab, "hub") if e["type"] == "dynamic"}


def _nhrpd_log(lab: Lab, node: str) -> str:
    return (lab.node_dir(topo.node(node)) / "log/frr/nhrpd.log").read_text(errors="replace")


def test_nhrp_authentication_is_sent_checked_or_refused(lab: Lab) -> None:
    version = frr_version(lab.vtysh("hub", "show version"))
    assert version is not None
    if not version.nhrp_authentication:  # FRR 8.4: refused, nothing changed
        before = lab.vtysh("hub", "show running-config")
        _with_key(lab, "hub", KEY)
        done = lab.apply("hub", check=False)
        assert done.returncode != 0
        out = done.stdout + done.stderr
        assert "ip nhrp authentication needs nhrpd from FRR 10.2 on" in out, out
        assert KEY not in out
        assert lab.vtysh("hub", "show running-config") == before
        return
    for n in topo.NODES:
        _with_key(lab, n.name, KEY)
        lab.apply(n.name)
    assert f" ip nhrp authentication {KEY}" in lab.vtysh("hub", "show running-config").splitlines()
    spokes = {str(S1.nbma.ip), str(S2.nbma.ip)}
    lab.vtysh("hub", "clear ip nhrp cache")
    wait_for("both spokes registered with the string", lambda: spokes <= _registered(lab), 60)

    # spoke2 with another string: its next registration is refused. Keep that short: two
    # nhrpd 10.3 with different strings then exchange Error Indications in a loop, thousands
    # a second (docs/config.md), until the strings match again.
    start = len(_nhrpd_log(lab, "hub"))
    edit_config(lab, "spoke2", f" ip nhrp authentication {KEY}", f" ip nhrp authentication {WRONG}")
    lab.apply("spoke2")
    lab.vtysh("hub", "clear ip nhrp cache")
    refused = f"From {S2.nbma.ip}: error: authentication failure"
    wait_for(
        "the hub refusing spoke2's registration",
        lambda: refused in _nhrpd_log(lab, "hub")[start:],
        2 * topo.NHRP_HOLDTIME / 3 + 10,
    )
    registered = _registered(lab)
    edit_config(lab, "spoke2", f" ip nhrp authentication {WRONG}", f" ip nhrp authentication {KEY}")
    lab.apply("spoke2")
    assert str(S2.nbma.ip) not in registered
    wait_for("spoke2 registered with the string again", lambda: spokes <= _registered(lab), 60)
