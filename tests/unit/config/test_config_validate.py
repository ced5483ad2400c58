"""Semantic validation: one test per rule, each pointing at the exact line and token."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from frrdmvpn.adapters.trusted_files import UntrustedFileError
from frrdmvpn.config.canonical_text import render
from frrdmvpn.config.diagnostics import Diagnostic, Severity, errors
from frrdmvpn.config.model import Config
from frrdmvpn.config.parse import parse
from frrdmvpn.config.policy import authorization_policy
from frrdmvpn.config.swan import TrustpointFile
from frrdmvpn.config.validate import CODES, check, overlapping_earlier, validate

pytestmark = pytest.mark.unit

EXAMPLES = Path(__file__).parents[3] / "docs" / "examples"
HUB = (EXAMPLES / "lab-hub.conf").read_text()
SPOKE = (EXAMPLES / "lab-spoke1.conf").read_text()
VYOS = (EXAMPLES / "vyos-spoke.conf").read_text()
CSR = (EXAMPLES / "cisco-csr-spoke.conf").read_text()


def edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def finding(text: str, code: str, line: str, token: str, shown: str | None = None) -> Diagnostic:
    """The one finding ``code`` for ``text``; asserts it points at ``token`` of ``line``
    (shown as ``shown``: a secret is masked)."""
    _, found = check(text)
    hits = [d for d in found if d.code == code]
    assert len(hits) == 1, found
    d = hits[0]
    lines = text.splitlines()
    number = next(i for i, t in enumerate(lines, 1) if t == line)
    assert (d.line, d.token) == (number, shown or token), d
    word = re.search(rf"(?<!\S){re.escape(token)}(?!\S)", lines[number - 1])
    assert word is not None
    assert d.column == word.start() + 1, d
    assert d.expected, d
    return d


def only_error(text: str, code: str, line: str, token: str) -> Diagnostic:
    d = finding(text, code, line, token)
    assert d.severity is Severity.ERROR
    assert [e.code for e in errors(check(text)[1])] == [code]
    return d


def warning(text: str, code: str, line: str, token: str) -> Diagnostic:
    d = finding(text, code, line, token)
    assert d.severity is Severity.WARNING
    assert errors(check(text)[1]) == ()
    return d


# --- the tunnel ------------------------------------------------------------------------------


def test_examples_are_clean() -> None:
    for path in sorted(EXAMPLES.glob("*.conf")):
        assert check(path.read_text())[1] == (), path.name


def test_missing_address_source_mode_and_network_id_point_at_the_interface() -> None:
    for missing, code in (
        (" ip address 192.0.2.1 255.255.255.0\n", "tunnel-address-missing"),
        (" tunnel source eth0\n", "tunnel-source-missing"),
        (" tunnel mode gre multipoint\n", "tunnel-mode-missing"),
        (" ip nhrp network-id 1\n", "network-id-missing"),
    ):
        d = only_error(edit(HUB, missing, ""), code, "interface Tunnel0", "Tunnel0")
        assert d.column == 11
    d = finding(
        edit(HUB, " ip nhrp network-id 1\n", ""),
        "network-id-missing",
        "interface Tunnel0",
        "Tunnel0",
    )
    assert d.message == "Tunnel0 has no NHRP network-id: NHRP stays down without one"
    assert d.expected == "ip nhrp network-id <1-4294967295>"


def test_host_mask_on_the_tunnel_address() -> None:
    text = edit(HUB, "192.0.2.1 255.255.255.0", "192.0.2.1 255.255.255.255")
    only_error(text, "tunnel-mask", " ip address 192.0.2.1 255.255.255.255", "255.255.255.255")


def test_nhs_outside_the_tunnel_subnet() -> None:
    text = edit(SPOKE, "nhs dynamic nbma", "nhs 10.0.0.1 nbma")
    d = only_error(
        text, "nhs-outside-subnet", " ip nhrp nhs 10.0.0.1 nbma 198.51.100.1 multicast", "10.0.0.1"
    )
    assert d.message == "NHS 10.0.0.1 is outside the tunnel subnet 192.0.2.0/24"
    assert d.expected == "an address in 192.0.2.0/24"
    assert (d.line, d.column) == (32, 14)


def test_nhs_is_this_node() -> None:
    text = edit(SPOKE, "nhs dynamic nbma", "nhs 192.0.2.11 nbma")
    only_error(
        text, "nhs-is-self", " ip nhrp nhs 192.0.2.11 nbma 198.51.100.1 multicast", "192.0.2.11"
    )


def test_classic_nhs_takes_its_nbma_from_a_map_or_is_an_error() -> None:
    classic = edit(
        SPOKE, " ip nhrp nhs dynamic nbma 198.51.100.1 multicast\n", " ip nhrp nhs 192.0.2.1\n"
    )
    only_error(classic, "nhs-nbma-missing", " ip nhrp nhs 192.0.2.1", "192.0.2.1")
    mapped = edit(
        classic,
        " ip nhrp nhs 192.0.2.1\n",
        " ip nhrp map 192.0.2.1 198.51.100.1\n ip nhrp map multicast 198.51.100.1\n"
        " ip nhrp nhs 192.0.2.1\n",
    )
    assert check(mapped)[1] == ()


def test_duplicate_nbma() -> None:
    text = edit(
        SPOKE, " ip nhrp nhs dynamic", " ip nhrp map 192.0.2.5 198.51.100.1\n ip nhrp nhs dynamic"
    )
    d = only_error(text, "duplicate-nbma", " ip nhrp map 192.0.2.5 198.51.100.1", "198.51.100.1")
    assert d.message == (
        "NBMA 198.51.100.1 is already mapped to dynamic "
        "(by 'ip nhrp nhs dynamic nbma 198.51.100.1 multicast')"
    )


def test_nbma_is_this_nodes_own_source() -> None:
    text = edit(VYOS, "nbma 198.51.100.1 multicast", "nbma 198.51.100.3 multicast")
    only_error(
        text, "nbma-is-self", " ip nhrp nhs 192.0.2.1 nbma 198.51.100.3 multicast", "198.51.100.3"
    )


def test_static_map_outside_the_subnet() -> None:
    text = edit(SPOKE, " ip nhrp nhs", " ip nhrp map 10.9.9.9 198.51.100.99\n ip nhrp nhs")
    only_error(text, "map-outside-subnet", " ip nhrp map 10.9.9.9 198.51.100.99", "10.9.9.9")


def _tunnel_replaced(text: str, **changes: Any) -> Config:
    config = parse(text).config
    tunnel = dataclasses.replace(config.interfaces[0], **changes)
    return dataclasses.replace(config, interfaces=(tunnel,))


@pytest.mark.parametrize(
    ("field", "value", "code", "line", "valid"),
    [
        ("nhrp_holdtime", 70000, "holdtime-range", " ip nhrp holdtime 70000", "1-65000"),
        ("mtu", 9100, "mtu-range", " ip mtu 9100", "576-9000"),
        ("mtu", 100, "mtu-range", " ip mtu 100", "576-9000"),
        ("tcp_adjust_mss", 100, "mss-range", " ip tcp adjust-mss 100", "500-1460"),
        ("ospf_priority", 300, "ospf-priority-range", " ip ospf priority 300", "0-255"),
        ("nhrp_network_id", 0, "network-id-range", " ip nhrp network-id 0", "1-4294967295"),
    ],
)
def test_out_of_range_values_in_models_built_in_code(
    field: str, value: int, code: str, line: str, valid: str
) -> None:
    config = _tunnel_replaced(HUB, **{field: value})
    found = [d for d in validate(config) if d.code == code]
    assert len(found) == 1
    d = found[0]
    rendered = render(config).splitlines()
    assert d.line == rendered.index(line) + 1
    assert (d.token, d.expected) == (str(value), valid)
    assert d.message == f"{line.strip().rsplit(' ', 1)[0]} {value} is out of range"


def test_source_that_is_no_linux_interface_name() -> None:
    config = _tunnel_replaced(HUB, source="GigabitEthernet0/0/0")
    (d,) = errors(validate(config))
    assert (d.code, d.token) == ("tunnel-source-ifname", "GigabitEthernet0/0/0")


def test_mtu_that_fragments_and_mss_that_does_not_fit() -> None:
    d = warning(
        edit(HUB, " ip mtu 1400", " ip mtu 1500"), "mtu-fragmentation", " ip mtu 1500", "1500"
    )
    assert d.expected == "at most 1415 (1400 is the usual choice)"
    text = edit(HUB, " ip mtu 1400\n", " ip mtu 1400\n ip tcp adjust-mss 1380\n")
    d = warning(text, "mss-too-large", " ip tcp adjust-mss 1380", "1380")
    assert d.expected == "at most 1360 (MTU - 40)"


def test_ospf_network_types_that_do_not_work_on_mgre() -> None:
    text = edit(HUB, "network point-to-multipoint", "network non-broadcast")
    d = only_error(
        text, "ospf-network-unsupported", " ip ospf network non-broadcast", "non-broadcast"
    )
    assert "Huawei USG" in (d.expected or "")
    text = edit(HUB, "network point-to-multipoint", "network point-to-point")
    d = only_error(
        text, "ospf-network-unsupported", " ip ospf network point-to-point", "point-to-point"
    )
    assert d.message == "point-to-point allows one neighbour; a hub has one per spoke"


def test_spoke_that_could_become_dr() -> None:
    text = edit(CSR, "ip ospf priority 0", "ip ospf priority 1")
    warning(text, "ospf-spoke-priority", " ip ospf priority 1", "1")


def test_dead_interval_not_longer_than_hello() -> None:
    text = edit(HUB, "dead-interval 8", "dead-interval 2")
    d = only_error(text, "ospf-dead-le-hello", " ip ospf dead-interval 2", "2")
    assert d.expected == "4 x hello = 8"


def test_nhrp_authentication_is_not_supported_by_frr_84() -> None:
    text = edit(
        HUB, " ip nhrp network-id 1\n", " ip nhrp authentication 114514\n ip nhrp network-id 1\n"
    )
    warning(
        text, "nhrp-authentication-unsupported", " ip nhrp authentication 114514", "authentication"
    )
    text = edit(text, "114514", "123456789")
    # the finding points at the string without showing it (no diagnostic carries a secret)
    finding(
        text,
        "nhrp-authentication-length",
        " ip nhrp authentication 123456789",
        "123456789",
        shown="<removed>",
    )


def test_nhs_priority_and_multicast_to_a_name_are_ignored_with_a_warning() -> None:
    text = edit(SPOKE, "nbma 198.51.100.1 multicast", "nbma 198.51.100.1 multicast priority 5")
    warning(
        text,
        "nhs-priority-unsupported",
        " ip nhrp nhs dynamic nbma 198.51.100.1 multicast priority 5",
        "priority",
    )
    text = edit(SPOKE, "nbma 198.51.100.1 multicast", "nbma hub.example.net multicast")
    warning(
        text, "multicast-fqdn", " ip nhrp nhs dynamic nbma hub.example.net multicast", "multicast"
    )


def test_cleartext_tunnel_is_a_warning() -> None:
    text = edit(HUB, " tunnel protection ipsec profile dmvpn\n", "")
    warning(text, "protection-missing", "interface Tunnel0", "Tunnel0")


def test_only_one_tunnel() -> None:
    text = HUB + "interface Tunnel1\n"
    d = finding(text, "multiple-tunnels", "interface Tunnel1", "Tunnel1")
    assert d.severity is Severity.ERROR


# --- crypto references -----------------------------------------------------------------------


def test_protection_names_a_missing_ipsec_profile() -> None:
    text = edit(HUB, "tunnel protection ipsec profile dmvpn", "tunnel protection ipsec profile vpn")
    d = only_error(text, "ipsec-profile-missing", " tunnel protection ipsec profile vpn", "vpn")
    assert d.expected == "one of: dmvpn"


def test_profile_names_a_missing_transform_set_or_ikev2_profile() -> None:
    text = edit(HUB, " set transform-set lab", " set transform-set lab2")
    d = only_error(text, "transform-set-missing", " set transform-set lab2", "lab2")
    assert d.expected == "one of: lab"
    text = edit(HUB, " set ikev2-profile lab", " set ikev2-profile other")
    only_error(text, "ikev2-profile-missing", " set ikev2-profile other", "other")
    text = edit(HUB, " set ikev2-profile lab\n", "")
    only_error(text, "ikev2-profile-missing", "crypto ipsec profile dmvpn", "dmvpn")


def test_transform_set_in_tunnel_mode() -> None:
    text = edit(HUB, " mode transport", " mode tunnel")
    d = only_error(text, "transform-set-mode", " mode tunnel", "tunnel")
    assert d.expected == "mode transport"


def test_tunnel_mode_is_fine_in_a_transform_set_no_tunnel_uses() -> None:
    text = HUB + "crypto ipsec transform-set spare esp-aes 256 esp-sha256-hmac\n mode tunnel\n"
    assert check(text)[1] == ()


def test_invalid_transforms() -> None:
    text = edit(HUB, "esp-gcm 128\n", "esp-gcm 128 esp-sha256-hmac\n")
    only_error(
        text,
        "transform-invalid",
        "crypto ipsec transform-set lab esp-gcm 128 esp-sha256-hmac",
        "esp-sha256-hmac",
    )
    text = edit(HUB, "esp-gcm 128\n", "esp-aes 256\n")
    d = only_error(
        text, "transform-invalid", "crypto ipsec transform-set lab esp-aes 256", "esp-aes"
    )
    assert d.message == "esp-aes needs an integrity transform"


def test_invalid_ikev2_proposals() -> None:
    text = edit(HUB, " prf sha256\n", " integrity sha256\n prf sha256\n")
    only_error(text, "ikev2-proposal-invalid", " integrity sha256", "sha256")
    text = edit(HUB, " prf sha256\n", "")
    d = only_error(text, "ikev2-proposal-invalid", " encryption aes-gcm-128", "aes-gcm-128")
    assert d.message == "GCM encryption needs a PRF"
    text = edit(HUB, " group 31\n", "")
    only_error(text, "ikev2-proposal-invalid", "crypto ikev2 proposal lab", "lab")
    text = edit(HUB, "encryption aes-gcm-128", "encryption aes-gcm-128 aes-cbc-256")
    found = [d.message for d in check(text)[1]]
    assert "AEAD (GCM) and non-AEAD encryption cannot share a proposal" in found


def test_ikev2_profile_without_both_authentication_methods() -> None:
    text = edit(HUB, " authentication remote pre-share\n", "")
    d = only_error(text, "ikev2-auth-missing", "crypto ikev2 profile lab", "lab")
    assert "MUST have a local and a remote authentication method" in d.message


def test_keyring_missing_unnamed_or_without_key() -> None:
    text = edit(HUB, " keyring local lab", " keyring local other")
    only_error(text, "keyring-missing", " keyring local other", "other")
    text = edit(HUB, " keyring local lab\n", "")
    only_error(text, "keyring-missing", "crypto ikev2 profile lab", "lab")
    text = edit(HUB, "  pre-shared-key frrdmvpn-lab-psk-not-for-production\n", "")
    only_error(text, "psk-missing", "crypto ikev2 keyring lab", "lab")


def test_key_mismatch_no_key_for_the_remote_identity() -> None:
    text = edit(HUB, "  address 0.0.0.0 0.0.0.0", "  address 198.51.100.0 255.255.255.0")
    text = edit(
        text, " match identity remote address 0.0.0.0", " match identity remote address 203.0.113.9"
    )
    d = only_error(
        text, "psk-no-match", " match identity remote address 203.0.113.9", "203.0.113.9"
    )
    assert d.message == "no pre-shared key in keyring lab for remote identity 203.0.113.9"
    inside = edit(text, "203.0.113.9", "198.51.100.7")
    assert check(inside)[1] == ()


def test_one_remote_identity_per_profile() -> None:
    text = edit(
        HUB,
        " match identity remote address 0.0.0.0\n",
        " match identity remote address 0.0.0.0\n match identity remote fqdn a.example\n",
    )
    only_error(text, "remote-identity-multiple", " match identity remote fqdn a.example", "fqdn")


CERTS = """crypto pki trustpoint tp
 certificate /etc/frrdmvpn/hub.pem
 private-key /etc/frrdmvpn/hub.key
 ca-certificate /etc/frrdmvpn/ca.pem
