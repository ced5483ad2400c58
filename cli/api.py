"""What the shell asks frrdmvpnd, and the gRPC client that asks it.

:class:`ShellApi` is every call the shell makes (unit tests give the session a fake);
:class:`ShellClient` is :class:`frrdmvpn.client.Client` plus the few calls the shell needs
beyond it (an edit in a mode context, NHRP traffic, OSPF neighbours, clear with
``static``). A call the connection's role does not allow prints IOS's
``Command authorization failed.`` (:func:`error_text`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

import grpc

from frrdmvpn.client import DEFAULT_TARGET, Client, describe
from frrdmvpn.config.modes import ROOT, Context, Mode
from frrdmvpn.v1 import (
    config_pb2,
    config_service_pb2,
    operations_service_pb2,
    state_service_pb2,
)


class ShellApi(Protocol):
    """The calls the shell makes. Errors are :class:`grpc.RpcError`."""

    target: str

    def node(self) -> Any: ...

    def peers(self, full: bool = False, **filters: Any) -> list[Any]: ...

    def nhrp_cache(self, interface: str = "") -> list[Any]: ...

    def nhs(self, interface: str = "") -> list[Any]: ...

    def nhrp_traffic(self) -> Any: ...

    def ospf_neighbors(self) -> Any: ...

    def guard(self) -> Any: ...

    def authorization(self) -> Any: ...

    def decisions(self, page_size: int = 100) -> list[Any]: ...

    def role(self) -> str: ...

    def get_config(self, datastore: str = "running", reveal_secrets: bool = False) -> Any: ...

    def save(self) -> Any: ...

    def edit_line(self, context: Context, line: str) -> Any: ...

    def clear(
        self,
        *,
        remote_nbma: str = "",
        tunnel_address: str = "",
        scope: str = "ipsec",
        include_static: bool = False,
    ) -> list[Any]: ...

    def clear_counters(self, scope: str = "all") -> Any: ...

    def watch(
        self, kinds: Iterable[str] = (), snapshot: bool = True, timeout: float | None = None
    ) -> Any: ...


# --- configuration contexts <-> the API's ---------------------------------------------------


def mode_to_pb(mode: Mode) -> int:
    name = "GLOBAL" if mode is Mode.CONFIG else mode.name
    return int(config_pb2.ConfigMode.Value(f"CONFIG_MODE_{name}"))


def mode_from_pb(value: int) -> Mode:
    """The mode of an API ConfigMode (unknown or unset: global configuration mode)."""
    try:
        name = str(config_pb2.ConfigMode.Name(value))  # type: ignore[arg-type]
    except ValueError:
        return Mode.CONFIG
    name = name.removeprefix("CONFIG_MODE_")
    return Mode.__members__.get(name, Mode.CONFIG)


def context_to_pb(context: Context) -> config_pb2.ConfigContext:
    out = config_pb2.ConfigContext(mode=mode_to_pb(context.mode))  # type: ignore[arg-type]
    out.keys.extend(context.keys)
    return out


def context_from_pb(message: Any) -> Context:
    mode = mode_from_pb(message.mode)
    return ROOT if mode is Mode.CONFIG else Context(mode, tuple(message.keys))


# --- the client -------------------------------------------------------------------------------


class ShellClient(Client):
    """:class:`frrdmvpn.client.Client` with the shell's extra calls."""

    def __init__(self, target: str | None = None, **kwargs: Any) -> None:
        super().__init__(target, **kwargs)

    def nhrp_traffic(self) -> Any:
        request = state_service_pb2.GetNhrpTrafficRequest()
        return self.state.GetNhrpTraffic(request, timeout=self.timeout)

    def ospf_neighbors(self) -> Any:
        request = state_service_pb2.ListOspfNeighborsRequest(page_size=1000)
        first = self.state.ListOspfNeighbors(request, timeout=self.timeout)
        while first.next_page_token:
            request.page_token = first.next_page_token
            page = self.state.ListOspfNeighbors(request, timeout=self.timeout)
            first.neighbors.extend(page.neighbors)
            first.next_page_token = page.next_page_token
        return first

    def edit_line(self, context: Context, line: str) -> Any:
        """One configuration-mode line in ``context``, applied at once if the result is
        valid (IOS): ``EditConfig(commit=IF_VALID)``."""
        request = config_service_pb2.EditConfigRequest(
            lines=[line], commit=config_service_pb2.EDIT_COMMIT_IF_VALID
        )
        request.context.CopyFrom(context_to_pb(context))
        return self.config.EditConfig(request, timeout=self.timeout)

    def clear(
        self,
        *,
        remote_nbma: str = "",
        tunnel_address: str = "",
        scope: str = "ipsec",
        include_static: bool = False,
    ) -> list[Any]:
        name = "CLEAR_SCOPE_" + scope.upper().replace("+", "_AND_")
        request = operations_service_pb2.ClearPeerRequest(
            peer=self._selector(remote_nbma, tunnel_address),
            scope=operations_service_pb2.ClearScope.Value(name),
            include_static=include_static,
        )
        return list(self.ops.ClearPeer(request, timeout=self.timeout).results)


AUTHORIZATION_FAILED = "Command authorization failed."
"""What IOS prints when AAA command authorization refuses a command (the daemon's
PERMISSION_DENIED: the connection's role does not allow the call)."""


def error_text(error: grpc.RpcError, target: str = DEFAULT_TARGET) -> str:
    """One IOS-style line for an API error."""
    code = error.code() if hasattr(error, "code") else None
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return AUTHORIZATION_FAILED
    if code == grpc.StatusCode.UNAVAILABLE:
        details = error.details() if hasattr(error, "details") else ""
        return f"% frrdmvpnd is not reachable at {target}: {details}"
    return f"% {describe(error)}"
