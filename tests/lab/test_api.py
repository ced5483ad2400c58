"""frrdmvpnd's gRPC API on the lab's nodes: state, Watch, configuration, health, access."""

from __future__ import annotations

import grp
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from frrdmvpn.client import Client
from frrdmvpn.config.model import tunnel_name
from frrdmvpn.grpc_std import health_pb2, health_pb2_grpc
from frrdmvpn.v1 import config_pb2, config_service_pb2, ipsec_pb2, peer_pb2, types_pb2
from frrdmvpn.v1 import watch_service_pb2 as wpb
from lab import topology as topo
from lab.netns import Lab
from tests.lab.helpers import child_sas, guard_status, ike_ids_to, nhrp_cache, wait_for

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("frrdmvpn_mode")]

HUB, S1, S2 = topo.node("hub"), topo.node("spoke1"), topo.node("spoke2")
SPOKES = {str(S1.nbma.ip): S1, str(S2.nbma.ip): S2}


def client(lab: Lab, name: str = "hub") -> Client:
    """An administrator's client (these tests apply, save and roll back)."""
    return Client(f"unix:{lab.api_admin_socket(name)}", timeout=30)


@pytest.fixture
def hub_api(lab: Lab) -> Iterator[Client]:
    with client(lab) as api:
        yield api


def _all_up(api: Client, count: int = 2) -> bool:
    peers = api.peers()
    return len(peers) == count and all(p.state == types_pb2.PEER_STATE_UP for p in peers)


def test_client_lists_the_hubs_spokes_as_charon_and_nhrpd_report_them(
    lab: Lab, hub_api: Client
) -> None:
    wait_for("both spokes UP through the API", lambda: _all_up(hub_api), 90)
    peers = {p.key.remote_nbma: p for p in hub_api.peers(full=True)}
    assert set(peers) == set(SPOKES)
    cache = nhrp_cache(lab, "hub")
    spis = {(str(c["ike-id"]), str(c["spi-in"])) for c in child_sas(lab, "hub")}
    for nbma, node in SPOKES.items():
        peer = peers[nbma]
        assert peer.key.local_nbma == str(HUB.nbma.ip)
        assert peer.tunnel_address == str(node.overlay.ip)
        assert peer.role == peer_pb2.PEER_ROLE_DYNAMIC
        assert peer.crypto.status == ipsec_pb2.CRYPTO_SESSION_STATUS_UP_ACTIVE
        # the IKE_SAs swanctl lists, with their CHILD_SAs' SPIs
        listed = sorted(int(i) for i in ike_ids_to(lab, "hub", nbma))
        assert sorted(i.unique_id for i in peer.crypto.ike_sas) == listed
        for ike in peer.crypto.ike_sas:
            assert ike.remote_host == nbma
            assert ike.remote_id == nbma
            assert any(c.protects_gre for c in ike.child_sas)
            for child in ike.child_sas:
                assert (str(ike.unique_id), f"{child.spi_in:08x}") in spis
        # the NHRP entry nhrpd shows for the spoke
        entry = next(e for e in cache if e["nbma"] == nbma)
        assert [(e.protocol_address, e.interface) for e in peer.nhrp_entries] == [
            (entry["protocol"], tunnel_name(entry["interface"]))
        ]
    api_cache = {(e.protocol_address, e.nbma_address) for e in hub_api.nhrp_cache()}
    assert api_cache == {(e["protocol"], e["nbma"]) for e in cache}
    node = hub_api.node()
    assert node.ready
    assert node.guard.installed
    assert node.peers.total == 2
    assert node.peers.up == 2


def test_a_spoke_lists_its_nhs(lab: Lab) -> None:
    with client(lab, "spoke1") as api:
        wait_for("spoke1's NHS UP", lambda: _all_up(api, 1), 90)
        (nhs,) = api.nhs()
        assert nhs.nbma_address == str(HUB.nbma.ip)
        assert nhs.reachable
        (peer,) = api.peers()
        assert peer.role == peer_pb2.PEER_ROLE_NHS
        assert peer.key.remote_nbma == str(HUB.nbma.ip)


