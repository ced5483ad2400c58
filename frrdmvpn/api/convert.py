"""What charon, nhrpd and the supervisor report, as API messages. Pure: no I/O.

charon gives relative times (seconds since established, until rekey); :class:`SaClock`
turns them into absolute ones once per SA, so a message stays equal from one observation to
the next and the Watch stream carries changes, not clock ticks. Traffic counters are left
out of the watched messages for the same reason (``PEER_VIEW_FULL`` adds them).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from frrdmvpn.codec.vici import Message, ViciWireError, text, texts
from frrdmvpn.codec.vty import table
from frrdmvpn.config.model import tunnel_name
from frrdmvpn.core.supervisor import Role, State, SupervisedPeer
from frrdmvpn.v1 import ipsec_pb2, nhrp_pb2, ospf_pb2, peer_pb2, types_pb2
from frrdmvpn.v1 import watch_service_pb2 as wpb

# Keys of charon's list-sa that change by themselves (clocks, counters).
_VOLATILE = frozenset(
    {
        "established",
        "rekey-time",
        "reauth-time",
        "bytes-in",
        "bytes-out",
        "packets-in",
        "packets-out",
        "use-in",
        "use-out",
        "install-time",
        "life-time",
        "child-sas",
    }
)

PEER_STATES = {
    State.DOWN: types_pb2.PEER_STATE_DOWN,
    State.IKE: types_pb2.PEER_STATE_IKE,
    State.IPSEC: types_pb2.PEER_STATE_IPSEC,
    State.NHRP: types_pb2.PEER_STATE_NHRP,
    State.UP: types_pb2.PEER_STATE_UP,
}
CACHE_TYPES = {
    "invalid": nhrp_pb2.NHRP_CACHE_TYPE_INVALID,
    "incomplete": nhrp_pb2.NHRP_CACHE_TYPE_INCOMPLETE,
    "negative": nhrp_pb2.NHRP_CACHE_TYPE_NEGATIVE,
    "cached": nhrp_pb2.NHRP_CACHE_TYPE_CACHED,
    "dynamic": nhrp_pb2.NHRP_CACHE_TYPE_DYNAMIC,
    "nhs": nhrp_pb2.NHRP_CACHE_TYPE_NHS,
    "static": nhrp_pb2.NHRP_CACHE_TYPE_STATIC,
    "local": nhrp_pb2.NHRP_CACHE_TYPE_LOCAL,
}
# charon's words (ESTABLISHED, INSTALLED, TRANSPORT, ESP...) -> the enums
_IKE_STATES = {n.removeprefix("IKE_SA_STATE_"): v for n, v in ipsec_pb2.IkeSaState.items()}
_CHILD_STATES = {n.removeprefix("CHILD_SA_STATE_"): v for n, v in ipsec_pb2.ChildSaState.items()}
_MODES = {n.removeprefix("IPSEC_MODE_"): v for n, v in ipsec_pb2.IpsecMode.items()}
_PROTOCOLS = {n.removeprefix("IPSEC_PROTOCOL_"): v for n, v in ipsec_pb2.IpsecProtocol.items()}
PeerStateValue: TypeAlias = types_pb2.PeerState.ValueType


# What the messages of an IKE_SA and a CHILD_SA are made of, but times and counters (the
# SA's name, hosts and unique ids are in its record). A source is these values as charon
# gave them: one tuple per SA, compared, not hashed (test_api_convert checks that a change
# of any other key leaves the messages as they are).
_IKE_KEYS = (
    "version",
    "state",
    "local-port",
    "local-id",
    "remote-port",
    "remote-id",
    "initiator",
    "initiator-spi",
    "responder-spi",
    "nat-local",
    "nat-remote",
    "encr-alg",
    "encr-keysize",
    "integ-alg",
    "prf-alg",
    "dh-group",
)
_CHILD_KEYS = (
    "uniqueid",
    "name",
    "reqid",
    "state",
    "mode",
    "protocol",
    "encap",
    "spi-in",
    "spi-out",
    "local-ts",
    "remote-ts",
    "encr-alg",
    "encr-keysize",
    "integ-alg",
    "dh-group",
    "esn",
)


def _int(value: Any, base: int = 10) -> int:
    try:
        return int(text(value, "0"), base)
    except (ViciWireError, ValueError):
        return 0


def _str(value: Any) -> str:
    try:
        return text(value, "")
    except ViciWireError:
        return ""


# charon's relative times: seconds since (-1) or until (+1) now
_RELATIVE = (
    ("established", -1),
    ("install-time", -1),
    ("rekey-time", 1),
    ("reauth-time", 1),
    ("life-time", 1),
)


@dataclass
class SaClock:
    """Absolute times of each SA, fixed when the SA is first seen."""

    times: dict[tuple[str, int], dict[str, float]] = field(default_factory=dict)

    def of(self, kind: str, uid: int, sa: Mapping[str, Any], now: float) -> dict[str, float]:
        """The SA's absolute times; a time charon starts reporting later (``established``
        once a CONNECTING SA is up) is fixed when it first appears."""
        t = self.times.setdefault((kind, uid), {})
        for name, sign in _RELATIVE:
            if name not in t and name in sa:
                t[name] = float(round(now + sign * _int(sa[name])))
        return t

    def keep_only(self, seen: Iterable[tuple[str, int]]) -> None:
        alive = set(seen)
        for key in [k for k in self.times if k not in alive]:
            del self.times[key]


@dataclass(frozen=True)
class SaRecord:
    """One IKE_SA of charon's listing, with its children, for one observation."""

    name: str
    ike: Mapping[str, Any]
    uid: int
    local: str
    remote: str

    @property
    def children(self) -> list[Mapping[str, Any]]:
        kids = self.ike.get("child-sas")
        return [c for c in kids.values() if isinstance(c, dict)] if isinstance(kids, dict) else []


