"""strongSwan VICI messages: proposal translation, load-conn/load-shared shapes, changes."""

from __future__ import annotations

import dataclasses
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from frrdmvpn.codec.vici import Message, decode_message, encode_message
from frrdmvpn.config.model import (
    AddressIdentity,
    Config,
    FqdnIdentity,
    Ikev2Proposal,
    KeyringPeer,
    TransformSet,
)
from frrdmvpn.config.parse import parse_strict
from frrdmvpn.config.swan import (
    EMPTY,
    SourceAddressError,
    TrustpointFile,
    ViciMessage,
    ViciValue,
    desired_swan,
    diff_swan,
    esp_proposal,
    ike_id,
    ike_proposals,
    load_key_message,
    trustpoint_files,
)

pytestmark = pytest.mark.unit

EXAMPLES = Path(__file__).parents[3] / "docs" / "examples"
HUB = (EXAMPLES / "lab-hub.conf").read_text()
ETH0 = {"eth0": IPv4Address("198.51.100.1")}


def hub(text: str = HUB) -> Config:
    return parse_strict(text)


@pytest.mark.parametrize(
    ("encryption", "integrity", "prf", "groups", "expected"),
    [
        (("aes-cbc-256",), ("sha256",), (), (14,), ["aes256-sha256-modp2048"]),
        (
            ("aes-cbc-128", "aes-cbc-192"),
            ("sha1", "sha512"),
            ("sha384",),
            (2, 5, 15, 16),
            ["aes128-aes192-sha1-sha512-prfsha384-modp1024-modp1536-modp3072-modp4096"],
        ),
        (
            ("aes-gcm-256",),
            (),
            ("sha384",),
            (19, 20, 21),
            ["aes256gcm16-prfsha384-ecp256-ecp384-ecp521"],
        ),
        (("aes-gcm-128",), (), ("sha256",), (31,), ["aes128gcm16-prfsha256-x25519"]),
        (
            ("aes-gcm-128", "aes-cbc-256"),
            ("sha256",),
            ("sha256",),
            (24,),
            ["aes128gcm16-prfsha256-modp2048s256", "aes256-sha256-prfsha256-modp2048s256"],
        ),
    ],
)
def test_ike_proposals_translate_cisco_keywords(
    encryption: tuple[str, ...],
    integrity: tuple[str, ...],
    prf: tuple[str, ...],
    groups: tuple[int, ...],
    expected: list[str],
) -> None:
    assert ike_proposals(Ikev2Proposal("p", encryption, integrity, prf, groups)) == expected


@pytest.mark.parametrize(
    ("encryption", "bits", "integrity", "pfs", "expected"),
    [
        ("esp-aes", 256, "esp-sha256-hmac", None, "aes256-sha256"),
        ("esp-aes", None, "esp-sha-hmac", None, "aes128-sha1"),
        ("esp-aes", 192, "esp-sha512-hmac", 14, "aes192-sha512-modp2048"),
        ("esp-gcm", 128, None, None, "aes128gcm16"),
        ("esp-gcm", 256, None, 20, "aes256gcm16-ecp384"),
        ("esp-gcm", None, None, 31, "aes128gcm16-x25519"),
        ("esp-null", None, "esp-sha384-hmac", None, "null-sha384"),
        ("esp-aes", 128, "esp-md5-hmac", None, "aes128-md5"),
    ],
)
def test_esp_proposals_translate_transform_sets(
    encryption: str, bits: int | None, integrity: str | None, pfs: int | None, expected: str
) -> None:
    assert esp_proposal(TransformSet("t", encryption, bits, integrity), pfs) == expected


def test_identities() -> None:
    assert ike_id(AddressIdentity(IPv4Address("198.51.100.1"))) == "198.51.100.1"
    assert ike_id(AddressIdentity(IPv4Address("0.0.0.0"))) is None
    masked = AddressIdentity(IPv4Address("198.51.100.7"), IPv4Address("255.255.255.0"))
    assert ike_id(masked) == "198.51.100.0/24"
    host = AddressIdentity(IPv4Address("198.51.100.7"), IPv4Address("255.255.255.255"))
    assert ike_id(host) == "198.51.100.7"
    assert ike_id(FqdnIdentity("hub.example.net")) == "fqdn:hub.example.net"
    assert ike_id(FqdnIdentity("corp.example", domain=True)) == "fqdn:*.corp.example"
    assert ike_id(IPv4Network("0.0.0.0/0")) is None
    assert ike_id(IPv4Network("198.51.100.9/32")) == "198.51.100.9"