!
"""


def _with_certs(text: str) -> str:
    text = edit(text, "crypto ikev2 proposal", CERTS + "crypto ikev2 proposal")
    text = edit(text, " authentication local pre-share", " authentication local rsa-sig")
    text = edit(text, " authentication remote pre-share", " authentication remote rsa-sig")
    text = edit(text, " keyring local lab\n", " pki trustpoint tp\n")
    text = edit(
        text,
        " match identity remote address 0.0.0.0\n",
        " match identity remote fqdn domain corp.example\n",
    )
    return edit(text, "frrdmvpn authorization psk-map\n", "frrdmvpn authorization certificate\n")


def test_certificates() -> None:
    text = _with_certs(HUB)
    text = text[: text.index("frrdmvpn authorization")] + "frrdmvpn authorization certificate\n"
    assert check(text)[1] == ()
    only_error(
        edit(text, "\n pki trustpoint tp\n", "\n"),
        "trustpoint-missing",
        "crypto ikev2 profile lab",
        "lab",
    )
    only_error(
        edit(text, "\n pki trustpoint tp", "\n pki trustpoint tq"),
        "trustpoint-missing",
        " pki trustpoint tq",
        "tq",
    )
    d = only_error(
        edit(text, " ca-certificate /etc/frrdmvpn/ca.pem\n", ""),
        "trustpoint-incomplete",
        "crypto pki trustpoint tp",
        "tp",
    )
    assert d.message == "trustpoint tp needs the CA certificate peers chain to"
    only_error(
        edit(text, " private-key /etc/frrdmvpn/hub.key", " private-key hub.key"),
        "trustpoint-path",
        " private-key hub.key",
        "hub.key",
    )


def _refusing(path: str, reason: str) -> Callable[[TrustpointFile], None]:
    def files(f: TrustpointFile) -> None:
        if f.path == path:
            raise UntrustedFileError(f.keyword, f.path, reason)

    return files


def test_certificate_and_key_files_apply_reads_are_checked() -> None:
    """Issue 14 hole 5: the files are checked before the apply, with the reader's reason."""
    text = _with_certs(HUB)
    text = text[: text.index("frrdmvpn authorization")] + "frrdmvpn authorization certificate\n"
    asked: list[TrustpointFile] = []
    assert check(text, files=asked.append)[1] == ()
    assert [(f.keyword, f.path, f.secret) for f in asked] == [
        ("certificate", "/etc/frrdmvpn/hub.pem", False),
        ("private-key", "/etc/frrdmvpn/hub.key", True),
        ("ca-certificate", "/etc/frrdmvpn/ca.pem", False),
    ]
    bad = edit(text, "/etc/frrdmvpn/hub.key", "/dev/zero")
    (found,) = check(
        bad, files=_refusing("/dev/zero", "is not a regular file: it is a character device")
    )[1]
    assert found == Diagnostic(
        text.splitlines().index(" private-key /etc/frrdmvpn/hub.key") + 1,
        14,
        "/dev/zero",
        "private-key /dev/zero is not a regular file: it is a character device",
        "a regular file of root's, mode 0600 or 0640, of 1-65535 bytes, in directories only "
        "root may write",
        code="trustpoint-file",
    )
    (ca,) = check(text, files=_refusing("/etc/frrdmvpn/ca.pem", "does not exist"))[1]
    assert ca.message == "ca-certificate /etc/frrdmvpn/ca.pem does not exist"
    assert ca.expected is not None
    assert ca.expected.startswith("a regular file of root's, writable by root only,")
    unused = edit(text, " authentication local rsa-sig", " authentication local pre-share")
    assert "private-key" not in {f.keyword for f in _asked(unused)}