def sa_records(messages: Iterable[Message]) -> list[SaRecord]:
    """charon's ``list-sa`` events as records (malformed entries are skipped)."""
    out = []
    for msg in messages:
        for name, ike in msg.items():
            if isinstance(ike, dict):
                out.append(
                    SaRecord(
                        name,
                        ike,
                        _int(ike.get("uniqueid")),
                        _str(ike.get("local-host")),
                        _str(ike.get("remote-host")),
                    )
                )
    return out


_TIMESTAMP_MAX = 253_402_300_799  # 9999-12-31T23:59:59Z, the end of protobuf's Timestamp


def _stamp(target: Any, at: float | None) -> None:
    """Set ``target`` to ``at`` (Unix seconds). A time charon computed from a wrapped
    unsigned clock (an SA not used yet reports ``use-out`` near 2**64) stays unset."""
    if at and 0 < at <= _TIMESTAMP_MAX:
        target.FromNanoseconds(int(at * 1e9))


def ike_sa(rec: SaRecord, clock: SaClock, now: float, counters: bool = False) -> ipsec_pb2.IkeSa:
    """One IKE_SA with its CHILD_SAs."""
    ike = rec.ike
    state = _str(ike.get("state"))
    msg = ipsec_pb2.IkeSa(
        unique_id=rec.uid,
        connection=rec.name,
        ike_version=_int(ike.get("version")),
        state=_IKE_STATES.get(state, ipsec_pb2.IKE_SA_STATE_UNSPECIFIED),
        charon_state=state,
        local_host=rec.local,
        local_port=_int(ike.get("local-port")),
        local_id=_str(ike.get("local-id")),
        remote_host=rec.remote,
        remote_port=_int(ike.get("remote-port")),
        remote_id=_str(ike.get("remote-id")),
        initiator=_str(ike.get("initiator")) == "yes",
        initiator_spi=_int(ike.get("initiator-spi"), 16),
        responder_spi=_int(ike.get("responder-spi"), 16),
        nat_local=_str(ike.get("nat-local")) == "yes",
        nat_remote=_str(ike.get("nat-remote")) == "yes",
    )
    alg = msg.algorithms
    alg.encryption, alg.encryption_key_size = (
        _str(ike.get("encr-alg")),
        _int(ike.get("encr-keysize")),
    )
    alg.integrity, alg.prf, alg.dh_group = (
        _str(ike.get("integ-alg")),
        _str(ike.get("prf-alg")),
        _str(ike.get("dh-group")),
    )
    times = clock.of("ike", rec.uid, ike, now)
    _stamp(msg.established_at, times.get("established"))
    _stamp(msg.rekey_at, times.get("rekey-time"))
    _stamp(msg.reauth_at, times.get("reauth-time"))
    for child in rec.children:
        msg.child_sas.append(child_sa(rec, child, clock, now, counters))
    return msg


