"""The lab's DMVPN converges: registrations, OSPF, LAN to LAN, shortcut, ESP only on the wire."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab import topology as topo
from lab.netns import Lab
from tests.lab.helpers import capture_underlay, child_sas, nhrp_cache, ping, wait_for

pytestmark = pytest.mark.lab

HUB, S1, S2 = topo.node("hub"), topo.node("spoke1"), topo.node("spoke2")


def _registered(lab: Lab) -> set[tuple[str, str]]:
    return {(e["protocol"], e["nbma"]) for e in nhrp_cache(lab, "hub") if e["type"] == "dynamic"}


def test_both_spokes_register_at_the_hub(lab: Lab) -> None:
    want = {(str(s.overlay.ip), str(s.nbma.ip)) for s in (S1, S2)}
    wait_for("both spokes in the hub's NHRP cache", lambda: want <= _registered(lab))
    nhs = lab.vtysh_json("spoke1", "show ip nhrp nhs json")["table"]
    assert [(e["nbma"], e["protocol"]) for e in nhs] == [(str(HUB.nbma.ip), str(HUB.overlay.ip))]


def test_hub_has_two_ospf_neighbours_full(lab: Lab) -> None:
    def full() -> set[str]:
        nbrs = lab.vtysh_json("hub", "show ip ospf neighbor json")["neighbors"]
        return {rid for rid, entries in nbrs.items() if entries[0]["converged"] == "Full"}

    wait_for("two Full OSPF neighbours on the hub", lambda: len(full()) == 2)
    assert full() == {str(S1.overlay.ip), str(S2.overlay.ip)}


def test_spoke1_lan_reaches_spoke2_lan(lab: Lab) -> None:
    src, dst = str(S1.lan.ip), str(S2.lan.ip)
    wait_for(f"{src} -> {dst}", lambda: ping(lab, "spoke1", src, dst))
    assert ping(lab, "spoke1", src, dst, count=3)


def _shortcuts(lab: Lab, node: str) -> list[dict[str, str]]:
    # FRR 8.4.4 prints a text header before the JSON when shortcuts exist: extract_json copes.
    table: list[dict[str, str]] = lab.vtysh_json(node, "show ip nhrp shortcut json")["table"]
    return table


def test_shortcut_spoke1_to_spoke2_after_traffic(lab: Lab) -> None:
    src, dst = str(S1.lan.ip), str(S2.lan.ip)

    def shortcut_up() -> bool:
        # Shortcut and binding are read together: both come and go with traffic.
        ping(lab, "spoke1", src, dst, count=2)
        cache = {e["protocol"]: e for e in nhrp_cache(lab, "spoke1")}
        bound = cache.get(str(S2.overlay.ip), {}).get("nbma") == str(S2.nbma.ip)
        return bound and any(
            s["prefix"] == str(S2.lan.network) and s.get("via") == str(S2.overlay.ip)
            for s in _shortcuts(lab, "spoke1")
        )

    wait_for("an NHRP shortcut spoke1 -> spoke2's LAN, bound to spoke2's NBMA", shortcut_up)


def _installed(lab: Lab, node: str) -> set[str]:
    return {
        c["remote-host"]
        for c in child_sas(lab, node)
        if c["state"] == "INSTALLED" and c["mode"] == "TRANSPORT" and c["protocol"] == "ESP"
    }


def test_esp_sas_installed_hub_spoke_and_spoke_spoke(lab: Lab) -> None:
    src, dst = str(S1.lan.ip), str(S2.lan.ip)

    def all_sas() -> bool:
        ping(lab, "spoke1", src, dst)
        return {str(HUB.nbma.ip), str(S2.nbma.ip)} <= _installed(lab, "spoke1")

    wait_for("spoke1's ESP SAs to the hub and to spoke2", all_sas)
    assert {str(S1.nbma.ip), str(S2.nbma.ip)} <= _installed(lab, "hub")
    assert str(S1.nbma.ip) in _installed(lab, "spoke2")
    for child in child_sas(lab, "spoke1"):
        assert child["local-ts"] == [f"{S1.nbma.ip}/32[gre]"]


def test_underlay_carries_esp_and_no_cleartext_gre(lab: Lab, tmp_path: Path) -> None:
    wait_for("spoke-to-spoke path", lambda: ping(lab, "spoke1", str(S1.lan.ip), str(S2.lan.ip)))
    with capture_underlay(tmp_path) as cap:
        assert ping(lab, "spoke1", str(S1.lan.ip), str(S2.lan.ip), count=10)
        assert ping(lab, "spoke1", str(S1.lan.ip), str(HUB.lan.ip), count=10)
    esp, gre = cap.count("ip proto 50"), cap.count("ip proto 47")
    assert esp >= 40, f"expected ESP for 20 echo requests and replies, saw {esp}"
    assert gre == 0, f"{gre} cleartext GRE packets on the underlay"
