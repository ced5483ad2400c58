"""Golden tests of the shell's show renderers (cli.render) for fixed model states.

Each command's text for each state is compared with tests/unit/cli/fixtures/<state>/
<command>.txt; ``FRRDMVPN_REGEN=1 pytest tests/unit/cli/test_shell_render.py`` rewrites the
fixtures instead (then review the diff). The layout tests below pin header lines and
column positions to real IOS output (samples named in each test); the states use
documentation addresses (RFC 5737) only.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

import cli.render
from cli.handlers import Renderers
from cli.render import (
    as_json,
)
from cli.render.times import cisco_age, clock
from tests.fakes.shell_states import (
    COMMANDS,
    DAY,
    HOUR,
    HUB2_NBMA,
    HUB_NBMA,
    SPOKE1_NBMA,
    SPOKE2_NBMA,
    STATES,
    empty_state,
    hub_state,
    render,
)

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).parent / "fixtures"

#: mypy checks here that the renderers have the signatures the handlers call them with.
RENDERERS: Renderers = cli.render
REGEN = os.environ.get("FRRDMVPN_REGEN") == "1"


# --- model states -------------------------------------------------------------------------


# --- golden files -------------------------------------------------------------------------


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("state", sorted(STATES))
def test_golden(state: str, command: str) -> None:
    text = render(state, command)
    path = FIXTURES / state / f"{command}.txt"
    if REGEN:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return
    assert path.exists(), f"{path} missing: run with FRRDMVPN_REGEN=1 and review it"
    assert text == path.read_text(), f"{state} {command} differs from {path}"


def test_no_fixture_is_stale() -> None:
    """Every fixture file belongs to a (state, command) pair."""
    expected = {f"{s}/{c}.txt" for s in STATES for c in COMMANDS}
    found = {str(p.relative_to(FIXTURES)) for p in FIXTURES.rglob("*.txt")}
    assert found <= expected, sorted(found - expected)


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("state", sorted(STATES))
def test_output_hygiene(state: str, command: str) -> None:
    """Deterministic, no trailing blanks, one final newline (or nothing at all)."""
    text = render(state, command)
    assert text == render(state, command)
    assert text == "" or text.endswith("\n")
    assert not re.search(r"[ \t]+$", text, re.MULTILINE)


# --- layouts against real IOS samples -------------------------------------------------------

# `show dmvpn` header block: literally as in ntc-templates
# tests/cisco_ios/show_dmvpn/cisco_ios_show_dmvpn.raw (IOS 15.x) and the genieparser golden
# iosxe/tests/ShowDmvpn/cli/equal/golden_output1_output.txt (the latter indented by the
# test harness), trailing blanks aside.
DMVPN_LEGEND = [
    "Legend: Attrb --> S - Static, D - Dynamic, I - Incomplete",
    "        N - NATed, L - Local, X - No Socket",
    "        T1 - Route Installed, T2 - Nexthop-override",
    "        C - CTS Capable",
    "        # Ent --> Number of NHRP entries with same NBMA peer",
    "        NHS Status: E --> Expecting Replies, R --> Responding, W --> Waiting",
    "        UpDn Time --> Up or Down Time for a Tunnel",
    "==========================================================================",
]
DMVPN_TABLE = [
    " # Ent  Peer NBMA Addr Peer Tunnel Add State  UpDn Tm Attrb",
    " ----- --------------- --------------- ----- -------- -----",
]
# `show dmvpn detail`: captures in four public lab notes (an iBGP lab hub, an OTUS hub with
# two tunnels, an IOSv spoke with its NHS, a spoke with four peers) print these two lines
# identically, without the leading space of the summary table. Rows follow three of them
# byte for byte ('%5s %-15s %15s %5s %8s %5s %18s'); the OTUS release puts Attrb one column
# further left.
DMVPN_DETAIL_TABLE = [
    "# Ent  Peer NBMA Addr Peer Tunnel Add State  UpDn Tm Attrb    Target Network",
    "----- --------------- --------------- ----- -------- ----- -----------------",
]


def _columns(dashes: str) -> list[tuple[int, int]]:
    """(start, end) of each run of dashes in a table's rule line."""
    return [m.span() for m in re.finditer(r"-+", dashes)]


