"""Desired state: interop defaults, FRR text, kernel state and the authorization policy."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network

import pytest

from frrdmvpn.config import defaults
from frrdmvpn.config.frr import FRR_8_4, FrrVersion, frr_version, render_frr, shown
from frrdmvpn.config.kernel import GreTunnel, desired_kernel
from frrdmvpn.config.model import Config
from frrdmvpn.config.parse import parse_strict
from frrdmvpn.config.policy import authorization_policy
from frrdmvpn.core.authorize import Policy, PolicyMode

pytestmark = pytest.mark.unit

BASE = """interface Tunnel0
 ip address 192.0.2.11 255.255.255.0
 ip nhrp network-id 1
 tunnel source eth0
 tunnel mode gre multipoint
{extra}!
router ospf 1
 network 192.0.2.0 0.0.0.255 area 0
!
"""


def config(extra: str = "") -> Config:
    lines = "".join(f" {line.strip()}\n" for line in extra.strip().splitlines())
    return parse_strict(BASE.format(extra=lines))


def ospf_if(extra: str = "") -> list[str]:
    """The ospfd statements of dmvpn0."""
    text = render_frr(config(extra)).ospfd
    block = text[text.index("interface dmvpn0\n") :]
    return [line.strip() for line in block[: block.index("exit")].splitlines()[1:]]


def nhrp_if(extra: str = "") -> list[str]:
    text = render_frr(config(extra)).nhrpd
    block = text[text.index("interface dmvpn0\n") :]
    return [line.strip() for line in block[: block.index("exit")].splitlines()[1:]]


SPOKE = "ip nhrp nhs 192.0.2.1 nbma 198.51.100.1 multicast"
HUB = "ip nhrp map multicast dynamic"  # a tunnel without NHS that serves spokes


# --- OSPF interop defaults -------------------------------------------------------------------


def test_hub_defaults_to_point_to_multipoint_with_cisco_timers() -> None:
    assert ospf_if(HUB) == [
        "ip ospf network point-to-multipoint",
        "ip ospf hello-interval 30",
        "ip ospf dead-interval 120",
        "ip ospf mtu-ignore",
    ]


def test_spoke_defaults_to_point_to_point_dmvpn_with_the_hubs_timers() -> None:
    assert ospf_if(SPOKE) == [
        "ip ospf network point-to-point dmvpn",
        "ip ospf hello-interval 30",
        "ip ospf dead-interval 120",
        "ip ospf mtu-ignore",
    ]


def test_broadcast_spoke_gets_dr_priority_0_and_cisco_broadcast_timers() -> None:
    # Broadcast is FRR's default type on an mGRE link and hello 10 its default:
    # FRR does not print them, so neither does frrdmvpn.
    assert ospf_if(f"{SPOKE}\nip ospf network broadcast") == [
        "ip ospf dead-interval 40",
        "ip ospf priority 0",
        "ip ospf mtu-ignore",
    ]


def test_broadcast_hub_keeps_the_default_priority_unless_configured() -> None:
    assert ospf_if(f"{HUB}\nip ospf network broadcast") == [
        "ip ospf dead-interval 40",
        "ip ospf mtu-ignore",
    ]
    assert "ip ospf priority 2" in ospf_if(f"{HUB}\nip ospf network broadcast\nip ospf priority 2")
    assert "ip ospf priority 1" not in ospf_if(
        f"{HUB}\nip ospf network broadcast\nip ospf priority 1"
    )


def test_dead_interval_follows_a_configured_hello() -> None:
    assert ospf_if("ip ospf hello-interval 5")[1:3] == [
        "ip ospf hello-interval 5",
        "ip ospf dead-interval 20",
    ]
    assert ospf_if("ip ospf hello-interval 5\nip ospf dead-interval 17")[2] == (
        "ip ospf dead-interval 17"
    )


def test_mtu_ignore_can_be_switched_off() -> None:
    assert "ip ospf mtu-ignore" not in ospf_if("no ip ospf mtu-ignore")
    assert "ip ospf mtu-ignore" in ospf_if("default ip ospf mtu-ignore")


def test_effective_values() -> None:
    t = config(HUB).interfaces[0]
    assert defaults.role(t) is defaults.Role.HUB
    # Without NHS and without serving spokes (e.g. a spoke's last NHS removed): a spoke.
    assert defaults.role(config().interfaces[0]) is defaults.Role.SPOKE
    assert (defaults.mtu(t), defaults.tcp_mss(t), defaults.holdtime(t)) == (1400, 1360, 600)
    t = config(f"{SPOKE}\nip mtu 1300").interfaces[0]
    assert defaults.role(t) is defaults.Role.SPOKE
    assert defaults.tcp_mss(t) == 1260
    assert defaults.tcp_mss(config("ip tcp adjust-mss 1200").interfaces[0]) == 1200


# --- nhrpd -----------------------------------------------------------------------------------


def test_nhrpd_statements_in_frr_order() -> None:
    assert nhrp_if(f"{SPOKE}\nip nhrp shortcut\ntunnel protection ipsec profile P") == [
        "tunnel protection vici profile P",
        "tunnel source eth0",
        "ip nhrp network-id 1",
        "ip nhrp holdtime 600",
        "ip nhrp shortcut",
        "ip nhrp registration no-unique",
        "ip nhrp nhs 192.0.2.1 nbma 198.51.100.1",
        "ip nhrp map multicast 198.51.100.1",
    ]


def test_classic_three_line_nhs_form() -> None:
    lines = nhrp_if(
        "ip nhrp map 192.0.2.1 198.51.100.1\nip nhrp map multicast 198.51.100.1\n"
        "ip nhrp nhs 192.0.2.1"
    )
    assert lines[-3:] == [
        "ip nhrp map 192.0.2.1 198.51.100.1",
        "ip nhrp nhs 192.0.2.1 nbma 198.51.100.1",
        "ip nhrp map multicast 198.51.100.1",
    ]


def test_what_frr_84_lacks_or_hides_is_not_rendered() -> None:
    lines = nhrp_if(
        "ip nhrp nhs dynamic nbma hub.example.net multicast priority 4\n"
        "ip nhrp authentication 114514\nip nhrp holdtime 7200\n"
        "no ip nhrp registration no-unique"
    )
    assert lines == [
        "tunnel source eth0",
        "ip nhrp network-id 1",
        "ip nhrp nhs dynamic nbma hub.example.net",
    ]


def test_global_nhrp_statements_follow_protection_and_redirect() -> None:
    hub = render_frr(config("ip nhrp redirect\ntunnel protection ipsec profile P")).nhrpd
    assert hub.splitlines()[:3] == [
        "nhrp event socket /run/frrdmvpn/nhrp-events.sock",
        "nhrp nflog-group 1",
        "nhrp multicast-nflog-group 2",
    ]
    plain = render_frr(config()).nhrpd
    assert plain.splitlines()[0] == "nhrp multicast-nflog-group 2"
    assert render_frr(Config()).nhrpd == "!\n"


def test_address_source_leaves_tunnel_source_to_the_kernel_link() -> None:
    text = BASE.replace("tunnel source eth0", "tunnel source 198.51.100.11").format(extra="")
    assert "tunnel source" not in render_frr(parse_strict(text)).nhrpd


# --- ospfd router ----------------------------------------------------------------------------


def test_router_ospf_mapping() -> None:
    text = BASE.format(extra=f" description core\n {HUB}\n") + (
        "router ospf 1\n router-id 192.0.2.11\n timers throttle spf 0 50 5000\n"
        " passive-interface Tunnel0\n passive-interface lan0\n"
        " network 203.0.113.16 0.0.0.15 area 0.0.0.0\n"
    )
    ospfd = render_frr(parse_strict(text)).ospfd
    assert ospfd == (
        "!\n"
        "interface dmvpn0\n description core\n ip ospf network point-to-multipoint\n"
        " ip ospf hello-interval 30\n ip ospf dead-interval 120\n ip ospf mtu-ignore\n"
        " ip ospf passive\nexit\n!\n"
        "interface lan0\n ip ospf passive\nexit\n!\n"
        "router ospf\n ospf router-id 192.0.2.11\n network 192.0.2.0/24 area 0\n"
        " network 203.0.113.16/28 area 0.0.0.0\nexit\n!\n"
    )


def test_no_router_ospf_no_ospfd_config() -> None:
    text = BASE.format(extra="").split("router ospf")[0]
    assert render_frr(parse_strict(text)).ospfd == "!\n"


# --- kernel ----------------------------------------------------------------------------------


def test_kernel_link_from_an_interface_source() -> None:
    c = config("tunnel key 42")
    with_fact = desired_kernel(c, {"eth0": IPv4Address("198.51.100.11")})
    assert with_fact.tunnels == (
        GreTunnel(
            "dmvpn0",
            42,
            IPv4Address("198.51.100.11"),
            "eth0",
            64,
            1400,
            (IPv4Interface("192.0.2.11/32"),),
            1360,
        ),
    )
    assert desired_kernel(c).tunnels[0].local is None


def test_kernel_link_from_an_address_source() -> None:
    text = BASE.replace("tunnel source eth0", "tunnel source 198.51.100.11").format(extra="")
    (t,) = desired_kernel(parse_strict(text)).tunnels
    assert (t.local, t.link, t.key) == (IPv4Address("198.51.100.11"), None, None)


def test_sysctls_and_nhrp_hooks() -> None:
    state = desired_kernel(config("ip nhrp redirect"))
    assert state.sysctls == (
        ("net.ipv4.ip_forward", "1"),
        ("net.ipv4.conf.all.rp_filter", "0"),
        ("net.ipv4.conf.default.rp_filter", "0"),
        ("net.ipv4.conf.dmvpn0.rp_filter", "0"),
        ("net.ipv6.conf.dmvpn0.disable_ipv6", "1"),
    )
    assert state.to_dict()["nhrp_hooks"] == [
        {
            "interface": "dmvpn0",
            "multicast_group": 2,
            "multicast_destinations": "224.0.0.0/24",
            "redirect_group": 1,
            "redirect_rate": "4/minute",
            "redirect_burst": 1,
            "redirect_mask": 32,
        },
    ]
    spoke = desired_kernel(config(SPOKE)).nhrp_hooks[0]
    assert spoke.redirect_group is None
    assert desired_kernel(Config()).to_dict() == {"tunnels": [], "sysctls": [], "nhrp_hooks": []}


# --- authorization ---------------------------------------------------------------------------


def test_psk_map_policy() -> None:
    text = BASE.format(extra="") + (
        "frrdmvpn authorization psk-map\n identity 198.51.100.1 allow 192.0.2.1/32 203.0.113.0/28\n"
    )
    assert authorization_policy(parse_strict(text)) == Policy(
        PolicyMode.PSK_MAP,
        IPv4Network("192.0.2.0/24"),
        {"198.51.100.1": frozenset({IPv4Network("192.0.2.1/32"), IPv4Network("203.0.113.0/28")})},
    )


def test_policy_defaults_and_modes() -> None:
    assert authorization_policy(config()) == Policy(
        PolicyMode.ANY_AUTHENTICATED, IPv4Network("192.0.2.0/24")
    )
    cert = BASE.format(extra="") + "frrdmvpn authorization certificate\n"
    policy = authorization_policy(parse_strict(cert))
    assert policy is not None
    assert (policy.mode, dict(policy.psk_map)) == (PolicyMode.CERTIFICATE, {})
    assert authorization_policy(Config()) is None


def test_nhrp_authentication_is_rendered_where_nhrpd_has_it() -> None:
    tunnel = config("ip nhrp authentication s3cr3t")
    assert "ip nhrp authentication" not in render_frr(tunnel).nhrpd  # FRR 8.4: none
    newer = render_frr(tunnel, FrrVersion(10, 3)).nhrpd.splitlines()
    source = newer.index(" tunnel source eth0")
    assert newer[source + 1] == " ip nhrp authentication s3cr3t"  # 10.3's order
    assert FrrVersion(10, 1).nhrp_authentication is False
    assert FrrVersion(10, 2).nhrp_authentication is True


def test_the_version_is_read_from_show_version_and_secrets_are_shown_masked() -> None:
    assert frr_version("FRRouting 10.3 (hub) on Linux(6.12.118+deb13-amd64).") == FrrVersion(10, 3)
    assert frr_version("nhrpd version 8.4.4") == FRR_8_4
    assert frr_version("% Unknown command") is None
    assert shown("ip nhrp authentication s3cr3t") == "ip nhrp authentication <removed>"
    assert shown(" no ip nhrp authentication s3cr3t") == " no ip nhrp authentication <removed>"
    assert shown("ip nhrp holdtime 60") == "ip nhrp holdtime 60"