def _asked(text: str) -> list[TrustpointFile]:
    asked: list[TrustpointFile] = []
    check(text, files=asked.append)
    return asked


CERT_EXPECTED = "match identity remote fqdn domain DOMAIN|fqdn FQDN|address A.B.C.D [M.M.M.M]"


def _cert_hub() -> str:
    """The lab hub on certificates (no psk-map identities)."""
    text = _with_certs(HUB)
    return text[: text.index("frrdmvpn authorization")] + "frrdmvpn authorization certificate\n"


def test_certificate_authorization_refuses_a_remote_identity_of_any_type() -> None:
    # issue 14, hole 1: with remote.id unset charon lets a peer present any identity, of
    # any type (a wildcard included), so no certificate can be tied to it.
    text = edit(_cert_hub(), "remote fqdn domain corp.example", "remote address 0.0.0.0")
    d = only_error(
        text, "certificate-remote-identity", " match identity remote address 0.0.0.0", "0.0.0.0"
    )
    assert d.format() == (
        "frrdmvpn.conf:19:32: error: match identity remote address 0.0.0.0 accepts any "
        "identity of any type: certificate authorization needs a typed remote identity "
        f"['0.0.0.0']; valid: {CERT_EXPECTED}"
    )
    unset = edit(_cert_hub(), " match identity remote fqdn domain corp.example\n", "")
    d = only_error(unset, "certificate-remote-identity", "crypto ikev2 profile lab", "lab")
    assert d.format() == (
        "frrdmvpn.conf:18:22: error: certificate authorization needs match identity remote in "
        "IKEv2 profile lab: without it charon accepts any identity of any type from a peer, "
        f"and no certificate can be tied to it ['lab']; valid: {CERT_EXPECTED}"
    )