def _rows_after(text: str, rule: str) -> list[str]:
    lines = text.splitlines()
    start = lines.index(rule) + 1
    rows = []
    for line in lines[start:]:
        if not line:
            break
        rows.append(line)
    return rows


def test_show_dmvpn_header_and_columns() -> None:
    """Rows put each value inside its dash run: NBMA left-aligned, the tunnel address,
    State, UpDn Tm and Attrb right-aligned, as ``' %5s %-15s %15s %5s %8s %5s'`` in the
    two samples above (checked byte for byte against them when this was written)."""
    text = render("spoke", "show_dmvpn")
    lines = text.splitlines()
    assert lines[: len(DMVPN_LEGEND)] == DMVPN_LEGEND
    assert lines[len(DMVPN_LEGEND) : len(DMVPN_LEGEND) + 6] == [
        "",
        "Interface: Tunnel0, IPv4 NHRP Details",
        "Type:Spoke, NHRP Peers:2,",
        "",
        *DMVPN_TABLE,
    ]
    ent, nbma, tun, state, updn, attrb = _columns(DMVPN_TABLE[1])
    rows = _rows_after(text, DMVPN_TABLE[1])
    assert len(rows) == 3  # NHS; shortcut host entry; its LAN route on a continuation line
    for row in rows:
        for end in (tun[1], state[1], updn[1], attrb[1]):
            assert row[end - 1] != " ", (row, end)  # right-aligned: last cell char filled
        assert row[nbma[0] - 1] == " "
    assert [row[ent[1] - 1] for row in rows] == ["1", "2", " "]
    assert rows[0][nbma[0] :].startswith(HUB_NBMA)
    # A further entry of the same NBMA peer: "# Ent" and NBMA blank (genie golden_output1).
    assert rows[2][: tun[0]].strip() == ""
    assert rows[2][tun[0] : tun[1]].strip() == "192.0.2.12"
    assert rows[2][attrb[0] : attrb[1]].strip() == "DT1"


def test_show_dmvpn_detail_header_and_columns() -> None:
    text = render("spoke", "show_dmvpn_detail")
    lines = text.splitlines()
    assert lines[: len(DMVPN_LEGEND)] == DMVPN_LEGEND
    # Interface block: as in the IOSv spoke capture, "IPv4 NHS:" on its own line.
    assert lines[len(DMVPN_LEGEND) + 1 : len(DMVPN_LEGEND) + 13] == [
        'Interface Tunnel0 is up/up, Addr. is 192.0.2.11, VRF ""',
        '   Tunnel Src./Dest. addr: 198.51.100.11/MGRE, Tunnel VRF ""',
        '   Protocol/Transport: "multi-GRE/IP", Protect "DMVPN-PROFILE"',
        "   Interface State Control: Disabled",
        "   nhrp event-publisher : Disabled",
        "",
        "IPv4 NHS:",
        "192.0.2.1  RE priority = 0 cluster = 0",
        "Type:Spoke, Total NBMA Peers (v4/v6): 2",
        "",
        *DMVPN_DETAIL_TABLE,
    ]
    cols = _columns(DMVPN_DETAIL_TABLE[1])
    rows = _rows_after(text, DMVPN_DETAIL_TABLE[1])
    for row in rows:
        # The Target Network ends one column past its dash run (three of the captures).
        assert len(row) == cols[-1][1] + 1
        assert row[cols[4][1] - 1] != " "  # UpDn Tm right-aligned
    # A further entry of one NBMA peer repeats the NBMA address (the four-peer capture).
    assert rows[2][: cols[0][1]].strip() == ""
    assert rows[2][cols[1][0] :].startswith(SPOKE2_NBMA)
    crypto = lines[lines.index("Crypto Session Details:") :]
    assert crypto[1] == "-" * 80
    assert crypto[-1] == "Pending DMVPN Sessions:"
    assert "  IKEv2 SA: local 198.51.100.11/500 remote 198.51.100.1/500 Active" in crypto
    assert "  Crypto Session Status: UP-ACTIVE" in crypto


