"""api.convert and api.state: charon's list-sa, nhrpd's JSON and the supervisor's peers as
API messages; observations folded into the store as events (pure)."""

from __future__ import annotations

import dataclasses
import json
from ipaddress import IPv4Address
from typing import Any

import pytest

from frrdmvpn.api import convert
from frrdmvpn.api import state as api_state
from frrdmvpn.api.state import Observed, StateBuilder
from frrdmvpn.api.tables import Store
from frrdmvpn.codec.vici import Message
from frrdmvpn.codec.vty import table
from frrdmvpn.core.supervisor import Role, State, SupervisedPeer
from frrdmvpn.v1 import ipsec_pb2, nhrp_pb2, peer_pb2, types_pb2
from frrdmvpn.v1 import watch_service_pb2 as wpb

pytestmark = pytest.mark.unit

HUB = "198.51.100.1"
SPOKE = "198.51.100.11"
NOW = 1_790_000_000.0  # wall clock of the first observation
MONO = 5_000.0  # the supervisor's monotonic clock then
NHRP_CACHE_JSON = (
    '{"attr":{"entriesCount":1},"table":[{"interface":"dmvpn0","type":"dynamic",'
    '"protocol":"10.0.0.2","nbma":"198.51.100.11","claimed_nbma":"198.51.100.11",'
    '"used":false,"timeout":true,"auth":false,"identity":"spoke1"}]}'
)


def list_sa(elapsed: int = 0, *, state: bytes = b"ESTABLISHED", traffic: int = 0) -> Message:
    """One ``list-sa`` event of charon as frrdmvpn.codec.vici decodes it (values are bytes,
    lists lists of bytes, sections dicts), ``elapsed`` seconds after the first look."""
    n = str
    child: dict[str, Any] = {
        "name": b"dmvpn",
        "uniqueid": b"7",
        "reqid": b"1",
        "state": b"INSTALLED",
        "mode": b"TRANSPORT",
        "protocol": b"ESP",
        "encap": b"no",
        "spi-in": b"c3a1b2d4",
        "spi-out": b"0badf00d",
        "encr-alg": b"AES_GCM_16",
        "encr-keysize": b"128",
        "esn": b"1",
        "bytes-in": n(1000 + traffic).encode(),
        "packets-in": n(10 + traffic).encode(),
        "use-in": b"2",
        "bytes-out": n(2000 + traffic).encode(),
        "packets-out": n(20 + traffic).encode(),
        "use-out": b"1",
        "rekey-time": n(3000 - elapsed).encode(),
        "life-time": n(3300 - elapsed).encode(),
        "install-time": n(100 + elapsed).encode(),
        "local-ts": [HUB.encode() + b"/32[gre]"],
        "remote-ts": [SPOKE.encode() + b"/32[gre]"],
    }
    ike: dict[str, Any] = {
        "uniqueid": b"3",
        "version": b"2",
        "state": state,
        "local-host": HUB.encode(),
        "local-port": b"500",
        "local-id": HUB.encode(),
        "remote-host": SPOKE.encode(),
        "remote-port": b"4500",
        "remote-id": b"spoke1",
        "initiator-spi": b"8a3f2c1d00e4b5a6",
        "responder-spi": b"1122334455667788",
        "nat-remote": b"yes",
        "encr-alg": b"AES_GCM_16",
        "encr-keysize": b"128",
        "prf-alg": b"PRF_HMAC_SHA2_256",
        "dh-group": b"CURVE_25519",
        "rekey-time": n(13000 - elapsed).encode(),
        "child-sas": {"dmvpn-7": child},
    }
    if state == b"ESTABLISHED":
        ike["established"] = n(100 + elapsed).encode()
    return {"dmvpn": ike}


def sup_peer(state: State = State.UP, **kw: Any) -> SupervisedPeer:
    values: dict[str, Any] = {
        "since": MONO - 60,
        "reason": "NHRP binding and SA up",
        "transitions": 4,
        "initiations": 0,
    }
    values.update(kw)
    return SupervisedPeer(IPv4Address(HUB), IPv4Address(SPOKE), Role.DYNAMIC, state, **values)


def observed(elapsed: int = 0, *, peer: SupervisedPeer | None = None, **sa: Any) -> Observed:
    return Observed(
        peers=(peer or sup_peer(),),
        sas=tuple(convert.sa_records([list_sa(elapsed, **sa)])),
        cache=tuple(table(json.loads(NHRP_CACHE_JSON))),
        nhs=(),
        now=NOW + elapsed,
        wall_offset=NOW - MONO,
    )


def seconds(ts: Any) -> float:
    return float(ts.ToNanoseconds()) / 1e9