def child_sa(
    rec: SaRecord, child: Mapping[str, Any], clock: SaClock, now: float, counters: bool = False
) -> ipsec_pb2.ChildSa:
    uid = _int(child.get("uniqueid"))
    state = _str(child.get("state"))
    mode, proto = _str(child.get("mode")), _str(child.get("protocol"))
    local_ts, remote_ts = _texts(child.get("local-ts")), _texts(child.get("remote-ts"))
    msg = ipsec_pb2.ChildSa(
        unique_id=uid,
        ike_unique_id=rec.uid,
        name=_str(child.get("name")),
        reqid=_int(child.get("reqid")),
        state=_CHILD_STATES.get(state, ipsec_pb2.CHILD_SA_STATE_UNSPECIFIED),
        charon_state=state,
        mode=_MODES.get(mode, ipsec_pb2.IPSEC_MODE_UNSPECIFIED),
        protocol=_PROTOCOLS.get(proto, ipsec_pb2.IPSEC_PROTOCOL_UNSPECIFIED),
        udp_encapsulation=_str(child.get("encap")) == "yes",
        spi_in=_int(child.get("spi-in"), 16),
        spi_out=_int(child.get("spi-out"), 16),
        local_ts=local_ts,
        remote_ts=remote_ts,
        protects_gre=(
            state == "INSTALLED"
            and mode == "TRANSPORT"
            and proto == "ESP"
            and any(t.endswith("[gre]") or t.endswith("[47]") for t in local_ts)
        ),
    )
    alg = msg.algorithms
    alg.encryption, alg.encryption_key_size = (
        _str(child.get("encr-alg")),
        _int(child.get("encr-keysize")),
    )
    alg.integrity, alg.dh_group = _str(child.get("integ-alg")), _str(child.get("dh-group"))
    alg.esn = _str(child.get("esn")) == "1"
    times = clock.of("child", uid, child, now)
    _stamp(msg.installed_at, times.get("install-time"))
    _stamp(msg.rekey_at, times.get("rekey-time"))
    _stamp(msg.expires_at, times.get("life-time"))
    if counters:
        msg.inbound.bytes, msg.inbound.packets = (
            _int(child.get("bytes-in")),
            _int(child.get("packets-in")),
        )
        msg.outbound.bytes = _int(child.get("bytes-out"))
        msg.outbound.packets = _int(child.get("packets-out"))
        if "use-in" in child:
            _stamp(msg.last_inbound_at, now - _int(child.get("use-in")))
        if "use-out" in child:
            _stamp(msg.last_outbound_at, now - _int(child.get("use-out")))
    return msg


def _texts(value: Any) -> list[str]:
    try:
        return texts(value)
    except ViciWireError:
        return []


def sa_source(rec: SaRecord, clock: SaClock, now: float) -> object:
    """What an IKE_SA's watched message is made of (no clocks, no counters). Its absolute
    times are fixed once known, so how many are known stands for them."""
    ike = rec.ike
    kids = tuple(
        (
            tuple(map(c.get, _CHILD_KEYS)),
            len(clock.of("child", _int(c.get("uniqueid")), c, now)),
        )
        for c in rec.children
    )
    times = len(clock.of("ike", rec.uid, ike, now))
    return (rec.name, rec.local, rec.remote, tuple(map(ike.get, _IKE_KEYS)), times, kids)


def ipsec_event(rec: SaRecord, clock: SaClock, now: float) -> wpb.IpsecSaEvent:
    """The table item of the IPSEC_SA kind: one IKE_SA and its children."""
    event = wpb.IpsecSaEvent(reason=_str(rec.ike.get("state")))
    event.peer.local_nbma, event.peer.remote_nbma = rec.local, rec.remote
    event.ike_sa.CopyFrom(ike_sa(rec, clock, now))
    return event