@pytest.mark.parametrize(
    "remote",
    [
        "fqdn domain corp.example",
        "fqdn spoke2.corp.example",
        "address 198.51.100.0 255.255.255.0",
        "address 198.51.100.12",
    ],
)
def test_certificate_authorization_with_a_typed_remote_identity(remote: str) -> None:
    text = edit(_cert_hub(), "remote fqdn domain corp.example", f"remote {remote}")
    assert check(text)[1] == ()


def _fqdn_member(text: str) -> str:
    """The hub with spoke4 in its psk-map by FQDN instead of its address."""
    return edit(text, " identity 198.51.100.14 allow", " identity spoke4.corp.example allow")


def test_psk_map_refuses_an_fqdn_identity_next_to_a_group_key() -> None:
    # issue 14, hole 2: charon accepts the group key (no identity, any address) for any
    # identity, so every member could present spoke4.corp.example and claim its prefixes.
    d = only_error(
        _fqdn_member(HUB),
        "psk-map-shared-key",
        " identity spoke4.corp.example allow 192.0.2.14/32 203.0.113.64/28",
        "spoke4.corp.example",
    )
    assert d.format() == (
        "frrdmvpn.conf:57:11: error: IKE identity spoke4.corp.example is no address, and "
        "charon accepts the pre-shared key of keyring lab peer any for any identity (it has "
        "no identity and address 0.0.0.0 0.0.0.0): every holder of that key could present "
        "spoke4.corp.example and claim its prefixes ['spoke4.corp.example']; valid: an "
        "address identity, or a keyring peer with identity fqdn NAME and a key no other peer "
        "has, and no key for any identity"
    )


