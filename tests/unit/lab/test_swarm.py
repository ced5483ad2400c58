"""The spoke swarm: addresses, configurations and its NHRP client (lab/swarm*.py)."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from frrdmvpn.codec.nhrp import (
    GRE_PROTO_NHRP,
    Cie,
    NhrpPacket,
    Op,
    build_gre,
    decode,
    encode,
)
from frrdmvpn.config.policy import authorization_policy
from frrdmvpn.config.validate import check
from lab import swarm as sw
from lab import swarm_agent as agent
from lab import topology as topo

pytestmark = pytest.mark.unit


def test_spokes_stay_in_the_documentation_ranges_and_clear_of_the_nodes() -> None:
    swarm = sw.spokes(sw.MAX_SPOKES)
    nodes = topo.NODES + topo.EXTRA_NODES + (topo.SWARM,)
    taken = {n.nbma.ip for n in nodes} | {n.entitled_overlay.ip for n in nodes}
    taken |= {n.overlay.ip for n in nodes}
    for s in swarm:
        assert s.nbma in topo.UNDERLAY
        assert s.overlay in topo.OVERLAY
        assert s.nbma not in taken
        assert s.overlay not in taken
        assert s.nbma != topo.UNDERLAY.broadcast_address
    assert len({s.nbma for s in swarm}) == len({s.overlay for s in swarm}) == sw.MAX_SPOKES


@pytest.mark.parametrize("count", [0, sw.MAX_SPOKES + 1])
def test_a_swarm_beyond_the_ranges_is_refused(count: int) -> None:
    with pytest.raises(ValueError, match="1 to 155 spokes"):
        sw.spokes(count)


def test_each_spoke_has_its_own_connection_and_identity() -> None:
    conf = sw.swanctl_conf(sw.spokes(3))
    for s in sw.spokes(3):
        assert f"local_addrs = {s.nbma}\n" in conf
        assert f"id = {s.nbma}\n" in conf
    assert conf.count("start_action = trap") == 3
    assert conf.count("close_action = trap") == 3
    assert conf.count("mobike = no") == 3
    assert conf.count("mode = transport") == 3
    assert conf.count(f"remote_addrs = {topo.hub().nbma.ip}") == 3
    assert conf.count("{") == conf.count("}")


def test_the_hub_admits_exactly_the_swarms_spokes() -> None:
    swarm = sw.spokes(20)
    more = tuple((s.nbma, s.overlay) for s in swarm)
    config, findings = check(topo.frrdmvpn_conf(topo.hub(), "psk", more))
    assert findings == ()
    policy = authorization_policy(config)
    assert policy is not None
    for s in swarm:
        assert policy.psk_map[str(s.nbma)] == frozenset({ipaddress.ip_network(f"{s.overlay}/32")})
    outside = sw.spokes(21)[20]
    assert str(outside.nbma) not in policy.psk_map


class FakeSocket:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[bytes, tuple[str, int]]] = []
        self.fail = fail

    def sendto(self, data: bytes, address: tuple[str, int]) -> int:
        if self.fail:
            raise PermissionError(1, "Operation not permitted")
        self.sent.append((data, address))
        return len(data)


def _state(fail: bool = False) -> tuple[agent.SpokeState, FakeSocket]:
    sock = FakeSocket(fail)
    return agent.SpokeState(sw.spokes(4)[3], sock), sock  # type: ignore[arg-type]


def _ip(src: str, dst: str, payload: bytes) -> bytes:
    return agent._ipv4(src, dst, socket.IPPROTO_GRE, payload)


def _reply(request: NhrpPacket, code: int) -> bytes:
    cie = Cie(code=code, prefix_length=32, holding_time=60)
    reply = NhrpPacket(
        op=Op.REGISTRATION_REPLY,
        hop_count=64,
        src_nbma=request.src_nbma,
        src_proto=request.src_proto,
        dst_proto=request.dst_proto,
        request_id=request.request_id,
        cies=(cie,),
    )
    return build_gre(GRE_PROTO_NHRP, topo.GRE_KEY, encode(reply))


def _sent_request(sock: FakeSocket) -> NhrpPacket:
    data, address = sock.sent[-1]
    assert address == (str(topo.hub().nbma.ip), 0)
    gre = agent._gre_from(_ip(str(topo.hub().nbma.ip), "198.51.100.103", data))
    assert gre is not None
    assert gre[1] == GRE_PROTO_NHRP
    pkt = decode(gre[2])
    assert isinstance(pkt, NhrpPacket)
    return pkt


def test_a_registration_names_the_spoke_and_a_success_registers_it() -> None:
    st, sock = _state()
    agent._send_registration(st, str(topo.hub().nbma.ip), now=10.0)
    request = _sent_request(sock)
    assert request.op == Op.REGISTRATION_REQUEST
    assert (request.src_nbma, request.src_proto) == (st.spoke.nbma, st.spoke.overlay)
    assert request.dst_proto == topo.hub().overlay.ip
    assert request.cies[0].holding_time == topo.NHRP_HOLDTIME
    assert st.due == 10.0 + agent.RETRY
    assert st.first_sent == 10.0
    hub = str(topo.hub().nbma.ip)
    agent._received(st, _ip(hub, str(st.spoke.nbma), _reply(request, 0)), now=10.5)
    assert st.registered_at == 10.5
    assert st.code == 0
    assert st.due == 10.5 + sw.REREGISTER


def test_a_refusal_a_stale_reply_or_garbage_registers_nothing() -> None:
    st, sock = _state()
    hub = str(topo.hub().nbma.ip)
    agent._send_registration(st, hub, now=1.0)
    first = _sent_request(sock)
    agent._received(st, _ip(hub, str(st.spoke.nbma), _reply(first, 4)), now=1.2)  # refused
    assert st.replies == 1
    assert st.code == 4
    assert st.registered_at is None
    agent._send_registration(st, hub, now=2.0)
    current = _sent_request(sock)
    assert current.request_id != first.request_id  # after an answer: a new request
    agent._received(st, _ip(hub, str(st.spoke.nbma), _reply(first, 0)), now=2.1)  # stale
    assert st.replies == 1
    assert st.registered_at is None
    for junk in (b"", b"\x45" + b"\0" * 30, _ip(hub, str(st.spoke.nbma), b"\0\0\x20\x01xx")):
        agent._received(st, junk, now=2.3)
    assert st.registered_at is None


def test_an_unanswered_request_is_retried_with_its_id_and_backs_off() -> None:
    st, sock = _state()
    hub = str(topo.hub().nbma.ip)
    now, dues = 0.0, []
    for _ in range(6):
        agent._send_registration(st, hub, now=now)
        dues.append(st.due - now)
        now = st.due
    assert dues == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert len({_sent_request_at(sock, k).request_id for k in range(6)}) == 1
    agent._received(st, _ip(hub, str(st.spoke.nbma), _reply(_sent_request(sock), 0)), now=now)
    assert st.registered
    assert st.due == now + sw.REREGISTER
    agent._send_registration(st, hub, now=st.due)  # the next registration: a new id, 1 s
    assert _sent_request(sock).request_id != _sent_request_at(sock, 0).request_id
    assert st.due - (now + sw.REREGISTER) == agent.RETRY


def test_a_request_refused_for_want_of_an_sa_is_counted_and_retried() -> None:
    st, _sock = _state(fail=True)
    st.registered = True  # a down event was lost: the refused send says it all the same
    agent._send_registration(st, str(topo.hub().nbma.ip), now=5.0)
    assert (st.sent, st.blocked, st.first_sent) == (0, 1, None)
    assert st.due == 5.0 + agent.RETRY
    assert not st.registered
    for t in (6.0, 8.0):
        agent._send_registration(st, str(topo.hub().nbma.ip), now=t)
    assert st.blocked_in_row == agent.INITIATE_AFTER  # time to ask charon itself
    st.sock.fail = False  # type: ignore[attr-defined]
    agent._send_registration(st, str(topo.hub().nbma.ip), now=12.0)
    assert st.blocked_in_row == 0


def test_request_ids_name_the_spoke() -> None:
    st, sock = _state()
    hub = str(topo.hub().nbma.ip)
    ids = []
    for t in range(3):
        agent._send_registration(st, hub, now=float(t))
        ids.append(_sent_request(sock).request_id)
        agent._received(st, _ip(hub, str(st.spoke.nbma), _reply(_sent_request(sock), 0)), t + 0.5)
    assert len(set(ids)) == 3
    assert {i >> 16 for i in ids} == {st.spoke.index}


def _sent_request_at(sock: FakeSocket, k: int) -> NhrpPacket:
    gre = agent._gre_from(_ip("198.51.100.1", "198.51.100.103", sock.sent[k][0]))
    assert gre is not None
    pkt = decode(gre[2])
    assert isinstance(pkt, NhrpPacket)
    return pkt


def test_a_lost_sa_unregisters_the_spoke_and_a_new_one_registers_it_at_once() -> None:
    st, sock = _state()
    hub = str(topo.hub().nbma.ip)
    agent._send_registration(st, hub, now=1.0)
    agent._received(st, _ip(hub, str(st.spoke.nbma), _reply(_sent_request(sock), 0)), now=1.5)
    assert st.registered
    agent._sa_changed(st, up=False, now=10.0)
    assert not st.registered
    assert st.due == 10.0 + agent.RETRY  # a request soon: it starts charon's trap
    agent._sa_changed(st, up=True, now=31.0)
    assert st.due == 31.0
    agent._send_registration(st, hub, now=31.0)
    agent._received(st, _ip(hub, str(st.spoke.nbma), _reply(_sent_request(sock), 0)), now=31.2)
    assert st.registered
    assert st.registered_at == 1.5
    assert st.last_registered == 31.2


def test_child_updown_events_name_the_spokes_and_their_state() -> None:
    """As the vici package delivers them: str keys, bytes values, ``up`` only when up."""
    child = {"gre": {"name": b"gre", "state": b"INSTALLED", "reqid": b"3"}}
    up = {"up": b"yes", "s7": {"local-host": b"198.51.100.107", "child-sas": child}}
    down = {"s12": {"local-host": b"198.51.100.112", "child-sas": child}}
    assert agent.child_changes(up) == [(7, True)]
    assert agent.child_changes(down) == [(12, False)]
    assert agent.child_changes({"up": b"yes", "dmvpn": {}, "sx": {}, "s": {}}) == []
