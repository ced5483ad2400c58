"""``show crypto session [detail]``, ``show crypto ipsec sa [peer X] [detail]`` and
``show crypto ikev2 sa``.

Layouts follow real IOS / IOS XE output: ``show crypto session`` the genieparser golden
``ShowCryptoSession/golden_output2`` (a DMVPN IKEv2 session), its detail form the
ntc-templates raw ``cisco_ios_show_crypto_session_detail_ikev2.raw``; ``show crypto ipsec
sa`` the DMVPN captures in the genieparser golden ``ShowCryptoIpsecSa`` and two lab notes,
its detail form the ntc-templates raw ``cisco_ios_show_crypto_ipsec_sa_detail.raw``;
``show crypto ikev2 sa`` the genieparser golden ``ShowCryptoIkev2Sa/golden_output`` and an
IOSv lab capture (header repeated per SA).

Where charon reports nothing IOS prints a number for, a neutral value is printed so that
Cisco parsers keep working: error and drop counters are 0 (charon counts no ESP errors
per SA), the kilobyte lifetime is the largest IOS can show (frrdmvpn's CHILD_SAs have no
volume limit; ``show crypto session detail`` says ``KB Vol Rekey Disabled`` like IOS),
the replay window is charon's default. The ``plaintext mtu`` line is left out.

Deviation: IOS prints ``interface:`` once per tunnel and the peers' blocks under it;
here each peer block repeats the ``interface:`` and ``Crypto map tag:`` lines, because
ntc-templates' TextFSM template cannot read a second peer under one ``interface:``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from cli.render import names
from cli.render.text import join
from cli.render.times import cisco_age, clock, epoch, remaining, seconds
from frrdmvpn.v1 import ipsec_pb2, peer_pb2

# The largest kilobyte lifetime IOS accepts; stands for "no volume limit".
NO_VOLUME_LIMIT_KB = 4294967295
# charon's replay window (swanctl.conf `replay_window`), which frrdmvpn does not change.
CHARON_REPLAY_WINDOW = 32
IKE_PORT = 500
GRE = 47

SESSION_CODES = (
    "Code: C - IKE Configuration mode, D - Dead Peer Detection",
    "K - Keepalives, N - NAT-traversal, T - cTCP encapsulation",
    "X - IKE Extended Authentication, F - IKE Fragmentation",
    "R - IKE Auto Reconnect, U - IKE Dynamic Route Update",
    "S - SIP VPN",
)
IKEV2_HEADER = "Tunnel-id Local                 Remote                fvrf/ivrf            Status"


# --- helpers shared with `show dmvpn detail` ----------------------------------------------


def capabilities(ike: ipsec_pb2.IkeSa) -> str:
    """IOS capability letters of an IKE SA: D (dead peer detection), N (NAT-T)."""
    letters = ("D" if ike.HasField("dpd_interval") else "") + (
        "N" if ike.nat_local or ike.nat_remote else ""
    )
    return letters or "(none)"


def ike_lifetime(ike: ipsec_pb2.IkeSa, now: float) -> str:
    """Time left until the IKE SA is rekeyed or reauthenticated (``lifetime:23:45:48``)."""
    ends = [epoch(ike.rekey_at)] if ike.HasField("rekey_at") else []
    if ike.HasField("reauth_at"):
        ends.append(epoch(ike.reauth_at))
    if not ends and ike.HasField("lifetime") and ike.HasField("established_at"):
        ends.append(epoch(ike.established_at) + seconds(ike.lifetime))
    left = remaining(min(ends), now) if ends else None
    return "0" if left is None else clock(left)


def ike_sa_line(ike: ipsec_pb2.IkeSa) -> str:
    """``IKEv2 SA: local A/500 remote B/500 Active``."""
    version = ike.ike_version or 2
    return (
        f"IKEv{version} SA: local {ike.local_host}/{ike.local_port or IKE_PORT}"
        f" remote {ike.remote_host}/{ike.remote_port or IKE_PORT} {names.ike_active(ike.state)}"
    )


def flow_line(peer: peer_pb2.Peer) -> str:
    """``IPSEC FLOW: permit 47 host <local NBMA> host <remote NBMA>`` (GRE)."""
    return f"IPSEC FLOW: permit {GRE} host {peer.key.local_nbma} host {peer.key.remote_nbma}"


def gre_children(peer: peer_pb2.Peer) -> list[ipsec_pb2.ChildSa]:
    """The CHILD_SAs that protect GRE for the peer, oldest first."""
    return [c for ike in peer.crypto.ike_sas for c in ike.child_sas if c.protects_gre]


def child_seconds_left(child: ipsec_pb2.ChildSa, now: float) -> int:
    """Seconds until the CHILD_SA is rekeyed (or expires); 0 when neither is scheduled."""
    for field in ("rekey_at", "expires_at"):
        if child.HasField(field):
            return int(remaining(epoch(getattr(child, field)), now) or 0)
    return 0


def session_life(peer: peer_pb2.Peer, now: float) -> str:
    """``life (KB/Sec)`` value of a session: ``KB Vol Rekey Disabled/<sec>`` or ``0/0``."""
    children = gre_children(peer)
    if not children:
        return "0/0"
    return f"KB Vol Rekey Disabled/{min(child_seconds_left(c, now) for c in children)}"


def phase1_id(peer: peer_pb2.Peer) -> str:
    """The peer's IKE identity (IOS ``Phase1_id``), ``(none)`` without one."""
    for ike in peer.crypto.ike_sas:
        if ike.remote_id:
            return ike.remote_id
    return peer.identity or "(none)"


