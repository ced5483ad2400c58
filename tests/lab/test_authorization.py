"""Binding authorization: a peer with valid IKE credentials may not claim another's address.

spoke3 (``topo.ROGUE``) holds valid credentials for 192.0.2.13 — a PSK map entry, then a
certificate from the lab CA — but configures spoke2's tunnel address 192.0.2.12 and
registers it with the hub. IKE succeeds (the credentials are good); the hub's frrdmvpn
must refuse the binding, say why, count it, and leave spoke2's binding alone. Issue 14:
the same with an identity that is not its own — a wildcard, the dNSName spoke2's
certificate shares, a DN wildcard, or (with the group PSK) spoke2's FQDN.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from frrdmvpn.adapters.vici_config import CharonConfig
from frrdmvpn.config.swan import desired_swan
from frrdmvpn.config.validate import check
from lab import topology as topo
from lab.netns import Lab
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
    """The lab settled before spoke3 comes (the hub's LAN reaches spoke2's: a test run first
    may find OSPF still forming); spoke3 taken out again after the test (and the hub's SA
    with it)."""
    wait_for(
        "the hub's LAN to reach spoke2's before spoke3 comes",
        lambda: ping(lab, "hub", str(HUB.lan.ip), str(S2.lan.ip)),
        120,
    )
    try:
        yield
    finally:
        lab.remove_node(ROGUE)
        for sa in child_sas(lab, "hub"):
            if sa["remote-host"] == str(ROGUE.nbma.ip):
                lab.run(
                    "hub",
                    [
                        "swanctl",
                        "--terminate",
                        "--ike-id",
                        sa["ike-id"],
                        "--force",
                        "--timeout",
                        "5",
                    ],
                    check=False,
                )


@pytest.fixture(scope="class")
def certificates(lab: Lab) -> Iterator[int]:
    """The whole lab on certificates from the lab CA for the tests of one class (back to
    the PSK after its last; a switch costs about 90 s under emulation); yields the offset
    of the hub's proxy log at the switch."""
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


# --- issue 14: identities that are not the peer's own ---------------------------------


def _journal(lab: Lab) -> dict[str, Any]:
    """The hub proxy's decision journal (counters and the latest decisions)."""
    path = lab.node_dir(HUB) / "run" / "frrdmvpn" / "authorization.json"
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _rogue_presents(lab: Lab, identity: str) -> None:
    """spoke3's charon loads its connection again presenting ``identity`` (an attacker's
    charon is not checked by frrdmvpn) and authenticates to the hub afresh."""
    config, _ = check(topo.frrdmvpn_conf(ROGUE, lab.auth))
    conn = copy.deepcopy(desired_swan(config, {"eth0": ROGUE.nbma.ip}).conns[topo.VICI_PROFILE])
    ike = conn[topo.VICI_PROFILE]
    assert isinstance(ike, dict)
    local = ike["local"]
    assert isinstance(local, dict)
    local["id"] = identity
    CharonConfig(lab.node_dir(ROGUE) / "run" / Path(lab.charon_socket).name).load_conn(conn)
    lab.run(
        ROGUE.name,
        [
            "swanctl",
            "--terminate",
            "--ike",
            topo.VICI_PROFILE,
            "--force",
            "--timeout",
            "10",
            "--uri",
            f"unix://{lab.charon_socket}",
        ],
        check=False,
    )


def _hub_sa_with(lab: Lab, identity: str) -> bool:
    return any(
        sa["remote-host"] == str(ROGUE.nbma.ip)
        and sa["remote-id"] == identity
        and sa["state"] == "INSTALLED"
        for sa in child_sas(lab, "hub")
    )