OWN_KEYS = """crypto ikev2 keyring lab
 peer spoke1
  address 198.51.100.11
  pre-shared-key key-of-spoke1
 peer spoke4
  identity fqdn spoke4.corp.example
  pre-shared-key key-of-spoke4
!
"""


def _keyring(text: str, keyring: str) -> str:
    start = text.index("crypto ikev2 keyring lab")
    return text[:start] + keyring + text[text.index("crypto ikev2 profile lab") :]


def test_psk_map_accepts_an_fqdn_identity_with_a_key_of_its_own() -> None:
    text = _fqdn_member(_keyring(HUB, OWN_KEYS))
    assert errors(check(text)[1]) == ()
    policy = authorization_policy(check(text)[0])
    assert policy is not None
    assert policy.psk_own_key == frozenset({"spoke4.corp.example"})


@pytest.mark.parametrize(
    ("change", "local", "problem"),
    [
        (
            ("key-of-spoke1", "key-of-spoke4"),
            "",
            "its pre-shared key (keyring lab peer spoke4) is also the key of keyring lab peer "
            "spoke1: that peer could present spoke4.corp.example",
        ),
        (
            ("address 198.51.100.11\n", "address 198.51.100.0 255.255.255.0\n"),
            "",
            "charon accepts the pre-shared key of keyring lab peer spoke1 for any identity (its "
            "address 198.51.100.0/24 may hold this node's own (tunnel source is an interface))",
        ),
        (
            ("address 198.51.100.11\n", "address 198.51.100.0 255.255.255.0\n"),
            " identity local address 198.51.100.1\n",
            "keyring lab peer spoke1 for any identity (its owner is this node's own identity)",
        ),
        (
            ("address 198.51.100.11\n", "address 0.0.0.0 0.0.0.0\n"),
            "",
            "keyring lab peer spoke1 for any identity (it has no identity and address 0.0.0.0 "
            "0.0.0.0)",
        ),
        (
            ("address 198.51.100.11\n", "identity fqdn hub.corp.example\n"),
            " identity local fqdn HUB.corp.example\n",
            "keyring lab peer spoke1 for any identity (its owner is this node's own identity)",
        ),
    ],
)
def test_psk_map_refuses_every_key_another_peer_can_use(
    change: tuple[str, str], local: str, problem: str
) -> None:
    # charon accepts a key for identity X if its owner matches X *or this node's identity*.
    text = _fqdn_member(_keyring(HUB, OWN_KEYS.replace(*change)))
    text = edit(
        text, " authentication local pre-share\n", f"{local} authentication local pre-share\n"
    )
    d = only_error(
        text,
        "psk-map-shared-key",
        " identity spoke4.corp.example allow 192.0.2.14/32 203.0.113.64/28",
        "spoke4.corp.example",
    )
    assert problem in d.message
    policy = authorization_policy(check(text)[0])
    assert policy is not None
    assert policy.psk_own_key == frozenset()