def test_list_sa_to_ike_sa_and_child_sa() -> None:
    (rec,) = convert.sa_records([list_sa()])
    assert (rec.name, rec.uid, rec.local, rec.remote) == ("dmvpn", 3, HUB, SPOKE)
    ike = convert.ike_sa(rec, convert.SaClock(), NOW)
    assert ike.unique_id == 3
    assert ike.connection == "dmvpn"
    assert ike.ike_version == 2
    assert ike.state == ipsec_pb2.IKE_SA_STATE_ESTABLISHED
    assert ike.charon_state == "ESTABLISHED"
    assert (ike.local_host, ike.local_port, ike.local_id) == (HUB, 500, HUB)
    assert (ike.remote_host, ike.remote_port, ike.remote_id) == (SPOKE, 4500, "spoke1")
    assert ike.initiator_spi == 0x8A3F2C1D00E4B5A6
    assert ike.responder_spi == 0x1122334455667788
    assert not ike.initiator
    assert (ike.nat_local, ike.nat_remote) == (False, True)
    assert ike.algorithms.encryption == "AES_GCM_16"
    assert ike.algorithms.encryption_key_size == 128
    assert ike.algorithms.prf == "PRF_HMAC_SHA2_256"
    assert ike.algorithms.dh_group == "CURVE_25519"
    assert seconds(ike.established_at) == NOW - 100
    assert seconds(ike.rekey_at) == NOW + 13000
    assert not ike.HasField("reauth_at")
    (child,) = ike.child_sas
    assert (child.unique_id, child.ike_unique_id, child.name, child.reqid) == (7, 3, "dmvpn", 1)
    assert child.state == ipsec_pb2.CHILD_SA_STATE_INSTALLED
    assert child.mode == ipsec_pb2.IPSEC_MODE_TRANSPORT
    assert child.protocol == ipsec_pb2.IPSEC_PROTOCOL_ESP
    assert not child.udp_encapsulation
    assert (child.spi_in, child.spi_out) == (0xC3A1B2D4, 0x0BADF00D)
    assert list(child.local_ts) == [f"{HUB}/32[gre]"]
    assert list(child.remote_ts) == [f"{SPOKE}/32[gre]"]
    assert child.protects_gre
    assert child.algorithms.esn
    assert seconds(child.installed_at) == NOW - 100
    assert seconds(child.rekey_at) == NOW + 3000
    assert seconds(child.expires_at) == NOW + 3300
    # no traffic counters unless asked
    assert not child.HasField("inbound")
    assert not child.HasField("last_inbound_at")
    counted = convert.ike_sa(rec, convert.SaClock(), NOW, counters=True).child_sas[0]
    assert (counted.inbound.bytes, counted.inbound.packets) == (1000, 10)
    assert (counted.outbound.bytes, counted.outbound.packets) == (2000, 20)
    assert seconds(counted.last_inbound_at) == NOW - 2


def test_malformed_list_sa_values_do_not_raise() -> None:
    msg = list_sa()
    ike = msg["dmvpn"]
    assert isinstance(ike, dict)
    ike["uniqueid"] = [b"not", b"a", b"value"]
    ike["state"] = b"\xff\xfe"
    ike["local-port"] = b"port"
    msg["garbage"] = b"not a section"
    (rec,) = convert.sa_records([msg])
    sa = convert.ike_sa(rec, convert.SaClock(), NOW)
    assert (sa.unique_id, sa.state, sa.local_port) == (0, 0, 0)


def test_nhrpd_cache_json_to_entry() -> None:
    (e,) = table(json.loads(NHRP_CACHE_JSON))
    entry = convert.cache_entry(e, types_pb2.PEER_STATE_UP)
    assert entry == nhrp_pb2.NhrpCacheEntry(
        interface="Tunnel0",
        type=nhrp_pb2.NHRP_CACHE_TYPE_DYNAMIC,
        protocol_address="10.0.0.2",
        prefix_length=32,
        nbma_address=SPOKE,
        claimed_nbma_address=SPOKE,
        identity="spoke1",
        used=False,
        expiry_timer_armed=True,
        authorizing=False,
        peer_state=types_pb2.PEER_STATE_UP,
    )
    no_identity = convert.cache_entry({**e, "identity": "-"}, types_pb2.PEER_STATE_UNSPECIFIED)
    assert no_identity.identity == ""


