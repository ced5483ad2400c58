"""Fixed states of the model the shell's show renderers print, and the renderer over them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from cli.render import (
    as_json,
    show_crypto_ikev2_sa,
    show_crypto_ipsec_sa,
    show_crypto_session,
    show_dmvpn,
    show_frrdmvpn_authorization,
    show_frrdmvpn_guard,
    show_ip_nhrp,
    show_ip_nhrp_brief,
    show_ip_nhrp_nhs,
    show_ip_nhrp_traffic,
    show_ip_ospf_neighbor,
)
from frrdmvpn.v1 import (
    authorization_pb2,
    guard_pb2,
    ipsec_pb2,
    nhrp_pb2,
    node_pb2,
    ospf_pb2,
    peer_pb2,
    state_service_pb2,
    types_pb2,
)

NOW = 1_760_000_000.0  # 2025-10-09T08:53:20Z

MINUTE, HOUR, DAY = 60, 3600, 86400


def ts(offset: float) -> Timestamp:
    """The instant ``offset`` seconds from NOW."""
    return Timestamp(seconds=int(NOW + offset))


def dur(secs: float) -> Duration:
    return Duration(seconds=int(secs))


@dataclass
class State:
    """What the API would answer for one node: the inputs of every show command."""

    node: node_pb2.NodeSummary
    peers: list[peer_pb2.Peer] = field(default_factory=list)
    nhs: list[nhrp_pb2.Nhs] = field(default_factory=list)
    cache: list[nhrp_pb2.NhrpCacheEntry] = field(default_factory=list)
    traffic: state_service_pb2.GetNhrpTrafficResponse = field(
        default_factory=state_service_pb2.GetNhrpTrafficResponse
    )
    ospf: state_service_pb2.ListOspfNeighborsResponse = field(
        default_factory=state_service_pb2.ListOspfNeighborsResponse
    )
    guard: guard_pb2.GuardStatus = field(default_factory=guard_pb2.GuardStatus)
    authorization: state_service_pb2.GetAuthorizationStatusResponse = field(
        default_factory=state_service_pb2.GetAuthorizationStatusResponse
    )
    decisions: list[authorization_pb2.AuthorizationDecision] = field(default_factory=list)


def tunnel(
    address: str, source: str, kind: node_pb2.TunnelType.ValueType, **kw: object
) -> node_pb2.TunnelStatus:
    return node_pb2.TunnelStatus(
        name="Tunnel0",
        linux_name="dmvpn0",
        address=address,
        admin_up=True,
        oper_up=True,
        source_address=source,
        mtu=1400,
        tcp_mss=1360,
        protection_profile="DMVPN-PROFILE",
        nhrp_network_id=1,
        type=kind,
        **kw,  # type: ignore[arg-type]
    )


def entry(
    kind: nhrp_pb2.NhrpCacheType.ValueType,
    address: str,
    nbma: str,
    *,
    length: int = 32,
    via: str = "",
    created: float | None = None,
    expires: float | None = None,
    state: types_pb2.PeerState.ValueType = types_pb2.PEER_STATE_UP,
    **kw: object,
) -> nhrp_pb2.NhrpCacheEntry:
    e = nhrp_pb2.NhrpCacheEntry(
        interface="Tunnel0",
        type=kind,
        protocol_address=address,
        prefix_length=length,
        via=via or address,
        nbma_address=nbma,
        peer_state=state,
        **kw,  # type: ignore[arg-type]
    )
    if created is not None:
        e.created_at.CopyFrom(ts(created))
    if expires is not None:
        e.expires_at.CopyFrom(ts(expires))
    return e


def child(
    uid: int,
    local: str,
    remote: str,
    *,
    spi_in: int,
    spi_out: int,
    installed: float,
    packets: tuple[int, int],
    gcm: bool = False,
    natt: bool = False,
) -> ipsec_pb2.ChildSa:
    alg = (
        ipsec_pb2.ChildAlgorithms(encryption="AES_GCM_16", encryption_key_size=256)
        if gcm
        else ipsec_pb2.ChildAlgorithms(
            encryption="AES_CBC", encryption_key_size=256, integrity="HMAC_SHA2_256_128"
        )
    )
    return ipsec_pb2.ChildSa(
        unique_id=uid,
        name="DMVPN-PROFILE",
        reqid=1,
        state=ipsec_pb2.CHILD_SA_STATE_INSTALLED,
        charon_state="INSTALLED",
        mode=ipsec_pb2.IPSEC_MODE_TRANSPORT,
        protocol=ipsec_pb2.IPSEC_PROTOCOL_ESP,
        udp_encapsulation=natt,
        spi_in=spi_in,
        spi_out=spi_out,
        algorithms=alg,
        inbound=types_pb2.TrafficCounters(packets=packets[0], bytes=packets[0] * 120),
        outbound=types_pb2.TrafficCounters(packets=packets[1], bytes=packets[1] * 120),
        installed_at=ts(installed),
        rekey_at=ts(installed + 3240),
        expires_at=ts(installed + 3600),
        lifetime=dur(3600),
        local_ts=[f"{local}/32[gre]"],
        remote_ts=[f"{remote}/32[gre]"],
        protects_gre=True,
    )


def ike(
    uid: int,
    local: str,
    remote: str,
    *,
    remote_id: str,
    established: float | None,
    children: list[ipsec_pb2.ChildSa],
    gcm: bool = False,
    natt: bool = False,
    initiator: bool = False,
) -> ipsec_pb2.IkeSa:
    port = 4500 if natt else 500
    algorithms = ipsec_pb2.IkeAlgorithms(
        encryption="AES_GCM_16" if gcm else "AES_CBC",
        encryption_key_size=256,
        integrity="" if gcm else "HMAC_SHA2_256_128",
        prf="PRF_HMAC_SHA2_384" if gcm else "PRF_HMAC_SHA2_256",
        dh_group="ECP_384" if gcm else "CURVE_25519",
    )
    sa = ipsec_pb2.IkeSa(
        unique_id=uid,
        connection="DMVPN-PROFILE",
        ike_version=2,
        state=ipsec_pb2.IKE_SA_STATE_ESTABLISHED
        if established is not None
        else ipsec_pb2.IKE_SA_STATE_CONNECTING,
        local_host=local,
        local_port=port,
        local_id=local,
        remote_host=remote,
        remote_port=port,
        remote_id=remote_id,
        initiator=initiator,
        initiator_spi=0x1122334455667700 + uid,
        responder_spi=0x8899AABBCCDDEE00 + uid,
        nat_remote=natt,
        local_auth_class=ipsec_pb2.AUTH_CLASS_PSK,
        remote_auth_class=ipsec_pb2.AUTH_CLASS_PSK,
        lifetime=dur(86400),
        dpd_interval=dur(30),
        child_sas=children,
    )
    if established is not None:  # negotiated: algorithms known
        sa.algorithms.CopyFrom(algorithms)
        sa.established_at.CopyFrom(ts(established))
        sa.rekey_at.CopyFrom(ts(established + 80000))
    return sa


def peer(
    local: str,
    remote: str,
    tunnel_address: str,
    role: peer_pb2.PeerRole.ValueType,
    *,
    state: types_pb2.PeerState.ValueType,
    since: float | None,
    entries: list[nhrp_pb2.NhrpCacheEntry],
    ike_sas: list[ipsec_pb2.IkeSa],
    status: ipsec_pb2.CryptoSessionStatus.ValueType,
    identity: str = "",
    natted: bool = False,
) -> peer_pb2.Peer:
    children = [c for sa in ike_sas for c in sa.child_sas if c.protects_gre]
    p = peer_pb2.Peer(
        key=types_pb2.PeerKey(local_nbma=local, remote_nbma=remote),
        interface="Tunnel0",
        tunnel_address=tunnel_address,
        role=role,
        state=state,
        identity=identity,
        natted=natted,
        nhrp_entries=entries,
        crypto=ipsec_pb2.CryptoSession(
            status=status,
            ike_sas=ike_sas,
            inbound=types_pb2.TrafficCounters(
                packets=sum(c.inbound.packets for c in children),
                bytes=sum(c.inbound.bytes for c in children),
            ),
            outbound=types_pb2.TrafficCounters(
                packets=sum(c.outbound.packets for c in children),
                bytes=sum(c.outbound.bytes for c in children),
            ),
            protecting_child_sas=len(children),
        ),
    )
    if since is not None:
        p.state_since.CopyFrom(ts(since))
    return p


def counts(**kw: int) -> node_pb2.PeerStateCounts:
    return node_pb2.PeerStateCounts(total=sum(kw.values()), **kw)


HUB_NBMA = "198.51.100.1"

HUB2_NBMA = "198.51.100.2"

SPOKE1_NBMA = "198.51.100.11"

SPOKE2_NBMA = "203.0.113.12"  # behind NAT: claims 10.0.0.12


def hub_state() -> State:
    """A hub with two spokes UP: spoke1 direct, spoke2 behind NAT (NAT-T, AES-GCM)."""
    spoke1_entry = entry(
        nhrp_pb2.NHRP_CACHE_TYPE_DYNAMIC,
        "192.0.2.11",
        SPOKE1_NBMA,
        created=-10 * MINUTE,
        expires=110 * MINUTE,
        used=True,
        expiry_timer_armed=True,
        identity="spoke1.example",
    )
    spoke2_entry = entry(
        nhrp_pb2.NHRP_CACHE_TYPE_DYNAMIC,
        "192.0.2.12",
        SPOKE2_NBMA,
        created=-(DAY + 2 * HOUR + 3 * MINUTE),
        expires=95 * MINUTE,
        claimed_nbma_address="10.0.0.12",
        natted=True,
        identity="spoke2.example",
    )
    peers = [
        peer(
            HUB_NBMA,
            SPOKE1_NBMA,
            "192.0.2.11",
            peer_pb2.PEER_ROLE_DYNAMIC,
            state=types_pb2.PEER_STATE_UP,
            since=-10 * MINUTE,
            entries=[spoke1_entry],
            identity="spoke1.example",
            status=ipsec_pb2.CRYPTO_SESSION_STATUS_UP_ACTIVE,
            ike_sas=[
                ike(
                    1,
                    HUB_NBMA,
                    SPOKE1_NBMA,
                    remote_id="spoke1.example",
                    established=-10 * MINUTE - 5,
                    children=[
                        child(
                            3,
                            HUB_NBMA,
                            SPOKE1_NBMA,
                            spi_in=0xC3A1D2E4,
                            spi_out=0x0D15EA5E,
                            installed=-10 * MINUTE - 4,
                            packets=(1204, 1187),
                        )
                    ],
                )
            ],
        ),
        peer(
            HUB_NBMA,
            SPOKE2_NBMA,
            "192.0.2.12",
            peer_pb2.PEER_ROLE_DYNAMIC,
            state=types_pb2.PEER_STATE_UP,
            since=-(DAY + 2 * HOUR + 3 * MINUTE),
            entries=[spoke2_entry],
            identity="spoke2.example",
            natted=True,
            status=ipsec_pb2.CRYPTO_SESSION_STATUS_UP_ACTIVE,
            ike_sas=[
                ike(
                    2,
                    HUB_NBMA,
                    SPOKE2_NBMA,
                    remote_id="spoke2.example",
                    established=-(3 * HOUR + 7),  # rekeyed since the peer came up
                    gcm=True,
                    natt=True,
                    children=[
                        child(
                            7,
                            HUB_NBMA,
                            SPOKE2_NBMA,
                            spi_in=0xCAFE0102,
                            spi_out=0xBEEF0304,
                            installed=-40 * MINUTE,
                            packets=(88213, 90120),
                            gcm=True,
                            natt=True,
                        )
                    ],
                )
            ],
        ),
    ]
    local = entry(
        nhrp_pb2.NHRP_CACHE_TYPE_LOCAL,
        "192.0.2.1",
        HUB_NBMA,
        state=types_pb2.PEER_STATE_UNSPECIFIED,
    )
    return State(
        node=node_pb2.NodeSummary(
            hostname="hub",
            tunnels=[
                tunnel("192.0.2.1/24", HUB_NBMA, node_pb2.TUNNEL_TYPE_HUB, peers=counts(up=2))
            ],
            peers=counts(up=2),
        ),
        peers=peers,
        cache=[local, spoke1_entry, spoke2_entry],
        traffic=state_service_pb2.GetNhrpTrafficResponse(
            tunnels=[nhrp_pb2.TunnelNhrpTraffic(interface="Tunnel0", available=False)]
        ),
        ospf=state_service_pb2.ListOspfNeighborsResponse(
            ospf_available=True,
            neighbors=[
                ospf_pb2.OspfNeighbor(
                    neighbor_id=f"10.255.0.{n}",
                    priority=0,
                    state=ospf_pb2.OSPF_NEIGHBOR_STATE_FULL,
                    role=ospf_pb2.OSPF_NEIGHBOR_ROLE_NONE,
                    dead_time_remaining=dur(dead),
                    address=f"192.0.2.{n}",
                    interface="Tunnel0",
                    area="0.0.0.0",
                )
                for n, dead in ((11, 95), (12, 102))
            ],
        ),
        guard=guard_pb2.GuardStatus(
            installed=True,
            layers=[
                guard_pb2.GuardLayer(kind=kind, installed=True, checked_at=ts(-2))
                for kind in (
                    guard_pb2.GUARD_LAYER_KIND_CHARON_TRAP,
                    guard_pb2.GUARD_LAYER_KIND_XFRM_BLOCK,
                    guard_pb2.GUARD_LAYER_KIND_NFTABLES,
                )
            ],
            counters=guard_pb2.GuardCounters(
                dropped_in=types_pb2.TrafficCounters(packets=14, bytes=1484),
                dropped_out=types_pb2.TrafficCounters(packets=2, bytes=196),
                logged_in=12,
                logged_out=2,
                nhrp_in=3,
                xfrm_stats={"XfrmOutPolBlock": 2, "XfrmInTmplMismatch": 14},
                counters_since=ts(-(3 * DAY + 4 * HOUR)),
            ),
            last_offenders=[
                guard_pb2.GuardOffender(
                    at=ts(-75),
                    direction=types_pb2.DIRECTION_INBOUND,
                    source="203.0.113.66",
                    destination=HUB_NBMA,
                    summary="NHRP Registration Request 192.0.2.66 -> 192.0.2.1",
                    claimed_protocol_address="192.0.2.66",
                    claimed_nbma_address="203.0.113.66",
                ),
                guard_pb2.GuardOffender(
                    at=ts(-(5 * HOUR)),
                    direction=types_pb2.DIRECTION_OUTBOUND,
                    source=HUB_NBMA,
                    destination=SPOKE1_NBMA,
                    gre_key=42,
                    summary="GRE carrying protocol 0x0800",
                ),
            ],
            offenders_kept=16,
            log_rate_limit_per_second=10,
        ),
        authorization=state_service_pb2.GetAuthorizationStatusResponse(
            policy=authorization_pb2.AuthorizationPolicy(
                mode=authorization_pb2.AUTHORIZATION_MODE_PSK_MAP,
                tunnel_subnet="192.0.2.0/24",
                psk_map=[
                    authorization_pb2.PskMapEntry(
                        identity="spoke1.example", prefixes=["192.0.2.11/32"]
                    ),
                    authorization_pb2.PskMapEntry(
                        identity="spoke2.example",
                        prefixes=["192.0.2.12/32", "198.18.12.0/24"],
                    ),
                ],
            ),
            counters=authorization_pb2.AuthorizationCounters(
                accepted=41, denied=1, counters_since=ts(-(3 * DAY + 4 * HOUR))
            ),
            latency=authorization_pb2.AuthorizationLatency(
                p50=Duration(nanos=410_000),
                p99=Duration(nanos=1_250_000),
                max=Duration(nanos=3_020_000),
                samples=42,
            ),
            decisions_kept=256,
        ),
        decisions=[
            authorization_pb2.AuthorizationDecision(
                id=42,
                decided_at=ts(-10 * MINUTE),
                verdict=authorization_pb2.AUTHORIZATION_VERDICT_ACCEPT,
                reason="accept 192.0.2.11 via 198.51.100.11: IKE identity 'spoke1.example'"
                " may claim 192.0.2.11/32",
                peer_identity="spoke1.example",
                mode=authorization_pb2.AUTHORIZATION_MODE_PSK_MAP,
                interface="Tunnel0",
                binding_type=nhrp_pb2.NHRP_CACHE_TYPE_DYNAMIC,
                claimed_address="192.0.2.11",
                local_nbma=HUB_NBMA,
                remote_nbma=SPOKE1_NBMA,
            ),
            authorization_pb2.AuthorizationDecision(
                id=41,
                decided_at=ts(-(2 * HOUR)),
                verdict=authorization_pb2.AUTHORIZATION_VERDICT_DENY,
                reason="deny 192.0.2.11 via 203.0.113.12: IKE identity 'spoke2.example'"
                " may claim only 192.0.2.12/32, 198.18.12.0/24",
                peer_identity="spoke2.example",
                mode=authorization_pb2.AUTHORIZATION_MODE_PSK_MAP,
                interface="Tunnel0",
                binding_type=nhrp_pb2.NHRP_CACHE_TYPE_DYNAMIC,
                claimed_address="192.0.2.11",
                local_nbma=HUB_NBMA,
                remote_nbma=SPOKE2_NBMA,
            ),
        ],
    )


def spoke_state() -> State:
    """spoke1: its NHS (the hub) UP for 2w3d, a shortcut to spoke2 with a LAN route."""
    nhs_entry = entry(
        nhrp_pb2.NHRP_CACHE_TYPE_NHS,
        "192.0.2.1",
        HUB_NBMA,
        created=-(17 * DAY),
        identity="hub.example",
    )
    shortcut_host = entry(
        nhrp_pb2.NHRP_CACHE_TYPE_CACHED,
        "192.0.2.12",
        SPOKE2_NBMA,
        created=-83,
        expires=37 * MINUTE,
        used=True,
        identity="spoke2.example",
    )
    shortcut_lan = entry(
        nhrp_pb2.NHRP_CACHE_TYPE_CACHED,
        "198.18.12.0",
        SPOKE2_NBMA,
        length=24,
        via="192.0.2.12",
        created=-83,
        expires=37 * MINUTE,
        used=True,
        identity="spoke2.example",
    )
    incomplete = entry(
        nhrp_pb2.NHRP_CACHE_TYPE_INCOMPLETE,
        "192.0.2.13",
        "",
        created=-2,
        state=types_pb2.PEER_STATE_UNSPECIFIED,
    )
    peers = [
        peer(
            SPOKE1_NBMA,
            HUB_NBMA,
            "192.0.2.1",
            peer_pb2.PEER_ROLE_NHS,
            state=types_pb2.PEER_STATE_UP,
            since=-(17 * DAY + 5 * HOUR),
            entries=[nhs_entry],
            identity="hub.example",
            status=ipsec_pb2.CRYPTO_SESSION_STATUS_UP_ACTIVE,
            ike_sas=[
                ike(
                    5,
                    SPOKE1_NBMA,
                    HUB_NBMA,
                    remote_id="hub.example",
                    established=-(3 * HOUR),
                    initiator=True,
                    children=[
                        child(
                            11,
                            SPOKE1_NBMA,
                            HUB_NBMA,
                            spi_in=0x0D15EA5E,
                            spi_out=0xC3A1D2E4,
                            installed=-(50 * MINUTE),
                            packets=(5120, 5034),
                        ),
                    ],
                )
            ],
        ),
        peer(
            SPOKE1_NBMA,
            SPOKE2_NBMA,
            "192.0.2.12",
            peer_pb2.PEER_ROLE_SHORTCUT,
            state=types_pb2.PEER_STATE_UP,
            since=-83,
            entries=[shortcut_host, shortcut_lan],
            identity="spoke2.example",
            natted=True,
            status=ipsec_pb2.CRYPTO_SESSION_STATUS_UP_ACTIVE,
            ike_sas=[
                ike(
                    6,
                    SPOKE1_NBMA,
                    SPOKE2_NBMA,
                    remote_id="spoke2.example",
                    established=-90,
                    natt=True,
                    initiator=True,
                    children=[
                        child(
                            12,
                            SPOKE1_NBMA,
                            SPOKE2_NBMA,
                            spi_in=0xA1B2C3D4,
                            spi_out=0x00C0FFEE,
                            installed=-88,
                            packets=(12, 14),
                            natt=True,
                        ),
                    ],
                )
            ],
        ),
    ]
    return State(
        node=node_pb2.NodeSummary(
            hostname="spoke1",
            tunnels=[
                tunnel(
                    "192.0.2.11/24",
                    SPOKE1_NBMA,
                    node_pb2.TUNNEL_TYPE_SPOKE,
                    peers=counts(up=2),
                    nhs_count=1,
                    nhrp_shortcut=True,
                )
            ],
            peers=counts(up=2),
        ),
        peers=peers,
        nhs=[
            nhrp_pb2.Nhs(
                interface="Tunnel0",
                protocol_address="192.0.2.1",
                configured_nbma="hub.example.net",
                nbma_address=HUB_NBMA,
                multicast=True,
                state=nhrp_pb2.NHS_STATE_RESPONDING,
                state_since=ts(-(17 * DAY + 5 * HOUR)),
                reachable=True,
                peer_state=types_pb2.PEER_STATE_UP,
                counters=nhrp_pb2.NhsCounters(
                    requests_sent=1473, replies_received=1473, last_reply_at=ts(-58)
                ),
            )
        ],
        cache=[nhs_entry, shortcut_host, incomplete, shortcut_lan],
        traffic=state_service_pb2.GetNhrpTrafficResponse(
            tunnels=[
                nhrp_pb2.TunnelNhrpTraffic(
                    interface="Tunnel0",
                    available=True,
                    sent=nhrp_pb2.NhrpMessageCounters(
                        resolution_requests=4,
                        resolution_replies=3,
                        registration_requests=1473,
                        purge_replies=1,
                    ),
                    received=nhrp_pb2.NhrpMessageCounters(
                        resolution_requests=3,
                        resolution_replies=4,
                        registration_replies=1473,
                        purge_requests=1,
                        traffic_indications=2,
                    ),
                    counters_since=ts(-(17 * DAY)),
                )
            ]
        ),
        ospf=state_service_pb2.ListOspfNeighborsResponse(
            ospf_available=True,
            neighbors=[
                ospf_pb2.OspfNeighbor(
                    neighbor_id="10.255.0.1",
                    priority=255,
                    state=ospf_pb2.OSPF_NEIGHBOR_STATE_FULL,
                    role=ospf_pb2.OSPF_NEIGHBOR_ROLE_DR,
                    dead_time_remaining=dur(33),
                    address="192.0.2.1",
                    interface="Tunnel0",
                    area="0.0.0.0",
                )
            ],
        ),
        guard=guard_pb2.GuardStatus(
            installed=True,
            layers=[
                guard_pb2.GuardLayer(kind=kind, installed=True, checked_at=ts(-1))
                for kind in (
                    guard_pb2.GUARD_LAYER_KIND_CHARON_TRAP,
                    guard_pb2.GUARD_LAYER_KIND_XFRM_BLOCK,
                    guard_pb2.GUARD_LAYER_KIND_NFTABLES,
                )
            ],
            counters=guard_pb2.GuardCounters(counters_since=ts(-(17 * DAY))),
            offenders_kept=16,
            log_rate_limit_per_second=10,
        ),
        authorization=state_service_pb2.GetAuthorizationStatusResponse(
            policy=authorization_pb2.AuthorizationPolicy(
                mode=authorization_pb2.AUTHORIZATION_MODE_ANY_AUTHENTICATED,
                weak=True,
                tunnel_subnet="192.0.2.0/24",
            ),
            counters=authorization_pb2.AuthorizationCounters(
                accepted=2, weak_accepted=2, counters_since=ts(-(17 * DAY))
            ),
            latency=authorization_pb2.AuthorizationLatency(
                p50=Duration(nanos=380_000),
                p99=Duration(nanos=900_000),
                max=Duration(nanos=900_000),
                samples=2,
            ),
            decisions_kept=256,
        ),
        decisions=[
            authorization_pb2.AuthorizationDecision(
                id=2,
                decided_at=ts(-83),
                verdict=authorization_pb2.AUTHORIZATION_VERDICT_ACCEPT,
                weak=True,
                reason="accept 198.18.12.0/24 via 203.0.113.12: any authenticated peer"
                " may claim any address (weak policy)",
                peer_identity="spoke2.example",
                mode=authorization_pb2.AUTHORIZATION_MODE_ANY_AUTHENTICATED,
                interface="Tunnel0",
                binding_type=nhrp_pb2.NHRP_CACHE_TYPE_CACHED,
                claimed_address="198.18.12.0",
                local_nbma=SPOKE1_NBMA,
                remote_nbma=SPOKE2_NBMA,
            )
        ],
    )


def down_state() -> State:
    """A dual-hub spoke in trouble: NHS 1 DOWN (IKE negotiating for over a year), NHS 2
    stuck at IKE (its only CHILD_SA is tunnel mode: it does not protect GRE), a static peer
    never seen, guards not installed, OSPF stuck in INIT."""
    misconfigured = child(
        14,
        "198.51.100.13",
        HUB2_NBMA,
        spi_in=0xE1E2E3E4,
        spi_out=0xF1F2F3F4,
        installed=-44,
        packets=(0, 3),
    )
    misconfigured.mode = ipsec_pb2.IPSEC_MODE_TUNNEL
    misconfigured.protects_gre = False
    misconfigured.protection_problem = "mode 'TUNNEL', local_ts '0.0.0.0/0'"
    misconfigured.local_ts[:] = ["0.0.0.0/0"]
    misconfigured.remote_ts[:] = ["0.0.0.0/0"]
    peers = [
        peer(
            "198.51.100.13",
            HUB_NBMA,
            "192.0.2.1",
            peer_pb2.PEER_ROLE_NHS,
            state=types_pb2.PEER_STATE_DOWN,
            since=-(400 * DAY),
            entries=[],
            status=ipsec_pb2.CRYPTO_SESSION_STATUS_DOWN_NEGOTIATING,
            ike_sas=[
                ike(
                    9,
                    "198.51.100.13",
                    HUB_NBMA,
                    remote_id="",
                    established=None,
                    initiator=True,
                    children=[],
                )
            ],
        ),
        peer(
            "198.51.100.13",
            HUB2_NBMA,
            "192.0.2.2",
            peer_pb2.PEER_ROLE_NHS,
            state=types_pb2.PEER_STATE_IKE,
            since=-45,
            entries=[],
            identity="hub2.example",
            status=ipsec_pb2.CRYPTO_SESSION_STATUS_UP_ACTIVE,
            ike_sas=[
                ike(
                    10,
                    "198.51.100.13",
                    HUB2_NBMA,
                    remote_id="hub2.example",
                    established=-45,
                    initiator=True,
                    children=[misconfigured],
                )
            ],
        ),
        peer(
            "198.51.100.13",
            "198.51.100.99",
            "",
            peer_pb2.PEER_ROLE_STATIC,
            state=types_pb2.PEER_STATE_DOWN,
            since=None,
            entries=[],
            status=ipsec_pb2.CRYPTO_SESSION_STATUS_DOWN,
            ike_sas=[],
        ),
    ]
    return State(
        node=node_pb2.NodeSummary(
            hostname="spoke3",
            tunnels=[
                tunnel(
                    "192.0.2.13/24",
                    "198.51.100.13",
                    node_pb2.TUNNEL_TYPE_SPOKE,
                    peers=counts(down=2, ike=1),
                    nhs_count=2,
                )
            ],
            peers=counts(down=2, ike=1),
        ),
        peers=peers,
        nhs=[
            nhrp_pb2.Nhs(
                interface="Tunnel0",
                protocol_address="192.0.2.1",
                configured_nbma=HUB_NBMA,
                nbma_address=HUB_NBMA,
                state=nhrp_pb2.NHS_STATE_WAITING,
                state_since=ts(-(400 * DAY)),
                peer_state=types_pb2.PEER_STATE_DOWN,
            ),
            nhrp_pb2.Nhs(
                interface="Tunnel0",
                protocol_address="192.0.2.2",
                configured_nbma=HUB2_NBMA,
                nbma_address=HUB2_NBMA,
                priority=1,
                state=nhrp_pb2.NHS_STATE_REGISTERING,
                state_since=ts(-45),
                peer_state=types_pb2.PEER_STATE_IKE,
                counters=nhrp_pb2.NhsCounters(requests_sent=3, requests_failed=2),
            ),
        ],
        traffic=state_service_pb2.GetNhrpTrafficResponse(
            tunnels=[nhrp_pb2.TunnelNhrpTraffic(interface="Tunnel0", available=False)]
        ),
        ospf=state_service_pb2.ListOspfNeighborsResponse(
            ospf_available=True,
            neighbors=[
                ospf_pb2.OspfNeighbor(
                    neighbor_id="10.255.0.2",
                    priority=1,
                    state=ospf_pb2.OSPF_NEIGHBOR_STATE_INIT,
                    role=ospf_pb2.OSPF_NEIGHBOR_ROLE_DROTHER,
                    dead_time_remaining=dur(31),
                    address="192.0.2.2",
                    interface="Tunnel0",
                )
            ],
        ),
        guard=guard_pb2.GuardStatus(
            installed=False,
            layers=[
                guard_pb2.GuardLayer(
                    kind=guard_pb2.GUARD_LAYER_KIND_CHARON_TRAP, installed=True, checked_at=ts(-3)
                ),
                guard_pb2.GuardLayer(
                    kind=guard_pb2.GUARD_LAYER_KIND_XFRM_BLOCK, installed=True, checked_at=ts(-3)
                ),
                guard_pb2.GuardLayer(
                    kind=guard_pb2.GUARD_LAYER_KIND_NFTABLES,
                    installed=False,
                    problem="table inet frrdmvpn_guard missing",
                    checked_at=ts(-3),
                ),
            ],
            counters=guard_pb2.GuardCounters(counters_since=ts(-(400 * DAY))),
            offenders_kept=16,
            log_rate_limit_per_second=10,
        ),
    )


def empty_state() -> State:
    """A node that knows nothing yet: no tunnels, peers, OSPF, guards or policy."""
    return State(node=node_pb2.NodeSummary(hostname="empty"))


STATES: dict[str, Callable[[], State]] = {
    "hub": hub_state,
    "spoke": spoke_state,
    "down": down_state,
    "empty": empty_state,
}

COMMANDS: dict[str, Callable[[State], str]] = {
    "show_dmvpn": lambda s: show_dmvpn(s.node, s.peers, now=NOW),
    "show_dmvpn_detail": lambda s: show_dmvpn(s.node, s.peers, detail=True, nhs=s.nhs, now=NOW),
    "show_ip_nhrp": lambda s: show_ip_nhrp(s.cache, now=NOW),
    "show_ip_nhrp_detail": lambda s: show_ip_nhrp(s.cache, detail=True, now=NOW),
    "show_ip_nhrp_brief": lambda s: show_ip_nhrp_brief(s.cache, now=NOW),
    "show_ip_nhrp_nhs": lambda s: show_ip_nhrp_nhs(s.node, s.nhs, now=NOW),
    "show_ip_nhrp_nhs_detail": lambda s: show_ip_nhrp_nhs(s.node, s.nhs, detail=True, now=NOW),
    "show_ip_nhrp_traffic": lambda s: show_ip_nhrp_traffic(s.traffic),
    "show_crypto_session": lambda s: show_crypto_session(s.peers, now=NOW),
    "show_crypto_session_detail": lambda s: show_crypto_session(s.peers, detail=True, now=NOW),
    "show_crypto_ipsec_sa": lambda s: show_crypto_ipsec_sa(s.peers, now=NOW),
    "show_crypto_ipsec_sa_detail": lambda s: show_crypto_ipsec_sa(s.peers, detail=True, now=NOW),
    "show_crypto_ipsec_sa_peer": lambda s: show_crypto_ipsec_sa(
        s.peers, peer=s.peers[-1].key.remote_nbma if s.peers else "192.0.2.254", now=NOW
    ),
    "show_crypto_ikev2_sa": lambda s: show_crypto_ikev2_sa(s.peers, now=NOW),
    "show_ip_ospf_neighbor": lambda s: show_ip_ospf_neighbor(s.ospf),
    "show_frrdmvpn_guard": lambda s: show_frrdmvpn_guard(s.guard, now=NOW),
    "show_frrdmvpn_authorization": lambda s: show_frrdmvpn_authorization(
        s.authorization, s.decisions, now=NOW
    ),
    "show_dmvpn_json": lambda s: as_json(s.peers),
}


def render(state: str, command: str) -> str:
    return COMMANDS[command](STATES[state]())
