"""ntc-templates (TextFSM) parse the shell's IOS-style show output into the right values.

Network automation reads IOS show commands with ntc-templates; these tests feed the
renderers' output for the fixed model states of test_shell_render to the templates
``cisco_ios_show_dmvpn``, ``cisco_ios_show_crypto_session_detail``,
``cisco_ios_show_crypto_ipsec_sa_detail`` and ``cisco_ios_show_ip_ospf_neighbor`` (names
as in ntc-templates' index) and check the parsed records. A template raises on any line
it does not expect, so a parse also proves that every line of the output is one IOS
prints.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.shell_states import HUB2_NBMA, HUB_NBMA, SPOKE1_NBMA, SPOKE2_NBMA, render

pytestmark = pytest.mark.unit

ntc_parse = pytest.importorskip("ntc_templates.parse")


def parse(command: str, text: str) -> list[dict[str, Any]]:
    records = ntc_parse.parse_output(platform="cisco_ios", command=command, data=text)
    assert isinstance(records, list)
    return records


def test_show_dmvpn_hub() -> None:
    assert parse("show dmvpn", render("hub", "show_dmvpn")) == [
        {
            "peer_nbma": SPOKE1_NBMA,
            "peer_tunnel": "192.0.2.11",
            "state": "UP",
            "uptime": "00:10:00",
            "attribute": "D",
        },
        {
            "peer_nbma": SPOKE2_NBMA,
            "peer_tunnel": "192.0.2.12",
            "state": "UP",
            "uptime": "1d02h",
            "attribute": "DN",
        },
    ]


def test_show_dmvpn_spoke() -> None:
    """The template records the first entry of each NBMA peer; the continuation line of
    the shortcut's LAN route is skipped by it, as for IOS output."""
    assert parse("show dmvpn", render("spoke", "show_dmvpn")) == [
        {
            "peer_nbma": HUB_NBMA,
            "peer_tunnel": "192.0.2.1",
            "state": "UP",
            "uptime": "2w3d",
            "attribute": "S",
        },
        {
            "peer_nbma": SPOKE2_NBMA,
            "peer_tunnel": "192.0.2.12",
            "state": "UP",
            "uptime": "00:01:23",
            "attribute": "D",
        },
    ]


def test_show_dmvpn_down_and_empty() -> None:
    records = parse("sh dm", render("down", "show_dmvpn"))  # the index's abbreviation
    assert [(r["peer_nbma"], r["peer_tunnel"], r["state"], r["uptime"]) for r in records] == [
        (HUB_NBMA, "192.0.2.1", "DOWN", "1y5w"),
        (HUB2_NBMA, "192.0.2.2", "IKE", "00:00:45"),
        ("198.51.100.99", "UNKNOWN", "DOWN", "never"),
    ]
    assert parse("show dmvpn", render("empty", "show_dmvpn")) == []


def test_show_crypto_session_detail_hub() -> None:
    records = parse("show crypto session detail", render("hub", "show_crypto_session_detail"))
    wanted = ("interface", "session_status", "peer", "port", "phase1_id", "session_id")
    assert [{k: r[k] for k in wanted} for r in records] == [
        {
            "interface": "Tunnel0",
            "session_status": "UP-ACTIVE",
            "peer": SPOKE1_NBMA,
            "port": "500",
            "phase1_id": "spoke1.example",
            "session_id": "1",
        },
        {
            "interface": "Tunnel0",
            "session_status": "UP-ACTIVE",
            "peer": SPOKE2_NBMA,
            "port": "4500",
            "phase1_id": "spoke2.example",
            "session_id": "2",
        },
    ]
    first, second = records
    assert (first["local_ip"], first["remote_ip"], first["ikev1_status"]) == (
        HUB_NBMA,
        SPOKE1_NBMA,
        "Active",
    )
    assert (first["capabilities"], second["capabilities"]) == ("D", "DN")
    assert (first["permit"], first["src_host"], first["dst_host"]) == ("47", HUB_NBMA, SPOKE1_NBMA)
    assert (first["active_sa"], first["origin"]) == ("2", "crypto map")
    assert (first["profile"], first["uptime"], first["lifetime"]) == (
        "DMVPN-PROFILE",
        "00:10:05",
        "22:03:15",
    )