def test_lab_hub_connection_is_the_wildcard_gre_trap() -> None:
    state = desired_swan(hub(), ETH0)
    assert dict(state.conns) == {
        "dmvpn": {
            "dmvpn": {
                "version": "2",
                "local_addrs": ["198.51.100.1"],
                "remote_addrs": ["%any"],
                "proposals": ["aes128gcm16-prfsha256-x25519"],
                "dpd_delay": "10s",
                "local": {"auth": "psk", "id": "198.51.100.1"},
                "remote": {"auth": "psk"},
                "children": {
                    "dmvpn": {
                        "mode": "transport",
                        "local_ts": ["dynamic[gre]"],
                        "remote_ts": ["dynamic[gre]"],
                        "esp_proposals": ["aes128gcm16"],
                        "start_action": "trap",
                        "dpd_action": "trap",
                        "reqid": "1",
                    }
                },
            }
        }
    }
    assert dict(state.shared) == {
        "frrdmvpn-lab-any": {
            "id": "frrdmvpn-lab-any",
            "type": "IKE",
            "data": "frrdmvpn-lab-psk-not-for-production",
        }
    }
    assert state.private_keys == ()


def _to_wire(value: ViciValue) -> bytes | list[bytes] | Message:
    if isinstance(value, str | bytes):
        return value.encode() if isinstance(value, str) else value
    if isinstance(value, list):
        return [v.encode() if isinstance(v, str) else v for v in value]
    return {k: _to_wire(v) for k, v in value.items()}


def test_messages_are_valid_vici_of_strings_lists_and_sections() -> None:
    state = desired_swan(hub(), ETH0)
    messages: list[ViciMessage] = [*state.conns.values(), *state.shared.values()]
    for message in messages:
        wire = {k: _to_wire(v) for k, v in message.items()}
        assert decode_message(encode_message(wire)) == wire


def test_lifetimes_pfs_explicit_identities_and_shared_key_owners() -> None:
    text = HUB.replace(
        " dpd 10 2 periodic\n", " identity local fqdn hub.example.net\n lifetime 86400\n"
    )
    text = text.replace(
        " match identity remote address 0.0.0.0\n",
        " match identity remote address 198.51.100.0 255.255.255.0\n",
    )
    text = text.replace("  address 0.0.0.0 0.0.0.0\n", "  address 198.51.100.0 255.255.255.0\n")
    text = text.replace(
        " set ikev2-profile lab\n",
        " set ikev2-profile lab\n set pfs group14\n"
        " set security-association lifetime seconds 3600\n",
    )
    state = desired_swan(hub(text), ETH0)
    ike = state.conns["dmvpn"]["dmvpn"]
    assert isinstance(ike, dict)
    assert "dpd_delay" not in ike
    assert ike["rekey_time"] == "86400s"
    assert ike["local"] == {"auth": "psk", "id": "fqdn:hub.example.net"}
    assert ike["remote"] == {"auth": "psk", "id": "198.51.100.0/24"}
    child = ike["children"]
    assert isinstance(child, dict)
    assert child["dmvpn"] == {
        "mode": "transport",
        "local_ts": ["dynamic[gre]"],
        "remote_ts": ["dynamic[gre]"],
        "esp_proposals": ["aes128gcm16-modp2048"],
        "start_action": "trap",
        "dpd_action": "trap",
        "reqid": "1",
        "rekey_time": "3600s",
    }
    assert state.shared["frrdmvpn-lab-any"]["owners"] == ["198.51.100.0/24"]


def test_keyring_peer_owners() -> None:
    config = hub()
    keyring = config.ikev2_keyrings[0]
    peers = (
        KeyringPeer("a", IPv4Network("198.51.100.11/32"), None, "k1"),
        KeyringPeer("b", None, FqdnIdentity("b.example"), "k2"),
        KeyringPeer("c", IPv4Network("0.0.0.0/0"), None, "k3"),
        KeyringPeer("nokey", IPv4Network("0.0.0.0/0")),
    )
    keyring = dataclasses.replace(keyring, peers=peers)
    shared = desired_swan(dataclasses.replace(config, ikev2_keyrings=(keyring,)), ETH0).shared
    assert list(shared.values()) == [
        {"id": "frrdmvpn-lab-a", "type": "IKE", "data": "k1", "owners": ["198.51.100.11"]},
        {"id": "frrdmvpn-lab-b", "type": "IKE", "data": "k2", "owners": ["fqdn:b.example"]},
        {"id": "frrdmvpn-lab-c", "type": "IKE", "data": "k3"},
    ]


CERT_HUB = HUB.replace(
    "crypto ikev2 proposal",
    "crypto pki trustpoint tp\n certificate /etc/frrdmvpn/hub.pem\n"
    " private-key /etc/frrdmvpn/hub.key\n ca-certificate /etc/frrdmvpn/ca.pem\n!\n"
    "crypto ikev2 proposal",
).replace(
    " authentication local pre-share\n authentication remote pre-share\n keyring local lab\n",
    " authentication local rsa-sig\n authentication remote ecdsa-sig\n pki trustpoint tp\n",
)