def crypto_session(ikes: list[ipsec_pb2.IkeSa]) -> ipsec_pb2.CryptoSession:
    """IOS's ``show crypto session`` status for one peer's IKE_SAs."""
    session = ipsec_pb2.CryptoSession()
    session.ike_sas.extend(ikes)
    established = any(i.state == ipsec_pb2.IKE_SA_STATE_ESTABLISHED for i in ikes)
    connecting = any(i.state == ipsec_pb2.IKE_SA_STATE_CONNECTING for i in ikes)
    protecting = [c for i in ikes for c in i.child_sas if c.protects_gre]
    session.protecting_child_sas = len(protecting)
    children = [c for i in ikes for c in i.child_sas]
    if any(c.HasField("inbound") or c.HasField("outbound") for c in children):  # full view
        for c in children:
            session.inbound.bytes += c.inbound.bytes
            session.inbound.packets += c.inbound.packets
            session.outbound.bytes += c.outbound.bytes
            session.outbound.packets += c.outbound.packets
    if established and protecting:
        session.status = ipsec_pb2.CRYPTO_SESSION_STATUS_UP_ACTIVE
    elif protecting:
        session.status = ipsec_pb2.CRYPTO_SESSION_STATUS_UP_NO_IKE
    elif established:
        session.status = ipsec_pb2.CRYPTO_SESSION_STATUS_UP_IDLE
    elif connecting:
        session.status = ipsec_pb2.CRYPTO_SESSION_STATUS_DOWN_NEGOTIATING
    else:
        session.status = ipsec_pb2.CRYPTO_SESSION_STATUS_DOWN
    return session


def cache_entry(e: Mapping[str, Any], peer_state: PeerStateValue) -> nhrp_pb2.NhrpCacheEntry:
    """One entry of ``show ip nhrp cache json``."""
    protocol = str(e.get("protocol", ""))
    try:
        prefix: int = ipaddress.ip_address(protocol).max_prefixlen
    except ValueError:
        prefix = 0
    identity = str(e.get("identity", ""))
    return nhrp_pb2.NhrpCacheEntry(
        interface=tunnel_name(str(e.get("interface", ""))),
        type=CACHE_TYPES.get(str(e.get("type")), nhrp_pb2.NHRP_CACHE_TYPE_UNSPECIFIED),
        protocol_address=protocol,
        prefix_length=prefix,
        nbma_address=str(e.get("nbma", "")),
        claimed_nbma_address=str(e.get("claimed_nbma", "")),
        identity="" if identity == "-" else identity,
        used=bool(e.get("used")),
        expiry_timer_armed=bool(e.get("timeout")),
        authorizing=bool(e.get("auth")),
        peer_state=peer_state,
    )


def cache_source(e: Mapping[str, Any], peer_state: PeerStateValue) -> object:
    """An nhrpd table entry's watched content (nothing in it changes by itself)."""
    return (e, peer_state)


def nhs_entry(e: Mapping[str, Any], peer_state: PeerStateValue) -> nhrp_pb2.Nhs:
    """One entry of ``show ip nhrp nhs json``; the registration state is derived from the
    peer's (nhrpd 8.4 does not export its own)."""
    nbma = str(e.get("nbma", ""))
    fqdn = str(e.get("fqdn", ""))
    protocol = str(e.get("protocol", ""))
    up = peer_state == types_pb2.PEER_STATE_UP
    registering = peer_state in (
        types_pb2.PEER_STATE_IKE,
        types_pb2.PEER_STATE_IPSEC,
        types_pb2.PEER_STATE_NHRP,
    )
    msg = nhrp_pb2.Nhs(
        interface=tunnel_name(str(e.get("interface", ""))),
        protocol_address="" if protocol == "-" else protocol,
        dynamic=fqdn == "dynamic",
        configured_nbma=fqdn,
        nbma_address="" if nbma == "-" else nbma,
        reachable=up,
        peer_state=peer_state,
        state=(
            nhrp_pb2.NHS_STATE_RESPONDING
            if up
            else nhrp_pb2.NHS_STATE_REGISTERING
            if registering
            else nhrp_pb2.NHS_STATE_WAITING
        ),
    )
    if isinstance(e.get("priority"), int):
        msg.priority = e["priority"]
    return msg