def _remote_port(peer: peer_pb2.Peer) -> int:
    for ike in peer.crypto.ike_sas:
        if ike.remote_port:
            return ike.remote_port
    return IKE_PORT


# --- show crypto session -------------------------------------------------------------------


def show_crypto_session(peers: Sequence[peer_pb2.Peer], *, detail: bool = False, now: float) -> str:
    """``show crypto session [detail]``: one block per peer (NBMA pair)."""
    lines = ["Crypto session current status", ""]
    if detail:
        lines += [*SESSION_CODES, ""]
    for peer in peers:
        lines += _session(peer, detail=detail, now=now)
        lines.append("")
    return join(lines)


def _session(peer: peer_pb2.Peer, *, detail: bool, now: float) -> list[str]:
    ikes = list(peer.crypto.ike_sas)
    lines = [f"Interface: {peer.interface}"]
    profile = next((ike.connection for ike in ikes if ike.connection), "")
    if profile:
        lines.append(f"Profile: {profile}")
    established = [epoch(i.established_at) for i in ikes if i.HasField("established_at")]
    if detail and established:
        lines.append(f"Uptime: {cisco_age(now - min(established))}")
    lines.append(f"Session status: {names.session_status(peer.crypto.status)}")
    peer_line = f"Peer: {peer.key.remote_nbma} port {_remote_port(peer)}"
    if detail:
        lines += [
            f"{peer_line} fvrf: (none) ivrf: (none)",
            f"      Phase1_id: {phase1_id(peer)}",
            "      Desc: (none)",
        ]
    else:
        lines.append(peer_line)
    for ike in ikes:
        lines += [f"  Session ID: {ike.unique_id}", f"  {ike_sa_line(ike)}"]
        if detail:
            lines.append(
                f"          Capabilities:{capabilities(ike)} connid:{ike.unique_id}"
                f" lifetime:{ike_lifetime(ike, now)}"
            )
    lines += [
        f"  {flow_line(peer)}",
        f"        Active SAs: {2 * peer.crypto.protecting_child_sas}, origin: crypto map",
    ]
    if detail:
        life = session_life(peer, now)
        lines += [
            f"        Inbound:  #pkts dec'ed {peer.crypto.inbound.packets} drop 0"
            f" life (KB/Sec) {life}",
            f"        Outbound: #pkts enc'ed {peer.crypto.outbound.packets} drop 0"
            f" life (KB/Sec) {life}",
        ]
    return lines


# --- show crypto ipsec sa ------------------------------------------------------------------

_PROTOCOLS = {"icmp": 1, "tcp": 6, "udp": 17, "gre": 47, "esp": 50, "ah": 51, "ipv6-icmp": 58}
_MODES = {
    ipsec_pb2.IPSEC_MODE_TRANSPORT: "Transport",
    ipsec_pb2.IPSEC_MODE_TUNNEL: "Tunnel",
    ipsec_pb2.IPSEC_MODE_BEET: "BEET",
}
_ERROR_LINES = (
    "#pkts no sa (send) 0, #pkts invalid sa (rcv) 0",
    "#pkts encaps failed (send) 0, #pkts decaps failed (rcv) 0",
    "#pkts invalid prot (recv) 0, #pkts verify failed: 0",
    "#pkts invalid identity (recv) 0, #pkts invalid len (rcv) 0",
    "#pkts replay rollover (send): 0, #pkts replay rollover (rcv) 0",
    "##pkts replay failed (rcv): 0",
    "#pkts tagged (send): 0, #pkts untagged (rcv): 0",
    "#pkts not tagged (send): 0, #pkts not untagged (rcv): 0",
    "#pkts internal err (send): 0, #pkts internal err (recv) 0",
)