def test_nhs_entry_state_follows_the_peer() -> None:
    e = {"interface": "dmvpn0", "fqdn": HUB, "nbma": HUB, "protocol": "10.0.0.1"}
    up = convert.nhs_entry(e, types_pb2.PEER_STATE_UP)
    assert (up.state, up.reachable, up.dynamic) == (nhrp_pb2.NHS_STATE_RESPONDING, True, False)
    assert (up.nbma_address, up.protocol_address, up.configured_nbma) == (HUB, "10.0.0.1", HUB)
    ike = convert.nhs_entry(e, types_pb2.PEER_STATE_IKE)
    assert ike.state == nhrp_pb2.NHS_STATE_REGISTERING
    dynamic = convert.nhs_entry({**e, "fqdn": "dynamic", "nbma": "-"}, types_pb2.PEER_STATE_DOWN)
    assert dynamic.dynamic
    assert dynamic.nbma_address == ""
    assert dynamic.state == nhrp_pb2.NHS_STATE_WAITING


def test_observation_to_peer_sa_and_cache_events() -> None:
    store = Store(clock=lambda: NOW)
    events = StateBuilder(store).update(observed())
    kinds = [(e.WhichOneof("event"), getattr(e, str(e.WhichOneof("event"))).change) for e in events]
    # the facts first, then the peer they explain
    assert kinds == [
        ("ipsec_sa", wpb.CHANGE_TYPE_ADDED),
        ("nhrp_cache", wpb.CHANGE_TYPE_ADDED),
        ("peer", wpb.CHANGE_TYPE_ADDED),
    ]
    sa = events[0].ipsec_sa
    assert (sa.peer.local_nbma, sa.peer.remote_nbma) == (HUB, SPOKE)
    assert sa.ike_sa.unique_id == 3
    assert sa.reason == "ESTABLISHED"
    assert events[1].nhrp_cache.entry.peer_state == types_pb2.PEER_STATE_UP
    p = events[2].peer.peer
    assert (p.key.local_nbma, p.key.remote_nbma) == (HUB, SPOKE)
    assert (p.interface, p.tunnel_address) == ("Tunnel0", "10.0.0.2")
    assert p.role == peer_pb2.PEER_ROLE_DYNAMIC
    assert p.state == types_pb2.PEER_STATE_UP
    assert p.state_reason == "NHRP binding and SA up"
    assert seconds(p.state_since) == NOW - 60
    assert p.identity == "spoke1"
    assert p.natted
    assert p.crypto.status == ipsec_pb2.CRYPTO_SESSION_STATUS_UP_ACTIVE
    assert p.crypto.protecting_child_sas == 1
    assert [i.unique_id for i in p.crypto.ike_sas] == [3]
    assert [e.protocol_address for e in p.nhrp_entries] == ["10.0.0.2"]
    assert p.counters.transitions == 4
    assert not p.crypto.HasField("inbound")  # no counters in the watched message
    assert store.items(wpb.EVENT_KIND_PEER) == [p]


def test_a_second_later_nothing_changed() -> None:
    """Relative times (established, rekey, lifetime, use) and traffic move; no event."""
    builder = StateBuilder(Store())
    builder.update(observed(0))
    for elapsed in (1, 2, 7):
        assert builder.update(observed(elapsed, traffic=elapsed * 1500)) == []


def test_rounding_of_relative_times_is_stable() -> None:
    """An observation at x.5 s rounds once; the next one must not land on the other side."""
    builder = StateBuilder(Store())
    base = observed(0)
    builder.update(dataclasses.replace(base, now=NOW + 0.5))
    assert builder.update(dataclasses.replace(observed(1), now=NOW + 1.49)) == []


def test_established_time_appears_when_the_sa_comes_up() -> None:
    store = Store()
    builder = StateBuilder(store)
    builder.update(observed(0, state=b"CONNECTING", peer=sup_peer(State.IKE)))
    events = builder.update(observed(3))
    sa = next(e.ipsec_sa for e in events if e.WhichOneof("event") == "ipsec_sa")
    assert sa.change == wpb.CHANGE_TYPE_UPDATED
    assert sa.ike_sa.state == ipsec_pb2.IKE_SA_STATE_ESTABLISHED
    assert seconds(sa.ike_sa.established_at) == NOW + 3 - 103
    peer = next(e.peer for e in events if e.WhichOneof("event") == "peer")
    assert (peer.transition.from_state, peer.transition.to_state) == (
        types_pb2.PEER_STATE_IKE,
        types_pb2.PEER_STATE_UP,
    )
    assert builder.update(observed(4)) == []


