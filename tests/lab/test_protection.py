"""nhrpd's `tunnel protection vici` on stock strongSwan, via frrdmvpn's proxy and events."""

from __future__ import annotations

import pytest

from lab import topology as topo
from lab.netns import Lab
from tests.lab.helpers import (
    AuthorizeEvents,
    ike_ids_to,
    nhrp_cache,
    ping,
    protected_peer,
    record,
    wait_for,
)

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("frrdmvpn_mode")]

HUB, S1, S2 = topo.node("hub"), topo.node("spoke1"), topo.node("spoke2")


def _dmvpn(lab: Lab, node: str) -> dict[str, dict[str, str | int]]:
    return {e["dst"]: e for e in lab.vtysh_json(node, "show dmvpn json")}


def _sas(entry: dict[str, str | int] | None) -> int:
    return 0 if entry is None else int(entry["sas"])


def test_nhrpd_uses_tunnel_protection_and_sees_an_sa_per_peer(lab: Lab) -> None:
    conf = lab.vtysh("hub", "show running-config")
    assert f"tunnel protection vici profile {topo.VICI_PROFILE}" in conf
    spokes = {str(S1.nbma.ip), str(S2.nbma.ip)}

    def hub_sees_sas() -> bool:
        entries = _dmvpn(lab, "hub")
        return all(_sas(entries.get(s)) >= 1 for s in spokes)

    wait_for("an SA per spoke in the hub's `show dmvpn json`", hub_sees_sas)
    entries = _dmvpn(lab, "hub")
    for s in spokes:
        assert entries[s]["identity"] == s, "the peer's IKE identity, learnt over VICI"
    assert _sas(_dmvpn(lab, "spoke1").get(str(HUB.nbma.ip))) >= 1


def test_shortcut_peer_has_an_sa_in_nhrpd(lab: Lab) -> None:
    def direct() -> bool:
        # The binding and nhrpd's SA count are read together: a shortcut's cache entry
        # comes and goes with traffic while the VC (and its SA) stays.
        ping(lab, "spoke1", str(S1.lan.ip), str(S2.lan.ip), count=2)
        entry = {e["protocol"]: e for e in nhrp_cache(lab, "spoke1")}.get(str(S2.overlay.ip))
        return (
            _sas(_dmvpn(lab, "spoke1").get(str(S2.nbma.ip))) >= 1
            and entry is not None
            and entry["identity"] == str(S2.nbma.ip)
        )

    wait_for("spoke1's nhrpd to bind spoke2 with an SA and its IKE identity", direct)


def test_swanctl_works_through_the_proxy(lab: Lab) -> None:
    listed = lab.run("spoke1", ["swanctl", "--list-sas"]).stdout
    assert "INSTALLED, TRANSPORT" in listed
    assert f"remote '{HUB.nbma.ip}'" in listed
    conns = lab.run("spoke1", ["swanctl", "--list-conns"]).stdout
    assert "dmvpn: IKEv2" in conns
    direct = lab.run("spoke1", ["swanctl", "--list-sas", "--uri", f"unix://{lab.charon_socket}"])
    assert direct.stdout == listed or "INSTALLED" in direct.stdout


def test_bindings_were_authorized_against_the_ike_identity(lab: Lab) -> None:
    log = lab.run("hub", ["cat", "/var/log/frrdmvpn-proxy.log"]).stdout
    for s in (S1, S2):
        assert (
            f"peer={s.overlay.ip} nbma={s.nbma.ip} -> accept: accept {s.overlay.ip} via "
            f"{s.nbma.ip}: IKE identity '{s.nbma.ip}'"
        ) in log


def test_every_authorization_is_answered_and_its_latency_recorded(lab: Lab) -> None:
    """End to end as nhrpd sees it: from sending authorize-binding to reading the answer
    (event socket, a fresh VICI list-sas from charon, the decision, the reply), for the
    events of spoke2 re-registering after its SA is terminated and of a shortcut."""
    since = len(lab.run("hub", ["cat", "/var/log/frr/nhrpd.log"]).stdout)
    ids = ike_ids_to(lab, "spoke2", str(HUB.nbma.ip))
    assert ids
    for ike_id in ids:
        lab.run("spoke2", ["swanctl", "--terminate", "--ike-id", ike_id, "--timeout", "5"])

    def events() -> AuthorizeEvents:
        return AuthorizeEvents.parse(
            lab.run("hub", ["cat", "/var/log/frr/nhrpd.log"]).stdout[since:]
        )

    wait_for(
        "spoke2 protected at the hub again", lambda: protected_peer(lab, "hub", str(S2.nbma.ip)), 90
    )
    # Each event nhrpd sent gets exactly one answer (a lost one would never balance).
    wait_for("every authorize-binding event answered", lambda: events().complete, 30)
    found = events()
    assert {r for _, _, r in found.answered} == {"accept"}
    latencies = found.latencies()
    assert all(lat >= 0 for lat in latencies)
    record("authorize_e2e_p50_ms", 1000 * latencies[len(latencies) // 2])
    record("authorize_e2e_max_ms", 1000 * latencies[-1])
    record("authorize_e2e_events", len(latencies))