def test_show_dmvpn_states_and_ages() -> None:
    """IOS State words and UpDn Tm forms (samples: UP, NHRP, IKE; 00:29:40, 6d12h, 3w5d,
    48w0d, never)."""
    spoke = _rows_after(render("spoke", "show_dmvpn"), DMVPN_TABLE[1])
    down = _rows_after(render("down", "show_dmvpn"), DMVPN_TABLE[1])
    hub = _rows_after(render("hub", "show_dmvpn"), DMVPN_TABLE[1])
    assert [r.split()[3:] for r in spoke[:2]] == [["UP", "2w3d", "S"], ["UP", "00:01:23", "D"]]
    # A peer without NHRP entry (an NHS not registered with yet): "# Ent" 0, its role's
    # letter; without tunnel address "UNKNOWN" (IOS prints that for unresolved NBMA).
    assert [r.split() for r in down] == [
        ["0", HUB_NBMA, "192.0.2.1", "DOWN", "1y5w", "S"],
        ["0", HUB2_NBMA, "192.0.2.2", "IKE", "00:00:45", "S"],
        ["0", "198.51.100.99", "UNKNOWN", "DOWN", "never", "S"],
    ]
    assert [r.split()[-3:] for r in hub] == [["UP", "00:10:00", "D"], ["UP", "1d02h", "DN"]]


def test_show_ip_nhrp_layout() -> None:
    """genieparser goldens ShowIpNhrp / ShowIpNhrpDetail (IOS XE): ``<prefix> via <nh>``,
    then three lines indented by three spaces."""
    text = render("hub", "show_ip_nhrp")
    assert text.splitlines()[4:9] == [
        "192.0.2.11/32 via 192.0.2.11",
        "   Tunnel0 created 00:10:00, expire 01:50:00",
        "   Type: dynamic, Flags: registered used",
        "   NBMA address: 198.51.100.11",
        "192.0.2.12/32 via 192.0.2.12",
    ]
    assert "    (Claimed NBMA address: 10.0.0.12)" in text.splitlines()


def test_show_ip_nhrp_brief_layout() -> None:
    """Two IOSv lab captures of ``show ip nhrp brief``: banner, legend, two-line header;
    NBMA address at column 60, T/Flag at column 53."""
    lines = render("spoke", "show_ip_nhrp_brief").splitlines()
    assert lines[:11] == [
        "****************************************************************************",
        "    NOTE: Link-Local, No-socket and Incomplete entries are not displayed",
        "****************************************************************************",
        "Legend: Type --> S - Static, D - Dynamic",
        "        Flags --> u - unique, r - registered, e - temporary, c - claimed",
        "        a - authoritative, t - route",
        "============================================================================",
        "",
        "Intf     NextHop Address                                    NBMA Address",
        "         Target Network                              T/Flag",
        "-------- ------------------------------------------- ------ ----------------",
    ]
    rows = lines[11:]
    assert len(rows) == 6  # the incomplete entry is not displayed
    assert rows[0].startswith("Tu0      192.0.2.1 ")
    assert rows[0].index(HUB_NBMA) == 60
    assert rows[5][53:] == "D/t"