def _denied_as(lab: Lab, identity: str, reason: str, since: int) -> list[dict[str, Any]]:
    """spoke3, authenticated as ``identity``, claims spoke2's address: every decision on it
    after journal id ``since`` is a denial, one names ``reason``, each is counted, and
    spoke2 keeps its binding and its traffic."""
    wait_for(
        f"spoke3 authenticated to the hub as {identity!r}", lambda: _hub_sa_with(lab, identity), 90
    )

    def decided() -> list[dict[str, Any]]:
        rogue = str(ROGUE.nbma.ip)
        return [
            d
            for d in _journal(lab)["decisions"]
            if d["id"] > since and d["remote_nbma"] == rogue and d["identity"] == identity
        ]

    wait_for("the hub to decide spoke3's claim", lambda: bool(decided()), 60)
    deadline = time.monotonic() + OBSERVE
    while time.monotonic() < deadline:
        _assert_spoke2_binding_intact(lab)
        time.sleep(1)
    decisions = decided()
    assert all(not d["accept"] for d in decisions), decisions
    assert any(reason in d["reason"] for d in decisions), (reason, decisions)
    assert _journal(lab)["counters"]["denied"] >= len(decisions)
    assert ping(lab, "hub", str(HUB.lan.ip), str(S2.lan.ip), count=3)
    return decisions


def _last_id(lab: Lab) -> int:
    return max((int(d["id"]) for d in _journal(lab)["decisions"]), default=0)


class TestOnCertificates:
    """One switch of the whole lab to certificates for all of these (the PSK again after
    the last): the first proves the lab works on certificates, the rest attack it."""

    @pytest.mark.usefixtures("rogue")
    def test_certificate_mode_authorizes_by_san_and_denies_a_valid_peer_claiming_another(
        self, lab: Lab, certificates: int
    ) -> None:
        def accepted_by_certificate() -> bool:
            log = _hub_log(lab)[certificates:]
            return all(
                f"peer={s.overlay.ip} nbma={s.nbma.ip} -> accept: accept {s.overlay.ip} via "
                f"{s.nbma.ip}: "
                in log
                and f"IKE peer '{s.fqdn}'" in log
                for s in (S1, S2)
            )

        wait_for(
            "both spokes re-registered, authorized by their certificates",
            accepted_by_certificate,
            120,
        )
        # Shortcuts bind the peer's LAN through the certificate's RFC 3779 address block.
        wait_for(
            "spoke1 -> spoke2 LAN over certificates",
            lambda: ping(lab, "spoke1", str(S1.lan.ip), str(S2.lan.ip)),
        )
        try:
            decisions = _rogue_is_denied(lab, f"IKE peer '{ROGUE.fqdn}'")
        finally:
            lab.remove_node(ROGUE)  # before the lab goes back to the PSK
        entitled = f"may claim only {ROGUE.entitled_overlay.ip}, {ROGUE.lan.network}, not "
        assert any(entitled + str(ROGUE.overlay.ip) in d for d in decisions), decisions

    @pytest.mark.usefixtures("rogue")
    @pytest.mark.parametrize(
        ("identity", "reason"),
        [
            # charon matches IDi *.lab.example against every certificate under the domain
            (
                "fqdn:*.lab.example",
                "cannot be tied to a certificate: its identity is a wildcard pattern ('*')",
            ),
            # spoke2's certificate carries spokes.lab.example too (topo.SPOKES_DNS)
            (
                f"fqdn:{topo.SPOKES_DNS}",
                "each certificate issued to the identity must allow the claim: ",
            ),
        ],
        ids=["wildcard", "shared-dns-name"],
    )
    def test_certificate_identity_that_is_not_the_peers_own_is_denied(
        self, lab: Lab, certificates: int, identity: str, reason: str
    ) -> None:
        lab.add_node(ROGUE)
        wait_for("spoke3 up with its own identity", lambda: _hub_sa_with(lab, ROGUE.fqdn), 90)
        since = _last_id(lab)
        _rogue_presents(lab, identity)
        try:
            _denied_as(lab, identity.removeprefix("fqdn:"), reason, since)
        finally:
            lab.remove_node(ROGUE)  # before the lab goes back to the PSK

    @pytest.mark.usefixtures("rogue")
    def test_certificate_dn_wildcard_is_refused_by_charon(
        self, lab: Lab, certificates: int
    ) -> None:
        # The hub admits FQDNs under lab.example only (match identity remote fqdn domain):
        # charon itself refuses a DN, wildcard or not, before any binding is asked.
        lab.add_node(ROGUE)
        wait_for("spoke3 up with its own identity", lambda: _hub_sa_with(lab, ROGUE.fqdn), 90)
        log = topo.CHARON_LOG
        since = len(lab.run("hub", ["cat", log]).stdout)
        _rogue_presents(lab, "O=frrdmvpn lab, CN=*")
        try:
            wait_for(
                "the hub's charon to refuse spoke3's DN",
                lambda: (
                    "no matching peer config found" in lab.run("hub", ["cat", log]).stdout[since:]
                ),
                60,
            )
            deadline = time.monotonic() + OBSERVE
            while time.monotonic() < deadline:
                assert not _hub_sa_with(lab, "O=frrdmvpn lab, CN=*")
                _assert_spoke2_binding_intact(lab)
                time.sleep(1)
            assert ping(lab, "hub", str(HUB.lan.ip), str(S2.lan.ip), count=3)
        finally:
            lab.remove_node(ROGUE)


