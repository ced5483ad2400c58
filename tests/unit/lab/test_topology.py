"""The lab's topology and rendered daemon configs."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from frrdmvpn.adapters.vtysh import extract_json
from frrdmvpn.config.canonical_text import render
from frrdmvpn.config.policy import authorization_policy
from frrdmvpn.config.validate import check
from lab import topology as topo
from lab.netns import Lab

pytestmark = pytest.mark.unit

DOC_RANGES = [
    ipaddress.IPv4Network(n) for n in ("198.51.100.0/24", "192.0.2.0/24", "203.0.113.0/24")
]


def test_only_documentation_addresses() -> None:
    for n in topo.NODES:
        for addr in (n.nbma, n.overlay, n.lan):
            assert any(addr.network.subnet_of(r) for r in DOC_RANGES), addr


def test_addresses_are_unique_and_lans_disjoint() -> None:
    for attr in ("nbma", "overlay", "lan"):
        values = [getattr(n, attr).ip for n in topo.NODES]
        assert len(set(values)) == len(values)
    lans = [n.lan.network for n in topo.NODES]
    assert not any(a.overlaps(b) for a in lans for b in lans if a is not b)


def test_spokes_register_with_the_hub_and_hub_redirects() -> None:
    hub, spoke = topo.hub(), topo.node("spoke1")
    hub_conf, spoke_conf = topo.nhrpd_conf(hub), topo.nhrpd_conf(spoke)
    assert " ip nhrp redirect" in hub_conf
    assert " ip nhrp map multicast dynamic" in hub_conf
    assert "nhs" not in hub_conf
    assert f" ip nhrp nhs dynamic nbma {hub.nbma.ip}" in spoke_conf
    assert " ip nhrp shortcut" in spoke_conf
    assert "redirect" not in spoke_conf


def test_ospf_network_types_follow_role() -> None:
    assert "point-to-multipoint" in topo.ospfd_conf(topo.hub())
    assert "point-to-point dmvpn" in topo.ospfd_conf(topo.node("spoke2"))


def test_ipsec_is_a_wildcard_transport_trap_for_gre() -> None:
    conf = topo.swanctl_conf(topo.node("spoke1"))
    for line in (
        "remote_addrs = %any",
        "mode = transport",
        "local_ts = dynamic[gre]",
        "start_action = trap",
        "local_addrs = 198.51.100.11",
    ):
        assert line in conf


def test_only_the_hub_nflogs_forwarded_traffic_for_redirects() -> None:
    def groups(name: str) -> set[str]:
        rules = topo.iptables_rules(topo.node(name))
        return {r[r.index("--nflog-group") + 1] for r in rules if "--nflog-group" in r}

    assert groups("hub") == {"1", "2"}
    assert groups("spoke1") == {"2"}


def test_unknown_node_names_the_valid_ones() -> None:
    with pytest.raises(KeyError, match="hub, spoke1, spoke2"):
        topo.node("spoke9")


def test_node_commands_run_in_netns_with_private_mounts() -> None:
    argv = Lab().argv("spoke2", ["vtysh", "-c", "show dmvpn"])
    assert argv[:4] == ["ip", "netns", "exec", "frrdmvpn-spoke2"]
    assert argv[-3:] == ["vtysh", "-c", "show dmvpn"]
    script = argv[argv.index("-c") + 1]
    assert script.index("/etc/frr") < script.index("mount --bind $d/run /run")


def test_extract_json_skips_frr_84_shortcut_header() -> None:
    header = "Type     Prefix                   Via                      Identity\n"
    text = header + '{"attr":{"entriesCount":1},"table":[{"type":"dynamic"}]}'
    assert extract_json(text)["table"] == [{"type": "dynamic"}]
    with pytest.raises(ValueError, match="no JSON"):
        extract_json("% No entries")


EXAMPLES = Path(__file__).resolve().parents[3] / "docs" / "examples"


@pytest.mark.parametrize("n", topo.NODES, ids=lambda n: n.name)
def test_lab_node_config_is_the_documented_example(n: topo.Node) -> None:
    assert topo.frrdmvpn_conf(n) == (EXAMPLES / f"lab-{n.name}.conf").read_text()


@pytest.mark.parametrize("auth", topo.AUTHS)
@pytest.mark.parametrize("n", topo.NODES + topo.EXTRA_NODES, ids=lambda n: n.name)
def test_lab_node_configs_are_valid_and_canonical(n: topo.Node, auth: str) -> None:
    text = topo.frrdmvpn_conf(n, auth)
    config, findings = check(text)
    assert findings == ()
    assert render(config) == text
    policy = authorization_policy(config)
    assert policy is not None
    assert policy.mode.value == ("certificate" if auth == "cert" else "psk-map")


def test_frrdmvpn_mode_builds_no_tunnel_by_hand() -> None:
    n = topo.node("spoke1")
    assert not any("gre" in line for line in topo.node_commands(n, "frrdmvpn"))
    assert any("type gre" in line for line in topo.node_commands(n, "trap"))
    files = topo.frr_files(n, "frrdmvpn")
    assert not any("interface" in text or "router" in text for text in files.values())
