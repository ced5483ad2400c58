"""The shell's session over a fake API."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message

from cli.session import Session
from frrdmvpn.api.backend import diagnostic_message
from frrdmvpn.api.config_tree import config_tree, context_message
from frrdmvpn.config.canonical_text import render
from frrdmvpn.config.edit import apply_line
from frrdmvpn.config.modes import Context
from frrdmvpn.config.parse import parse_strict
from frrdmvpn.config.secrets import mask_text
from frrdmvpn.v1 import (
    config_pb2,
    config_service_pb2,
    nhrp_pb2,
    node_pb2,
    operations_service_pb2,
    peer_pb2,
    state_service_pb2,
    types_pb2,
)
from tests.fakes.api_node import HUB_TEXT

NOW = 1_790_000_000.0


class FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


class FakeCall:
    """A Watch stream: the given events, then it waits until cancelled."""

    def __init__(self, events: Iterable[Any]) -> None:
        self.events = list(events)
        self.cancelled = threading.Event()

    def __iter__(self) -> Iterator[Any]:
        yield from self.events
        self.cancelled.wait(10)
        raise FakeRpcError(grpc.StatusCode.CANCELLED, "cancelled")

    def cancel(self) -> None:
        self.cancelled.set()


def peer(i: int, state: types_pb2.PeerState.ValueType = types_pb2.PEER_STATE_UP) -> peer_pb2.Peer:
    p = peer_pb2.Peer(interface="Tunnel0", tunnel_address=f"192.0.2.{10 + i}", state=state)
    p.key.local_nbma = "198.51.100.1"
    p.key.remote_nbma = f"198.51.100.{2 + i}"
    return p


class FakeApi:
    """The API as the shell uses it, over a real configuration and apply_line."""

    target = "unix:/fake/api.sock"

    def __init__(self) -> None:
        self.config = parse_strict(HUB_TEXT)
        self.saved: str | None = None
        self.calls: list[tuple[str, Any]] = []
        self.all_peers = [peer(i) for i in range(3)]
        self.events: list[Any] = []
        self.watches: list[FakeCall] = []
        self.clear_done = True
        self.reject_apply = False
        self.down = False
        self.operator = False  # the connection's role: operator, else administrator

    def _called(self, name: str, value: Any = None) -> None:
        if self.down:
            raise FakeRpcError(grpc.StatusCode.UNAVAILABLE, "connection refused")
        self.calls.append((name, value))

    def _admin(self, call: str) -> None:
        """What the daemon's interceptor does to an operator."""
        if self.operator:
            raise FakeRpcError(
                grpc.StatusCode.PERMISSION_DENIED,
                f"ConfigService.{call} needs the administrator role",
            )

    def role(self) -> str:
        self._called("role")
        return "operator" if self.operator else "administrator"

    def node(self) -> Any:
        self._called("node")
        node = node_pb2.NodeSummary(
            hostname="hub-node", version="0.1.0", api_versions=["v1"], ready=True
        )
        node.started_at.FromSeconds(int(NOW) - 3 * 3600 - 120)
        return node

    def peers(self, full: bool = False, **filters: Any) -> list[Any]:
        self._called("peers", (full, filters))
        wanted = filters.get("remote_nbma_addresses")
        return [p for p in self.all_peers if not wanted or p.key.remote_nbma in wanted]

    def nhrp_cache(self, interface: str = "") -> list[Any]:
        self._called("nhrp_cache")
        return [nhrp_pb2.NhrpCacheEntry(interface="Tunnel0", protocol_address="192.0.2.10")]

    def nhs(self, interface: str = "") -> list[Any]:
        self._called("nhs")
        return [nhrp_pb2.Nhs(interface="Tunnel0", protocol_address="192.0.2.1")]

    def nhrp_traffic(self) -> Any:
        self._called("nhrp_traffic")
        return state_service_pb2.GetNhrpTrafficResponse()

    def ospf_neighbors(self) -> Any:
        self._called("ospf_neighbors")
        return state_service_pb2.ListOspfNeighborsResponse(ospf_available=True)

    def guard(self) -> Any:
        self._called("guard")
        return state_service_pb2.GetGuardStatusResponse().guard

    def authorization(self) -> Any:
        self._called("authorization")
        return state_service_pb2.GetAuthorizationStatusResponse(decisions_kept=5)

    def decisions(self, page_size: int = 100) -> list[Any]:
        self._called("decisions")
        return []

    def get_config(self, datastore: str = "running", reveal_secrets: bool = False) -> Any:
        self._called("get_config", (datastore, reveal_secrets))
        if reveal_secrets:
            self._admin("GetConfig with reveal_secrets")
        if datastore == "saved":
            if self.saved is None:
                raise FakeRpcError(grpc.StatusCode.NOT_FOUND, "no saved configuration")
            text = self.saved
        else:
            text = render(self.config)
        text = text if reveal_secrets else mask_text(text)
        return config_service_pb2.GetConfigResponse(text=text, tree=config_tree(text))

    def save(self) -> Any:
        self._called("save")
        self._admin("SaveConfig")
        self.saved = render(self.config)
        return config_service_pb2.SaveConfigResponse(path="/etc/frrdmvpn/frrdmvpn.conf")

    def edit_line(self, context: Context, line: str) -> Any:
        self._called("edit_line", (context, line))
        self._admin("EditConfig")
        result = apply_line(self.config, context, line)
        out = config_service_pb2.EditConfigResponse()
        if result.diagnostics:
            out.context.CopyFrom(context_message(context))
            out.diagnostics.extend(diagnostic_message(d) for d in result.diagnostics)
            return out
        out.lines_accepted = 1
        out.context.CopyFrom(context_message(result.context))
        if self.reject_apply:
            out.candidate_pending = True
            out.apply.outcome = config_pb2.APPLY_OUTCOME_REJECTED
            out.apply.diagnostics.add(
                message="Tunnel1: ip address is required",
                severity=config_pb2.DIAGNOSTIC_SEVERITY_ERROR,
            )
        else:
            self.config = result.config
            out.apply.outcome = config_pb2.APPLY_OUTCOME_APPLIED
        return out

    def clear(self, **kw: Any) -> list[Any]:
        self._called("clear", kw)
        r = operations_service_pb2.PeerOperationResult(
            done=self.clear_done, message="nothing to clear"
        )
        r.peer.remote_nbma = kw.get("remote_nbma") or "198.51.100.2"
        return [r]

    def clear_counters(self, scope: str = "all") -> Any:
        self._called("clear_counters", scope)
        return operations_service_pb2.ClearCountersResponse()

    def watch(
        self, kinds: Iterable[str] = (), snapshot: bool = True, timeout: float | None = None
    ) -> Any:
        self._called("watch", (list(kinds), snapshot))
        call = FakeCall(self.events)
        self.watches.append(call)
        return call


class FakeRender:
    """Renderers that say what they were given."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)

        def renderer(*args: Any, **kwargs: Any) -> str:
            self.calls.append((name, args, kwargs))
            return f"{name} UP\n  {name} line DOWN\nlast line UP\n"

        return renderer

    @staticmethod
    def as_json(message_or_list: Message | Sequence[Message]) -> str:
        if isinstance(message_or_list, Message):
            return json_format.MessageToJson(message_or_list)
        return json.dumps([json_format.MessageToDict(m) for m in message_or_list], indent=2)


def session_of(api: FakeApi | None = None, **kw: Any) -> tuple[Session, FakeApi, FakeRender]:
    api = api or FakeApi()
    fake = FakeRender()
    return Session(api, render=fake, clock=lambda: NOW, **kw), api, fake