def test_psk_map_naming_spoke2_by_fqdn_beside_the_group_key_is_refused(lab: Lab) -> None:
    assert lab.auth == "psk"
    conf = lab.config_path(HUB)
    good = conf.read_text()
    conf.write_text(good.replace(f" identity {S2.nbma.ip} allow", f" identity {S2.fqdn} allow"))
    try:
        done = lab.apply("hub", check=False)
    finally:
        conf.write_text(good)
    assert done.returncode == 1
    assert (
        f"{conf}:55:11: error: IKE identity spoke2.lab.example is no address, and charon "
        "accepts the pre-shared key of keyring lab peer any for any identity (it has no "
        "identity and address 0.0.0.0 0.0.0.0): every holder of that key could present "
        "spoke2.lab.example and claim its prefixes" in done.stderr
    ), done.stderr
    assert (
        f" identity {S2.nbma.ip} allow"
        in lab.run("hub", ["cat", "/run/frrdmvpn/running.conf"]).stdout
    )
    _assert_spoke2_binding_intact(lab)


@pytest.fixture
def hub_policy_naming_spoke2_by_fqdn(lab: Lab) -> Iterator[None]:
    """The hub's proxy told on its command line that spoke2.lab.example may claim spoke2's
    addresses (as validation would never let a configuration say beside the group key);
    the applied policy again afterwards."""
    argv = topo.proxy_argv(lab.program("frrdmvpn-proxy"), "psk")
    argv += ["--psk-map", f"{S2.fqdn}={S2.overlay.ip}/32,{S2.lan.network}"]
    lab.kill("hub", "frrdmvpn-proxy")
    lab.start_proxy("hub", argv)
    try:
        _wait_registered(lab)  # nhrpd saw "charon" restart and re-registered both spokes
        yield
    finally:
        lab.kill("hub", "frrdmvpn-proxy")
        lab.start_proxy("hub")
        _wait_registered(lab)


@pytest.mark.usefixtures("rogue", "hub_policy_naming_spoke2_by_fqdn")
def test_group_psk_member_presenting_spoke2s_fqdn_is_denied(lab: Lab) -> None:
    assert lab.auth == "psk"
    lab.add_node(ROGUE)
    wait_for("spoke3 up with its own identity", lambda: _hub_sa_with(lab, str(ROGUE.nbma.ip)), 90)
    since = _last_id(lab)
    _rogue_presents(lab, f"fqdn:{S2.fqdn}")
    _denied_as(lab, S2.fqdn, f"IKE identity '{S2.fqdn}' (", since)
    decisions = [d for d in _journal(lab)["decisions"] if d["identity"] == S2.fqdn]
    assert all(
        "is no address and has no pre-shared key of its own" in d["reason"] for d in decisions
    ), decisions
