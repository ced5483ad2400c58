"""frrdmvpn.conf parsing: statements, sub-modes, ``no``/``default``, exact diagnostics."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network

import pytest

from frrdmvpn.config.commands import COMMANDS, GRAMMAR
from frrdmvpn.config.diagnostics import ConfigError, Diagnostic
from frrdmvpn.config.edit import apply_line, apply_lines
from frrdmvpn.config.model import (
    AddressIdentity,
    AuthMethod,
    Config,
    Dpd,
    DpdMode,
    FqdnIdentity,
    IpsecMode,
    KeyringPeer,
    NhrpMap,
    NhrpNhs,
    OspfNetwork,
    OspfNetworkType,
    TunnelInterface,
)
from frrdmvpn.config.modes import ROOT, Context, Mode
from frrdmvpn.config.parse import parse, parse_strict
from frrdmvpn.core.authorize import PolicyMode

pytestmark = pytest.mark.unit

A = IPv4Address
IF0 = Context(Mode.INTERFACE, ("Tunnel0",))


def tunnel(text: str) -> TunnelInterface:
    """The Tunnel0 of ``interface Tunnel0`` followed by ``text`` (indented)."""
    body = "".join(f" {line}\n" for line in text.strip().splitlines())
    result = parse(f"interface Tunnel0\n{body}")
    assert result.diagnostics == ()
    assert len(result.config.interfaces) == 1
    return result.config.interfaces[0]


def only(text: str) -> Diagnostic:
    result = parse(text)
    assert len(result.diagnostics) == 1, result.diagnostics
    return result.diagnostics[0]


# --- statements ----------------------------------------------------------------------------


def test_every_interface_statement() -> None:
    t = tunnel("""
        description core  DMVPN (hub)
        ip address 192.0.2.1 255.255.255.0
        ip mtu 1400
        ip tcp adjust-mss 1360
        ip nhrp authentication secret
        ip nhrp network-id 7
        ip nhrp holdtime 300
        ip nhrp map 192.0.2.9 198.51.100.9
        ip nhrp map multicast dynamic
        ip nhrp map multicast 198.51.100.9
        ip nhrp nhs 192.0.2.9 nbma 198.51.100.9 multicast priority 3
        ip nhrp nhs dynamic nbma hub.example.net
        ip nhrp registration no-unique
        ip nhrp redirect
        ip nhrp shortcut
        ip ospf network broadcast
        ip ospf priority 0
        ip ospf hello-interval 5
        ip ospf dead-interval 20
        ip ospf mtu-ignore
        tunnel source eth0
        tunnel mode gre multipoint
        tunnel key 42
        tunnel protection ipsec profile P
    """)
    assert t == TunnelInterface(
        number=0,
        description="core  DMVPN (hub)",
        address=IPv4Interface("192.0.2.1/24"),
        mtu=1400,
        tcp_adjust_mss=1360,
        source="eth0",
        multipoint=True,
        key=42,
        nhrp_authentication="secret",
        nhrp_network_id=7,
        nhrp_holdtime=300,
        nhrp_maps=(NhrpMap(A("192.0.2.9"), A("198.51.100.9")),),
        nhrp_map_multicast_dynamic=True,
        nhrp_map_multicast=(A("198.51.100.9"),),
        nhrp_nhs=(
            NhrpNhs(A("192.0.2.9"), A("198.51.100.9"), multicast=True, priority=3),
            NhrpNhs(None, "hub.example.net"),
        ),
        nhrp_registration_no_unique=True,
        nhrp_redirect=True,
        nhrp_shortcut=True,
        ospf_network=OspfNetworkType.BROADCAST,
        ospf_priority=0,
        ospf_hello_interval=5,
        ospf_dead_interval=20,
        ospf_mtu_ignore=True,
        protection_profile="P",
    )
    assert t.linux_name == "dmvpn0"


def test_crypto_and_routing_blocks() -> None:
    result = parse(
        """hostname r1
crypto pki trustpoint TP
 certificate /etc/frrdmvpn/r1.pem
 private-key /etc/frrdmvpn/r1.key
 ca-certificate /etc/frrdmvpn/ca.pem
crypto ikev2 proposal P1
 encryption aes-cbc-256 aes-cbc-128
 integrity sha256
 group 14 19
crypto ikev2 keyring K
 peer hub
  address 198.51.100.1
  identity fqdn hub.example.net
  pre-shared-key s3cret
 peer rest
  address 198.51.100.0 255.255.255.0
