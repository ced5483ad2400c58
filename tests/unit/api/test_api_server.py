"""api.server in process: grpc.aio servers on two unix sockets in tmp_path (the tests' channel
is the administrators'), a Backend over Datastores with fake ports (tests/unit/test_apply.py's
World), a fake operations object."""

from __future__ import annotations

import asyncio
import os
import random
import stat
from collections.abc import AsyncIterator, Awaitable
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any, cast

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool

from frrdmvpn.adapters import vtysh
from frrdmvpn.adapters.trusted_files import UntrustedFileError
from frrdmvpn.api import backend, health, request_rules, server
from frrdmvpn.api.backend import Backend
from frrdmvpn.api.server import ApiServer, TlsFiles
from frrdmvpn.api.tables import _order
from frrdmvpn.config.swan import TrustpointFile
from frrdmvpn.datastores import Datastores
from frrdmvpn.grpc_std import health_pb2, health_pb2_grpc, reflection_pb2, reflection_pb2_grpc
from frrdmvpn.v1 import (
    config_pb2,
    config_service_pb2,
    config_service_pb2_grpc,
    operations_service_pb2,
    peer_pb2,
    state_service_pb2,
    state_service_pb2_grpc,
    types_pb2,
)
from frrdmvpn.v1 import watch_service_pb2 as wpb
from lab import pki
from tests.fakes import api_methods
from tests.fakes.api_node import (
    HUB2_TEXT,
    HUB_TEXT,
    LOCAL,
    NOW,
    REFUSALS,
    SC,
    FakeOperations,
    Node,
    code_of,
    observation,
    read,
    remote,
    run,
    tunnel,
)
from tests.fakes.world import certificate_mode

pytestmark = [pytest.mark.unit, pytest.mark.timeout(120)]


# --- StateService -------------------------------------------------------------------------
def test_socket_is_0660_and_get_node(tmp_path: Path) -> None:
    async def body(node: Node) -> None:
        assert stat.S_IMODE(os.stat(node.socket).st_mode) == 0o660
        assert stat.S_ISSOCK(os.stat(node.socket).st_mode)
        got = (await node.state.GetNode(state_service_pb2.GetNodeRequest())).node
        assert got.hostname == "hub"
        assert got.epoch == node.backend.store.epoch
        assert got.peers.total == 5
        assert got.peers.up == 5
        assert got.HasField("as_of")

    run(tmp_path, body, peers=5)
    assert not (tmp_path / "api.sock").exists()  # removed at stop
    assert not (tmp_path / "admin.sock").exists()


def test_list_peers_pages_and_get_peer(tmp_path: Path) -> None:
    async def body(node: Node) -> None:
        seen: list[str] = []
        token = ""
        sizes = []
        while True:
            page = await node.state.ListPeers(
                state_service_pb2.ListPeersRequest(page_size=100, page_token=token)
            )
            assert page.total_size == 250
            sizes.append(len(page.peers))
            seen += [p.key.remote_nbma for p in page.peers]
            token = page.next_page_token
            if not token:
                break
        assert sizes == [100, 100, 50]
        assert seen == [remote(i) for i in range(250)]  # address order, each once
        first = await node.state.ListPeers(state_service_pb2.ListPeersRequest())
        assert len(first.peers) == request_rules.DEFAULT_PAGE
        # a filter, and its token does not serve another filter
        f = peer_pb2.PeerFilter(states=[types_pb2.PEER_STATE_DOWN])
        down = await node.state.ListPeers(state_service_pb2.ListPeersRequest(filter=f))
        assert [p.key.remote_nbma for p in down.peers] == [remote(3), remote(7)]
        small = await node.state.ListPeers(state_service_pb2.ListPeersRequest(page_size=1))
        other = state_service_pb2.ListPeersRequest(filter=f, page_token=small.next_page_token)
        assert await code_of(node.state.ListPeers(other)) == SC.INVALID_ARGUMENT
        # the full view has counters, the basic one not
        full = await node.state.ListPeers(
            state_service_pb2.ListPeersRequest(view=peer_pb2.PEER_VIEW_FULL, page_size=3)
        )
        assert [p.crypto.inbound.bytes for p in full.peers] == [0, 100, 200]
        assert [p.crypto.inbound.bytes for p in first.peers[:3]] == [0, 0, 0]
        # GetPeer
        req = state_service_pb2.GetPeerRequest
        by_nbma = await node.state.GetPeer(req(remote_nbma=remote(201)))
        assert by_nbma.peer.tunnel_address == tunnel(201)
        by_tunnel = await node.state.GetPeer(req(tunnel_address=tunnel(201), local_nbma=LOCAL))
        assert by_tunnel.peer == by_nbma.peer
        assert await code_of(node.state.GetPeer(req(remote_nbma="203.0.113.99"))) == SC.NOT_FOUND
        wrong_local = req(remote_nbma=remote(1), local_nbma="198.51.100.250")
        assert await code_of(node.state.GetPeer(wrong_local)) == SC.NOT_FOUND
        assert await code_of(node.state.GetPeer(req())) == SC.INVALID_ARGUMENT

    async def body_with_down(node: Node) -> None:
        node.backend.observed(observation(250, down=(3, 7)))
        await body(node)

    run(tmp_path, body_with_down)