def test_psk_map_refuses_pattern_identities() -> None:
    text = edit(
        _keyring(HUB, OWN_KEYS), " identity 198.51.100.14 allow", " identity *.corp.example allow"
    )
    d = only_error(
        text,
        "psk-map-shared-key",
        " identity *.corp.example allow 192.0.2.14/32 203.0.113.64/28",
        "*.corp.example",
    )
    assert d.message == (
        "IKE identity *.corp.example is a pattern (FQDN): it matches many identities, so "
        "every peer presenting one of them could claim its prefixes"
    )


def test_psk_map_with_address_identities_and_a_group_key_is_fine() -> None:
    assert errors(check(HUB)[1]) == ()
    policy = authorization_policy(check(HUB)[0])
    assert policy is not None
    assert policy.psk_own_key == frozenset()


# --- routing and authorization ---------------------------------------------------------------


def test_ospf_does_not_cover_the_tunnel() -> None:
    text = edit(HUB, " network 192.0.2.0 0.0.0.255 area 0\n", "")
    d = warning(text, "ospf-tunnel-not-covered", "router ospf 1", "router")
    assert d.expected == "network 192.0.2.0 0.0.0.255 area 0"


def test_passive_tunnel_and_bad_spf_throttle() -> None:
    text = edit(HUB, " network 192.0.2.0", " passive-interface Tunnel0\n network 192.0.2.0")
    warning(text, "ospf-passive-tunnel", " passive-interface Tunnel0", "Tunnel0")
    text = edit(HUB, "spf 50 100 1000", "spf 50 2000 1000")
    only_error(text, "spf-throttle", " timers throttle spf 50 2000 1000", "2000")


