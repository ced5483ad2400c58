"""docs/examples: each parses, validates clean, is canonical, and renders to its golden
fixtures; the lab examples render what lab.topology configures today.

Regenerate the fixtures after an intended change with ``FRRDMVPN_REGEN_GOLDEN=1``.
"""

from __future__ import annotations

import json
import os
import re
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

import pytest

from frrdmvpn.config.canonical_text import render
from frrdmvpn.config.commands import COMMANDS
from frrdmvpn.config.frr import render_frr
from frrdmvpn.config.frrdiff import diff
from frrdmvpn.config.kernel import desired_kernel
from frrdmvpn.config.model import Config
from frrdmvpn.config.parse import parse
from frrdmvpn.config.policy import authorization_policy
from frrdmvpn.config.swan import connection_names, desired_swan
from frrdmvpn.config.validate import CODES, check, validate
from frrdmvpn.core.authorize import Policy, PolicyMode
from frrdmvpn.enforcement import parse_psk_map
from lab import topology as topo

pytestmark = pytest.mark.unit

ROOT = Path(__file__).parents[3]
EXAMPLES = ROOT / "docs" / "examples"
FIXTURES = Path(__file__).parent / "fixtures"
REGEN = os.environ.get("FRRDMVPN_REGEN_GOLDEN") == "1"

#: The underlay address of each example's ``tunnel source`` device (a fact the apply step
#: reads from the kernel).
FACTS: dict[str, dict[str, IPv4Address]] = {
    "lab-hub": {"eth0": IPv4Address("198.51.100.1")},
    "lab-spoke1": {"eth0": IPv4Address("198.51.100.11")},
    "lab-spoke2": {"eth0": IPv4Address("198.51.100.12")},
    "huawei-usg-hub": {"eth0": IPv4Address("198.51.100.1")},
    "cisco-csr-spoke": {"eth0": IPv4Address("198.51.100.2")},
    "vyos-spoke": {},
    "huawei-ar-spoke": {"eth0": IPv4Address("198.51.100.4")},
}
NAMES = sorted(FACTS)
LAB = {"hub": "lab-hub", "spoke1": "lab-spoke1", "spoke2": "lab-spoke2"}


def load(name: str) -> Config:
    result = parse((EXAMPLES / f"{name}.conf").read_text())
    assert result.ok, result.diagnostics
    return result.config


def test_every_example_is_covered() -> None:
    assert sorted(p.stem for p in EXAMPLES.glob("*.conf")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_example_parses_validates_clean_and_is_canonical(name: str) -> None:
    text = (EXAMPLES / f"{name}.conf").read_text()
    result = parse(text)
    assert result.diagnostics == ()
    assert validate(result.config, result.source) == ()
    assert render(result.config) == text


def _golden(path: Path, actual: str) -> None:
    if REGEN:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual)
    assert path.read_text() == actual, f"{path.name} differs (FRRDMVPN_REGEN_GOLDEN=1 rewrites)"


@pytest.mark.parametrize("name", NAMES)
def test_example_renders_to_its_golden_fixtures(name: str) -> None:
    config = load(name)
    frr = render_frr(config)
    _golden(FIXTURES / f"{name}.nhrpd.conf", frr.nhrpd)
    _golden(FIXTURES / f"{name}.ospfd.conf", frr.ospfd)
    swan = desired_swan(config, FACTS[name]).to_dict()
    _golden(FIXTURES / f"{name}.vici.json", json.dumps(swan, indent=2) + "\n")
    kernel = desired_kernel(config, FACTS[name]).to_dict()
    _golden(FIXTURES / f"{name}.kernel.json", json.dumps(kernel, indent=2) + "\n")
    # the proxy lets nhrpd use exactly the connections loaded (issue 14, hole 3)
    assert connection_names(config) == set(desired_swan(config, FACTS[name]).conns)


# --- the lab examples against lab.topology --------------------------------------------


def _as_dmvpn0(text: str) -> str:
    return re.sub(r"\bgre1\b", "dmvpn0", text)


@pytest.mark.parametrize("node", sorted(LAB))
def test_lab_frr_config_is_what_the_topology_renders(node: str) -> None:
    """Same statements as topology.py's nhrpd/ospfd files (gre1 is dmvpn0; log and debug
    lines are not frrdmvpn's): applying ours over theirs, or theirs over ours, is a no-op."""
    n = topo.node(node)
    frr = render_frr(load(LAB[node]))
    for lab_text, ours in ((topo.nhrpd_conf(n), frr.nhrpd), (topo.ospfd_conf(n), frr.ospfd)):
        theirs = _as_dmvpn0(lab_text)
        assert diff(theirs, ours) == []
        assert diff(ours, theirs) == []
        statements = {line.strip() for line in ours.splitlines()} - {"!", "exit"}
        assert statements <= {line.strip() for line in theirs.splitlines()}