def peer_message(
    p: SupervisedPeer,
    wall_offset: float,
    ikes: list[ipsec_pb2.IkeSa],
    entries: list[nhrp_pb2.NhrpCacheEntry],
    nhs_interfaces: Mapping[str, str],
) -> peer_pb2.Peer:
    """One supervised peer. ``wall_offset`` turns the supervisor's monotonic times into
    wall-clock ones; ``nhs_interfaces`` maps an NHS's NBMA address to its tunnel."""
    remote = str(p.remote)
    role = peer_pb2.PEER_ROLE_NHS if p.role is Role.NHS else peer_pb2.PEER_ROLE_DYNAMIC
    if (
        p.role is not Role.NHS
        and entries
        and all(e.type == nhrp_pb2.NHRP_CACHE_TYPE_CACHED for e in entries)
    ):
        role = peer_pb2.PEER_ROLE_SHORTCUT
    msg = peer_pb2.Peer(
        interface=entries[0].interface if entries else nhs_interfaces.get(remote, ""),
        tunnel_address=entries[0].protocol_address if entries else "",
        role=role,
        state=PEER_STATES[p.state],
        state_reason=p.reason,
        identity=next((i.remote_id for i in ikes if i.remote_id), ""),
        natted=any(i.nat_local or i.nat_remote for i in ikes),
    )
    msg.key.local_nbma, msg.key.remote_nbma = str(p.local), remote
    if p.since:
        _stamp(msg.state_since, p.since + wall_offset)
    msg.nhrp_entries.extend(entries)
    msg.crypto.CopyFrom(crypto_session(ikes))
    msg.counters.transitions, msg.counters.initiations = p.transitions, p.initiations
    if p.role is Role.NHS:
        msg.initiation.attempt = p.attempt
        if p.next_try and p.state < State.IPSEC:
            _stamp(msg.initiation.next_at, p.next_try + wall_offset)
    return msg


def shortcuts(data: Any, interface: str = "") -> list[nhrp_pb2.Shortcut]:
    """nhrpd's ``show ip nhrp shortcut json`` as messages (of one tunnel if ``interface``)."""
    found = []
    for e in table(data):
        name = tunnel_name(str(e.get("interface", "")))
        if interface and name != interface:
            continue
        found.append(
            nhrp_pb2.Shortcut(
                interface=name,
                prefix=str(e.get("prefix", "")),
                via=str(e.get("via", "")),
                identity=str(e.get("identity", "")),
                type=CACHE_TYPES.get(str(e.get("type")), nhrp_pb2.NHRP_CACHE_TYPE_UNSPECIFIED),
            )
        )
    return found


_OSPF_STATES = {
    "Down": ospf_pb2.OSPF_NEIGHBOR_STATE_DOWN,
    "Attempt": ospf_pb2.OSPF_NEIGHBOR_STATE_ATTEMPT,
    "Init": ospf_pb2.OSPF_NEIGHBOR_STATE_INIT,
    "2-Way": ospf_pb2.OSPF_NEIGHBOR_STATE_TWO_WAY,
    "ExStart": ospf_pb2.OSPF_NEIGHBOR_STATE_EXSTART,
    "Exchange": ospf_pb2.OSPF_NEIGHBOR_STATE_EXCHANGE,
    "Loading": ospf_pb2.OSPF_NEIGHBOR_STATE_LOADING,
    "Full": ospf_pb2.OSPF_NEIGHBOR_STATE_FULL,
}
_OSPF_ROLES = {
    "DR": ospf_pb2.OSPF_NEIGHBOR_ROLE_DR,
    "Backup": ospf_pb2.OSPF_NEIGHBOR_ROLE_BDR,
    "DROther": ospf_pb2.OSPF_NEIGHBOR_ROLE_DROTHER,
    "": ospf_pb2.OSPF_NEIGHBOR_ROLE_NONE,
    "PointToPoint": ospf_pb2.OSPF_NEIGHBOR_ROLE_NONE,
}


def ospf_neighbors(data: Any, interface: str = "") -> list[ospf_pb2.OspfNeighbor]:
    """ospfd's ``show ip ospf neighbor json`` as messages (of one tunnel if ``interface``)."""
    found = []
    neighbors = data.get("neighbors", {}) if isinstance(data, dict) else {}
    for rid, entries in dict(neighbors).items():
        for e in entries if isinstance(entries, list) else []:
            iface = tunnel_name(str(e.get("ifaceName", "")).split(":")[0])
            if interface and iface != interface:
                continue
            state, _, role = str(e.get("nbrState", "")).partition("/")
            n = ospf_pb2.OspfNeighbor(
                neighbor_id=str(rid),
                priority=int(e.get("nbrPriority", 0)),
                address=str(e.get("ifaceAddress", "")),
                interface=iface,
            )
            n.state = _OSPF_STATES.get(state, ospf_pb2.OSPF_NEIGHBOR_STATE_UNSPECIFIED)
            n.role = _OSPF_ROLES.get(role, ospf_pb2.OSPF_NEIGHBOR_ROLE_UNSPECIFIED)
            if "deadTimeMsecs" in e:
                n.dead_time_remaining.FromMilliseconds(int(e["deadTimeMsecs"]))
            found.append(n)
    return found
