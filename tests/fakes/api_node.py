"""frrdmvpnd's API server in process over the fake world: a node, its observations and clients."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any, cast

import grpc

from frrdmvpn.api import convert
from frrdmvpn.api.backend import Backend, results
from frrdmvpn.api.server import ApiServer
from frrdmvpn.api.state import Observed
from frrdmvpn.codec.vici import Message
from frrdmvpn.config.model import Config
from frrdmvpn.config.parse import parse_strict
from frrdmvpn.core.supervisor import Role, State, SupervisedPeer
from frrdmvpn.datastores import ApplyReport, Datastores
from frrdmvpn.v1 import (
    config_service_pb2_grpc,
    operations_service_pb2_grpc,
    peer_pb2,
    state_service_pb2_grpc,
    watch_service_pb2_grpc,
)
from frrdmvpn.v1 import watch_service_pb2 as wpb
from tests.fakes.world import EXAMPLES, World

HUB_TEXT = (EXAMPLES / "lab-hub.conf").read_text()

HUB2_TEXT = HUB_TEXT.replace(" ip mtu 1400", " ip mtu 1380")

LOCAL = "198.51.100.1"

NOW = 1_790_000_000.0

MONO = 1_000.0

SC = grpc.StatusCode


# --- a node with peers ------------------------------------------------------------------
def remote(i: int) -> str:
    """198.51.100.2, .3 ... .201, then 198.51.101.2...: text order is not address order."""
    return f"198.51.{100 + i // 200}.{2 + i % 200}"


def tunnel(i: int) -> str:
    return f"192.0.2.{10 + i}" if i < 240 else f"192.0.3.{i - 230}"


def list_sa(i: int, traffic: int = 0) -> Message:
    child = {
        "name": b"dmvpn",
        "uniqueid": str(1000 + i).encode(),
        "reqid": b"1",
        "state": b"INSTALLED",
        "mode": b"TRANSPORT",
        "protocol": b"ESP",
        "spi-in": b"c0000001",
        "spi-out": b"c0000002",
        "bytes-in": str(100 * i + traffic).encode(),
        "packets-in": b"7",
        "bytes-out": b"300",
        "packets-out": b"3",
        "install-time": b"20",
        "local-ts": [LOCAL.encode() + b"/32[gre]"],
        "remote-ts": [remote(i).encode() + b"/32[gre]"],
    }
    ike: dict[str, Any] = {
        "uniqueid": str(i + 1).encode(),
        "version": b"2",
        "state": b"ESTABLISHED",
        "local-host": LOCAL.encode(),
        "remote-host": remote(i).encode(),
        "remote-id": f"spoke{i}".encode(),
        "established": b"30",
        "child-sas": {f"dmvpn-{1000 + i}": child},
    }
    return {"dmvpn": ike}


def observation(n: int, *, down: Iterable[int] = (), traffic: int = 0) -> Observed:
    peers, cache = [], []
    for i in range(n):
        state = State.DOWN if i in down else State.UP
        peers.append(
            SupervisedPeer(
                IPv4Address(LOCAL),
                IPv4Address(remote(i)),
                Role.DYNAMIC,
                state,
                since=MONO - 10,
                reason="up" if state else "down",
            )
        )
        cache.append(
            {
                "interface": "dmvpn0",
                "type": "dynamic",
                "protocol": tunnel(i),
                "nbma": remote(i),
                "claimed_nbma": remote(i),
                "used": False,
                "timeout": True,
                "auth": False,
                "identity": f"spoke{i}",
            }
        )
    sas = [list_sa(i, traffic) for i in range(n) if i not in down]
    return Observed(tuple(peers), tuple(convert.sa_records(sas)), tuple(cache), (), NOW, NOW - MONO)


def observe_counters(backend: Backend) -> None:
    """Feed ``backend`` an installed guard that dropped 5 packets in and 1 out, and a
    decision journal with 7 accepted and 2 denied bindings."""
    backend.guard_observed(
        True,
        {"gre_in_cleartext": (5, 500), "gre_out_cleartext": (1, 90)},
        {"counts": {"in": 5, "out": 1}, "last": []},
        {},
    )
    backend.journal_read(
        {"started": 1.0, "counters": {"accepted": 7, "denied": 2}, "decisions": []}
    )


# --- fakes --------------------------------------------------------------------------------
@dataclass
class FakeOperations:
    calls: list[tuple[str, Any]] = field(default_factory=list)

    async def clear(self, peers: list[peer_pb2.Peer], **kw: Any) -> list[Any]:
        self.calls.append(("clear", ([p.key.remote_nbma for p in peers], kw)))
        return results(peers, True, "cleared")

    async def reinitiate(self, peers: list[peer_pb2.Peer]) -> list[Any]:
        self.calls.append(("reinitiate", [p.key.remote_nbma for p in peers]))
        return results(peers, True, "initiation requested")

    def clear_counters(self, scope: int, peers: list[peer_pb2.Peer] | None) -> tuple[int, float]:
        self.calls.append(("clear_counters", scope))
        return (0 if peers is None else len(peers)), NOW


async def fake_show_json(command: str, daemon: str = "nhrpd") -> Any:
    if "ospf" in command:
        return {
            "neighbors": {
                "192.0.2.11": [
                    {
                        "ifaceName": "dmvpn0:192.0.2.1",
                        "nbrState": "Full/DROther",
                        "nbrPriority": 1,
                        "ifaceAddress": "192.0.2.11",
                        "deadTimeMsecs": 7000,
                    }
                ]
            }
        }
    return {
        "table": [
            {
                "interface": "dmvpn0",
                "type": "cached",
                "prefix": "203.0.113.16/28",
                "via": "192.0.2.11",
                "identity": "spoke1",
            }
        ]
    }


class FakeFrr:
    """:class:`frrdmvpn.api.backend.FrrShow` answering :func:`fake_show_json`."""

    async def show_json(self, command: str, daemon: str = "nhrpd") -> Any:
        return await fake_show_json(command, daemon)


@dataclass
class Node:
    """A server and a client of it."""

    backend: Backend
    server: ApiServer
    channel: grpc.aio.Channel
    operations: FakeOperations
    world: World
    socket: Path

    @property
    def state(self) -> state_service_pb2_grpc.StateServiceAsyncStub:
        return cast(
            "state_service_pb2_grpc.StateServiceAsyncStub",
            state_service_pb2_grpc.StateServiceStub(self.channel),
        )

    @property
    def config(self) -> config_service_pb2_grpc.ConfigServiceAsyncStub:
        return cast(
            "config_service_pb2_grpc.ConfigServiceAsyncStub",
            config_service_pb2_grpc.ConfigServiceStub(self.channel),
        )

    @property
    def ops(self) -> operations_service_pb2_grpc.OperationsServiceAsyncStub:
        return cast(
            "operations_service_pb2_grpc.OperationsServiceAsyncStub",
            operations_service_pb2_grpc.OperationsServiceStub(self.channel),
        )

    @property
    def watch(self) -> watch_service_pb2_grpc.WatchServiceAsyncStub:
        return cast(
            "watch_service_pb2_grpc.WatchServiceAsyncStub",
            watch_service_pb2_grpc.WatchServiceStub(self.channel),
        )


def world_ports(world: World, *targets: Config) -> Callable[[], Any]:
    world.known.extend(targets)
    return lambda: world.ports(targets[0])


def run(
    tmp_path: Path, body: Callable[[Node], Awaitable[None]], *, peers: int = 0, **server_kw: Any
) -> None:
    async def main() -> None:
        world = World()
        configs = [parse_strict(HUB_TEXT), parse_strict(HUB2_TEXT)]
        stores = Datastores(
            saved=tmp_path / "etc" / "frrdmvpn.conf",
            running=tmp_path / "run" / "running.conf",
            ports=world_ports(world, *configs),
        )
        backend = Backend(stores, hostname="hub", frr=FakeFrr())
        loop = asyncio.get_running_loop()

        def config_changed(what: str, report: ApplyReport | None) -> None:
            loop.call_soon_threadsafe(backend.config_changed, what, report)

        stores.on_change = config_changed
        if peers:
            backend.observed(observation(peers))
        operations = FakeOperations()
        sock, admin = tmp_path / "api.sock", tmp_path / "admin.sock"
        api = ApiServer(
            backend,
            operations,
            socket_path=sock,
            group=None,
            admin_socket=admin,
            admin_group=None,
            **server_kw,
        )
        await api.start()
        channel = grpc.aio.insecure_channel(f"unix:{admin}")  # may do everything
        try:
            await body(Node(backend, api, channel, operations, world, sock))
        finally:
            await channel.close(None)
            await api.stop(0)

    asyncio.run(main())


async def read(call: Any) -> wpb.WatchResponse:
    """The next message of a Watch stream."""
    message = await call.read()
    assert isinstance(message, wpb.WatchResponse), message
    return message


async def code_of(call: Awaitable[Any]) -> grpc.StatusCode:
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return SC.OK


# answers a malformed request may get; never INTERNAL or UNKNOWN (a handler that broke)
REFUSALS = {
    SC.OK,
    SC.INVALID_ARGUMENT,
    SC.NOT_FOUND,
    SC.FAILED_PRECONDITION,
    SC.ABORTED,
    SC.RESOURCE_EXHAUSTED,
}