def test_missing_authorization_is_a_warning_with_the_weak_default() -> None:
    text = HUB[: HUB.index("frrdmvpn authorization")]
    d = warning(text, "authorization-missing", "interface Tunnel0", "Tunnel0")
    assert "any IKE-authenticated peer may claim any tunnel address" in d.message


def test_psk_map_prefixes_overlapping_between_identities() -> None:
    text = edit(HUB, "198.51.100.14 allow 192.0.2.14/32", "198.51.100.14 allow 192.0.2.0/24")
    d = only_error(
        text,
        "psk-map-overlap",
        " identity 198.51.100.14 allow 192.0.2.0/24 203.0.113.64/28",
        "192.0.2.0/24",
    )
    assert d.message == (
        "192.0.2.0/24 overlaps 192.0.2.1/32 of 198.51.100.1, 192.0.2.11/32 of 198.51.100.11, "
        "192.0.2.12/32 of 198.51.100.12, 192.0.2.13/32 of 198.51.100.13: two peers could "
        "claim the same address"
    )


_PREFIXES = st.lists(
    st.builds(
        lambda host, length: IPv4Network((0xC0000200 + host, length), strict=False),
        st.integers(0, 255),
        st.integers(22, 32),
    ),
    max_size=30,
)


@given(_PREFIXES)
def test_psk_map_overlaps_found_by_the_sweep_are_those_of_every_pair(
    prefixes: list[IPv4Network],
) -> None:
    assert overlapping_earlier(prefixes) == [
        [j for j in range(i) if prefixes[i].overlaps(prefixes[j])] for i in range(len(prefixes))
    ]


def test_identity_lines_in_a_non_psk_map_mode_and_an_empty_psk_map() -> None:
    text = edit(HUB, "frrdmvpn authorization psk-map", "frrdmvpn authorization any-authenticated")
    only_error(
        text,
        "authorization-identities-unused",
        " identity 198.51.100.1 allow 192.0.2.1/32 203.0.113.0/28",
        "identity",
    )
    text = HUB[: HUB.index("frrdmvpn authorization")] + "frrdmvpn authorization psk-map\n"
    warning(text, "psk-map-empty", "frrdmvpn authorization psk-map", "psk-map")


def test_certificate_policy_needs_certificate_authentication() -> None:
    text = HUB[: HUB.index("frrdmvpn authorization")] + "frrdmvpn authorization certificate\n"
    d = only_error(
        text, "authorization-certificate-psk", "frrdmvpn authorization certificate", "certificate"
    )
    assert "IKEv2 profile lab authenticates them otherwise" in d.message


def test_diagnostics_are_sorted_and_a_config_built_in_code_gets_positions() -> None:
    text = edit(HUB, " ip nhrp network-id 1\n", "")
    text = edit(text, " mode transport", " mode tunnel")
    _, found = check(text)
    assert [d.line for d in found] == sorted(d.line or 0 for d in found)
    config = parse(text).config
    assert {d.code for d in validate(config)} == {d.code for d in found}
    assert all(d.line is not None for d in validate(config))


def test_at_least_fifteen_distinct_mistakes_are_recognised() -> None:
    codes = {
        "tunnel-address-missing",
        "tunnel-source-missing",
        "tunnel-mode-missing",
        "network-id-missing",
        "nhs-outside-subnet",
        "duplicate-nbma",
        "holdtime-range",
        "mtu-range",
        "ipsec-profile-missing",
        "transform-set-missing",
        "transform-set-mode",
        "ikev2-profile-missing",
        "keyring-missing",
        "psk-no-match",
        "ospf-network-unsupported",
        "psk-map-overlap",
        "ikev2-proposal-invalid",
        "transform-invalid",
        "ikev2-auth-missing",
    }
    assert len(codes) >= 15


def _codes(text_or_config: str | Config) -> set[str]:
    if isinstance(text_or_config, str):
        return {d.code for d in check(text_or_config)[1]}
    return {d.code for d in validate(text_or_config)}