class Recorder:
    """A Watch stream read in a thread."""

    def __init__(self, api: Client, kinds: list[str]) -> None:
        self.stream = api.watch(kinds)
        self.events: list[wpb.WatchResponse] = []
        self.error: grpc.RpcError | None = None
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for event in self.stream:
                self.events.append(event)
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.CANCELLED:
                self.error = exc

    def stop(self) -> list[wpb.WatchResponse]:
        self.stream.cancel()
        self.thread.join(10)
        assert self.error is None, self.error
        return list(self.events)

    def snapshot_done(self) -> bool:
        return any(e.WhichOneof("event") == "snapshot_end" for e in self.events)


def _first(events: list[wpb.WatchResponse], start: int, match: Any) -> int:
    for i in range(start, len(events)):
        if match(events[i]):
            return i
    raise AssertionError(f"no matching event after #{start}: {_describe(events[start:])}")


def _describe(events: list[wpb.WatchResponse]) -> str:
    out = []
    for e in events:
        which = e.WhichOneof("event")
        body = getattr(e, which or "")
        if which == "peer":
            out.append(f"peer {body.peer.key.remote_nbma} {body.peer.state}")
        elif which == "ipsec_sa":
            out.append(f"sa {body.change} {body.peer.remote_nbma} #{body.ike_sa.unique_id}")
        elif which == "authorization":
            out.append(f"auth {body.decision.verdict} {body.decision.claimed_address}")
        else:
            out.append(str(which))
    return "; ".join(out)


def test_watch_shows_an_sa_lost_the_peer_down_and_its_return_in_order(
    lab: Lab, hub_api: Client
) -> None:
    wait_for("both spokes UP", lambda: _all_up(hub_api), 90)
    spoke = str(S1.nbma.ip)
    watch = Recorder(hub_api, ["peer", "ipsec_sa", "nhrp_cache", "authorization"])

    def down(e: wpb.WatchResponse) -> bool:
        """spoke1 below UP, or gone (the hub forgets a dynamic peer nothing refers to)."""
        if not e.HasField("peer") or e.peer.peer.key.remote_nbma != spoke:
            return False
        return (
            e.peer.change == wpb.CHANGE_TYPE_REMOVED or e.peer.peer.state < types_pb2.PEER_STATE_UP
        )

    wait_for("the snapshot", watch.snapshot_done, 30)
    # spoke1's charon goes away (a stopping charon sends no DELETE), then the hub closes the
    # IKE_SA: the SA is gone, the peer is down, and stays down until spoke1's charon returns
    lab.stop_charon("spoke1")
    try:
        try:
            hub_api.clear_peer(remote_nbma=spoke, scope="ipsec")
        except grpc.RpcError as exc:  # the hub saw the IKE_SA go and forgot spoke1 already
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise
        wait_for("spoke1 DOWN in the stream", lambda: any(map(down, watch.events)), 60)
        time.sleep(2)
    finally:
        lab.start_charon("spoke1")
    wait_for("spoke1 UP again", lambda: _all_up(hub_api), 120)
    time.sleep(2)
    events = watch.stop()

    kinds = [e.WhichOneof("event") for e in events]
    assert kinds[0] == "snapshot_begin"
    end = kinds.index("snapshot_end")
    assert all(e.snapshot for e in events[: end + 1])
    assert not any(e.snapshot for e in events[end + 1 :])
    sequences = [e.sequence for e in events[end + 1 :]]
    assert sequences == sorted(set(sequences)), "deltas out of order or repeated"
    snap_peers = {e.peer.peer.key.remote_nbma for e in events[:end] if e.HasField("peer")}
    assert snap_peers == set(SPOKES)

    def sa(change: int) -> Any:
        return lambda e: (
            e.WhichOneof("event") == "ipsec_sa"
            and e.ipsec_sa.change == change
            and e.ipsec_sa.peer.remote_nbma == spoke
        )

    def up_again(e: wpb.WatchResponse) -> bool:
        return (
            e.HasField("peer")
            and e.peer.peer.key.remote_nbma == spoke
            and e.peer.change != wpb.CHANGE_TYPE_REMOVED
            and e.peer.peer.state == types_pb2.PEER_STATE_UP
        )

    gone = _first(events, end, sa(wpb.CHANGE_TYPE_REMOVED))
    went_down = _first(events, gone, down)
    if events[went_down].peer.change == wpb.CHANGE_TYPE_UPDATED:
        assert events[went_down].peer.transition.from_state == types_pb2.PEER_STATE_UP
    back = _first(events, went_down, sa(wpb.CHANGE_TYPE_ADDED))

    def claim(e: wpb.WatchResponse) -> bool:
        address = e.authorization.decision.claimed_address
        return e.HasField("authorization") and address == str(S1.overlay.ip)

    registered = _first(events, back, claim)
    assert events[registered].authorization.decision.verdict == 1  # accepted
    up = _first(events, registered, up_again)
    assert gone < went_down < back < registered < up