def test_show_crypto_session_detail_down() -> None:
    records = parse("show crypto session detail", render("down", "show_crypto_session_detail"))
    assert [(r["peer"], r["session_status"], r["active_sa"]) for r in records] == [
        (HUB_NBMA, "DOWN-NEGOTIATING", "0"),
        (HUB2_NBMA, "UP-ACTIVE", "0"),  # its CHILD_SA does not protect GRE: not counted
        ("198.51.100.99", "DOWN", "0"),
    ]
    assert [r["ikev1_status"] for r in records] == ["Inactive", "Active", ""]


def test_show_crypto_ipsec_sa_detail() -> None:
    """One record per ESP SA (inbound and outbound) of each peer."""
    records = parse("show crypto ipsec sa detail", render("hub", "show_crypto_ipsec_sa_detail"))
    assert [
        (r["current_peer"], r["port"], r["sa_orientation"], r["sa_spi_hex"], r["sa_status"])
        for r in records
    ] == [
        (SPOKE1_NBMA, "500", "inbound", "0xC3A1D2E4", "ACTIVE(ACTIVE)"),
        (SPOKE1_NBMA, "500", "outbound", "0xD15EA5E", "ACTIVE(ACTIVE)"),
        (SPOKE2_NBMA, "4500", "inbound", "0xCAFE0102", "ACTIVE(ACTIVE)"),
        (SPOKE2_NBMA, "4500", "outbound", "0xBEEF0304", "ACTIVE(ACTIVE)"),
    ]
    spoke1, _, spoke2, _ = records
    assert spoke1["interface"] == "Tunnel0"
    assert spoke1["crypto_map_tag"] == "Tunnel0-head-0"
    assert (spoke1["local_ident_addr"], spoke1["local_ident_mask"]) == (
        HUB_NBMA,
        "255.255.255.255",
    )
    assert (spoke1["remote_ident_addr"], spoke1["remote_ident_prot"]) == (SPOKE1_NBMA, "47")
    assert (spoke1["pkts_encaps"], spoke1["pkts_decaps"]) == ("1187", "1204")
    assert (spoke1["current_outbound_spi_hex"], spoke1["current_outbound_spi_dec"]) == (
        "0xD15EA5E",
        "219540062",
    )
    assert spoke1["sa_transform"] == "esp-256-aes esp-sha256-hmac"
    assert spoke1["sa_in_use_settings"] == "Transport"
    assert spoke1["sa_lifetime_sec"] == "2636"
    assert spoke2["sa_transform"] == "esp-gcm 256"
    assert spoke2["sa_in_use_settings"] == "Transport UDP-Encaps"


def test_show_crypto_ipsec_sa_detail_troubled_spoke() -> None:
    """Peers without SAs give no record (the template records SAs) and no error; a
    tunnel-mode CHILD_SA that does not protect GRE appears under its own idents."""
    records = parse("show crypto ipsec sa detail", render("down", "show_crypto_ipsec_sa_detail"))
    assert [
        (
            r["current_peer"],
            r["local_ident_addr"],
            r["local_ident_mask"],
            r["sa_orientation"],
            r["sa_in_use_settings"],
        )
        for r in records
    ] == [
        (HUB2_NBMA, "0.0.0.0", "0.0.0.0", "inbound", "Tunnel"),
        (HUB2_NBMA, "0.0.0.0", "0.0.0.0", "outbound", "Tunnel"),
    ]


def test_show_ip_ospf_neighbor() -> None:
    records = parse("show ip ospf neighbor", render("hub", "show_ip_ospf_neighbor"))
    assert records == [
        {
            "neighbor_id": f"10.255.0.{n}",
            "priority": "0",
            "state": "FULL/  -",
            "dead_time": dead,
            "ip_address": f"192.0.2.{n}",
            "interface": "Tunnel0",
        }
        for n, dead in ((11, "00:01:35"), (12, "00:01:42"))
    ]