def test_show_ip_nhrp_nhs_layout() -> None:
    """genieparser goldens ShowIpNhrpNhs / ShowIpNhrpNhsDetail."""
    assert render("spoke", "show_ip_nhrp_nhs").splitlines() == [
        "Legend: E=Expecting replies, R=Responding, W=Waiting, D=Dynamic",
        "Tunnel0:",
        "192.0.2.1  RE  NBMA Address: 198.51.100.1 priority = 0 cluster = 0",
        "",
    ]
    detail = render("spoke", "show_ip_nhrp_nhs_detail").splitlines()
    assert detail[2].endswith(
        "priority = 0 cluster = 0  req-sent 1473  req-failed 0  repl-recv 1473 (00:00:58 ago)"
    )


def test_show_ip_nhrp_traffic() -> None:
    """genieparser golden ShowIpNhrpTraffic/golden_output_2 layout when counted; a one-line
    note per tunnel when nhrpd cannot count."""
    assert render("hub", "show_ip_nhrp_traffic") == (
        "Tunnel0: NHRP message counters are not available: nhrpd does not report them\n"
    )
    lines = render("spoke", "show_ip_nhrp_traffic").splitlines()
    assert lines[1] == "   Sent: Total 1481"
    assert lines[2] == (
        "         4 Resolution Request  3 Resolution Reply  1473 Registration Request"
    )


def test_show_crypto_session_layout() -> None:
    """genieparser golden ShowCryptoSession/golden_output2 (a DMVPN IKEv2 session) and the
    ntc-templates raw cisco_ios_show_crypto_session_detail_ikev2.raw."""
    lines = render("hub", "show_crypto_session").splitlines()
    assert lines[:10] == [
        "Crypto session current status",
        "",
        "Interface: Tunnel0",
        "Profile: DMVPN-PROFILE",
        "Session status: UP-ACTIVE",
        "Peer: 198.51.100.11 port 500",
        "  Session ID: 1",
        "  IKEv2 SA: local 198.51.100.1/500 remote 198.51.100.11/500 Active",
        "  IPSEC FLOW: permit 47 host 198.51.100.1 host 198.51.100.11",
        "        Active SAs: 2, origin: crypto map",
    ]
    detail = render("hub", "show_crypto_session_detail").splitlines()
    assert detail[:8] == [
        "Crypto session current status",
        "",
        "Code: C - IKE Configuration mode, D - Dead Peer Detection",
        "K - Keepalives, N - NAT-traversal, T - cTCP encapsulation",
        "X - IKE Extended Authentication, F - IKE Fragmentation",
        "R - IKE Auto Reconnect, U - IKE Dynamic Route Update",
        "S - SIP VPN",
        "",
    ]
    assert detail[8:14] == [
        "Interface: Tunnel0",
        "Profile: DMVPN-PROFILE",
        "Uptime: 00:10:05",
        "Session status: UP-ACTIVE",
        "Peer: 198.51.100.11 port 500 fvrf: (none) ivrf: (none)",
        "      Phase1_id: spoke1.example",
    ]
    assert "          Capabilities:DN connid:2 lifetime:19:13:13" in detail
    assert (
        "        Inbound:  #pkts dec'ed 88213 drop 0 life (KB/Sec) KB Vol Rekey Disabled/840"
        in detail
    )


def test_show_crypto_ipsec_sa_layout() -> None:
    """ntc-templates raw cisco_ios_show_crypto_ipsec_sa_detail.raw and the DMVPN blocks of
    the genieparser golden ShowCryptoIpsecSa: indentation and wording per line."""
    lines = render("hub", "show_crypto_ipsec_sa").splitlines()
    assert lines[:8] == [
        "interface: Tunnel0",
        "    Crypto map tag: Tunnel0-head-0, local addr 198.51.100.1",
        "",
        "   protected vrf: (none)",
        "   local  ident (addr/mask/prot/port): (198.51.100.1/255.255.255.255/47/0)",
        "   remote ident (addr/mask/prot/port): (198.51.100.11/255.255.255.255/47/0)",
        "   current_peer 198.51.100.11 port 500",
        "     PERMIT, flags={origin_is_acl,}",
    ]
    assert "    #pkts encaps: 1187, #pkts encrypt: 1187, #pkts digest: 1187" in lines
    assert "     current outbound spi: 0xD15EA5E(219540062)" in lines
    assert "        in use settings ={Transport, }" in lines
    assert "        in use settings ={Transport UDP-Encaps, }" in lines
    assert "        transform: esp-gcm 256 ," in lines
    peer_only = render("hub", "show_crypto_ipsec_sa_peer")
    assert "198.51.100.11" not in peer_only
    assert "current_peer 203.0.113.12 port 4500" in peer_only