def ident(selector: str) -> str:
    """A charon traffic selector as an IOS ident: ``198.51.100.1/32[gre]`` ->
    ``198.51.100.1/255.255.255.255/47/0``."""
    prefix, _, rest = selector.partition("[")
    proto_word, _, port_word = rest.rstrip("]").partition("/")
    try:
        net = ipaddress.ip_network(prefix, strict=False)
    except ValueError:  # a range ("10.0.0.1..10.0.0.9") or "dynamic": print it as is
        return selector
    proto = (
        int(proto_word)
        if proto_word.isascii() and proto_word.isdigit()
        else _PROTOCOLS.get(proto_word, 0)
    )
    port = int(port_word) if port_word.isascii() and port_word.isdigit() else 0
    return f"{net.network_address}/{net.netmask}/{proto}/{port}"


def show_crypto_ipsec_sa(
    peers: Sequence[peer_pb2.Peer],
    *,
    peer: str | None = None,
    detail: bool = False,
    now: float,
) -> str:
    """``show crypto ipsec sa [peer <NBMA>] [detail]``: one block per peer and flow."""
    lines: list[str] = []
    for p in peers:
        if peer is not None and p.key.remote_nbma != peer:
            continue
        for selectors, children in _flows(p):
            lines += _flow_block(p, selectors, children, detail=detail, now=now)
    return join(lines)


def _flows(
    peer: peer_pb2.Peer,
) -> list[tuple[tuple[str, ...], list[tuple[ipsec_pb2.IkeSa, ipsec_pb2.ChildSa]]]]:
    """The peer's CHILD_SAs grouped by (local, remote) selector, GRE's flow first."""
    gre = tuple(
        f"{a}/{128 if ':' in a else 32}[gre]" for a in (peer.key.local_nbma, peer.key.remote_nbma)
    )
    flows: dict[tuple[str, ...], list[tuple[ipsec_pb2.IkeSa, ipsec_pb2.ChildSa]]] = {gre: []}
    for ike in peer.crypto.ike_sas:
        for child in ike.child_sas:
            key = gre
            if not child.protects_gre and child.local_ts and child.remote_ts:
                key = (child.local_ts[0], child.remote_ts[0])
            flows.setdefault(key, []).append((ike, child))
    return list(flows.items())


def _flow_block(
    peer: peer_pb2.Peer,
    selectors: tuple[str, ...],
    children: list[tuple[ipsec_pb2.IkeSa, ipsec_pb2.ChildSa]],
    *,
    detail: bool,
    now: float,
) -> list[str]:
    iface = peer.interface
    tag = f"{iface}-head-0"
    local = peer.key.local_nbma
    ikes = [ike for ike, _ in children] or list(peer.crypto.ike_sas)
    ike = ikes[-1] if ikes else None
    port = (ike.remote_port if ike else 0) or IKE_PORT
    encaps = sum(c.outbound.packets for _, c in children)
    decaps = sum(c.inbound.packets for _, c in children)
    live = [c for _, c in children if names.child_status(c).startswith("ACTIVE")]
    current = live[-1] if live else None
    spi_out = current.spi_out if current else 0
    pfs = current.algorithms.dh_group if current else ""
    lines = [
        f"interface: {iface}",
        f"    Crypto map tag: {tag}, local addr {local}",
        "",
        "   protected vrf: (none)",
        f"   local  ident (addr/mask/prot/port): ({ident(selectors[0])})",
        f"   remote ident (addr/mask/prot/port): ({ident(selectors[1])})",
        f"   current_peer {peer.key.remote_nbma} port {port}",
        "     PERMIT, flags={origin_is_acl,}",
        f"    #pkts encaps: {encaps}, #pkts encrypt: {encaps}, #pkts digest: {encaps}",
        f"    #pkts decaps: {decaps}, #pkts decrypt: {decaps}, #pkts verify: {decaps}",
        "    #pkts compressed: 0, #pkts decompressed: 0",
        "    #pkts not compressed: 0, #pkts compr. failed: 0",
        "    #pkts not decompressed: 0, #pkts decompress failed: 0",
    ]
    errors = _ERROR_LINES if detail else ("#send errors 0, #recv errors 0",)
    lines += [f"    {x}" for x in errors]
    lines += [
        "",
        f"     local crypto endpt.: {(ike.local_host if ike else '') or local},"
        f" remote crypto endpt.: {(ike.remote_host if ike else '') or peer.key.remote_nbma}",
        f"     current outbound spi: 0x{spi_out:X}({spi_out})",
        f"     PFS (Y/N): {'Y' if pfs else 'N'}, DH group: "
        + (f"group{names.dh_group(pfs)}" if pfs else "none"),
        "",
    ]
    for direction in ("inbound", "outbound"):
        lines.append(f"     {direction} esp sas:")
        for _, child in children:
            spi = child.spi_in if direction == "inbound" else child.spi_out
            lines += _esp_sa(child, spi, tag, detail=detail, now=now)
        lines += ["", f"     {direction} ah sas:", "", f"     {direction} pcp sas:", ""]
    return lines


