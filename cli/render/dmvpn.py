"""``show dmvpn [detail]``.

The summary layout is byte-for-byte that of the ntc-templates raw
``cisco_ios_show_dmvpn.raw`` and the genieparser golden ``ShowDmvpn/golden_output1``
(rows ``' %5s %-15s %15s %5s %8s %5s'``; further NHRP entries of one NBMA peer on
continuation lines with ``# Ent`` and NBMA blank; an NBMA address longer than 15
characters alone on its line, as in ``ShowDmvpn/golden_output3``). The detail layout
follows four IOS / IOS XE ``show dmvpn detail`` captures in public lab notes (an iBGP lab
hub with three spokes, an OTUS hub with two tunnels, an IOSv spoke with its NHS, a spoke
with four peers): rows without the leading space, ``'%5s %-15s %15s %5s %8s %5s %18s'``
with a ``Target Network`` column (three captures byte for byte; the OTUS release prints
Attrb one column further left), then ``Crypto Session Details``.
"""

from __future__ import annotations

from collections.abc import Sequence

from cli.render import crypto, names
from cli.render.nhrp import nhs_letters
from cli.render.text import join
from cli.render.times import age, epoch
from frrdmvpn.v1 import nhrp_pb2, node_pb2, peer_pb2

LEGEND = (
    "Legend: Attrb --> S - Static, D - Dynamic, I - Incomplete",
    "        N - NATed, L - Local, X - No Socket",
    "        T1 - Route Installed, T2 - Nexthop-override",
    "        C - CTS Capable",
    "        # Ent --> Number of NHRP entries with same NBMA peer",
    "        NHS Status: E --> Expecting Replies, R --> Responding, W --> Waiting",
    "        UpDn Time --> Up or Down Time for a Tunnel",
    "=" * 74,
)
TABLE_HEADER = (
    " # Ent  Peer NBMA Addr Peer Tunnel Add State  UpDn Tm Attrb",
    " ----- --------------- --------------- ----- -------- -----",
)
DETAIL_TABLE_HEADER = (
    "# Ent  Peer NBMA Addr Peer Tunnel Add State  UpDn Tm Attrb    Target Network",
    "----- --------------- --------------- ----- -------- ----- -----------------",
)
CRYPTO_HEADER = ("Crypto Session Details:", "-" * 80)
PENDING = "Pending DMVPN Sessions:"
_NBMA_WIDTH = 15


def show_dmvpn(
    node: node_pb2.NodeSummary,
    peers: Sequence[peer_pb2.Peer],
    *,
    detail: bool = False,
    now: float,
    nhs: Sequence[nhrp_pb2.Nhs] = (),
) -> str:
    """``show dmvpn [detail]``: the legend, then one block per tunnel.

    ``peers`` are listed under their tunnel in the order given; tunnels come in the
    node's order, then tunnels only the peers name. ``nhs`` feeds the ``IPv4 NHS:`` lines
    of the detail form.
    """
    tunnels = {t.name: t for t in node.tunnels}
    names_in_order = [t.name for t in node.tunnels]
    names_in_order += sorted({p.interface for p in peers} - set(tunnels))
    lines = list(LEGEND)
    for name in names_in_order:
        tunnel = tunnels.get(name, node_pb2.TunnelStatus(name=name))
        members = [p for p in peers if p.interface == name]
        if detail:
            lines += _detail_block(tunnel, members, [n for n in nhs if n.interface == name], now)
        else:
            lines += _block(tunnel, members, now)
    if detail:
        lines += ["", *_crypto_details(peers, now)]
    return join(lines)


def _rows(peer: peer_pb2.Peer) -> list[tuple[str, str, str]]:
    """(tunnel address, attribute, target network) per NHRP entry of the peer; one row
    from the peer itself when it has no entry."""
    rows = []
    for entry in peer.nhrp_entries:
        route = entry.via and entry.via != entry.protocol_address
        attrb = names.cache_letter(entry.type) + ("N" if entry.natted else "")
        rows.append(
            (
                entry.via or entry.protocol_address,
                attrb + ("T1" if route else ""),
                f"{entry.protocol_address}/{entry.prefix_length}",
            )
        )
    if not rows:
        letter = {
            peer_pb2.PEER_ROLE_NHS: "S",
            peer_pb2.PEER_ROLE_STATIC: "S",
            peer_pb2.PEER_ROLE_DYNAMIC: "D",
            peer_pb2.PEER_ROLE_SHORTCUT: "D",
        }.get(peer.role, "")
        rows.append((peer.tunnel_address or "UNKNOWN", letter + ("N" if peer.natted else ""), ""))
    return rows


def _updn(peer: peer_pb2.Peer, now: float) -> str:
    return age(epoch(peer.state_since) if peer.HasField("state_since") else None, now)