def test_nhrp_cache_nhs_shortcuts_ospf(tmp_path: Path) -> None:
    async def body(node: Node) -> None:
        cache = await node.state.ListNhrpCache(
            state_service_pb2.ListNhrpCacheRequest(protocol_prefix="192.0.2.0/28", page_size=2)
        )
        assert cache.total_size == 6  # 192.0.2.10 .. .15
        assert [e.protocol_address for e in cache.entries] == ["192.0.2.10", "192.0.2.11"]
        # the token belongs to this query only
        other = state_service_pb2.ListNhrpCacheRequest(page_token=cache.next_page_token)
        assert await code_of(node.state.ListNhrpCache(other)) == SC.INVALID_ARGUMENT
        again = state_service_pb2.ListNhrpCacheRequest(
            protocol_prefix="192.0.2.0/28", page_size=10, page_token=cache.next_page_token
        )
        rest = await node.state.ListNhrpCache(again)
        assert rest.entries[0].protocol_address == "192.0.2.12"
        assert len(rest.entries) == 4
        assert (await node.state.ListNhs(state_service_pb2.ListNhsRequest())).nhs == []
        shortcuts = await node.state.ListShortcuts(state_service_pb2.ListShortcutsRequest())
        assert [s.prefix for s in shortcuts.shortcuts] == ["203.0.113.16/28"]
        ospf = await node.state.ListOspfNeighbors(state_service_pb2.ListOspfNeighborsRequest())
        assert ospf.ospf_available
        assert [n.interface for n in ospf.neighbors] == ["Tunnel0"]

    run(tmp_path, body, peers=20)


