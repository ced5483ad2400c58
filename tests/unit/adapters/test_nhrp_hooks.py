"""nhrpd's NFLOG hooks and the MSS clamp as iptables rules (pure parts)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface

import pytest

from frrdmvpn.adapters import nhrp_hooks as h
from frrdmvpn.config.kernel import GreTunnel, NhrpHooks

pytestmark = pytest.mark.unit

HUB = NhrpHooks("dmvpn0", 2, redirect_group=1)
SPOKE = NhrpHooks("dmvpn0", 2)
TUNNEL = GreTunnel(
    "dmvpn0",
    42,
    IPv4Address("198.51.100.1"),
    "eth0",
    64,
    1400,
    (IPv4Interface("192.0.2.1/32"),),
    1360,
)


def test_spoke_intercepts_multicast_and_has_no_redirect_trigger() -> None:
    rules = h.chain_rules([SPOKE])
    assert rules[h.OUT_CHAIN] == [
        "-A FRRDMVPN-NHRP-OUT -d 224.0.0.0/24 -o dmvpn0 -j NFLOG --nflog-group 2",
        "-A FRRDMVPN-NHRP-OUT -d 224.0.0.0/24 -o dmvpn0 -j DROP",
    ]
    assert rules[h.FWD_CHAIN] == []


def test_hub_logs_forwarded_tunnel_traffic_rate_limited_per_flow() -> None:
    (rule,) = h.chain_rules([HUB])[h.FWD_CHAIN]
    assert "-i dmvpn0 -o dmvpn0 -m hashlimit --hashlimit-upto 4/minute" in rule
    assert "--hashlimit-name nhrp-dmvpn0 " in rule  # at most 15 characters
    assert rule.endswith("-j NFLOG --nflog-group 1 --nflog-size 128")


def test_mss_is_clamped_both_ways_through_the_tunnel() -> None:
    assert h.mss_rules([TUNNEL]) == [
        "-A FRRDMVPN-MSS -o dmvpn0 -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --set-mss 1360",
        "-A FRRDMVPN-MSS -i dmvpn0 -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --set-mss 1360",
    ]


def test_a_chain_is_current_only_with_every_rule_of_the_same_digest() -> None:
    wanted = h._stamped(h.chain_rules([HUB])[h.OUT_CHAIN])
    # iptables prints the comment quoted and options in its own order: only the tag counts.
    printed = [r.replace("--nflog-group 2", "--nflog-group 2 ") for r in wanted]
    assert h._is_current(printed, wanted)
    assert not h._is_current(printed[:1], wanted)
    assert not h._is_current(None, wanted)
    other = h._stamped(h.chain_rules([NhrpHooks("dmvpn0", 3)])[h.OUT_CHAIN])
    assert not h._is_current(printed, other)
    assert h._is_current([], h._stamped([]))