crypto ikev2 profile IKE
 match identity remote address 198.51.100.0 255.255.255.0
 identity local fqdn r1.example.net
 authentication local rsa-sig
 authentication remote pre-share
 keyring local K
 pki trustpoint TP
 dpd 10 3 on-demand
 lifetime 3600
crypto ipsec transform-set TS esp-aes 256 esp-sha256-hmac
 mode transport
crypto ipsec profile IPS
 set transform-set TS
 set ikev2-profile IKE
 set pfs group19
 set security-association lifetime seconds 1800
router ospf 7
 router-id 192.0.2.1
 timers throttle spf 50 100 1000
 passive-interface lan0
 passive-interface tunnel3
 network 192.0.2.0 0.0.0.255 area 0
 network 203.0.113.0/28 area 0.0.0.1
frrdmvpn authorization psk-map
 identity 198.51.100.11 allow 192.0.2.11/32 203.0.113.16/28
"""
    )
    assert result.diagnostics == ()
    c = result.config
    assert c.hostname == "r1"
    tp = c.trustpoints[0]
    assert (tp.certificate, tp.private_key, tp.ca_certificate) == (
        "/etc/frrdmvpn/r1.pem",
        "/etc/frrdmvpn/r1.key",
        "/etc/frrdmvpn/ca.pem",
    )
    p = c.ikev2_proposals[0]
    assert (p.encryption, p.integrity, p.prf, p.groups) == (
        ("aes-cbc-256", "aes-cbc-128"),
        ("sha256",),
        (),
        (14, 19),
    )
    k = c.ikev2_keyrings[0]
    assert k.peers == (
        KeyringPeer(
            "hub", IPv4Network("198.51.100.1/32"), FqdnIdentity("hub.example.net"), "s3cret"
        ),
        KeyringPeer("rest", IPv4Network("198.51.100.0/24")),
    )
    prof = c.ikev2_profiles[0]
    assert prof.match_remote == (AddressIdentity(A("198.51.100.0"), A("255.255.255.0")),)
    assert prof.identity_local == FqdnIdentity("r1.example.net")
    assert (prof.authentication_local, prof.authentication_remote) == (
        AuthMethod.RSA_SIG,
        AuthMethod.PRE_SHARE,
    )
    assert (prof.keyring, prof.trustpoint, prof.lifetime) == ("K", "TP", 3600)
    assert prof.dpd == Dpd(10, 3, DpdMode.ON_DEMAND)
    ts = c.transform_sets[0]
    assert (ts.encryption, ts.key_bits, ts.integrity, ts.mode) == (
        "esp-aes",
        256,
        "esp-sha256-hmac",
        IpsecMode.TRANSPORT,
    )
    ips = c.ipsec_profiles[0]
    assert (ips.transform_sets, ips.ikev2_profile, ips.pfs_group, ips.lifetime_seconds) == (
        ("TS",),
        "IKE",
        19,
        1800,
    )
    o = c.ospf
    assert o is not None
    assert (o.pid, o.router_id, o.spf_throttle) == (7, A("192.0.2.1"), (50, 100, 1000))
    assert o.passive_interfaces == ("lan0", "Tunnel3")
    assert o.networks == (
        OspfNetwork(IPv4Network("192.0.2.0/24"), "0"),
        OspfNetwork(IPv4Network("203.0.113.0/28"), "0.0.0.1"),
    )
    assert c.authorization is not None
    assert c.authorization.mode is PolicyMode.PSK_MAP
    assert c.authorization.identities[0].prefixes == (
        IPv4Network("192.0.2.11/32"),
        IPv4Network("203.0.113.16/28"),
    )


def test_comments_blank_lines_exit_end_and_crlf() -> None:
    text = (
        "! a comment\r\n\r\ninterface Tunnel0\r\n ! inner comment\r\n ip mtu 1400\r\n"
        " exit\r\nend\r\n"
    )
    result = parse(text)
    assert result.diagnostics == ()
    assert result.config.interfaces[0].mtu == 1400


def test_abbreviations_and_case_like_ios() -> None:
    t = tunnel("""
        IP NHRP HOLD 60
        ip nh nhs dyn nbma 198.51.100.1 mult
        ip ospf net point-to-m
        tun mode gre mult
    """)
    assert t.nhrp_holdtime == 60
    assert t.nhrp_nhs == (NhrpNhs(None, A("198.51.100.1"), multicast=True),)
    assert t.ospf_network is OspfNetworkType.POINT_TO_MULTIPOINT
    assert t.multipoint
    assert parse("int tu7\n").config.interfaces[0].number == 7


def test_reentering_a_block_edits_the_same_object() -> None:
    c = parse("interface Tunnel0\n ip mtu 1400\n!\ninterface Tunnel0\n tunnel key 5\n").config
    assert len(c.interfaces) == 1
    assert (c.interfaces[0].mtu, c.interfaces[0].key) == (1400, 5)


def test_nhs_re_entry_updates_in_place_and_lists_keep_order() -> None:
    t = tunnel("""
        ip nhrp nhs 192.0.2.1 nbma 198.51.100.1
        ip nhrp nhs 192.0.2.2 nbma 198.51.100.2
        ip nhrp nhs 192.0.2.1 nbma 198.51.100.1 priority 1
        ip nhrp map multicast 198.51.100.2
        ip nhrp map multicast 198.51.100.1
        ip nhrp map multicast 198.51.100.2
    """)
    assert [n.protocol for n in t.nhrp_nhs] == [A("192.0.2.1"), A("192.0.2.2")]
    assert t.nhrp_nhs[0].priority == 1
    assert t.nhrp_map_multicast == (A("198.51.100.2"), A("198.51.100.1"))


# --- no and default ----------------------------------------------------------------------


def test_no_forms_remove_and_tristates_switch_off() -> None:
    t = tunnel("""
        ip mtu 1400
        ip nhrp holdtime 60
        ip nhrp nhs 192.0.2.1 nbma 198.51.100.1
        ip nhrp nhs 192.0.2.2 nbma 198.51.100.2
        ip nhrp redirect
        no ip mtu
        no ip nhrp holdtime 60
        no ip nhrp nhs 192.0.2.1
        no ip nhrp redirect
        no ip nhrp registration no-unique
        no ip ospf mtu-ignore
    """)
    assert t.mtu is None
    assert t.nhrp_holdtime is None
    assert not t.nhrp_redirect
    assert [n.protocol for n in t.nhrp_nhs] == [A("192.0.2.2")]
    assert t.nhrp_registration_no_unique is False
    assert t.ospf_mtu_ignore is False


def test_default_form_returns_tristates_to_the_frrdmvpn_default() -> None:
    t = tunnel("no ip ospf mtu-ignore\ndefault ip ospf mtu-ignore\ndefault ip mtu")
    assert t.ospf_mtu_ignore is None
    assert t.mtu is None


def test_no_forms_of_blocks_and_list_items() -> None:
    c = parse_strict(
        """interface Tunnel0
 ip nhrp nhs dynamic nbma 198.51.100.1
 ip nhrp nhs dynamic nbma 198.51.100.2
 no ip nhrp nhs dynamic nbma 198.51.100.1
 ip nhrp map 192.0.2.1 198.51.100.1
 no ip nhrp map 192.0.2.1
 ip nhrp map multicast dynamic
 no ip nhrp map multicast dynamic