class SilentFrr:
    """FRR whose daemons do not answer (nhrpd or ospfd stopped, restarting)."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    async def show_json(self, command: str, daemon: str = "nhrpd") -> Any:
        self.asked.append((daemon, command))
        raise vtysh.VtyshError(f"{daemon}: not running")


def test_frr_that_cannot_answer_is_said_not_hidden(tmp_path: Path) -> None:
    async def body(node: Node) -> None:
        node.backend.frr = frr = SilentFrr()
        ospf = await node.state.ListOspfNeighbors(state_service_pb2.ListOspfNeighborsRequest())
        assert not ospf.ospf_available
        assert list(ospf.neighbors) == []
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await node.state.ListShortcuts(state_service_pb2.ListShortcutsRequest())
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert refused.value.details() == "nhrpd: nhrpd: not running"
        assert frr.asked == [
            ("ospfd", "show ip ospf neighbor json"),
            ("nhrpd", "show ip nhrp shortcut json"),
        ]

    run(tmp_path, body)


# --- WatchService -------------------------------------------------------------------------
def test_watch_snapshot_then_deltas(tmp_path: Path) -> None:
    async def body(node: Node) -> None:
        call = node.watch.Watch(wpb.WatchRequest(kinds=[wpb.EVENT_KIND_PEER]))
        got = [await read(call) for _ in range(5)]
        assert [e.WhichOneof("event") for e in got] == ["snapshot_begin"] + ["peer"] * 3 + [
            "snapshot_end"
        ]
        assert [e.sequence for e in got] == [1, 2, 3, 4, 5]
        node.backend.observed(observation(3, down=(1,)))
        node.backend.observed(observation(3, down=(1,), traffic=99))  # counters: nothing
        node.backend.observed(observation(2, down=(1,)))
        deltas = [await read(call) for _ in range(2)]
        assert [(e.peer.change, e.peer.peer.key.remote_nbma) for e in deltas] == [
            (wpb.CHANGE_TYPE_UPDATED, remote(1)),
            (wpb.CHANGE_TYPE_REMOVED, remote(2)),
        ]
        t = deltas[0].peer.transition
        assert (t.from_state, t.to_state) == (types_pb2.PEER_STATE_UP, types_pb2.PEER_STATE_DOWN)
        assert [e.sequence for e in deltas] == [6, 7]
        call.cancel()
        for _ in range(100):
            if not node.backend.broker.subscriptions:
                break
            await asyncio.sleep(0.01)
        assert not node.backend.broker.subscriptions  # the stream is unsubscribed

    run(tmp_path, body, peers=3)


def test_watch_filter_config_events_and_bad_requests(tmp_path: Path) -> None:
    async def body(node: Node) -> None:
        f = peer_pb2.PeerFilter(remote_nbma_addresses=[remote(2)])
        kinds = [
            wpb.EVENT_KIND_PEER,
            wpb.EVENT_KIND_NHRP_CACHE,
            wpb.EVENT_KIND_IPSEC_SA,
            wpb.EVENT_KIND_CONFIG,
        ]
        call = node.watch.Watch(wpb.WatchRequest(kinds=kinds, peer_filter=f))
        snap = [await read(call) for _ in range(5)]
        assert [e.WhichOneof("event") for e in snap] == [
            "snapshot_begin",
            "peer",
            "ipsec_sa",
            "nhrp_cache",
            "snapshot_end",
        ]
        assert snap[1].peer.peer.key.remote_nbma == remote(2)
        assert snap[2].ipsec_sa.peer.remote_nbma == remote(2)
        assert snap[3].nhrp_cache.entry.nbma_address == remote(2)
        # a configuration change reaches the stream
        apply = config_service_pb2.ApplyConfigRequest(text=HUB_TEXT)
        await node.config.ApplyConfig(apply)
        event = await asyncio.wait_for(read(call), 10)
        assert event.config.type == wpb.CONFIG_EVENT_TYPE_APPLIED
        assert event.config.revision.number == 1
        call.cancel()
        bad = [
            wpb.WatchRequest(kinds=[wpb.EVENT_KIND_SHORTCUT]),
            wpb.WatchRequest(kinds=[42]),  # type: ignore[list-item]
            wpb.WatchRequest(peer_filter=peer_pb2.PeerFilter(tunnel_addresses=["10.0.0.256"])),
            wpb.WatchRequest(peer_filter=peer_pb2.PeerFilter(states=[99])),  # type: ignore[list-item]
            wpb.WatchRequest(peer_view=5),  # type: ignore[arg-type]
        ]
        for request in bad:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await read(node.watch.Watch(request))
            assert info.value.code() == SC.INVALID_ARGUMENT, request
        # heartbeats: a short interval is raised to 1 s
        hb = wpb.WatchRequest(kinds=[wpb.EVENT_KIND_GUARD], skip_snapshot=True)
        hb.heartbeat_interval.FromMilliseconds(1)
        call = node.watch.Watch(hb)
        start = asyncio.get_running_loop().time()
        first = await asyncio.wait_for(read(call), 10)
        assert first.WhichOneof("event") == "heartbeat"
        assert first.sequence == 1
        assert asyncio.get_running_loop().time() - start >= 0.9
        call.cancel()

    run(tmp_path, body, peers=4)


def test_too_many_watches_of_one_user(tmp_path: Path) -> None:
    """The caller is known by its uid (SO_PEERCRED through the API's front): here root."""

    async def body(node: Node) -> None:
        node.backend.broker.admission.reserved = {"uid 0": 2}
        calls = [node.watch.Watch(wpb.WatchRequest()) for _ in range(2)]
        for c in calls:
            await c.read()
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await read(node.watch.Watch(wpb.WatchRequest()))
        assert info.value.code() == SC.RESOURCE_EXHAUSTED
        assert info.value.details() == (
            f"uid {os.geteuid()} holds 2 Watch streams, its limit is 2: close one and watch again"
        )
        for c in calls:
            c.cancel()

    run(tmp_path, body)


# --- ConfigService ------------------------------------------------------------------------
def test_config_validate_apply_save_rollback(tmp_path: Path) -> None:
    async def body(node: Node) -> None:
        cfg = node.config
        invalid = (
            "hostname hub\ninterface Tunnel0\n ip address 192.0.2.1 255.255.255.0\n bogus cmd\n"
        )
        v = await cfg.ValidateConfig(config_service_pb2.ValidateConfigRequest(text=invalid))
        assert not v.valid
        errors = [d for d in v.diagnostics if d.severity == config_pb2.DIAGNOSTIC_SEVERITY_ERROR]
        assert errors
        assert errors[0].line == 4
        assert errors[0].HasField("column")
        ok = await cfg.ValidateConfig(config_service_pb2.ValidateConfigRequest(text=HUB_TEXT))
        assert ok.valid
        assert "interface Tunnel0" in ok.canonical_text
        # nothing applied yet
        nothing = config_service_pb2.RollbackConfigRequest(
            well_known=config_service_pb2.ROLLBACK_TARGET_PREVIOUS_RUNNING
        )
        assert await code_of(cfg.RollbackConfig(nothing)) == SC.NOT_FOUND
        save = config_service_pb2.SaveConfigRequest()
        assert await code_of(cfg.SaveConfig(save)) == SC.FAILED_PRECONDITION
        # apply
        first = (await cfg.ApplyConfig(config_service_pb2.ApplyConfigRequest(text=HUB_TEXT))).result
        assert first.outcome == config_pb2.APPLY_OUTCOME_APPLIED
        assert first.running.number == 1
        assert first.changes
        assert node.world.tunnels  # the fake kernel has the GRE tunnel now
        running = await cfg.GetConfig(config_service_pb2.GetConfigRequest())
        assert running.revision.digest == first.running.digest
        assert "frrdmvpn-lab-psk-not-for-production" not in running.text  # masked by default
        assert " authentication local pre-share" in running.text
        assert "pre-shared-key <removed>" in running.text
        revealed = await cfg.GetConfig(config_service_pb2.GetConfigRequest(reveal_secrets=True))
        assert "pre-shared-key frrdmvpn-lab-psk-not-for-production" in revealed.text
        both = config_service_pb2.GetConfigRequest(reveal_secrets=True, redact_secrets=True)
        assert "pre-shared-key <removed>" in (await cfg.GetConfig(both)).text
        # the same again: unchanged
        same = (await cfg.ApplyConfig(config_service_pb2.ApplyConfigRequest(text=HUB_TEXT))).result
        assert same.outcome == config_pb2.APPLY_OUTCOME_UNCHANGED
        # save writes the file
        saved = await cfg.SaveConfig(
            config_service_pb2.SaveConfigRequest(expected_running_digest=first.running.digest)
        )
        assert Path(saved.path).read_text() == revealed.text
        assert saved.saved.digest == first.running.digest
        stale = config_service_pb2.SaveConfigRequest(expected_running_digest="sha256:00")
        assert await code_of(cfg.SaveConfig(stale)) == SC.ABORTED
        # a second configuration, then back to the first
        second = (
            await cfg.ApplyConfig(config_service_pb2.ApplyConfigRequest(text=HUB2_TEXT))
        ).result
        assert second.outcome == config_pb2.APPLY_OUTCOME_APPLIED
        assert second.running.number == 2
        stale_apply = config_service_pb2.ApplyConfigRequest(
            text=HUB_TEXT, expected_running_digest=first.running.digest
        )
        assert await code_of(cfg.ApplyConfig(stale_apply)) == SC.ABORTED
        back = (await cfg.RollbackConfig(nothing)).result
        assert back.outcome == config_pb2.APPLY_OUTCOME_APPLIED
        assert back.running.number == 3
        assert back.running.digest == first.running.digest
        assert back.running.origin.kind == "rollback"
        revisions = await cfg.ListConfigRevisions(config_service_pb2.ListConfigRevisionsRequest())
        assert [r.number for r in revisions.revisions] == [3, 2, 1]
        unknown = config_service_pb2.RollbackConfigRequest(revision_number=99)
        assert await code_of(cfg.RollbackConfig(unknown)) == SC.NOT_FOUND
        previous = config_service_pb2.RollbackConfigRequest(
            well_known=config_service_pb2.ROLLBACK_TARGET_SAVED_PREVIOUS
        )
        assert await code_of(cfg.RollbackConfig(previous)) == SC.NOT_FOUND
        # an invalid text is an answer, not an error
        rejected = (
            await cfg.ApplyConfig(config_service_pb2.ApplyConfigRequest(text=invalid))
        ).result
        assert rejected.outcome == config_pb2.APPLY_OUTCOME_REJECTED
        assert rejected.diagnostics[0].line == 4
        node_summary = (await node.state.GetNode(state_service_pb2.GetNodeRequest())).node
        assert node_summary.config.running.number == 3
        assert [t.name for t in node_summary.tunnels] == ["Tunnel0"]

    run(tmp_path, body)


def test_edit_config_and_candidate(tmp_path: Path) -> None:
    async def body(node: Node) -> None:
        cfg = node.config
        await cfg.ApplyConfig(config_service_pb2.ApplyConfigRequest(text=HUB_TEXT))
        edit = config_service_pb2.EditConfigRequest(lines=["hostname hub-b"], dry_run=False)
        out = await cfg.EditConfig(edit)
        assert out.lines_accepted == 1
        assert out.candidate_pending
        candidate = await cfg.GetConfig(
            config_service_pb2.GetConfigRequest(datastore=config_pb2.CONFIG_DATASTORE_CANDIDATE)
        )
        assert "hostname hub-b" in candidate.text
        stale = config_service_pb2.DiscardCandidateRequest(expected_candidate_digest="sha256:0")
        assert await code_of(cfg.DiscardCandidate(stale)) == SC.ABORTED
        await cfg.DiscardCandidate(config_service_pb2.DiscardCandidateRequest())
        long_line = config_service_pb2.EditConfigRequest(lines=["hostname " + "h" * 5000])
        assert await code_of(cfg.EditConfig(long_line)) == SC.INVALID_ARGUMENT

    run(tmp_path, body)


def test_edit_config_refuses_control_characters_at_their_column(tmp_path: Path) -> None:
    """Issue 14 hole 8: a line separator in a description no longer adds statements."""

    async def body(node: Node) -> None:
        cfg = node.config
        await cfg.ApplyConfig(config_service_pb2.ApplyConfigRequest(text=HUB_TEXT))
        tunnel = config_pb2.ConfigContext(mode=config_pb2.CONFIG_MODE_INTERFACE, keys=["Tunnel0"])
        attack = "description uplink\u2028 ip nhrp map 192.0.2.99 198.51.100.99"
        out = await cfg.EditConfig(
            config_service_pb2.EditConfigRequest(
                context=tunnel,
                lines=[attack, "ip nhrp holdtime 60"],
                commit=config_service_pb2.EDIT_COMMIT_IF_VALID,
            )
        )
        assert out.lines_accepted == 0
        (found,) = out.diagnostics
        assert (found.column, found.token) == (19, "\u2028")
        assert found.message == (
            "character U+2028 LINE SEPARATOR is not allowed (no control, format or "
            "line-separator characters in configuration text)"
        )
        assert not out.HasField("apply")
        assert "192.0.2.99" not in node.backend.datastores.running_text()
        assert node.backend.datastores.candidate is None
        for bad in ("comment\nip nhrp map", "\u202eevil"):
            request = config_service_pb2.ApplyConfigRequest(text=HUB_TEXT, comment=bad)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await cfg.ApplyConfig(request)
            assert info.value.code() == SC.INVALID_ARGUMENT
        assert info.value.details() == (
            "comment: column 1: character U+202E RIGHT-TO-LEFT OVERRIDE is not allowed (no "
            "control, format or line-separator characters in configuration text)"
        )
        applied = await cfg.ValidateConfig(
            config_service_pb2.ValidateConfigRequest(
                text=HUB_TEXT.replace(
                    " ip mtu 1400", " ip mtu 1400\x0b ip nhrp map 192.0.2.9 198.51.100.9"
                )
            )
        )
        assert not applied.valid
        assert [(d.line, d.column) for d in applied.diagnostics] == [
            (HUB_TEXT.splitlines().index(" ip mtu 1400") + 1, 13)
        ]

    run(tmp_path, body)


def test_only_an_administrator_has_the_files_a_text_names_checked(tmp_path: Path) -> None:
    """Issue 14 hole 5: ValidateConfig checks the trustpoint files as the apply would, but
    only for an administrator: for an operator, root's answers about a path of its choice
    (exists? whose? how big?) would be an oracle."""
    text = certificate_mode(
        HUB_TEXT, certificate="/c.pem", private_key="/root/secret", ca_certificate="/ca.pem"
    )
    checked: list[str] = []

    def check_file(f: TrustpointFile) -> None:
        checked.append(f.path)
        if f.path == "/root/secret":
            raise UntrustedFileError(f.keyword, f.path, "does not exist")

    async def body(node: Node) -> None:
        node.backend.datastores.check_file = check_file
        request = config_service_pb2.ValidateConfigRequest(text=text)
        admin = await node.config.ValidateConfig(request)
        assert not admin.valid
        assert [d.message for d in admin.diagnostics] == ["private-key /root/secret does not exist"]
        checked.clear()
        async with grpc.aio.insecure_channel(f"unix:{node.socket}") as channel:
            operator = cast(
                "config_service_pb2_grpc.ConfigServiceAsyncStub",
                config_service_pb2_grpc.ConfigServiceStub(channel),
            )
            answer = await operator.ValidateConfig(request)
        assert answer.valid
        assert checked == []

    run(tmp_path, body)


# --- OperationsService --------------------------------------------------------------------
def test_operations(tmp_path: Path) -> None:
    async def body(node: Node) -> None:
        ops = operations_service_pb2
        sel = types_pb2.PeerSelector(tunnel_address=tunnel(1))
        out = await node.ops.ClearPeer(ops.ClearPeerRequest(peer=sel, scope=ops.CLEAR_SCOPE_IPSEC))
        assert [r.peer.remote_nbma for r in out.results] == [remote(1)]
        assert node.operations.calls[-1][0] == "clear"
        everyone = types_pb2.PeerSelector()
        everyone.all.SetInParent()
        again = await node.ops.ReinitiatePeer(ops.ReinitiatePeerRequest(peer=everyone))
        assert len(again.results) == 3
        counters = await node.ops.ClearCounters(
            ops.ClearCountersRequest(scope=ops.COUNTER_SCOPE_ALL)
        )
        assert counters.cleared_at.seconds == int(NOW)
        missing = types_pb2.PeerSelector(remote_nbma="203.0.113.5")
        bad = [
            (ops.ClearPeerRequest(peer=missing, scope=ops.CLEAR_SCOPE_NHRP), SC.NOT_FOUND),
            (ops.ClearPeerRequest(peer=sel, scope=77), SC.INVALID_ARGUMENT),  # type: ignore[arg-type]
            (ops.ClearPeerRequest(scope=ops.CLEAR_SCOPE_NHRP), SC.INVALID_ARGUMENT),
            (
                ops.ClearPeerRequest(
                    peer=types_pb2.PeerSelector(remote_nbma="x"), scope=ops.CLEAR_SCOPE_NHRP
                ),
                SC.INVALID_ARGUMENT,
            ),
        ]
        for request, code in bad:
            assert await code_of(node.ops.ClearPeer(request)) == code, request
        bad_scope = ops.ClearCountersRequest(scope=99)  # type: ignore[arg-type]
        assert await code_of(node.ops.ClearCounters(bad_scope)) == SC.INVALID_ARGUMENT

    run(tmp_path, body, peers=3)


# --- health and reflection ----------------------------------------------------------------
def test_health_follows_set_serving_and_watchers_see_each_change(tmp_path: Path) -> None:
    async def body(node: Node) -> None:
        stub = cast("health_pb2_grpc.HealthAsyncStub", health_pb2_grpc.HealthStub(node.channel))

        async def status(service: str) -> int:
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=service))
            return int(reply.status)

        watch = stub.Watch(health_pb2.HealthCheckRequest(service=""))
        later = stub.Watch(health_pb2.HealthCheckRequest(service="frrdmvpn.v1.Later"))
        assert (await _read(watch)).status == health.NOT_SERVING
        assert (await _read(later)).status == health.SERVICE_UNKNOWN
        for name in ("", "frrdmvpn.v1.StateService", "frrdmvpn.v1.WatchService"):
            assert await status(name) == health.NOT_SERVING
        await node.server.set_serving(True)
        assert (await _read(watch)).status == health.SERVING
        for name in ("", *server.SERVICES):
            assert await status(name) == health.SERVING
        listed = await stub.List(health_pb2.HealthListRequest())
        assert {k: v.status for k, v in listed.statuses.items()} == dict.fromkeys(
            ("", *server.SERVICES), health.SERVING
        )
        unknown = stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"))
        assert await code_of(unknown) == SC.NOT_FOUND
        node.server.health.set("frrdmvpn.v1.Later", health.SERVING)
        assert (await _read(later)).status == health.SERVING
        node.server.health.shutdown()  # the server is going away
        assert (await _read(watch)).status == health.NOT_SERVING
        await node.server.set_serving(True)  # too late: stays NOT_SERVING
        assert await status("") == health.NOT_SERVING
        watch.cancel()
        later.cancel()

    run(tmp_path, body)