def test_every_rule_fires_on_some_mistake() -> None:
    hub = parse(HUB).config
    ospf = hub.ospf
    assert ospf is not None
    twice = dataclasses.replace(
        ospf, networks=(*ospf.networks, dataclasses.replace(ospf.networks[0], area="1"))
    )
    cases: list[str | Config] = [
        HUB + "interface Tunnel1\n",
        edit(HUB, "192.0.2.1 255.255.255.0", "192.0.2.1 255.255.255.255"),
        *(
            edit(HUB, line, "")
            for line in (
                " ip address 192.0.2.1 255.255.255.0\n",
                " tunnel source eth0\n",
                " tunnel mode gre multipoint\n",
                " ip nhrp network-id 1\n",
                " tunnel protection ipsec profile dmvpn\n",
                " set transform-set lab\n",
                " authentication remote pre-share\n",
                " keyring local lab\n",
                "  pre-shared-key frrdmvpn-lab-psk-not-for-production\n",
                " network 192.0.2.0 0.0.0.255 area 0\n",
            )
        ),
        *(
            _tunnel_replaced(HUB, **{field: value})
            for field, value in (
                ("nhrp_holdtime", 0),
                ("nhrp_network_id", 0),
                ("mtu", 1),
                ("tcp_adjust_mss", 1),
                ("key", -1),
                ("ospf_priority", 256),
                ("ospf_hello_interval", 0),
                ("ospf_dead_interval", 0),
                ("source", "a/b"),
            )
        ),
        dataclasses.replace(hub, ospf=twice),
        edit(HUB, " ip mtu 1400\n", " ip mtu 1500\n"),
        edit(HUB, " ip mtu 1400\n", " ip mtu 1300\n ip tcp adjust-mss 1300\n"),
        edit(
            edit(HUB, "  address 0.0.0.0 0.0.0.0", "  address 198.51.100.0 255.255.255.0"),
            "remote address 0.0.0.0",
            "remote address 203.0.113.9",
        ),
        edit(SPOKE, "nhs dynamic nbma", "nhs 10.0.0.1 nbma"),
        edit(SPOKE, "nhs dynamic nbma", "nhs 192.0.2.11 nbma"),
        edit(SPOKE, "nhs dynamic nbma 198.51.100.1 multicast\n", "nhs 192.0.2.1\n"),
        edit(SPOKE, " ip nhrp nhs", " ip nhrp map 10.0.0.5 198.51.100.1\n ip nhrp nhs"),
        edit(VYOS, "nbma 198.51.100.1 multicast", "nbma 198.51.100.3 multicast"),
        edit(SPOKE, "198.51.100.1 multicast", "hub.example multicast priority 2"),
        edit(HUB, " ip nhrp holdtime 60\n", " ip nhrp authentication 123456789\n"),
        edit(HUB, "network point-to-multipoint", "network non-broadcast"),
        edit(CSR, "ip ospf priority 0", "ip ospf priority 3"),
        edit(HUB, "dead-interval 8", "dead-interval 1"),
        edit(HUB, "ipsec profile dmvpn\n!\nrouter", "ipsec profile x\n!\nrouter"),
        edit(HUB, " prf sha256\n", " integrity sha256\n"),
        edit(HUB, "esp-gcm 128\n", "esp-gcm 128 esp-sha256-hmac\n"),
        edit(HUB, " mode transport", " mode tunnel"),
        edit(HUB, " set ikev2-profile lab", " set ikev2-profile x"),
        edit(
            HUB,
            " match identity remote address 0.0.0.0\n",
            " match identity remote fqdn a.example\n match identity remote fqdn b.example\n",
        ),
        _with_certs(HUB)
        .replace(" private-key /etc/frrdmvpn/hub.key\n", " private-key hub.key\n")
        .replace(" ca-certificate /etc/frrdmvpn/ca.pem\n", ""),
        edit(_with_certs(HUB), "\n pki trustpoint tp\n", "\n pki trustpoint x\n"),
        edit(
            HUB,
            " network 192.0.2.0",
            " passive-interface Tunnel0\n passive-interface Tunnel7\n network 192.0.2.0",
        ),
        edit(HUB, "spf 50 100 1000", "spf 50 2000 1000"),
        HUB[: HUB.index("frrdmvpn authorization")],
        HUB[: HUB.index("frrdmvpn authorization")] + "frrdmvpn authorization psk-map\n",
        edit(HUB, "authorization psk-map", "authorization certificate"),
        edit(HUB, "198.51.100.13 allow 192.0.2.13/32", "198.51.100.13 allow 192.0.2.0/24"),
        edit(
            edit(HUB, "ipsec profile dmvpn", "ipsec profile " + "p" * 256),
            "hostname hub",
            "hostname -hub",
        ),
        edit(
            edit(HUB, " ip mtu 1400\n", f" description {'d' * 241}\n"),
            "frrdmvpn-lab-psk-not-for-production",
            "k" * 65536,
        ),
        edit(_with_certs(HUB), "/etc/frrdmvpn/hub.key", "/" + "k" * 4095),
        edit(HUB, " identity 198.51.100.14 allow", " identity spoke4.corp.example allow"),
        edit(_cert_hub(), "remote fqdn domain corp.example", "remote address 0.0.0.0"),
    ]
    seen = set().union(*(_codes(case) for case in cases))
    certs = _with_certs(HUB)
    certs = certs[: certs.index("frrdmvpn authorization")] + "frrdmvpn authorization certificate\n"
    seen |= {d.code for d in check(certs, files=_refusing("/etc/frrdmvpn/ca.pem", "is empty"))[1]}
    assert seen == CODES
