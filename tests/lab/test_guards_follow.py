"""Issue 14, hole 4: the guards follow the tunnel source. A new address on spoke1's underlay
interface is guarded as soon as the kernel reports it, a live `tunnel source` change to it
keeps every GRE packet off the wire in clear while charon is stopped, and once the address
is gone again the guards narrow back to the node's own. Moving back closes the IKE_SAs
left on the moved address: spoke1 reaches the hub again as its own identity."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import topology as topo
from lab.netns import Lab
from tests.lab.helpers import capture_underlay, child_sas, guard_status, ping, wait_for

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("frrdmvpn_mode")]

HUB, S1 = topo.node("hub"), topo.node("spoke1")
OLD = str(S1.nbma.ip)
NEW = "198.51.100.111"  # unused in the lab's underlay
RAW_GRE = (
    "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_GRE); "
    "s.bind(('{0}', 0)); s.sendto(b'\\0\\0\\x08\\0' + bytes(20), ('{1}', 0))"
)


def guarded(lab: Lab) -> list[str]:
    """The addresses in spoke1's guard set."""
    listed = lab.run("spoke1", ["nft", "-j", "list", "set", "inet", "frrdmvpn_guard", "nbma"])
    (found,) = [o["set"] for o in json.loads(listed.stdout)["nftables"] if "set" in o]
    return sorted(found.get("elem", []))


def blocks(lab: Lab) -> str:
    return lab.run("spoke1", ["ip", "xfrm", "policy", "show"]).stdout


def tunnel_local(lab: Lab) -> str:
    shown = json.loads(lab.run("spoke1", ["ip", "-j", "-d", "link", "show", "dmvpn0"]).stdout)
    return str(shown[0]["linkinfo"]["info_data"].get("local"))


def ike_sas_from(lab: Lab, address: str) -> set[str]:
    """Unique ids of spoke1's IKE_SAs whose local end is ``address``."""
    return {str(c["ike-id"]) for c in child_sas(lab, "spoke1") if c["local-host"] == address}


def frrdmvpnd_log(lab: Lab) -> str:
    return lab.run("spoke1", ["cat", "/var/log/frrdmvpnd.log"]).stdout


@pytest.fixture
def second_address(lab: Lab) -> Iterator[None]:
    """spoke1 as before afterwards: charon running, its saved configuration applied, the
    second address gone."""
    conf = lab.config_path(S1)
    saved = conf.read_text()
    try:
        yield
    finally:
        if lab.charon_pid("spoke1") is None:
            lab.start_charon("spoke1")
        conf.write_text(saved)
        lab.apply("spoke1")
        lab.run("spoke1", ["ip", "addr", "del", f"{NEW}/24", "dev", "eth0"], check=False)
        wait_for("spoke1's guards back to its own address", lambda: guarded(lab) == [OLD], 60)
        wait_for(
            "spoke1 -> hub LAN again",
            lambda: ping(lab, "spoke1", str(S1.lan.ip), str(HUB.lan.ip)),
            120,
        )


@pytest.mark.usefixtures("second_address")
def test_a_live_tunnel_source_change_leaks_no_gre_while_charon_is_stopped(
    lab: Lab, tmp_path: Path
) -> None:
    wait_for("spoke1 -> hub LAN", lambda: ping(lab, "spoke1", str(S1.lan.ip), str(HUB.lan.ip)))
    assert guarded(lab) == [OLD]
    # DHCP-like: a second address on the tunnel source interface is guarded at once, by the
    # daemon following rtnetlink (no apply yet).
    lab.run("spoke1", ["ip", "addr", "add", f"{NEW}/24", "dev", "eth0"])
    wait_for("the new address in spoke1's guard set", lambda: NEW in guarded(lab), 30)
    wait_for("its block policies", lambda: f"src {NEW}/32 dst 0.0.0.0/0 proto gre" in blocks(lab))
    assert f"guard: protect {NEW}" in frrdmvpnd_log(lab)
    # The tunnel moves to it, live (`frrdmvpnd apply`, as an operator would).
    conf = lab.config_path(S1)
    text = conf.read_text()
    assert " tunnel source eth0\n" in text
    conf.write_text(text.replace(" tunnel source eth0\n", f" tunnel source {NEW}\n"))
    lab.apply("spoke1")
    assert tunnel_local(lab) == NEW
    assert NEW in guarded(lab)
    assert f"src {NEW}/32 dst 0.0.0.0/0 proto gre" in blocks(lab)
    before = guard_status(lab, "spoke1")["xfrm"].get("XfrmOutPolBlock", 0)
    with capture_underlay(tmp_path) as cap:
        lab.stop_charon("spoke1")  # a clean stop flushes every policy charon owns
        time.sleep(3)  # nhrpd's registration and OSPF's hellos try to leave from NEW
        kicks = 5  # and cleartext GRE from a raw socket, as a leak would look
        for _ in range(kicks):
            code = RAW_GRE.format(NEW, HUB.nbma.ip)
            lab.run("spoke1", [sys.executable, "-c", code], check=False)  # EPERM: blocked
        time.sleep(1)
    assert cap.count("ip proto 47") == 0, "cleartext GRE on the underlay from the new source"
    after = guard_status(lab, "spoke1")
    blocked = after["xfrm"].get("XfrmOutPolBlock", 0) - before
    dropped = after["counters"]["gre_out_cleartext"][0]
    assert blocked + dropped >= kicks, f"the guards should have stopped GRE: {after}"
    # And back, charon first (as after a reboot with the moved configuration): it comes up
    # from NEW as NEW, an identity the hub does not authorize. The apply back to eth0 closes
    # those IKE_SAs (kept, MOBIKE moves them to .11 when NEW goes and the hub refuses every
    # registration: an address identity that is not the peer's address); then NEW goes, the
    # guards narrow and spoke1 reaches the hub as its own identity over a new IKE_SA.
    lab.start_charon("spoke1")
    wait_for("an IKE_SA from the moved address", lambda: bool(ike_sas_from(lab, NEW)), 120)
    stale = ike_sas_from(lab, NEW)
    conf.write_text(text)
    said = lab.apply("spoke1").stdout
    assert tunnel_local(lab) == OLD
    for n in stale:
        assert f"charon: terminate IKE_SA #{n} of dmvpn" in said, said
    lab.run("spoke1", ["ip", "addr", "del", f"{NEW}/24", "dev", "eth0"])
    wait_for("spoke1's guards back to its own address", lambda: guarded(lab) == [OLD], 60)
    wait_for(
        "spoke1 -> hub LAN again", lambda: ping(lab, "spoke1", str(S1.lan.ip), str(HUB.lan.ip)), 120
    )
    left = {c["ike-id"] for c in child_sas(lab, "spoke1")}
    assert not stale & left, f"IKE_SAs of the moved address still up: {stale & left}"