def test_show_crypto_ikev2_sa_layout() -> None:
    """IOSv lab capture of ``show crypto ikev2 sa`` (header per SA) and the genieparser golden
    ShowCryptoIkev2Sa/golden_output: columns at 0, 10, 32, 54, 75."""
    lines = render("hub", "show_crypto_ikev2_sa").splitlines()
    header = "Tunnel-id Local                 Remote                fvrf/ivrf            Status"
    assert lines[:4] == [
        "IPv4 Crypto IKEv2  SA",
        "",
        header,
        "1         198.51.100.1/500      198.51.100.11/500     none/none            READY",
    ]
    assert lines[4] == (
        "      Encr: AES-CBC, keysize: 256, PRF: SHA256, Hash: SHA256, DH Grp:31,"
        " Auth sign: PSK, Auth verify: PSK"
    )
    assert lines[5] == "      Life/Active Time: 86400/605 sec"
    assert lines.count(header) == 2


def test_show_ip_ospf_neighbor_layout() -> None:
    """ntc-templates raw cisco_ios_show_ip_ospf_neighbor.raw: header literally, State
    ``FULL/  -`` for networks without DR."""
    assert render("hub", "show_ip_ospf_neighbor").splitlines() == [
        "Neighbor ID     Pri   State           Dead Time   Address         Interface",
        "10.255.0.11       0   FULL/  -        00:01:35    192.0.2.11      Tunnel0",
        "10.255.0.12       0   FULL/  -        00:01:42    192.0.2.12      Tunnel0",
    ]
    assert render("empty", "show_ip_ospf_neighbor") == (
        "% OSPF is not configured, or ospfd is not running\n"
    )


def test_ages() -> None:
    """IOS age forms seen in the samples: hh:mm:ss, 6d12h, 3w5d, 48w0d; beyond a year 1y5w."""
    assert cisco_age(0) == "00:00:00"
    assert cisco_age(29 * 60 + 40) == "00:29:40"
    assert cisco_age(86399) == "23:59:59"
    assert cisco_age(6 * DAY + 12 * HOUR) == "6d12h"
    assert cisco_age(26 * DAY) == "3w5d"
    assert cisco_age(48 * 7 * DAY) == "48w0d"
    assert cisco_age(400 * DAY) == "1y5w"
    assert cisco_age(-5) == "00:00:00"
    assert clock(100 * HOUR + 1) == "100:00:01"


def test_as_json() -> None:
    """``| json``: proto field names, enum names, defaults included, sorted keys."""
    one = json.loads(as_json(hub_state().peers[0]))
    assert one["key"] == {"local_nbma": HUB_NBMA, "remote_nbma": SPOKE1_NBMA}
    assert one["state"] == "PEER_STATE_UP"
    assert one["natted"] is False  # defaults are printed
    assert one["crypto"]["inbound"]["packets"] == "1204"  # 64-bit integers as strings
    many = json.loads(as_json(hub_state().peers))
    assert [p["tunnel_address"] for p in many] == ["192.0.2.11", "192.0.2.12"]
    assert as_json([]) == "[]\n"
    text = as_json(empty_state().node)
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"


def test_the_handlers_port_names_every_renderer_the_package_has() -> None:
    public = set(cli.render.__all__)
    port = {name for name in vars(Renderers) if not name.startswith("_")}
    assert public == port