def _replay(events: list[wpb.WatchResponse]) -> dict[str, dict[str, bytes]]:
    """Tables rebuilt from a Watch stream: snapshot, then deltas (a resync starts over)."""
    tables: dict[str, dict[str, bytes]] = {"peer": {}, "ipsec_sa": {}}
    for e in events:
        which = e.WhichOneof("event")
        if which == "snapshot_begin":
            tables = {"peer": {}, "ipsec_sa": {}}
        elif which == "peer":
            key = e.peer.peer.key.remote_nbma
            if e.peer.change == wpb.CHANGE_TYPE_REMOVED:
                tables["peer"].pop(key, None)
            else:
                tables["peer"][key] = e.peer.peer.SerializeToString(deterministic=True)
        elif which == "ipsec_sa":
            key = str(e.ipsec_sa.ike_sa.unique_id)
            if e.ipsec_sa.change == wpb.CHANGE_TYPE_REMOVED:
                tables["ipsec_sa"].pop(key, None)
            else:
                body = wpb.IpsecSaEvent()
                body.CopyFrom(e.ipsec_sa)
                body.change = wpb.CHANGE_TYPE_UNSPECIFIED
                tables["ipsec_sa"][key] = body.SerializeToString(deterministic=True)
    return tables


def test_watches_started_during_churn_lose_nothing(lab: Lab, hub_api: Client) -> None:
    wait_for("both spokes UP", lambda: _all_up(hub_api), 90)
    watches = []
    spoke2 = str(S2.nbma.ip)
    for _ in range(4):  # SAs torn down again and again; a new watcher joins each time
        # after a tear-down the hub may forget spoke2 until it is back (ClearPeer: NOT_FOUND)
        wait_for(
            "spoke2 known to the hub",
            lambda: any(p.key.remote_nbma == spoke2 for p in hub_api.peers()),
            120,
        )
        hub_api.clear_peer(remote_nbma=spoke2, scope="ipsec")
        time.sleep(0.3)
        watches.append(Recorder(hub_api, ["peer", "ipsec_sa"]))
        time.sleep(1.2)
    # recovery after four quick tear-downs can take a back-off round or two under emulation;
    # this test is about what the streams carry, not how fast the SA returns
    wait_for("both spokes UP after the churn", lambda: _all_up(hub_api), 240)
    for _ in range(10):  # compare in a quiet second: the reference is one more snapshot
        time.sleep(2)
        reference = Recorder(hub_api, ["peer", "ipsec_sa"])
        wait_for("the reference snapshot", reference.snapshot_done, 30)
        expected = _replay(reference.stop())
        results = [_replay(list(w.events)) for w in watches]
        if all(r == expected for r in results):
            break
    for w in watches:
        w.stop()
    assert len(expected["peer"]) == 2
    assert expected["ipsec_sa"]
    for r in results:
        assert r == expected


