"""One frrdmvpn.conf per node drives the kernel, FRR and charon; changes apply live."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from lab import topology as topo
from lab.netns import Lab
from tests.lab.helpers import conns, edit_config, ike_sas, nhrp_cache, ping, wait_for

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("frrdmvpn_mode")]

HUB, S1, S2 = topo.node("hub"), topo.node("spoke1"), topo.node("spoke2")
DAEMONS = (
    "/usr/lib/frr/zebra",
    "/usr/lib/frr/nhrpd",
    "/usr/lib/frr/ospfd",
    topo.CHARON,
    "frrdmvpn-proxy",
    "frrdmvpnd run",
)
EXTRA_LAN = "203.0.113.65/28"  # a second LAN on spoke1, announced by a config change
EXTRA_HOST = "203.0.113.65"


def _pids(lab: Lab) -> dict[tuple[str, str], list[int]]:
    return {(n.name, d): sorted(lab.find(n.name, d)) for n in topo.NODES for d in DAEMONS}


def _conf(lab: Lab, name: str) -> Path:
    return lab.config_path(topo.node(name))


def _applied(lab: Lab, name: str) -> str:
    done = lab.apply(name)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _changes(out: str) -> int:
    found = re.search(r"frrdmvpnd: (\d+) change\(s\)", out)
    assert found, out
    return int(found.group(1))


def _running(lab: Lab, name: str) -> str:
    return lab.vtysh(name, "show running-config")


def test_nodes_are_configured_only_by_their_frrdmvpn_conf(lab: Lab) -> None:
    for n in topo.NODES:
        on_disk = lab.run(
            n.name,
            ["cat", "/etc/frr/nhrpd.conf", "/etc/frr/ospfd.conf", "/etc/swanctl/swanctl.conf"],
        ).stdout
        assert "interface" not in on_disk
        assert "router ospf" not in on_disk
        assert "connections" not in on_disk
        running = _running(lab, n.name)
        assert "interface dmvpn0" in running
        assert "tunnel protection vici profile dmvpn" in running
        assert f"ospf router-id {n.overlay.ip}" in running
        assert conns(lab, n.name)["dmvpn"]["version"] == "IKEv2"
        link = json.loads(lab.run(n.name, ["ip", "-j", "-d", "link", "show", "dmvpn0"]).stdout)
        info = link[0]["linkinfo"]["info_data"]
        assert (info["ikey"], info["local"], link[0]["mtu"]) == ("0.0.0.42", str(n.nbma.ip), 1400)
        # The lab's full state came from these files: registrations and SAs at the hub.
    cache = {e["protocol"]: e["nbma"] for e in nhrp_cache(lab, "hub")}
    assert cache.get(str(S1.overlay.ip)) == str(S1.nbma.ip)
    assert cache.get(str(S2.overlay.ip)) == str(S2.nbma.ip)


def _state(lab: Lab, name: str) -> dict[str, object]:
    """What FRR, charon and the kernel hold for the node (minus counters and timers)."""
    link = json.loads(lab.run(name, ["ip", "-j", "-d", "link", "show", "dmvpn0"]).stdout)[0]
    return {
        "frr": _running(lab, name),
        "conns": conns(lab, name),
        "ike_sas": sorted(
            ike["uniqueid"]
            for ike in ike_sas(lab, name)
            if ike["name"] == "dmvpn" and ike["state"] == "ESTABLISHED"
        ),
        "link": {k: link.get(k) for k in ("ifindex", "mtu", "flags", "linkinfo")},
        "addresses": lab.run(name, ["ip", "-4", "-o", "addr", "show", "dev", "dmvpn0"]).stdout,
        "iptables": lab.run(name, ["iptables", "-S"]).stdout,
        "sysctls": lab.run(
            name, ["sysctl", "net.ipv4.ip_forward", "net.ipv4.conf.dmvpn0.rp_filter"]
        ).stdout,
    }


def test_reapplying_the_running_configuration_changes_nothing(lab: Lab) -> None:
    before_pids = _pids(lab)
    before = {n.name: _state(lab, n.name) for n in topo.NODES}
    for n in topo.NODES:
        assert _changes(_applied(lab, n.name)) == 0
    after = {n.name: _state(lab, n.name) for n in topo.NODES}
    for n in topo.NODES:
        for what, value in before[n.name].items():
            assert after[n.name][what] == value, (n.name, what)
    assert _pids(lab) == before_pids


@pytest.mark.usefixtures("restore_configs")
def test_live_changes_take_effect_without_restarting_any_daemon(lab: Lab) -> None:
    before = _pids(lab)
    # The hub's holdtime.
    edit_config(lab, "hub", " ip nhrp holdtime 60\n", " ip nhrp holdtime 45\n")
    out = _applied(lab, "hub")
    assert "nhrpd: ip nhrp holdtime 45" in out, out
    assert " ip nhrp holdtime 45" in _running(lab, "hub")
    # A new LAN on spoke1 announced into OSPF: the hub learns its route.
    lab.run("spoke1", ["ip", "link", "add", "lan1", "type", "dummy"])
    lab.run("spoke1", ["ip", "addr", "add", EXTRA_LAN, "dev", "lan1"])
    lab.run("spoke1", ["ip", "link", "set", "lan1", "up"])
    lan = " network 203.0.113.16 0.0.0.15 area 0\n"
    edit_config(lab, "spoke1", lan, lan + " network 203.0.113.64 0.0.0.15 area 0\n")
    out = _applied(lab, "spoke1")
    assert "ospfd: network 203.0.113.64/28 area 0" in out, out

    def hub_routes_extra_lan() -> bool:
        routes = lab.vtysh_json("hub", "show ip route 203.0.113.64/28 json")
        return any(r.get("protocol") == "ospf" for r in routes.get("203.0.113.64/28", []))

    wait_for("the hub to learn spoke1's new LAN over OSPF", hub_routes_extra_lan, 60)
    wait_for(
        "hub LAN -> spoke1's new LAN", lambda: ping(lab, "hub", str(HUB.lan.ip), EXTRA_HOST), 60
    )
    # spoke2 drops its NHS: nhrpd stops registering with the hub.
    nhs = f" ip nhrp nhs dynamic nbma {HUB.nbma.ip} multicast\n"
    edit_config(lab, "spoke2", nhs, "")
    out = _applied(lab, "spoke2")
    assert f"nhrpd: no ip nhrp nhs dynamic nbma {HUB.nbma.ip}" in out, out
    assert "ip nhrp nhs" not in _running(lab, "spoke2")
    assert lab.vtysh_json("spoke2", "show ip nhrp nhs json").get("table", []) == []
    # Every change went in live, and applying again changes nothing.
    assert _pids(lab) == before
    for n in topo.NODES:
        assert _changes(_applied(lab, n.name)) == 0
    # Put spoke2's NHS back (the fixture restores every file) and see it register again.
    edit_config(
        lab,
        "spoke2",
        " ip nhrp registration no-unique\n",
        nhs + " ip nhrp registration no-unique\n",
    )
    _applied(lab, "spoke2")

    def registered() -> bool:
        cache = {e["protocol"]: e["nbma"] for e in nhrp_cache(lab, "hub")}
        return cache.get(str(S2.overlay.ip)) == str(S2.nbma.ip)

    wait_for("spoke2 registered again after its NHS came back", registered, 90)


def test_a_key_path_that_is_no_regular_root_file_is_refused_before_anything_changes(
    lab: Lab,
) -> None:
    """Issue 14 hole 5: ``private-key /dev/zero`` (or a FIFO) is a validation error; frrdmvpnd
    neither reads it nor blocks, and nothing changes."""
    fifo = lab.node_dir(S1) / "etc/swanctl/private/fifo.key"
    os.mkfifo(fifo, 0o600)
    text = _conf(lab, "spoke1").read_text()
    before = (_running(lab, "spoke1"), lab.run("spoke1", ["ip", "-d", "link"]).stdout)
    for key, kind in (
        ("/dev/zero", "a character device"),
        ("/etc/swanctl/private/fifo.key", "a FIFO"),
    ):
        bad = lab.node_dir(S1) / "etc/frrdmvpn/bad.conf"
        broken = text.replace(" ip mtu 1400\n", " ip mtu 1380\n").replace(
            "crypto ikev2 proposal lab\n",
            "crypto pki trustpoint tp\n"
            " certificate /etc/swanctl/x509/spoke1.pem\n"
            f" private-key {key}\n ca-certificate /etc/swanctl/x509ca/ca.pem\n!\n"
            "crypto ikev2 proposal lab\n",
        )
        broken = broken.replace(
            " authentication local pre-share\n",
            " authentication local ecdsa-sig\n pki trustpoint tp\n",
        )
        bad.write_text(broken)
        done = lab.run("spoke1", [lab.program("frrdmvpnd"), "apply", "-c", str(bad)], check=False)
        assert done.returncode == 1
        assert f"error: private-key {key} is not a regular file: it is {kind}" in done.stderr
        assert "nothing applied" in done.stderr
    assert (_running(lab, "spoke1"), lab.run("spoke1", ["ip", "-d", "link"]).stdout) == before


def test_an_invalid_configuration_is_refused_and_nothing_changes(lab: Lab) -> None:
    bad = lab.node_dir(S1) / "etc/frrdmvpn/bad.conf"
    text = _conf(lab, "spoke1").read_text()
    bad.write_text(
        text.replace(
            " ip nhrp nhs dynamic nbma 198.51.100.1 multicast\n",
            " ip nhrp nhs 192.0.9.1 nbma 198.51.100.1\n",
        )
    )
    before = (_running(lab, "spoke1"), lab.run("spoke1", ["ip", "-d", "link"]).stdout)
    argv = [lab.program("frrdmvpnd"), "apply", "-c", str(bad)]
    done = lab.run("spoke1", argv, check=False)
    assert done.returncode == 1
    assert re.search(r"bad\.conf:\d+:\d+: error: .*192\.0\.9\.1", done.stderr), done.stderr
    assert "nothing applied" in done.stderr
    assert (_running(lab, "spoke1"), lab.run("spoke1", ["ip", "-d", "link"]).stdout) == before


@pytest.mark.usefixtures("restore_configs")
def test_a_failure_part_way_restores_the_previous_state(lab: Lab) -> None:
    """A valid file whose private key charon cannot parse (a file frrdmvpn may read: root's,
    0600): the MTU change is made, charon's load-key fails, and the MTU is put back; FRR and
    charon keep the running config."""
    garbage = lab.node_dir(S2) / "etc/swanctl/private/garbage.key"
    garbage.write_text("not a private key\n")
    garbage.chmod(0o600)
    certificate = lab.node_dir(S2) / "etc/swanctl/x509/garbage.pem"
    certificate.write_text("not a certificate either\n")
    text = _conf(lab, "spoke2").read_text()
    broken = text.replace(" ip mtu 1400\n", " ip mtu 1380\n")
    broken = broken.replace(
        "crypto ikev2 proposal lab\n",
        "crypto pki trustpoint gone\n"
        " certificate /etc/swanctl/x509/garbage.pem\n"
        " private-key /etc/swanctl/private/garbage.key\n"
        " ca-certificate /etc/swanctl/x509/garbage.pem\n!\n"
        "crypto ikev2 proposal lab\n",
    )
    broken = broken.replace(
        " authentication local pre-share\n authentication remote pre-share\n keyring local lab\n",
        " authentication local ecdsa-sig\n authentication remote ecdsa-sig\n pki trustpoint gone\n",
    )
    broken = broken.replace(
        " match identity remote address 0.0.0.0\n",
        " match identity remote fqdn domain corp.example\n",
    )
    broken = re.sub(
        r"frrdmvpn authorization psk-map\n(?: .*\n)*",
        "frrdmvpn authorization certificate\n",
        broken,
    )
    _conf(lab, "spoke2").write_text(broken)
    before = (_running(lab, "spoke2"), conns(lab, "spoke2"))
    done = lab.apply("spoke2", check=False)
    assert done.returncode == 1, done.stdout
    assert "previous state restored" in done.stderr, done.stderr
    assert "private-key /etc/swanctl/private/garbage.key: charon refused" in done.stderr
    link = json.loads(lab.run("spoke2", ["ip", "-j", "link", "show", "dmvpn0"]).stdout)
    assert link[0]["mtu"] == 1400
    after = (_running(lab, "spoke2"), conns(lab, "spoke2"))
    assert after == before
