"""The pure parts of the VICI client and the vtysh adapter: charon's and nhrpd's answers."""

from __future__ import annotations

import ipaddress

import pytest

from frrdmvpn.adapters.vtysh import bindings_from_cache, extract_json, sas_from_dmvpn
from frrdmvpn.codec.vici import Message
from frrdmvpn.core.sa_table import child_sas_from_list_sa, ike_sas_from_list_sa

pytestmark = pytest.mark.unit
ip = ipaddress.ip_address

LIST_SA: Message = {
    "dmvpn": {
        "uniqueid": b"3",
        "state": b"ESTABLISHED",
        "local-host": b"198.51.100.11",
        "remote-host": b"198.51.100.1",
        "local-id": b"198.51.100.11",
        "remote-id": b"198.51.100.1",
        "child-sas": {
            "dmvpn-4": {
                "uniqueid": b"4",
                "state": b"INSTALLED",
                "mode": b"TRANSPORT",
                "protocol": b"ESP",
                "local-ts": [b"198.51.100.11/32[gre]"],
                "remote-ts": [b"198.51.100.1/32[gre]"],
            },
        },
    }
}


def test_list_sa_to_ike_and_child_sas() -> None:
    (ike,) = ike_sas_from_list_sa(LIST_SA)
    assert (ike.uniqueid, ike.remote_host, ike.state) == (3, ip("198.51.100.1"), "ESTABLISHED")
    (child,) = child_sas_from_list_sa(LIST_SA)
    assert (child.ike_uniqueid, child.child_uniqueid) == (3, 4)
    assert child.remote_id == "198.51.100.1"
    assert child.local_ts == ("198.51.100.11/32[gre]",)


def test_an_ike_sa_without_children() -> None:
    bare: Message = {
        "x": {
            "uniqueid": b"9",
            "local-host": b"198.51.100.11",
            "remote-host": b"198.51.100.12",
            "state": b"CONNECTING",
        }
    }
    assert child_sas_from_list_sa(bare) == []
    assert ike_sas_from_list_sa(bare)[0].state == "CONNECTING"


def test_nhrp_cache_bindings_skip_local_and_junk() -> None:
    cache = {
        "attr": {"entriesCount": 4},
        "table": [
            {"type": "local", "protocol": "192.0.2.11", "nbma": "198.51.100.11"},
            {"type": "nhs", "protocol": "192.0.2.1", "nbma": "198.51.100.1"},
            {"type": "dynamic", "protocol": "192.0.2.12", "nbma": "198.51.100.12"},
            {"type": "dynamic", "protocol": "garbage", "nbma": "198.51.100.12"},
        ],
    }
    got = [(b.protocol, b.nbma, b.type) for b in bindings_from_cache(cache)]
    assert got == [
        (ip("192.0.2.1"), ip("198.51.100.1"), "nhs"),
        (ip("192.0.2.12"), ip("198.51.100.12"), "dynamic"),
    ]


def test_dmvpn_sa_counts() -> None:
    text = (
        '[{"src":"198.51.100.11","dst":"198.51.100.1","notifierActive":true,"sas":1,'
        '"identity":"198.51.100.1"},{"src":"bad"}]'
    )
    assert sas_from_dmvpn(extract_json(text)) == {(ip("198.51.100.11"), ip("198.51.100.1")): 1}
    assert sas_from_dmvpn({"not": "a list"}) == {}


@pytest.mark.parametrize("garbage", [[], "text", {"table": "x"}, {"table": [1, "a", None]}])
def test_nhrp_cache_garbage_gives_no_bindings(garbage: object) -> None:
    assert bindings_from_cache(garbage) == []