def test_traffic_counters_only_in_the_full_view() -> None:
    store = Store()
    builder = StateBuilder(store)
    builder.update(observed(0, traffic=0))
    builder.update(observed(1, traffic=500))
    (basic,) = store.items(wpb.EVENT_KIND_PEER)
    assert isinstance(basic, peer_pb2.Peer)
    assert basic.crypto.inbound.bytes == 0
    assert basic.crypto.ike_sas[0].child_sas[0].inbound.bytes == 0
    full = builder.full_peers()[(HUB, SPOKE)]
    assert full.crypto.inbound.bytes == 1500
    assert full.crypto.outbound.packets == 520
    assert full.crypto.ike_sas[0].child_sas[0].inbound.bytes == 1500
    # everything else is the same message
    full.crypto.ClearField("inbound")
    full.crypto.ClearField("outbound")
    for child in full.crypto.ike_sas[0].child_sas:
        for name in ("inbound", "outbound", "last_inbound_at", "last_outbound_at"):
            child.ClearField(name)
    assert full == basic


def test_a_wrapped_last_use_is_left_unset_not_an_error() -> None:
    # Seen in the lab: right after an SA was installed charon listed a use-out of
    # 2**64 - 1795869725 seconds; the full peer view (ListPeers) then failed with INTERNAL.
    msg = list_sa()
    ike = msg["dmvpn"]
    assert isinstance(ike, dict)
    children = ike["child-sas"]
    assert isinstance(children, dict)
    child = children["dmvpn-7"]
    assert isinstance(child, dict)
    child["use-out"] = str(2**64 - 1_795_869_725).encode()
    child["use-in"] = b"18446744073709551615"
    (rec,) = convert.sa_records([msg])
    sa = convert.ike_sa(rec, convert.SaClock(), NOW, counters=True)
    assert not sa.child_sas[0].HasField("last_outbound_at")
    assert not sa.child_sas[0].HasField("last_inbound_at")
    assert sa.child_sas[0].outbound.bytes == 2000
    normal = convert.ike_sa(convert.sa_records([list_sa()])[0], convert.SaClock(), NOW, True)
    assert seconds(normal.child_sas[0].last_outbound_at) == NOW - 1


def test_sa_gone_and_peer_down() -> None:
    store = Store()
    builder = StateBuilder(store)
    builder.update(observed(0))
    down = sup_peer(State.DOWN, since=MONO + 5, reason="no IKE_SA", transitions=5)
    events = builder.update(dataclasses.replace(observed(5, peer=down), sas=(), cache=()))
    got = [(e.WhichOneof("event"), getattr(e, str(e.WhichOneof("event"))).change) for e in events]
    assert got == [
        ("ipsec_sa", wpb.CHANGE_TYPE_REMOVED),
        ("nhrp_cache", wpb.CHANGE_TYPE_REMOVED),
        ("peer", wpb.CHANGE_TYPE_UPDATED),
    ]
    t = events[-1].peer.transition
    assert (t.from_state, t.to_state, t.reason) == (
        types_pb2.PEER_STATE_UP,
        types_pb2.PEER_STATE_DOWN,
        "no IKE_SA",
    )
    assert seconds(t.at) == NOW + 5
    assert events[-1].peer.peer.crypto.status == ipsec_pb2.CRYPTO_SESSION_STATUS_DOWN
    assert builder.clock.times == {}  # forgotten with their SAs


def test_filters_are_checked_and_canonical() -> None:
    f = peer_pb2.PeerFilter(remote_nbma_addresses=["2001:DB8::1"], tunnel_addresses=["10.0.0.2"])
    assert list(api_state.normalized_filter(f).remote_nbma_addresses) == ["2001:db8::1"]
    for bad in (
        peer_pb2.PeerFilter(remote_nbma_addresses=["10.0.0.300"]),
        peer_pb2.PeerFilter(tunnel_addresses=["x" * 10_000]),
        peer_pb2.PeerFilter(states=[types_pb2.PEER_STATE_UNSPECIFIED]),
        peer_pb2.PeerFilter(states=[77]),  # type: ignore[list-item]
        peer_pb2.PeerFilter(roles=[9]),  # type: ignore[list-item]
        peer_pb2.PeerFilter(
            remote_nbma_addresses=[f"10.0.{i // 256}.{i % 256}" for i in range(1001)]
        ),
    ):
        with pytest.raises(
            ValueError, match=r"^(remote_nbma_addresses|tunnel_addresses|states|roles): "
        ) as info:
            api_state.normalized_filter(bad)
        assert len(str(info.value)) < 200