def test_configuration_round_trip_through_the_api(lab: Lab, hub_api: Client) -> None:
    path = lab.config_path(HUB)
    saved = path.read_text()
    running = hub_api.get_config("running")
    try:
        # an invalid configuration: diagnostics with lines, nothing applied
        bad = saved.replace("ip nhrp holdtime 60", "ip nhrp holdtime 999999")
        bad = bad.replace(" tunnel mode gre multipoint", " tunnel mode gre multipoint\n bogus x")
        verdict = hub_api.validate(bad)
        assert not verdict.valid
        lines = {
            d.line
            for d in verdict.diagnostics
            if d.severity == config_pb2.DIAGNOSTIC_SEVERITY_ERROR
        }
        assert len(lines) >= 2
        assert all(line > 0 for line in lines)
        rejected = hub_api.apply(bad)
        assert rejected.outcome == config_pb2.APPLY_OUTCOME_REJECTED
        assert hub_api.get_config("running").revision.digest == running.revision.digest
        # a valid change takes effect in nhrpd
        changed = saved.replace("ip nhrp holdtime 60", "ip nhrp holdtime 90")
        assert changed != saved
        result = hub_api.apply(changed, comment="lab test")
        assert result.outcome == config_pb2.APPLY_OUTCOME_APPLIED, result.message
        assert any("holdtime" in c.description for c in result.changes)
        nhrpd = lab.run("hub", ["vtysh", "-d", "nhrpd", "-c", "show running-config"]).stdout
        assert "ip nhrp holdtime 90" in nhrpd
        # save: the file is the running configuration, the old one kept
        saved_answer = hub_api.save()
        assert saved_answer.saved.digest == result.running.digest
        assert "ip nhrp holdtime 90" in path.read_text()
        # rollback to the previous running configuration
        back = hub_api.rollback("previous-running")
        assert back.outcome == config_pb2.APPLY_OUTCOME_APPLIED, back.message
        nhrpd = lab.run("hub", ["vtysh", "-d", "nhrpd", "-c", "show running-config"]).stdout
        assert "ip nhrp holdtime 90" not in nhrpd
        assert hub_api.get_config("running").revision.digest == running.revision.digest
        revisions = hub_api.config.ListConfigRevisions(
            config_service_pb2.ListConfigRevisionsRequest()
        ).revisions
        assert [r.origin.kind for r in revisions[:2]] == ["rollback", "api"]
    finally:
        path.write_text(saved)
        path.with_name(path.name + ".prev").unlink(missing_ok=True)
        if hub_api.get_config("running").revision.digest != running.revision.digest:
            hub_api.apply(saved)


def test_reflection_lists_and_calls_the_services_and_health_is_serving(
    lab: Lab, hub_api: Client
) -> None:
    """What grpcurl does (list, describe, call) with grpc's own reflection client. The
    hub's spokes are UP first: right after the lab comes up the supervisor has not observed
    them yet and ListPeers is rightly empty (an empty repeated field is absent from JSON)."""
    wait_for("both spokes UP through the API", lambda: _all_up(hub_api), 90)
    code = r"""
import json, sys, grpc
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase)
channel = grpc.insecure_channel(sys.argv[1])
db = ProtoReflectionDescriptorDatabase(channel)
services = sorted(db.get_services())
pool = descriptor_pool.DescriptorPool(db)
method = pool.FindServiceByName("frrdmvpn.v1.StateService").methods_by_name["ListPeers"]
request = message_factory.GetMessageClass(method.input_type)()
reply_class = message_factory.GetMessageClass(method.output_type)
call = channel.unary_unary("/frrdmvpn.v1.StateService/ListPeers",
    request_serializer=lambda m: m.SerializeToString(),
    response_deserializer=reply_class.FromString)
reply = json_format.MessageToDict(call(request, timeout=30))
peers = [p["key"]["remoteNbma"] for p in reply.get("peers", [])]
print(json.dumps({"services": services, "peers": peers}))
"""
    done = subprocess.run(
        [sys.executable, "-c", code, f"unix:{lab.api_socket('hub')}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    for name in (
        "frrdmvpn.v1.StateService",
        "frrdmvpn.v1.ConfigService",
        "frrdmvpn.v1.OperationsService",
        "frrdmvpn.v1.WatchService",
        "grpc.health.v1.Health",
    ):
        assert name in answer["services"]
    assert sorted(answer["peers"]) == sorted(SPOKES)
    health = health_pb2_grpc.HealthStub(hub_api.channel)
    for service in ("", "frrdmvpn.v1.StateService"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


def _health(lab: Lab, name: str) -> int | None:
    try:
        with client(lab, name) as api:
            stub = health_pb2_grpc.HealthStub(api.channel)
            return int(stub.Check(health_pb2.HealthCheckRequest(), timeout=5).status)
    except grpc.RpcError:
        return None


def test_health_is_serving_only_with_guards_and_configuration(lab: Lab) -> None:
    """spoke2's daemon restarted on a configuration it refuses: NOT_SERVING (the guards are
    in place, its SAs stay up); a good file and SIGHUP: SERVING."""
    path = lab.config_path(S2)
    good = path.read_text()
    sock = lab.api_socket("spoke2")
    try:
        path.write_text(good.replace("ip nhrp holdtime 60", "ip nhrp holdtime 0"))
        lab.kill("spoke2", "frrdmvpnd run", signal.SIGTERM)
        sock.unlink(missing_ok=True)
        lab.start_supervisor("spoke2")
        wait_for("spoke2's API socket", sock.exists, 60)
        wait_for("an answer from spoke2's health", lambda: _health(lab, "spoke2") is not None, 30)
        for _ in range(5):
            assert _health(lab, "spoke2") == health_pb2.HealthCheckResponse.NOT_SERVING
            time.sleep(1)
        with client(lab, "spoke2") as api:
            assert not api.node().ready
        assert guard_status(lab, "spoke2")["installed"]
        path.write_text(good)
        (pid,) = lab.find("spoke2", "frrdmvpnd run")
        os.kill(pid, signal.SIGHUP)
        wait_for(
            "spoke2 SERVING after SIGHUP",
            lambda: _health(lab, "spoke2") == health_pb2.HealthCheckResponse.SERVING,
            60,
        )
        with client(lab, "spoke2") as api:
            assert api.node().ready
    finally:
        path.write_text(good)


def _connect_as_nobody(lab: Lab, groups: str) -> subprocess.CompletedProcess[str]:
    code = (
        "import sys; from frrdmvpn.client import Client; "
        "print(Client(sys.argv[1], timeout=10).node().hostname)"
    )
    argv = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        *groups.split(),
        sys.executable,
        "-c",
        code,
        f"unix:{lab.api_socket('hub')}",
    ]
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd="/",
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )


