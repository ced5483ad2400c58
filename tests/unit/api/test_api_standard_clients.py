"""The standard gRPC clients against frrdmvpnd's own health and reflection services: the
grpcio-health-checking and grpcio-reflection packages (development dependencies, the test
oracles) check health, list, describe and call the API as grpc_health_probe and grpcurl do.

The client runs in a process of its own: those packages register the same protocol files
(grpc/health/v1/health.proto, ...) in protobuf's process-wide pool as frrdmvpn's generated
modules, so one process cannot load both.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes.api_node import Node, remote, run

pytestmark = pytest.mark.unit

CLIENT = r"""
import json, sys
import grpc
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase)

assert "frrdmvpn" not in sys.modules
channel = grpc.insecure_channel(sys.argv[1])
health = health_pb2_grpc.HealthStub(channel)
name = health_pb2.HealthCheckResponse.ServingStatus.Name
out = {"check": {}}
for service in ("", "frrdmvpn.v1.StateService"):
    request = health_pb2.HealthCheckRequest(service=service)
    out["check"][service] = name(health.Check(request, timeout=10).status)
try:
    health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=10)
except grpc.RpcError as exc:
    out["unknown"] = exc.code().name
watch = health.Watch(health_pb2.HealthCheckRequest(service=""), timeout=10)
out["watch"] = name(next(watch).status)
watch.cancel()

db = ProtoReflectionDescriptorDatabase(channel)
out["services"] = sorted(db.get_services())
pool = descriptor_pool.DescriptorPool(db)

def state_call(name):  # an empty request, its types from reflection only
    method = pool.FindServiceByName("frrdmvpn.v1.StateService").methods_by_name[name]
    reply_class = message_factory.GetMessageClass(method.output_type)
    call = channel.unary_unary(f"/frrdmvpn.v1.StateService/{name}",
                               request_serializer=lambda m: m.SerializeToString(),
                               response_deserializer=reply_class.FromString)
    reply = call(message_factory.GetMessageClass(method.input_type)(), timeout=10)
    return json_format.MessageToDict(reply)

out["node"] = state_call("GetNode")["node"]["hostname"]
out["peers"] = [p["key"]["remoteNbma"] for p in state_call("ListPeers").get("peers", [])]
out["enum"] = [v.name for v in pool.FindEnumTypeByName("frrdmvpn.v1.PeerState").values][:2]
print(json.dumps(out))
"""


def test_grpcs_own_clients_check_health_and_reflect_the_api(tmp_path: Path) -> None:
    async def body(node: Node) -> None:
        await node.server.set_serving(True)
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", CLIENT, f"unix:{node.socket}"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        out = json.loads(done.stdout)
        assert out["check"] == {"": "SERVING", "frrdmvpn.v1.StateService": "SERVING"}
        assert out["unknown"] == "NOT_FOUND"
        assert out["watch"] == "SERVING"
        assert out["services"] == sorted(
            [
                "frrdmvpn.v1.ConfigService",
                "frrdmvpn.v1.OperationsService",
                "frrdmvpn.v1.StateService",
                "frrdmvpn.v1.WatchService",
                "grpc.health.v1.Health",
                "grpc.reflection.v1alpha.ServerReflection",
            ]
        )
        assert out["node"] == "hub"
        # messages from other files (Peer, its key, Timestamp) decode as the server sent them
        assert sorted(out["peers"]) == sorted([remote(0), remote(1)])
        assert out["enum"] == ["PEER_STATE_UNSPECIFIED", "PEER_STATE_DOWN"]

    run(tmp_path, body, peers=2)