def test_watch_filter_applies_to_every_event_about_a_peer() -> None:
    store = Store()
    builder = StateBuilder(store)
    events = builder.update(observed(0))
    lookup = api_state.PeerLookup(store)
    mine = peer_pb2.PeerFilter(identity="spoke1", states=[types_pb2.PEER_STATE_UP])
    other = peer_pb2.PeerFilter(remote_nbma_addresses=["198.51.100.99"])
    assert all(api_state.event_matches(e, mine, lookup) for e in events)
    assert not any(api_state.event_matches(e, other, lookup) for e in events)
    guard = wpb.WatchResponse(guard=wpb.GuardEvent())
    assert api_state.event_matches(guard, other, lookup)  # not about a peer


def test_guard_counters_by_direction() -> None:
    status = api_state.guard_status(
        True,
        {"gre_in_cleartext": (3, 300), "gre_out_cleartext": (1, 100), "xfrm_plain": (9, 9)},
        {"counts": {"in": 3, "out": 1}},
        {"XfrmInNoPols": 2},
        0.0,
    )
    c = status.counters
    assert (c.dropped_in.packets, c.dropped_in.bytes) == (3, 300)
    assert (c.dropped_out.packets, c.dropped_out.bytes) == (1, 100)
    assert (c.logged_in, c.logged_out) == (3, 1)
    assert dict(c.xfrm_stats) == {"XfrmInNoPols": 2}


def _mutations() -> list[tuple[str, str]]:
    ike: Any = list_sa()["dmvpn"]
    child = next(iter(ike["child-sas"].values()))
    # an IKE_SA's unique id is its key in the table, not part of its source
    keys = [("ike", k) for k in ike if k not in ("child-sas", "uniqueid")]
    return [*keys, *(("child", k) for k in child), ("ike", "reauth-time"), ("ike", "nat-local")]


@pytest.mark.parametrize(("where", "key"), _mutations())
def test_a_source_changes_whenever_the_message_does(where: str, key: str) -> None:
    """The SA table compares sources, not messages: any key of charon's listing either
    is in the source, or changing it leaves the watched message as it is."""
    clock = convert.SaClock()
    (rec,) = convert.sa_records([list_sa()])
    before = (convert.sa_source(rec, clock, NOW), convert.ipsec_event(rec, clock, NOW))
    for value in (b"yes", b"1", b"1234", b"TUNNEL", b"AH", b"CONNECTING", [b"10.9.9.9/32"]):
        changed = list_sa()
        section: Any = changed["dmvpn"]
        if where == "child":
            section = next(iter(section["child-sas"].values()))
        section[key] = value
        (rec,) = convert.sa_records([changed])
        after = (convert.sa_source(rec, clock, NOW), convert.ipsec_event(rec, clock, NOW))
        if key in convert._VOLATILE and key not in ("established", "reauth-time"):
            assert before[0] == after[0], f"{key} changes by itself: not in the source"
        assert before[0] != after[0] or before[1] == after[1], f"{where} {key}={value!r}"


def test_a_listing_held_over_is_not_read_again_and_a_new_one_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The supervisor passes its listing again while charon reports no change: the same
    messages cost no reading; a new listing is read, and what changed in it is announced."""
    builder = StateBuilder(Store())
    held = observed(0)
    builder.update(held)
    read: list[int] = []
    real = convert.sa_source

    def counting(rec: convert.SaRecord, clock: convert.SaClock, now: float) -> object:
        read.append(rec.uid)
        return real(rec, clock, now)

    monkeypatch.setattr(convert, "sa_source", counting)
    assert builder.update(dataclasses.replace(held, now=NOW + 30)) == []
    assert read == []
    events = builder.update(observed(31, state=b"REKEYING"))
    assert read == [3]
    (sa,) = [e.ipsec_sa for e in events if e.WhichOneof("event") == "ipsec_sa"]
    assert sa.ike_sa.state == ipsec_pb2.IKE_SA_STATE_REKEYING


def test_nhrpd_answer_held_over_is_skipped_until_a_peer_state_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """nhrpd answered the same text: the same entries are passed again and skipped; an
    entry still shows its peer's state when only that changed."""
    builder = StateBuilder(Store())
    held = observed(0)
    builder.update(held)
    folded: list[int] = []
    real = builder._cache

    def counting(cache: Any, states: Any) -> Any:
        folded.append(len(cache))
        return real(cache, states)

    monkeypatch.setattr(builder, "_cache", counting)
    assert builder.update(dataclasses.replace(held, now=NOW + 10)) == []
    assert folded == []
    down = dataclasses.replace(held, peers=(sup_peer(State.IKE),), now=NOW + 20)
    events = builder.update(down)
    assert folded == [1]
    (entry,) = [e.nhrp_cache for e in events if e.WhichOneof("event") == "nhrp_cache"]
    assert entry.entry.peer_state == types_pb2.PEER_STATE_IKE