def test_only_the_frrdmvpn_group_may_use_the_api(lab: Lab) -> None:
    sock = lab.api_socket("hub")
    st = sock.stat()
    assert st.st_mode & 0o777 == 0o660
    assert st.st_gid == grp.getgrnam("frrdmvpn").gr_gid
    outsider = _connect_as_nobody(lab, "--clear-groups")
    assert outsider.returncode != 0
    assert "Permission denied" in outsider.stderr or "UNAVAILABLE" in outsider.stderr
    member = _connect_as_nobody(lab, f"--groups={grp.getgrnam('frrdmvpn').gr_gid}")
    assert member.returncode == 0, member.stderr
    assert member.stdout.strip()


def test_malformed_calls_are_refused_and_the_server_keeps_serving(hub_api: Client) -> None:
    channel = hub_api.channel
    codes = []
    garbage = [os.urandom(n) for n in (1, 7, 64, 1024)] + [b"\xff" * 32, b"\x0a\xff\xff\xff\xff"]
    methods = (
        "/frrdmvpn.v1.StateService/ListPeers",
        "/frrdmvpn.v1.ConfigService/ApplyConfig",
        "/frrdmvpn.v1.OperationsService/ClearPeer",
        "/frrdmvpn.v1.StateService/GetPeer",
    )
    for method in methods:
        call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        for payload in garbage:
            try:
                call(payload, timeout=10)
                codes.append(grpc.StatusCode.OK)
            except grpc.RpcError as exc:
                codes.append(exc.code())
    allowed = {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.OK,
    }
    assert set(codes) <= allowed, codes
    assert sum(c != grpc.StatusCode.OK for c in codes) >= 10
    for bad in (("not-an-address", ""), ("", "300.1.1.1")):
        with pytest.raises(grpc.RpcError) as info:
            hub_api.peer(bad[0], bad[1])
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as info:
        hub_api.apply("x" * (5 * 1024 * 1024))
    assert info.value.code() in (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert len(hub_api.peers()) == 2  # still serving


def test_the_example_client_prints_the_hubs_peers(lab: Lab) -> None:
    """docs/examples/api_peers.py, run inside the hub as an operator would."""
    script = str(Path(__file__).resolve().parents[2] / "docs" / "examples" / "api_peers.py")
    done = lab.run("hub", [sys.executable, script], check=False)
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines()[1:]]
    assert {(r[0], r[1], r[2]) for r in rows} == {
        (nbma, str(node.overlay.ip), "UP") for nbma, node in SPOKES.items()
    }