async def _read(call: Any) -> health_pb2.HealthCheckResponse:
    return cast("health_pb2.HealthCheckResponse", await call.read())


async def _reflect(
    node: Node, *requests: reflection_pb2.ServerReflectionRequest
) -> list[reflection_pb2.ServerReflectionResponse]:
    stub = reflection_pb2_grpc.ServerReflectionStub(node.channel)
    call = stub.ServerReflectionInfo(iter(requests))
    return [answer async for answer in cast("AsyncIterator[Any]", call)]


def test_reflection_lists_and_describes_the_services(tmp_path: Path) -> None:
    Request = reflection_pb2.ServerReflectionRequest  # noqa: N806

    async def body(node: Node) -> None:
        listed, watch, missing, empty = await _reflect(
            node,
            Request(host="h", list_services=""),
            Request(file_containing_symbol="frrdmvpn.v1.WatchService"),
            Request(file_containing_symbol="frrdmvpn.v1.NoSuchService"),
            Request(),
        )
        names = [s.name for s in listed.list_services_response.service]
        assert names == sorted(
            [*server.SERVICES, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"]
        )
        assert (listed.valid_host, listed.original_request.host) == ("h", "h")
        # the file and everything it imports: a client builds the service from them alone
        files = [
            descriptor_pb2.FileDescriptorProto.FromString(f)
            for f in watch.file_descriptor_response.file_descriptor_proto
        ]
        assert files[0].name == "frrdmvpn/v1/watch_service.proto"
        pool = descriptor_pool.DescriptorPool()
        added: set[str] = set()
        while len(added) < len(files):  # each file once its imports are in
            ready = [f for f in files if f.name not in added and set(f.dependency) <= added]
            assert ready, [f.name for f in files]  # everything it imports came with it
            for f in ready:
                pool.Add(f)
                added.add(f.name)
        methods = pool.FindServiceByName("frrdmvpn.v1.WatchService").methods
        assert [m.name for m in methods] == ["Watch"]
        assert (missing.error_response.error_code, missing.error_response.error_message) == (
            SC.NOT_FOUND.value[0],
            "file containing symbol 'frrdmvpn.v1.NoSuchService': not found",
        )
        assert empty.error_response.error_code == SC.INVALID_ARGUMENT.value[0]

    run(tmp_path, body)


# --- bad input ----------------------------------------------------------------------------
UNARY = api_methods.unary(state_service_pb2, config_service_pb2, operations_service_pb2)


def test_bad_input_gets_a_status_and_the_server_lives_on(tmp_path: Path) -> None:
    rng = random.Random(5)

    async def body(node: Node) -> None:
        seen: dict[grpc.StatusCode, int] = {}
        methods = list(UNARY)
        for method in methods:
            call = node.channel.unary_unary(  # bytes in, bytes out
                method, request_serializer=None, response_deserializer=None
            )
            blobs = [rng.randbytes(rng.randint(1, 300)) for _ in range(12)]
            blobs += [b"\xff" * 20, b"\x0a\xff\xff\xff\xff\x0f", b"\x12\x03\xc3\x28\x41"]
            for blob in blobs:
                code = await code_of(call(blob, timeout=10))
                assert code in REFUSALS, (method, blob, code)
                seen[code] = seen.get(code, 0) + 1
        assert seen.get(SC.INVALID_ARGUMENT, 0) > len(methods)  # undecodable: refused

        st, cf = state_service_pb2, config_service_pb2
        cases: list[tuple[Awaitable[Any], grpc.StatusCode]] = [
            (node.state.GetPeer(st.GetPeerRequest(remote_nbma="300.1.1.1")), SC.INVALID_ARGUMENT),
            (node.state.GetPeer(st.GetPeerRequest(tunnel_address="")), SC.INVALID_ARGUMENT),
            (
                node.state.GetPeer(st.GetPeerRequest(remote_nbma=remote(0), view=9)),  # type: ignore[arg-type]
                SC.INVALID_ARGUMENT,
            ),
            (node.state.ListPeers(st.ListPeersRequest(page_token="%%%")), SC.INVALID_ARGUMENT),
            (
                node.state.ListPeers(st.ListPeersRequest(page_token="eyJ4IjogMX0=")),
                SC.INVALID_ARGUMENT,
            ),  # {"x": 1}
            (node.state.ListPeers(st.ListPeersRequest(page_token="W10=")), SC.INVALID_ARGUMENT),
            (node.state.ListPeers(st.ListPeersRequest(page_size=-1)), SC.INVALID_ARGUMENT),
            (node.state.ListPeers(st.ListPeersRequest(view=3)), SC.INVALID_ARGUMENT),  # type: ignore[arg-type]
            (
                node.state.ListPeers(st.ListPeersRequest(filter=peer_pb2.PeerFilter(roles=[8]))),  # type: ignore[list-item]
                SC.INVALID_ARGUMENT,
            ),
            (
                node.state.ListNhrpCache(st.ListNhrpCacheRequest(protocol_prefix="10.0.0.0/33")),
                SC.INVALID_ARGUMENT,
            ),
            (
                node.state.ListNhrpCache(st.ListNhrpCacheRequest(nbma_address="::g")),
                SC.INVALID_ARGUMENT,
            ),
            (
                node.state.ListAuthorizationDecisions(
                    st.ListAuthorizationDecisionsRequest(remote_nbma="nope")
                ),
                SC.INVALID_ARGUMENT,
            ),
            (node.config.GetConfig(cf.GetConfigRequest(datastore=42)), SC.INVALID_ARGUMENT),  # type: ignore[arg-type]
            (node.config.GetConfig(cf.GetConfigRequest(revision_number=7)), SC.NOT_FOUND),
            (
                node.config.GetConfig(
                    cf.GetConfigRequest(datastore=config_pb2.CONFIG_DATASTORE_SAVED)
                ),
                SC.NOT_FOUND,
            ),
            (node.config.ValidateConfig(cf.ValidateConfigRequest()), SC.INVALID_ARGUMENT),
            (
                node.config.ValidateConfig(cf.ValidateConfigRequest(text="x" * (2 << 20))),
                SC.INVALID_ARGUMENT,
            ),  # over 1 MiB
            (
                node.config.ValidateConfig(cf.ValidateConfigRequest(text="y" * (5 << 20))),
                SC.RESOURCE_EXHAUSTED,
            ),  # over gRPC's 4 MiB
            (node.config.ApplyConfig(cf.ApplyConfigRequest()), SC.INVALID_ARGUMENT),
            (node.config.ApplyConfig(cf.ApplyConfigRequest(datastore=7)), SC.INVALID_ARGUMENT),  # type: ignore[arg-type]
            (
                node.config.EditConfig(
                    cf.EditConfigRequest(context=config_pb2.ConfigContext(mode=99))  # type: ignore[arg-type]
                ),
                SC.INVALID_ARGUMENT,
            ),
            (node.config.RollbackConfig(cf.RollbackConfigRequest()), SC.INVALID_ARGUMENT),
            (
                node.config.RollbackConfig(cf.RollbackConfigRequest(well_known=12)),  # type: ignore[arg-type]
                SC.INVALID_ARGUMENT,
            ),
            (
                node.config.ListConfigRevisions(cf.ListConfigRevisionsRequest(page_token="AAAA")),
                SC.INVALID_ARGUMENT,
            ),
        ]
        for call_, code in cases:
            assert await code_of(call_) == code
        # the server still answers
        got = await node.state.GetNode(state_service_pb2.GetNodeRequest(), timeout=10)
        assert got.node.peers.total == 3

    run(tmp_path, body, peers=3)


# --- TCP with mutual TLS ------------------------------------------------------------------
def test_tcp_needs_a_client_certificate_from_the_client_ca(tmp_path: Path) -> None:
    server_ca, client_ca, rogue_ca = tmp_path / "sca", tmp_path / "cca", tmp_path / "rca"
    cert, key = pki.issue(server_ca, pki.Identity("api", (IPv4Address("127.0.0.1"),)), 1)
    good_cert, good_key = pki.issue(
        client_ca, pki.Identity("shell", (IPv4Address("192.0.2.200"),)), 2
    )
    bad_cert, bad_key = pki.issue(rogue_ca, pki.Identity("rogue", (IPv4Address("192.0.2.201"),)), 3)
    tls = TlsFiles(cert, key, pki.make_ca(client_ca))
    trust = pki.make_ca(server_ca).read_bytes()

    async def body(node: Node) -> None:
        assert node.server.port
        target = f"127.0.0.1:{node.server.port}"

        async def get_node(creds: grpc.ChannelCredentials) -> grpc.StatusCode:
            async with grpc.aio.secure_channel(target, creds) as channel:
                stub = cast(
                    "state_service_pb2_grpc.StateServiceAsyncStub",
                    state_service_pb2_grpc.StateServiceStub(channel),
                )
                return await code_of(stub.GetNode(state_service_pb2.GetNodeRequest(), timeout=10))

        anonymous = grpc.ssl_channel_credentials(root_certificates=trust)
        assert await get_node(anonymous) == SC.UNAVAILABLE
        rogue = grpc.ssl_channel_credentials(trust, bad_key.read_bytes(), bad_cert.read_bytes())
        assert await get_node(rogue) == SC.UNAVAILABLE
        good = grpc.ssl_channel_credentials(trust, good_key.read_bytes(), good_cert.read_bytes())
        assert await get_node(good) == SC.OK
        async with grpc.aio.insecure_channel(target) as plain:  # no TLS at all
            stub = cast(
                "state_service_pb2_grpc.StateServiceAsyncStub",
                state_service_pb2_grpc.StateServiceStub(plain),
            )
            code = await code_of(stub.GetNode(state_service_pb2.GetNodeRequest(), timeout=5))
            assert code == SC.UNAVAILABLE

    run(tmp_path, body, tcp="127.0.0.1:0", tls=tls)


def test_tcp_without_tls_is_refused(tmp_path: Path) -> None:
    backend = Backend(Datastores(saved=tmp_path / "s", running=tmp_path / "r"))
    with pytest.raises(ValueError, match="mutual TLS"):
        ApiServer(backend, FakeOperations(), tmp_path / "a.sock", None, "127.0.0.1:0")


def test_pages_follow_the_store_order_for_any_address() -> None:
    """ListPeers pages the store's order with bisect: both orders must agree."""
    addresses = [
        "10.0.0.9",
        "10.0.0.10",
        "9.255.255.255",
        "2001:db8::10",
        "2001:db8::9",
        "::ffff:10.0.0.1",
        "fe80::1",
        "192.0.2.1",
        "::1",
    ]
    peers = []
    for local in ("198.51.100.1", "2001:db8:1::1"):
        for a in addresses:
            p = peer_pb2.Peer()
            p.key.local_nbma, p.key.remote_nbma = local, a
            peers.append(p)
    by_store = sorted(peers, key=lambda p: _order((p.key.local_nbma, p.key.remote_nbma)))
    assert by_store == sorted(peers, key=request_rules.peer_key)
    seen: list[peer_pb2.Peer] = []
    token = ""
    while True:
        page, token = request_rules.page(
            by_store, request_rules.peer_key, 4, token, "s", presorted=True
        )
        seen += page
        if not token:
            break
    assert seen == by_store


def test_the_full_view_has_a_step_list_charon_anew(tmp_path: Path) -> None:
    """The steps hold a listing while charon reports no change: the full view (counters)
    asks the supervision loop for a step with a new listing first; the basic view does
    not."""
    asked: list[tuple[float, float]] = []

    async def body(node: Node) -> None:
        async def fresh_listing(within: float, wait: float) -> None:
            asked.append((within, wait))
            node.backend.observed(observation(10, traffic=5000))  # what that step publishes

        node.backend.fresh_listing = fresh_listing
        basic = await node.state.ListPeers(state_service_pb2.ListPeersRequest(page_size=3))
        assert [p.crypto.inbound.bytes for p in basic.peers] == [0, 0, 0]
        assert asked == []
        full = state_service_pb2.ListPeersRequest(view=peer_pb2.PEER_VIEW_FULL, page_size=3)
        page = await node.state.ListPeers(full)
        assert [p.crypto.inbound.bytes for p in page.peers] == [5000, 5100, 5200]
        one = await node.state.GetPeer(
            state_service_pb2.GetPeerRequest(remote_nbma=remote(2), view=peer_pb2.PEER_VIEW_FULL)
        )
        assert one.peer.crypto.inbound.bytes == 5200
        assert asked == [(backend.COUNTERS_FRESH, backend.COUNTERS_WAIT)] * 2

    run(tmp_path, body, peers=10)