def _esp_sa(child: ipsec_pb2.ChildSa, spi: int, tag: str, *, detail: bool, now: float) -> list[str]:
    settings = _MODES.get(child.mode, "Unknown") + (
        " UDP-Encaps" if child.udp_encapsulation else ""
    )
    iv = names.iv_bytes(child.algorithms)
    replay = "        replay detection support: Y"
    if detail:
        replay += f"  replay window size: {CHARON_REPLAY_WINDOW}"
    lines = [
        f"      spi: 0x{spi:X}({spi})",
        f"        transform: {names.esp_transform(child.algorithms)} ,",
        f"        in use settings ={{{settings}, }}",
        f"        conn id: {child.unique_id}, flow_id: SW:{child.unique_id},"
        f" sibling_flags 0, crypto map: {tag}",
        "        sa timing: remaining key lifetime (k/sec):"
        f" ({NO_VOLUME_LIMIT_KB}/{child_seconds_left(child, now)})",
    ]
    if iv is not None:
        lines.append(f"        IV size: {iv} bytes")
    return [*lines, replay, f"        Status: {names.child_status(child)}"]


# --- show crypto ikev2 sa ------------------------------------------------------------------


def show_crypto_ikev2_sa(peers: Sequence[peer_pb2.Peer], *, now: float) -> str:
    """``show crypto ikev2 sa``: IPv4 then IPv6 IKEv2 SAs, one table header per SA."""
    sas = [ike for p in peers for ike in p.crypto.ike_sas if ike.ike_version != 1]
    v6 = [ike for ike in sas if ":" in ike.local_host]
    v4 = [ike for ike in sas if ike not in v6]
    lines = ["IPv4 Crypto IKEv2  SA", ""]
    lines += _ikev2_rows(v4, now)
    lines += ["IPv6 Crypto IKEv2  SA", ""]
    lines += _ikev2_rows(v6, now)
    return join(lines)


def _ikev2_rows(sas: Iterable[ipsec_pb2.IkeSa], now: float) -> list[str]:
    lines: list[str] = []
    for ike in sas:
        alg = ike.algorithms
        local = f"{ike.local_host}/{ike.local_port or IKE_PORT}"
        remote = f"{ike.remote_host}/{ike.remote_port or IKE_PORT}"
        life = int(seconds(ike.lifetime)) if ike.HasField("lifetime") else 0
        active = (
            int(max(0.0, now - epoch(ike.established_at))) if ike.HasField("established_at") else 0
        )
        lines += [
            IKEV2_HEADER,
            f"{ike.unique_id:<9} {local:<21} {remote:<21} {'none/none':<20} "
            f"{names.ikev2_status(ike.state)}",
            f"      Encr: {names.ike_cipher(alg.encryption)},"
            f" keysize: {alg.encryption_key_size}, PRF: {names.ike_prf(alg.prf)},"
            f" Hash: {names.ike_hash(alg.integrity)}, DH Grp:{names.dh_group(alg.dh_group)},"
            f" Auth sign: {names.auth_class(ike.local_auth_class)},"
            f" Auth verify: {names.auth_class(ike.remote_auth_class)}",
            f"      Life/Active Time: {life}/{active} sec",
            "",
        ]
    return lines