interface Tunnel1
no interface Tunnel1
crypto ikev2 keyring K
 peer a
 peer b
 no peer a
crypto ipsec transform-set T esp-gcm 256
 mode transport
 no mode
no crypto ipsec transform-set T
crypto ikev2 proposal P
 encryption aes-cbc-256 aes-cbc-128
 no encryption aes-cbc-128
 group 14 19
 no group
router ospf
 network 192.0.2.0 0.0.0.255 area 0
 network 198.51.100.0/24 area 1
 no network 192.0.2.0 0.0.0.255 area 0
 no network 198.51.100.0/24
 passive-interface lan0
 no passive-interface lan0
frrdmvpn authorization psk-map
 identity a allow 192.0.2.1/32
 no identity a
"""
    )
    (t,) = c.interfaces
    assert t.nhrp_nhs == (NhrpNhs(None, A("198.51.100.2")),)
    assert t.nhrp_maps == ()
    assert not t.nhrp_map_multicast_dynamic
    assert [p.name for p in c.ikev2_keyrings[0].peers] == ["b"]
    assert c.transform_sets == ()
    assert c.ikev2_proposals[0].encryption == ("aes-cbc-256",)
    assert c.ikev2_proposals[0].groups == ()
    assert c.ospf is not None
    assert c.ospf.networks == ()
    assert c.ospf.passive_interfaces == ()
    assert c.authorization is not None
    assert c.authorization.identities == ()
    c2 = parse_strict(
        "router ospf 1\nno router ospf\nfrrdmvpn authorization certificate\n"
        "no frrdmvpn authorization\nhostname x\nno hostname\n"
    )
    assert c2 == Config()


def test_transform_set_header_keeps_the_mode_when_transforms_change() -> None:
    c = parse_strict(
        "crypto ipsec transform-set T esp-gcm 128\n mode transport\n"
        "crypto ipsec transform-set T esp-aes 256 esp-sha256-hmac\n"
    )
    (ts,) = c.transform_sets
    assert (ts.encryption, ts.key_bits, ts.mode) == ("esp-aes", 256, IpsecMode.TRANSPORT)


# --- diagnostics -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case",
    [
        (
            "interface Tunnel0\n ip nhrp holdtime 70000\n",
            2,
            19,
            "70000",
            "70000 is out of range 1-65000",
            "<1-65000>",
        ),
        (
            "interface Tunnel0\n ip mtu 100\n",
            2,
            9,
            "100",
            "100 is out of range 576-9000",
            "<576-9000>",
        ),
        (
            "interface Tunnel0\n ip nhrp frob\n",
            2,
            10,
            "frob",
            "invalid input",
            "authentication, holdtime, map, network-id, nhs, redirect, registration, shortcut",
        ),
        (
            "interface Tunnel0\n frob\n",
            2,
            2,
            "frob",
            "unknown command in interface mode",
            "description, ip, tunnel",
        ),
        (
            "frob\n",
            1,
            1,
            "frob",
            "unknown command in global configuration mode",
            "crypto, frrdmvpn, hostname, interface, router",
        ),
        (
            "interface Tunnel0\n ip nhrp holdtime\n",
            2,
            10,
            "holdtime",
            "incomplete command",
            "<1-65000>",
        ),
        (
            "interface Tunnel0\n ip ospf network p\n",
            2,
            18,
            "p",
            "ambiguous abbreviation 'p' (point-to-multipoint, point-to-point)",
            "{point-to-multipoint|point-to-point|broadcast|non-broadcast}",
        ),
        (
            "interface Tunnel0\n ip nhrp re\n",
            2,
            10,
            "re",
            "ambiguous abbreviation 're'",
            "redirect, registration",
        ),
        (
            "interface Tunnel0\n tunnel source GigabitEthernet0/0/0\n",
            2,
            16,
            "GigabitEthernet0/0/0",
            "'GigabitEthernet0/0/0' is not a Linux interface name (1-15 characters of letters, "
            "digits, '_', '.', '@', '-')",
            "IFNAME|A.B.C.D",
        ),
        ("interface Tunnel0\n tunnel mode gre ip\n", 2, 18, "ip", "invalid input", "multipoint"),
        (
            "interface Tunnel0\n ip address 192.0.2.1 255.0.255.0\n",
            2,
            23,
            "255.0.255.0",
            "255.0.255.0 is not a contiguous netmask",
            "M.M.M.M",
        ),
        (
            "interface Tunnel0\n ip nhrp nhs dynamic\n",
            2,
            14,
            "dynamic",
            "a dynamic NHS needs its NBMA address",
            "nbma A.B.C.D|FQDN",
        ),
        (
            "interface Tunnel0\n ip mtu 1400 extra\n",
            2,
            14,
            "extra",
            "unexpected extra input",
            "<cr>",
        ),
        (
            "interface GigabitEthernet1\n",
            1,
            11,
            "GigabitEthernet1",
            "only mGRE tunnels are configured here: 'GigabitEthernet1' is not "
            "Tunnel0-Tunnel2147483647",
            "TunnelN",
        ),
        (
            "router ospf\n network 10.0.0.1/24 area 0\n",
            2,
            10,
            "10.0.0.1/24",
            "10.0.0.1/24 has host bits set (did you mean 10.0.0.0/24?)",
            "A.B.C.D, A.B.C.D/M",
        ),
        (
            "router ospf\n network 10.0.0.0 0.0.0.255 area 0\n network 10.0.0.0/24 area 1\n",
            3,
            27,
            "1",
            "network 10.0.0.0/24 is already in area 0 (remove it first)",
            "0",
        ),
        (
            "router ospf\n network 10.0.0.0/24\n",
            2,
            10,
            "10.0.0.0/24",
            "the network needs an area",
            "area <0-4294967295>|A.B.C.D",
        ),
        (
            "router ospf 1\nrouter ospf 2\n",
            2,
            13,
            "2",
            "only one OSPF process: router ospf 1 is already configured",
            "1",
        ),
        (
            "crypto ikev2 profile P\n match identity remote fqdn 10.0.0.1\n",
            2,
            29,
            "10.0.0.1",
            "10.0.0.1 is not a host name",
            "FQDN",
        ),
        (
            "crypto ikev2 profile P\n identity local address hub.example.net\n",
            2,
            25,
            "hub.example.net",
            "hub.example.net is not an IPv4 address",
            "A.B.C.D",
        ),
        (
            "crypto ipsec transform-set T esp-3des\n",
            1,
            30,
            "esp-3des",
            "invalid input",
            "{esp-aes|esp-gcm|esp-null}",
        ),
        (
            "interface Tunnel0\n no\n",
            2,
            2,
            "no",
            "incomplete command",
            "a command of interface mode after 'no'",
        ),
        (
            "frrdmvpn authorization psk-map\n identity x allow 192.0.2.1/24\n",
            2,
            19,
            "192.0.2.1/24",
            "192.0.2.1/24 has host bits set (did you mean 192.0.2.0/24?)",
            "A.B.C.D/M",
        ),
        (
            " ip mtu 1400\n",
            1,
            2,
            "ip",
            "indented line outside any block",
            "a block header above it (interface, crypto ..., router ospf, frrdmvpn ...)",
        ),
    ],
)
def test_exact_diagnostics(case: tuple[str, int, int, str, str, str]) -> None:
    text, *where = case
    d = only(text)
    assert [d.line, d.column, d.token, d.message, d.expected] == where
    assert d.is_error
    assert d.code == "syntax"


def test_a_line_meant_for_the_block_above_gets_an_indentation_hint() -> None:
    d = only("interface Tunnel0\n ip mtu 1400\nip nhrp holdtime 60\n")
    assert (d.line, d.column, d.token) == (3, 1, "ip")
    assert "indent the line further to put it in the interface mode block above" in d.message
    d = only("crypto ikev2 keyring K\n peer p\n pre-shared-key x\n")
    assert (d.line, d.token) == (3, "pre-shared-key")
    assert d.message == (
        "unknown command in IKEv2 keyring mode (indent the line further to put it in the "
        "IKEv2 keyring peer mode block above)"
    )


def test_all_errors_are_reported_and_bad_lines_are_skipped() -> None:
    result = parse("interface Tunnel0\n ip mtu 1\n ip mtu 1400\n tunnel key x\n tunnel key 5\n")
    assert [d.line for d in result.diagnostics] == [2, 4]
    assert (result.config.interfaces[0].mtu, result.config.interfaces[0].key) == (1400, 5)
    assert not result.ok


def test_children_of_a_rejected_header_are_skipped_silently() -> None:
    result = parse("interface Serial0\n ip mtu 1400\n ip mtu 0\ninterface Tunnel0\n")
    assert [d.line for d in result.diagnostics] == [1]
    assert [i.name for i in result.config.interfaces] == ["Tunnel0"]


def test_parse_strict_raises_one_error_with_every_diagnostic() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_strict("interface Tunnel0\n ip mtu 1\n frob\n")
    assert [d.line for d in caught.value.diagnostics] == [2, 3]
    assert "2 error(s)" in str(caught.value)
    assert "line 2, column 9" in str(caught.value)


def test_diagnostic_formats_with_a_caret() -> None:
    text = "interface Tunnel0\n ip mtu 1\n"
    d = only(text)
    assert d.format(text) == (
        "frrdmvpn.conf:2:9: error: 1 is out of range 576-9000 ['1']; "
        "valid: <576-9000>\n ip mtu 1\n        ^"
    )


def test_source_map_points_at_each_statement() -> None:
    result = parse("interface Tunnel0\n ip nhrp holdtime 60\n ip nhrp nhs dynamic nbma hub.x\n")
    span = result.source.find(IF0, "ip nhrp holdtime")
    assert span is not None
    assert span.line == 2
    assert span.token(-1).text == "60"
    nhs = result.source.find(IF0, "ip nhrp nhs dynamic nbma hub.x")
    assert nhs is not None
    assert nhs.line == 3
    header = result.source.find(ROOT, "interface Tunnel0")
    assert header is not None
    assert header.line == 1


# --- the shell's primitive -----------------------------------------------------------------


def test_apply_line_enters_and_leaves_sub_modes() -> None:
    r = apply_line(Config(), ROOT, "crypto ikev2 keyring K")
    assert r.ok
    assert r.context == Context(Mode.IKEV2_KEYRING, ("K",))
    r = apply_line(r.config, r.context, "peer p")
    assert r.context == Context(Mode.IKEV2_KEYRING_PEER, ("K", "p"))
    assert r.context.mode.prompt == "config-ikev2-keyring-peer"
    r = apply_line(r.config, r.context, "pre-shared-key x")
    assert r.config.ikev2_keyrings[0].peers[0].pre_shared_key == "x"
    r = apply_line(r.config, r.context, "exit")
    assert r.context == Context(Mode.IKEV2_KEYRING, ("K",))
    assert apply_line(r.config, r.context, "exit").context == ROOT
    assert apply_line(r.config, r.context, "end").context == ROOT
    assert apply_line(r.config, ROOT, "exit").context == ROOT


def test_apply_line_failure_leaves_the_model_and_context_unchanged() -> None:
    start = apply_line(Config(), ROOT, "interface Tunnel0")
    r = apply_line(start.config, start.context, "ip mtu 20", line_number=4)
    assert r.config == start.config
    assert r.context == start.context
    assert (r.diagnostics[0].line, r.diagnostics[0].column) == (4, 8)


def test_apply_line_on_a_stale_context_is_a_diagnostic() -> None:
    r = apply_line(Config(), IF0, "ip mtu 1400")
    assert r.diagnostics[0].message == "interface Tunnel0 is not configured (enter it first)"


def test_apply_lines_is_a_shell_session() -> None:
    r = apply_lines(Config(), ["interface Tunnel0", "ip mtu 1400", "exit", "hostname h"])
    assert r.ok
    assert r.context == ROOT
    assert r.config.hostname == "h"
    assert r.config.interfaces[0].mtu == 1400
    bad = apply_lines(Config(), ["interface Tunnel0", "ip mtu 1", "hostname h"])
    assert bad.diagnostics[0].line == 2
    assert bad.config.hostname is None


def test_question_mark_help_lists_next_words() -> None:
    words = [w for w, _ in GRAMMAR.help(Mode.INTERFACE, ["ip", "nhrp"])]
    assert words == [
        "authentication",
        "holdtime",
        "map",
        "network-id",
        "nhs",
        "redirect",
        "registration",
        "shortcut",
    ]
    assert GRAMMAR.help(Mode.INTERFACE, ["ip", "mtu"]) == [("<576-9000>", "bytes")]
    assert ("<cr>", "") in GRAMMAR.help(Mode.INTERFACE, ["no", "ip", "mtu"])
    assert ("<cr>", "") in GRAMMAR.help(Mode.INTERFACE, ["ip", "nhrp", "redirect"])


def test_every_command_documents_its_syntax() -> None:
    syntaxes = {c.syntax for c in COMMANDS}
    assert "ip nhrp holdtime <1-65000>" in syntaxes
    assert (
        "ip nhrp nhs A.B.C.D|dynamic [nbma A.B.C.D|FQDN] [multicast] [priority <0-255>]"
    ) in syntaxes
    assert all(c.help for c in COMMANDS)


def test_shell_falls_back_to_enclosing_modes_like_ios() -> None:
    r = apply_lines(Config(), ["crypto ikev2 keyring K", "peer a", "peer b"])
    assert r.context == Context(Mode.IKEV2_KEYRING_PEER, ("K", "b"))
    r = apply_line(r.config, r.context, "hostname h")
    assert (r.context, r.config.hostname) == (ROOT, "h")
    r = apply_lines(Config(), ["interface Tunnel0", "frob"])
    assert r.diagnostics[0].message == "unknown command in interface mode"
    r = apply_lines(Config(), ["interface Tunnel0", "hostname"])
    assert r.diagnostics[0].message == "incomplete command"
    # A file is stricter: indentation decides.
    assert only("crypto ikev2 keyring K\n peer a\n  peer b\n").message == (
        "unknown command in IKEv2 keyring peer mode"
    )
