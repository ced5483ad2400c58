"""Binding authorization: a peer with valid IKE credentials may not claim another's address.

spoke3 (``topo.ROGUE``) holds valid credentials for 192.0.2.13 — a PSK map entry, then a
certificate from the lab CA — but configures spoke2's tunnel address 192.0.2.12 and
registers it with the hub. IKE succeeds (the credentials are good); the hub's frrdmvpn
must refuse the binding, say why, and leave spoke2's binding alone.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from frrdmvpn.lab import topology as topo
from frrdmvpn.lab.netns import Lab
from tests.lab.helpers import child_sas, nhrp_cache, ping, wait_for

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("frrdmvpn_mode")]

HUB, S1, S2, ROGUE = topo.node("hub"), topo.node("spoke1"), topo.node("spoke2"), topo.ROGUE
OBSERVE = 12.0  # seconds the hub is watched after the denial: several registration attempts


def _hub_log(lab: Lab) -> str:
    return lab.run("hub", ["cat", "/var/log/frrdmvpn-proxy.log"]).stdout


def _rogue_decisions(lab: Lab, since: int) -> list[str]:
    """The hub's decisions on spoke3's claim logged after offset ``since``."""
    key = f"peer={ROGUE.overlay.ip} nbma={ROGUE.nbma.ip} -> "
    return [line for line in _hub_log(lab)[since:].splitlines() if key in line]


def _assert_spoke2_binding_intact(lab: Lab) -> None:
    by_addr = {e["protocol"]: e for e in nhrp_cache(lab, "hub")}
    entry = by_addr.get(str(S2.overlay.ip))
    assert entry is not None, f"spoke2's binding is gone from the hub: {by_addr}"
    assert entry["nbma"] == str(S2.nbma.ip), f"spoke2's address was rebound: {entry}"
    rogue = [e for e in by_addr.values() if e.get("nbma") == str(ROGUE.nbma.ip)]
    assert rogue == [], f"the hub bound something to spoke3: {rogue}"


def _rogue_is_denied(lab: Lab, reason: str) -> list[str]:
    """Bring spoke3 up, check the hub denies its claim and keeps spoke2's binding."""
    since = len(_hub_log(lab))
    lab.add_node(ROGUE)

    def hub_has_rogue_sa() -> bool:
        return any(
            sa["remote-host"] == str(ROGUE.nbma.ip) and sa["state"] == "INSTALLED"
            for sa in child_sas(lab, "hub")
        )

    wait_for("spoke3's valid credentials to bring its SA with the hub up", hub_has_rogue_sa, 90)
    wait_for("the hub to decide spoke3's claim", lambda: bool(_rogue_decisions(lab, since)), 60)
    decisions = _rogue_decisions(lab, since)
    assert all("-> deny: deny" in d for d in decisions), decisions
    assert any(reason in d for d in decisions), (reason, decisions)
    deadline = time.monotonic() + OBSERVE
    while time.monotonic() < deadline:
        _assert_spoke2_binding_intact(lab)
        time.sleep(1)
    decisions = _rogue_decisions(lab, since)
    assert all("-> deny: deny" in d for d in decisions), decisions
    # spoke2 still owns its address: traffic to it from the hub's LAN reaches it.
    assert ping(lab, "hub", str(HUB.lan.ip), str(S2.lan.ip), count=3)
    return decisions


@pytest.fixture
def rogue(lab: Lab) -> Iterator[None]:
    """spoke3 is taken out again after the test (and the hub's SA with it)."""
    try:
        yield
    finally:
        lab.remove_node(ROGUE)
        for sa in child_sas(lab, "hub"):
            if sa["remote-host"] == str(ROGUE.nbma.ip):
                lab.run("hub", ["swanctl", "--terminate", "--ike-id", sa["ike-id"], "--force",
                                "--timeout", "5"], check=False)  # fmt: skip


@pytest.fixture
def certificates(lab: Lab) -> Iterator[int]:
    """The whole lab on certificates from the lab CA (back to the PSK afterwards); yields
    the offset of the hub's proxy log at the switch."""
    since = len(_hub_log(lab))
    lab.set_auth("cert")
    try:
        yield since
    finally:
        lab.set_auth("psk")
        _wait_registered(lab)


def _wait_registered(lab: Lab) -> None:
    def both() -> bool:
        cache = {e["protocol"]: e for e in nhrp_cache(lab, "hub")}
        return all(cache.get(str(s.overlay.ip), {}).get("nbma") == str(s.nbma.ip) for s in (S1, S2))

    wait_for("both spokes registered with the hub", both, 120)


@pytest.mark.usefixtures("rogue")
def test_psk_map_denies_a_valid_peer_claiming_another_address(lab: Lab) -> None:
    assert lab.auth == "psk"
    decisions = _rogue_is_denied(lab, f"IKE identity '{ROGUE.nbma.ip}'")
    entitled = f"may claim only {ROGUE.entitled_overlay.ip}/32, {ROGUE.lan.network}, not "
    assert any(entitled + str(ROGUE.overlay.ip) in d for d in decisions), decisions


@pytest.mark.usefixtures("rogue")
def test_certificate_mode_authorizes_by_san_and_denies_a_valid_peer_claiming_another(
    lab: Lab, certificates: int
) -> None:
    def accepted_by_certificate() -> bool:
        log = _hub_log(lab)[certificates:]
        return all(
            f"peer={s.overlay.ip} nbma={s.nbma.ip} -> accept: accept {s.overlay.ip} via "
            f"{s.nbma.ip}: certificate of IKE peer '{topo.cert_subject(s)}'" in log
            for s in (S1, S2)
        )

    wait_for("both spokes re-registered, authorized by their certificates",
             accepted_by_certificate, 120)  # fmt: skip
    # Shortcuts bind the peer's LAN through the certificate's RFC 3779 address block.
    wait_for(
        "spoke1 -> spoke2 LAN over certificates",
        lambda: ping(lab, "spoke1", str(S1.lan.ip), str(S2.lan.ip)),
    )
    try:
        decisions = _rogue_is_denied(lab, f"certificate of IKE peer '{topo.cert_subject(ROGUE)}'")
    finally:
        lab.remove_node(ROGUE)  # before the lab goes back to the PSK
    entitled = f"may claim only {ROGUE.entitled_overlay.ip}, {ROGUE.lan.network}, not "
    assert any(entitled + str(ROGUE.overlay.ip) in d for d in decisions), decisions
