"""A Python client of frrdmvpnd's gRPC API, for scripts and for frrdmvpn-shell.

    from frrdmvpn.client import Client
    with Client() as api:      # the administrator's socket if this process may open it
        for peer in api.peers():
            print(peer.key.remote_nbma, api.state_name(peer.state))

Every method returns the API's protobuf messages (``frrdmvpn.v1``); errors are
:class:`grpc.RpcError` with the daemon's status code and message (:func:`describe` makes a
one-line text of one).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc

from frrdmvpn.v1 import (
    config_pb2,
    config_service_pb2,
    config_service_pb2_grpc,
    operations_service_pb2,
    operations_service_pb2_grpc,
    peer_pb2,
    state_service_pb2,
    state_service_pb2_grpc,
    types_pb2,
    watch_service_pb2,
    watch_service_pb2_grpc,
)

DEFAULT_TARGET = "unix:/run/frrdmvpn/frrdmvpn.sock"  # operators (group frrdmvpn)
ADMIN_TARGET = "unix:/run/frrdmvpn/frrdmvpn-admin.sock"  # administrators (frrdmvpn-admin)
DEFAULT_TIMEOUT = 30.0
ROLES = {types_pb2.ROLE_OPERATOR: "operator", types_pb2.ROLE_ADMINISTRATOR: "administrator"}


def default_target() -> str:
    """The administrators' socket when this process may open it (root, a member of
    ``frrdmvpn-admin``), else the operators'. The daemon, not this choice, decides what a
    connection may do."""
    admin = ADMIN_TARGET.removeprefix("unix:")
    return ADMIN_TARGET if os.access(admin, os.R_OK | os.W_OK) else DEFAULT_TARGET


def describe(error: grpc.RpcError) -> str:
    """``NOT_FOUND: no peer with remote_nbma 192.0.2.9``."""
    code = error.code() if hasattr(error, "code") else None
    details = error.details() if hasattr(error, "details") else str(error)
    return f"{code.name if code is not None else 'ERROR'}: {details}"


class Client:
    """One connection to frrdmvpnd (a unix socket by default, see :func:`default_target`;
    TCP needs mutual TLS)."""

    def __init__(
        self,
        target: str | None = None,
        *,
        tls_ca: Path | None = None,
        tls_cert: Path | None = None,
        tls_key: Path | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.timeout = timeout
        target = target or default_target()
        self.target = target
        if target.startswith("unix:"):
            self.channel = grpc.insecure_channel(target)
        else:
            if tls_ca is None or tls_cert is None or tls_key is None:
                raise ValueError("a TCP target needs tls_ca, tls_cert and tls_key (mutual TLS)")
            creds = grpc.ssl_channel_credentials(
                tls_ca.read_bytes(), tls_key.read_bytes(), tls_cert.read_bytes()
            )
            self.channel = grpc.secure_channel(target, creds)
        self.state = state_service_pb2_grpc.StateServiceStub(self.channel)
        self.config = config_service_pb2_grpc.ConfigServiceStub(self.channel)
        self.ops = operations_service_pb2_grpc.OperationsServiceStub(self.channel)
        self.watcher = watch_service_pb2_grpc.WatchServiceStub(self.channel)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self.channel.close()

    def _all_pages(self, call: Any, request: Any, field: str) -> list[Any]:
        """Every item of a paginated listing (``field`` of each page)."""
        out: list[Any] = []
        while True:
            page = call(request, timeout=self.timeout)
            out.extend(getattr(page, field))
            if not page.next_page_token:
                return out
            request.page_token = page.next_page_token

    @staticmethod
    def state_name(state: int) -> str:
        """``PEER_STATE_UP`` -> ``UP``."""
        return str(types_pb2.PeerState.Name(state)).removeprefix("PEER_STATE_")  # type: ignore[arg-type]

    # --- state --------------------------------------------------------------------------
    def node(self) -> Any:
        return self.state.GetNode(state_service_pb2.GetNodeRequest(), timeout=self.timeout).node

    def role(self) -> str:
        """What this connection may do: ``operator`` (show, clear, debug, watch),
        ``administrator`` (also configure, reveal secrets), ``unknown`` (an older daemon)."""
        answer = self.state.GetNode(state_service_pb2.GetNodeRequest(), timeout=self.timeout)
        return ROLES.get(answer.caller_role, "unknown")

    def peers(self, full: bool = False, **filters: Any) -> list[peer_pb2.Peer]:
        """Every peer (all pages); ``filters`` are PeerFilter fields."""
        view = peer_pb2.PEER_VIEW_FULL if full else peer_pb2.PEER_VIEW_BASIC
        request = state_service_pb2.ListPeersRequest(
            filter=peer_pb2.PeerFilter(**filters), view=view, page_size=1000
        )
        return self._all_pages(self.state.ListPeers, request, "peers")

    def peer(self, remote_nbma: str = "", tunnel_address: str = "", full: bool = False) -> Any:
        view = peer_pb2.PEER_VIEW_FULL if full else peer_pb2.PEER_VIEW_BASIC
        request = state_service_pb2.GetPeerRequest(view=view)
        if remote_nbma:
            request.remote_nbma = remote_nbma
        else:
            request.tunnel_address = tunnel_address
        return self.state.GetPeer(request, timeout=self.timeout).peer

    def nhrp_cache(self, interface: str = "") -> list[Any]:
        request = state_service_pb2.ListNhrpCacheRequest(interface=interface, page_size=1000)
        return self._all_pages(self.state.ListNhrpCache, request, "entries")

    def nhs(self, interface: str = "") -> list[Any]:
        request = state_service_pb2.ListNhsRequest(interface=interface)
        return list(self.state.ListNhs(request, timeout=self.timeout).nhs)

    def guard(self) -> Any:
        request = state_service_pb2.GetGuardStatusRequest()
        return self.state.GetGuardStatus(request, timeout=self.timeout).guard

    def authorization(self) -> Any:
        request = state_service_pb2.GetAuthorizationStatusRequest()
        return self.state.GetAuthorizationStatus(request, timeout=self.timeout)

    def decisions(self, page_size: int = 100) -> list[Any]:
        request = state_service_pb2.ListAuthorizationDecisionsRequest(page_size=page_size)
        return list(self.state.ListAuthorizationDecisions(request, timeout=self.timeout).decisions)

    # --- configuration ------------------------------------------------------------------
    def get_config(self, datastore: str = "running", reveal_secrets: bool = False) -> Any:
        """A datastore's text and tree, secrets masked (``<removed>``) unless
        ``reveal_secrets`` (administrators only)."""
        store = getattr(config_pb2, f"CONFIG_DATASTORE_{datastore.upper().replace('-', '_')}")
        request = config_service_pb2.GetConfigRequest(
            datastore=store, reveal_secrets=reveal_secrets
        )
        return self.config.GetConfig(request, timeout=self.timeout)

    def validate(self, text: str, reveal_secrets: bool = False) -> Any:
        request = config_service_pb2.ValidateConfigRequest(text=text, reveal_secrets=reveal_secrets)
        return self.config.ValidateConfig(request, timeout=self.timeout)

    def apply(self, text: str, dry_run: bool = False, comment: str = "") -> Any:
        request = config_service_pb2.ApplyConfigRequest(text=text, dry_run=dry_run, comment=comment)
        return self.config.ApplyConfig(request, timeout=self.timeout).result

    def save(self) -> Any:
        return self.config.SaveConfig(config_service_pb2.SaveConfigRequest(), timeout=self.timeout)

    def rollback(self, target: str | int = "previous-running", dry_run: bool = False) -> Any:
        request = config_service_pb2.RollbackConfigRequest(dry_run=dry_run)
        if isinstance(target, int):
            request.revision_number = target
        else:
            name = "ROLLBACK_TARGET_" + target.upper().replace("-", "_")
            request.well_known = getattr(config_service_pb2, name)
        return self.config.RollbackConfig(request, timeout=self.timeout).result

    def edit(self, lines: Iterable[str], commit: bool = True) -> Any:
        """Configuration-mode lines from global configuration mode (like ``conf t``)."""
        request = config_service_pb2.EditConfigRequest(
            lines=list(lines),
            commit=config_service_pb2.EDIT_COMMIT_IF_VALID
            if commit
            else config_service_pb2.EDIT_COMMIT_NONE,
        )
        request.context.mode = config_pb2.CONFIG_MODE_GLOBAL
        return self.config.EditConfig(request, timeout=self.timeout)

    # --- operations ---------------------------------------------------------------------
    @staticmethod
    def _selector(remote_nbma: str = "", tunnel_address: str = "") -> types_pb2.PeerSelector:
        sel = types_pb2.PeerSelector()
        if remote_nbma:
            sel.remote_nbma = remote_nbma
        elif tunnel_address:
            sel.tunnel_address = tunnel_address
        else:
            sel.all.SetInParent()
        return sel

    def clear_peer(
        self, remote_nbma: str = "", tunnel_address: str = "", scope: str = "ipsec"
    ) -> list[Any]:
        """``clear crypto session remote X`` (scope ipsec), ``clear ip nhrp`` (nhrp, all)."""
        name = "CLEAR_SCOPE_" + scope.upper().replace("-", "_").replace("+", "_AND_")
        request = operations_service_pb2.ClearPeerRequest(
            peer=self._selector(remote_nbma, tunnel_address),
            scope=getattr(operations_service_pb2, name),
        )
        return list(self.ops.ClearPeer(request, timeout=self.timeout).results)

    def reinitiate(self, remote_nbma: str = "", tunnel_address: str = "") -> list[Any]:
        request = operations_service_pb2.ReinitiatePeerRequest(
            peer=self._selector(remote_nbma, tunnel_address)
        )
        return list(self.ops.ReinitiatePeer(request, timeout=self.timeout).results)

    def clear_counters(self, scope: str = "all") -> Any:
        request = operations_service_pb2.ClearCountersRequest(
            scope=getattr(operations_service_pb2, "COUNTER_SCOPE_" + scope.upper())
        )
        return self.ops.ClearCounters(request, timeout=self.timeout)

    # --- watch --------------------------------------------------------------------------
    def watch(
        self, kinds: Iterable[str] = (), snapshot: bool = True, timeout: float | None = None
    ) -> Any:
        """The Watch stream (snapshot first unless ``snapshot`` is False); ``kinds`` by
        name: ``peer``, ``ipsec_sa``, ``nhrp_cache``, ``nhs``, ``node``, ``guard``,
        ``authorization``, ``config``. Cancel it with ``.cancel()`` on the iterator."""
        request = watch_service_pb2.WatchRequest(
            kinds=[getattr(watch_service_pb2, "EVENT_KIND_" + k.upper()) for k in kinds],
            skip_snapshot=not snapshot,
        )
        return self.watcher.Watch(request, timeout=timeout)