@pytest.mark.parametrize("node", sorted(LAB))
def test_lab_kernel_state_is_what_the_topology_builds(node: str) -> None:
    n = topo.node(node)
    state = desired_kernel(load(LAB[node]), FACTS[LAB[node]])
    (tunnel,) = state.tunnels
    commands = [_as_dmvpn0(c) for c in topo.node_commands(n)]
    assert (
        f"link add {tunnel.name} type {tunnel.kind} key {tunnel.key} ttl {tunnel.ttl} "
        f"local {tunnel.local} dev {tunnel.link}"
    ) in commands
    assert f"link set {tunnel.name} mtu {tunnel.mtu}" in commands
    assert tunnel.addresses == (IPv4Interface(n.overlay),)
    assert f"addr add {tunnel.addresses[0]} dev {tunnel.name}" in commands
    assert state.sysctls == tuple((_as_dmvpn0(k), v) for k, v in topo.SYSCTLS)


@pytest.mark.parametrize("node", sorted(LAB))
def test_lab_nhrp_hooks_are_the_topologys_iptables_rules(node: str) -> None:
    n = topo.node(node)
    (hooks,) = desired_kernel(load(LAB[node]), FACTS[LAB[node]]).nhrp_hooks
    rules = [" ".join(r) for r in topo.iptables_rules(n)]
    assert any(
        f"-d {hooks.multicast_destinations} -o gre1 -j NFLOG --nflog-group "
        f"{hooks.multicast_group}" in r
        for r in rules
    )
    redirect = [r for r in rules if "hashlimit" in r]
    if hooks.redirect_group is None:
        assert redirect == []
    else:
        (rule,) = redirect
        assert f"--hashlimit-upto {hooks.redirect_rate}" in rule
        assert f"--hashlimit-burst {hooks.redirect_burst}" in rule
        assert f"--hashlimit-srcmask {hooks.redirect_mask}" in rule
        assert rule.endswith(f"--nflog-group {hooks.redirect_group} --nflog-size 128")


def swanctl(text: str) -> dict[str, object]:
    """A minimal reader of swanctl.conf sections (enough for topology.swanctl_conf)."""
    root: dict[str, object] = {}
    stack = [root]
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.endswith("{"):
            child: dict[str, object] = {}
            stack[-1][line[:-1].strip()] = child
            stack.append(child)
        elif line == "}":
            stack.pop()
        else:
            key, _, value = line.partition("=")
            stack[-1][key.strip()] = value.strip().strip('"')
    return root


def _flat(value: object) -> object:
    if isinstance(value, dict):
        return {k: _flat(v) for k, v in value.items()}
    if isinstance(value, list):
        return ",".join(value)
    return value


@pytest.mark.parametrize("node", sorted(LAB))
def test_lab_vici_messages_are_the_topologys_swanctl_conf(node: str) -> None:
    n = topo.node(node)
    state = desired_swan(load(LAB[node]), FACTS[LAB[node]])
    theirs = swanctl(topo.swanctl_conf(n))
    assert _flat(dict(state.conns)[topo.VICI_PROFILE]) == theirs["connections"]
    (shared,) = state.shared.values()
    assert theirs["secrets"] == {"ike-dmvpn": {"secret": shared["data"]}}


@pytest.mark.parametrize("node", sorted(LAB))
def test_lab_authorization_is_the_enforcers_psk_map(node: str) -> None:
    argv = topo.proxy_argv("python")
    items = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--psk-map"]
    subnet = argv[argv.index("--tunnel-subnet") + 1]
    assert authorization_policy(load(LAB[node])) == Policy(
        PolicyMode.PSK_MAP, topo.OVERLAY, parse_psk_map(items)
    )
    assert str(topo.OVERLAY) == subnet


# --- the reference stays complete ------------------------------------------------------------


def test_reference_documents_every_statement_and_rule() -> None:
    doc = (ROOT / "docs" / "config.md").read_text()
    for command in COMMANDS:
        assert " ".join(command.leading_keywords()) in doc, command.syntax
    for code in CODES:
        assert f"`{code}`" in doc, code


def test_reference_diagnostic_sample_is_real() -> None:
    text = (
        (EXAMPLES / "lab-spoke1.conf").read_text().replace("nhs dynamic nbma", "nhs 10.0.0.1 nbma")
    )
    (d,) = check(text)[1]
    doc = (ROOT / "docs" / "config.md").read_text()
    assert d.format(text) in doc
