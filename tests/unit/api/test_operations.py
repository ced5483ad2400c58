"""The API's operations (frrdmvpn.api.operations.Operations) and the metrics view, with
charon and nhrpd replaced where they would be called."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest

from frrdmvpn.adapters import vici_client
from frrdmvpn.adapters.vtysh import NhrpTables
from frrdmvpn.api.backend import Backend, OperationError
from frrdmvpn.api.operations import Operations
from frrdmvpn.datastores import Datastores
from frrdmvpn.supervision import Service
from frrdmvpn.v1 import operations_service_pb2 as opb
from frrdmvpn.v1 import peer_pb2, types_pb2
from frrdmvpn.v1 import watch_service_pb2 as wpb
from tests.fakes.api_node import LOCAL, list_sa, observation, observe_counters, remote

pytestmark = pytest.mark.unit


def node(tmp_path: Path, peers: int = 3) -> tuple[Service, Backend]:
    backend = Backend(Datastores(saved=tmp_path / "saved.conf", running=tmp_path / "run.conf"))
    service = Service(IPv4Address(LOCAL), [], upstream=tmp_path / "charon.vici", observer=backend)
    obs = observation(peers, down=[peers - 1])
    for p in obs.peers:
        service.sup.peers[p.remote] = p
    backend.observed(obs)
    return service, backend


def peers(backend: Backend) -> list[peer_pb2.Peer]:
    return backend.peers()


class FakeControl:
    """charon and nhrpd as the operations reach them: what was asked, what failed."""

    def __init__(self, refuse: dict[int, str] | None = None, *, forbidden: bool = False) -> None:
        self.refuse = refuse or {}
        self.forbidden = forbidden
        self.terminated: list[int] = []
        self.commands: list[str] = []

    async def terminate_ike(self, unique_id: int) -> None:
        assert not self.forbidden, "a dry run terminated an SA"
        if unique_id in self.refuse:
            raise vici_client.ViciError(self.refuse[unique_id])
        self.terminated.append(unique_id)

    async def nhrp_command(self, command: str) -> None:
        assert not self.forbidden, "a dry run ran vtysh"
        self.commands.append(command)


def test_clear_ipsec_terminates_each_ike_sa_of_the_peer(tmp_path: Path) -> None:
    service, backend = node(tmp_path)
    control = FakeControl({2: "charon refused to terminate IKE_SA #2: busy"})
    ops = Operations(service, backend, control)
    all_peers = peers(backend)
    out = asyncio.run(
        ops.clear(
            all_peers, nhrp=False, ipsec=True, everyone=True, include_static=False, dry_run=False
        )
    )
    assert control.terminated == [1]
    by_remote = {r.peer.remote_nbma: r for r in out}
    assert by_remote[remote(0)].done
    assert by_remote[remote(0)].message == "terminated IKE_SA #1"
    assert not by_remote[remote(1)].done
    assert "busy" in by_remote[remote(1)].message
    assert by_remote[remote(2)].message == "no IKE_SA"  # the DOWN peer has none
    assert service.wake.is_set()


def test_clear_dry_run_touches_nothing(tmp_path: Path) -> None:
    service, backend = node(tmp_path)
    out = asyncio.run(
        Operations(service, backend, FakeControl(forbidden=True)).clear(
            peers(backend)[:1],
            nhrp=True,
            ipsec=True,
            everyone=True,
            include_static=False,
            dry_run=True,
        )
    )
    assert out[0].message == "would terminate IKE_SA #1; would run 'clear ip nhrp cache'"


def test_clear_nhrp_needs_every_peer_and_then_clears_nhrpds_cache(tmp_path: Path) -> None:
    service, backend = node(tmp_path)
    control = FakeControl()
    ops = Operations(service, backend, control)
    one = asyncio.run(
        ops.clear(
            peers(backend)[:1],
            nhrp=True,
            ipsec=False,
            everyone=False,
            include_static=False,
            dry_run=False,
        )
    )
    assert not one[0].done
    assert "whole cache" in one[0].message
    assert control.commands == []
    every = asyncio.run(
        ops.clear(
            peers(backend),
            nhrp=True,
            ipsec=False,
            everyone=True,
            include_static=False,
            dry_run=False,
        )
    )
    assert control.commands == ["clear ip nhrp cache"]
    assert len(every) == 3
    assert all(r.done for r in every)


def test_reinitiate_kicks_each_selected_peer(tmp_path: Path) -> None:
    service, backend = node(tmp_path)
    asked: list[Any] = []
    service.initiator.request = asked.append  # type: ignore[method-assign,assignment]
    out = asyncio.run(Operations(service, backend).reinitiate(peers(backend)[1:]))
    pairs = [(a.child, str(a.my_host), str(a.other_host)) for a in asked]
    assert pairs == [("dmvpn", LOCAL, remote(1)), ("dmvpn", LOCAL, remote(2))]
    assert all(r.done for r in out)


def test_clear_counters_resets_peers_and_baselines_guard_and_authorization(tmp_path: Path) -> None:
    service, backend = node(tmp_path)
    for p in service.sup.peers.values():
        p.transitions, p.initiations = 4, 2
    observe_counters(backend)
    ops = Operations(service, backend)
    selected = [p for p in peers(backend) if p.key.remote_nbma == remote(0)]
    cleared, _ = ops.clear_counters(opb.COUNTER_SCOPE_PEERS, selected)
    assert cleared == 1
    counts = {str(p.remote): (p.transitions, p.initiations) for p in service.sup.peers.values()}
    assert counts == {remote(0): (0, 0), remote(1): (4, 2), remote(2): (4, 2)}
    ops.clear_counters(opb.COUNTER_SCOPE_ALL, None)
    assert backend.guard_status().counters.dropped_in.packets == 0
    backend.guard_observed(
        True,
        {"gre_in_cleartext": (8, 800), "gre_out_cleartext": (1, 90)},
        {"counts": {"in": 8, "out": 1}, "last": []},
        {},
    )
    guard = backend.guard_status().counters
    assert (guard.dropped_in.packets, guard.dropped_in.bytes, guard.logged_in) == (3, 300, 3)
    assert guard.HasField("counters_since")
    assert backend.authorization_counters().accepted == 0
    with pytest.raises(OperationError, match="traffic counters"):
        ops.clear_counters(opb.COUNTER_SCOPE_NHRP_TRAFFIC, None)


def test_metrics_view_counts_what_the_store_holds(tmp_path: Path) -> None:
    _, backend = node(tmp_path, peers=4)
    backend.guard_observed(
        True,
        {"gre_in_cleartext": (5, 500), "gre_out_cleartext": (1, 90)},
        {"counts": {}, "last": []},
        {},
    )
    counters = {"accepted": 7, "denied": 2, "weak_accepted": 1}
    backend.journal_read({"started": 1.0, "counters": counters, "decisions": []})
    view = backend.metrics_view()
    assert dict(view.peers_by_state) == {"up": 3, "down": 1}
    assert view.sas == len(backend.store.items(wpb.EVENT_KIND_IPSEC_SA)) == 3
    assert dict(view.guard_dropped) == {"in": (5, 500), "out": (1, 90)}
    assert dict(view.authorization) == {"accepted": 7, "denied": 2, "weak_accepted": 1}
    assert not view.ready
    backend.set_ready()
    assert backend.metrics_view().ready


def test_an_sa_deleted_takes_the_peer_down_at_once_and_the_next_observation_decides(
    tmp_path: Path,
) -> None:
    _, backend = node(tmp_path)
    sub = backend.broker.subscribe([wpb.EVENT_KIND_PEER], snapshot=False)
    backend.sa_down(LOCAL, remote(0), "IKE_SA", 1, 1_790_000_100.0)
    (event,) = list(sub.queue)
    assert event.peer.change == wpb.CHANGE_TYPE_UPDATED
    assert event.peer.peer.state == types_pb2.PEER_STATE_DOWN
    assert event.peer.peer.state_reason == "IKE_SA #1 deleted (charon)"
    assert event.peer.transition.from_state == types_pb2.PEER_STATE_UP
    sub.queue.clear()
    # the same observation again (the SA came back meanwhile): the peer is UP again
    backend.observed(observation(3, down=[2]))
    (back,) = list(sub.queue)
    assert back.peer.peer.state == types_pb2.PEER_STATE_UP
    assert back.peer.transition.from_state == types_pb2.PEER_STATE_DOWN
    sub.queue.clear()
    # a CHILD_SA other than the protecting one, an unknown peer, a peer already down: nothing
    backend.sa_down(LOCAL, remote(0), "CHILD_SA", 4242, 1_790_000_200.0)
    backend.sa_down(LOCAL, "192.0.2.99", "IKE_SA", 1, 1_790_000_200.0)
    backend.sa_down(LOCAL, remote(2), "IKE_SA", 3, 1_790_000_200.0)
    assert not sub.queue
    backend.sa_down(LOCAL, remote(1), "CHILD_SA", 1001, 1_790_000_200.0)
    (child,) = list(sub.queue)
    assert child.peer.peer.state == types_pb2.PEER_STATE_IKE


def test_a_supervision_step_reaches_the_backend_through_its_observer_port(
    tmp_path: Path,
) -> None:
    """The loop hands charon's ``list-sa`` messages over as they came; the backend makes the
    records: the peers, their SAs and nhrpd's cache are what a direct observation gives
    (but its times: the loop's step takes the clock's)."""
    service, backend = node(tmp_path)
    direct = observation(3, down=[2])
    service.raw_sas = [list_sa(i) for i in range(2)]
    service.tables = NhrpTables([], {}, [dict(e) for e in direct.cache], [])
    fed = Backend(Datastores(saved=tmp_path / "s.conf", running=tmp_path / "r.conf"))
    service.observer = fed
    service.publish(0.0, None)

    def seen(b: Backend) -> list[tuple[str, int, str, list[int]]]:  # times differ: the clock
        return [
            (p.key.remote_nbma, p.state, p.identity, [i.unique_id for i in p.crypto.ike_sas])
            for p in b.peers()
        ]

    assert seen(fed) == seen(backend)
    assert [s[3] for s in seen(fed)] == [[1], [2], []]


def test_the_supervision_loop_imports_nothing_of_the_api() -> None:
    code = (
        "import sys, frrdmvpn.supervision; "
        "print(sorted(m for m in sys.modules if m.startswith('frrdmvpn.api')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert out.stdout == "[]\n"