def _block(tunnel: node_pb2.TunnelStatus, peers: list[peer_pb2.Peer], now: float) -> list[str]:
    lines = [
        "",
        f"Interface: {tunnel.name}, IPv4 NHRP Details",
        f"Type:{names.tunnel_type(tunnel.type)}, NHRP Peers:{len(peers)},",
        "",
        *TABLE_HEADER,
    ]
    for peer in peers:
        state, updn = names.peer_state(peer.state), _updn(peer, now)
        rows = _rows(peer)
        ent, nbma = str(len(peer.nhrp_entries)), peer.key.remote_nbma
        if len(nbma) > _NBMA_WIDTH:
            lines.append(f" {ent:>5} {nbma}")
            ent, nbma = "", ""
        for tunnel_addr, attrb, _ in rows:
            lines.append(f" {ent:>5} {nbma:<15} {tunnel_addr:>15} {state:>5} {updn:>8} {attrb:>5}")
            ent, nbma = "", ""
    lines.append("")
    return lines


def _detail_block(
    tunnel: node_pb2.TunnelStatus,
    peers: list[peer_pb2.Peer],
    nhs: list[nhrp_pb2.Nhs],
    now: float,
) -> list[str]:
    admin = "up" if tunnel.admin_up else "administratively down"
    oper = "up" if tunnel.oper_up else "down"
    address = tunnel.address.partition("/")[0]
    lines = [
        "",
        f'Interface {tunnel.name} is {admin}/{oper}, Addr. is {address}, VRF ""',
        f'   Tunnel Src./Dest. addr: {tunnel.source_address}/MGRE, Tunnel VRF ""',
        f'   Protocol/Transport: "multi-GRE/IP", Protect "{tunnel.protection_profile}"',
        "   Interface State Control: Disabled",
        "   nhrp event-publisher : Disabled",
    ]
    if nhs:
        lines += ["", "IPv4 NHS:"]
        lines += [
            f"{n.protocol_address or '(dynamic)'}  {nhs_letters(n)} priority = {n.priority}"
            " cluster = 0"
            for n in nhs
        ]
    lines += [
        f"Type:{names.tunnel_type(tunnel.type)}, Total NBMA Peers (v4/v6): {len(peers)}",
        "",
        *DETAIL_TABLE_HEADER,
    ]
    for peer in peers:
        state, updn = names.peer_state(peer.state), _updn(peer, now)
        ent, nbma = str(len(peer.nhrp_entries)), peer.key.remote_nbma
        if len(nbma) > _NBMA_WIDTH:
            lines.append(f"{ent:>5} {nbma}")
            ent, nbma = "", ""
        for tunnel_addr, attrb, target in _rows(peer):
            lines.append(
                f"{ent:>5} {nbma:<15} {tunnel_addr:>15} {state:>5} {updn:>8} {attrb:>5}"
                f" {target:>18}"
            )
            ent = ""
    lines.append("")
    return lines


def _crypto_details(peers: Sequence[peer_pb2.Peer], now: float) -> list[str]:
    lines = [*CRYPTO_HEADER, ""]
    for peer in peers:
        if not peer.crypto.ike_sas and not peer.crypto.protecting_child_sas:
            continue
        ikes = list(peer.crypto.ike_sas)
        lines += [
            f"Interface: {peer.interface}",
            f"Session: [0x{ikes[0].unique_id if ikes else 0:08X}]",
        ]
        for ike in ikes:
            lines += [
                f"  Session ID: {ike.unique_id}",
                f"  {crypto.ike_sa_line(ike)}",
                f"          Capabilities:{crypto.capabilities(ike)} connid:{ike.unique_id}"
                f" lifetime:{crypto.ike_lifetime(ike, now)}",
            ]
        life = crypto.session_life(peer, now)
        children = crypto.gre_children(peer)
        lines += [
            f"  Crypto Session Status: {names.session_status(peer.crypto.status)}",
            f"  fvrf: (none), Phase1_id: {crypto.phase1_id(peer)}",
            f"  {crypto.flow_line(peer)}",
            f"        Active SAs: {2 * peer.crypto.protecting_child_sas}, origin: crypto map",
            f"        Inbound:  #pkts dec'ed {peer.crypto.inbound.packets} drop 0"
            f" life (KB/Sec) {life}",
            f"        Outbound: #pkts enc'ed {peer.crypto.outbound.packets} drop 0"
            f" life (KB/Sec) {life}",
        ]
        if children:
            current = children[-1]
            # "0x%8X": one capture shows a 7-digit SPI padded with a space ("0x 623029E").
            lines.append(
                f"   Outbound SPI : 0x{current.spi_out:8X}, transform :"
                f" {names.esp_transform(current.algorithms)}"
            )
        lines += [f"    Socket State: {'Open' if children else 'Closed'}", ""]
    lines.append(PENDING)
    return lines