def test_certificates_are_sent_as_data_and_keys_the_caller_loads() -> None:
    """charon opens no configured path (issue 14, hole 5): the caller reads the files the
    trustpoint names, through frrdmvpn.adapters.trusted_files, and passes their contents."""
    config = hub(CERT_HUB)
    assert trustpoint_files(config) == (
        TrustpointFile("tp", "certificate", "/etc/frrdmvpn/hub.pem"),
        TrustpointFile("tp", "private-key", "/etc/frrdmvpn/hub.key", secret=True),
        TrustpointFile("tp", "ca-certificate", "/etc/frrdmvpn/ca.pem"),
    )
    files = {"/etc/frrdmvpn/hub.pem": b"HUB PEM", "/etc/frrdmvpn/ca.pem": b"CA DER"}
    state = desired_swan(config, ETH0, files)
    ike = state.conns["dmvpn"]["dmvpn"]
    assert isinstance(ike, dict)
    # the NBMA address, as charon 5.9 defaults to and 6.0 (Debian 13) would not
    assert ike["local"] == {"auth": "pubkey", "id": "198.51.100.1", "certs": [b"HUB PEM"]}
    assert ike["remote"] == {"auth": "pubkey", "cacerts": [b"CA DER"]}
    assert "/etc/frrdmvpn/" not in repr(state.conns)
    assert dict(state.shared) == {}
    assert trustpoint_files(hub()) == ()
    assert state.private_keys == ("/etc/frrdmvpn/hub.key",)
    assert load_key_message(b"PEM") == {"type": "any", "data": b"PEM"}


def test_tunnel_source_address_is_needed_for_an_interface_source() -> None:
    with pytest.raises(SourceAddressError, match="tunnel source eth0"):
        desired_swan(hub())
    by_address = HUB.replace(" tunnel source eth0", " tunnel source 198.51.100.1")
    ike = desired_swan(hub(by_address)).conns["dmvpn"]["dmvpn"]
    assert isinstance(ike, dict)
    assert ike["local_addrs"] == ["198.51.100.1"]


def test_unprotected_tunnel_loads_nothing() -> None:
    text = HUB.replace(" tunnel protection ipsec profile dmvpn\n", "")
    assert desired_swan(hub(text), ETH0) == EMPTY


def test_changes_from_nothing_load_everything() -> None:
    state = desired_swan(hub(), ETH0)
    changes = diff_swan(EMPTY, state)
    assert changes.load_conns == (state.conns["dmvpn"],)
    assert changes.load_shared == (state.shared["frrdmvpn-lab-any"],)
    assert (changes.unload_conns, changes.unload_shared) == ((), ())
    assert not changes.empty


def test_reapplying_the_same_config_changes_nothing() -> None:
    assert diff_swan(desired_swan(hub(), ETH0), desired_swan(hub(), ETH0)).empty


def test_a_new_key_reloads_only_the_shared_secret() -> None:
    old = desired_swan(hub(), ETH0)
    new = desired_swan(hub(HUB.replace("not-for-production", "rotated")), ETH0)
    changes = diff_swan(old, new)
    assert changes.load_conns == ()
    assert [m["data"] for m in changes.load_shared] == ["frrdmvpn-lab-psk-rotated"]


def test_renamed_profile_and_keyring_peer_are_unloaded() -> None:
    old = desired_swan(hub(), ETH0)
    text = HUB.replace("ipsec profile dmvpn", "ipsec profile vpn").replace("peer any", "peer all")
    new = desired_swan(hub(text), ETH0)
    changes = diff_swan(old, new)
    assert list(changes.load_conns[0]) == ["vpn"]
    assert changes.unload_conns == ("dmvpn",)
    assert changes.unload_conn_messages() == [{"name": "dmvpn"}]
    assert changes.unload_shared == ("frrdmvpn-lab-any",)
    assert changes.unload_shared_messages() == [{"id": "frrdmvpn-lab-any"}]


def test_key_files_come_and_go() -> None:
    old = desired_swan(hub(CERT_HUB), ETH0)
    new = desired_swan(hub(), ETH0)
    changes = diff_swan(old, new)
    assert (changes.load_keys, changes.unload_keys) == ((), ("/etc/frrdmvpn/hub.key",))
    assert diff_swan(new, old).load_keys == ("/etc/frrdmvpn/hub.key",)


def test_state_as_plain_data() -> None:
    plain = desired_swan(hub(), ETH0).to_dict()
    assert list(plain) == ["load-conn", "load-shared", "private-keys"]
