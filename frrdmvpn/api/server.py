"""The gRPC API (frrdmvpn.v1): a thin adapter over :class:`~frrdmvpn.api.backend.Backend`.

Handlers check their request, call the backend, and build the answer; errors become status
codes with a message an operator can act on (INVALID_ARGUMENT for a bad request, NOT_FOUND,
FAILED_PRECONDITION for a stale digest or a configuration that cannot be applied, ABORTED
when the configuration changed meanwhile, PERMISSION_DENIED for a call the connection's
role does not allow). The daemon listens on two unix sockets, 0660 each: ``frrdmvpn.sock``
(group ``frrdmvpn``, operators) and ``frrdmvpn-admin.sock`` (group ``frrdmvpn-admin``,
administrators), and, only if asked, on TCP with mutual TLS (the client certificate says
the role). gRPC health and reflection are served too; health says SERVING once the guards
are installed and the configuration applied. Secrets leave only masked, unless an
administrator asks (``reveal_secrets``).
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import ipaddress
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import grpc
from google.protobuf.message import Message

from frrdmvpn.adapters import trusted_files
from frrdmvpn.adapters.api_front import UNKNOWN, Caller, UnixFront, tcp_caller
from frrdmvpn.adapters.unix_server import principal_of_uid
from frrdmvpn.api import request_rules
from frrdmvpn.api import state as api_state
from frrdmvpn.api.backend import (
    Backend,
    OperationError,
    apply_result,
    diagnostic_message,
    revision_message,
)
from frrdmvpn.api.config_tree import MODE_OF, config_tree, context_message
from frrdmvpn.api.health import NOT_SERVING, SERVING, HealthService
from frrdmvpn.api.operations import PeerOperations
from frrdmvpn.api.reflection import ReflectionService
from frrdmvpn.api.request_rules import BadRequestError
from frrdmvpn.api.roles import (
    Authorize,
    Role,
    RoleOf,
    by_certificate,
    caller_role,
    fixed,
    stream_behaviour,
    unary_behaviour,
)
from frrdmvpn.api.watch import Subscription, TooManyWatchesError
from frrdmvpn.config.diagnostics import ConfigError
from frrdmvpn.config.modes import ROOT, Context, Mode
from frrdmvpn.config.secrets import mask_line, mask_text
from frrdmvpn.config.text import first_refused, lines, message
from frrdmvpn.core.admission import Admission
from frrdmvpn.datastores import ConflictError, Datastores, Revision, digest
from frrdmvpn.grpc_std import health_pb2, health_pb2_grpc, reflection_pb2_grpc
from frrdmvpn.v1 import (
    config_pb2,
    config_service_pb2,
    config_service_pb2_grpc,
    nhrp_pb2,
    operations_service_pb2,
    operations_service_pb2_grpc,
    peer_pb2,
    state_service_pb2,
    state_service_pb2_grpc,
    types_pb2,
    watch_service_pb2,
    watch_service_pb2_grpc,
)
from frrdmvpn.v1 import watch_service_pb2 as wpb

log = logging.getLogger("frrdmvpn.api")

SOCKET = Path("/run/frrdmvpn/frrdmvpn.sock")
GROUP = "frrdmvpn"  # operators
ADMIN_GROUP = "frrdmvpn-admin"  # administrators
MAX_MESSAGE = 4 * 1024 * 1024  # requests larger than this are refused by gRPC itself
MAX_TEXT = 1024 * 1024  # a configuration text, in bytes (UTF-8)
MAX_LINE = 4096  # characters of one configuration line
MAX_COMMENT = 256  # characters of a revision's comment
MAX_TLS_FILE = 1024 * 1024  # bytes of one TLS file (a certificate chain)
MIN_HEARTBEAT = 1.0  # seconds; shorter intervals are raised to it
MAX_HEARTBEAT = 24 * 3600.0  # and longer ones lowered to a day
SERVICES = (
    "frrdmvpn.v1.StateService",
    "frrdmvpn.v1.ConfigService",
    "frrdmvpn.v1.OperationsService",
    "frrdmvpn.v1.WatchService",
)


def _stamp(msg: Any, now: float) -> None:
    msg.as_of.FromNanoseconds(int(now * 1e9))


_CODES: dict[type[Exception], grpc.StatusCode] = {
    BadRequestError: grpc.StatusCode.INVALID_ARGUMENT,
    LookupError: grpc.StatusCode.NOT_FOUND,
    ConflictError: grpc.StatusCode.ABORTED,
    OperationError: grpc.StatusCode.FAILED_PRECONDITION,
    FileNotFoundError: grpc.StatusCode.FAILED_PRECONDITION,
    ConfigError: grpc.StatusCode.FAILED_PRECONDITION,  # a stored file that is not UTF-8
    TooManyWatchesError: grpc.StatusCode.RESOURCE_EXHAUSTED,
}


async def _abort(context: grpc.aio.ServicerContext[Any, Any], exc: Exception) -> NoReturn:
    # a KeyError or IndexError is a bug in a handler, not a peer or revision not found
    if not isinstance(exc, KeyError | IndexError):
        for cls, code in _CODES.items():
            if isinstance(exc, cls):
                await context.abort(code, str(exc))
    log.exception("API handler failed")
    await context.abort(grpc.StatusCode.INTERNAL, f"internal error: {exc}")


# The generated stubs give each service its own private context class; handlers use only
# what grpc.aio's has.
RpcContext = Any
S = TypeVar("S")
Req = TypeVar("Req", bound=Message)
Resp = TypeVar("Resp", bound=Message)


def guarded(
    fn: Callable[[S, Req, RpcContext], Awaitable[Resp]],
) -> Callable[[S, Req, RpcContext], Awaitable[Resp]]:
    """Map the backend's exceptions to status codes; never let one end the server."""

    async def wrapper(self: S, request: Req, context: RpcContext) -> Resp:
        try:
            return await fn(self, request, context)
        except (grpc.aio.AbortError, asyncio.CancelledError):
            raise
        except Exception as exc:  # every error gets a status
            await _abort(context, exc)

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


# --- StateService -------------------------------------------------------------------------
@dataclass
class StateServicer(state_service_pb2_grpc.StateServiceServicer):
    backend: Backend

    def _now(self) -> float:
        return self.backend.store.clock()

    @guarded
    async def GetNode(
        self, request: state_service_pb2.GetNodeRequest, context: RpcContext
    ) -> state_service_pb2.GetNodeResponse:
        node = self.backend.node_summary()
        _stamp(node, self._now())
        role = (
            types_pb2.ROLE_ADMINISTRATOR
            if caller_role() is Role.ADMINISTRATOR
            else (types_pb2.ROLE_OPERATOR)
        )
        return state_service_pb2.GetNodeResponse(node=node, caller_role=role)

    def _select(self, f: peer_pb2.PeerFilter, view: int) -> list[peer_pb2.Peer]:
        """The peers (basic view, in the store's order) that pass a filter; the full view
        differs only in counters, which no filter looks at."""
        f = request_rules.peer_filter(f, "filter")
        if view not in peer_pb2.PeerView.values():
            raise BadRequestError(f"view: {view} is no PeerView")
        peers = self.backend.peers()
        if not f.ByteSize():
            return peers
        return [p for p in peers if api_state.peer_matches(p, f)]

    def _view(self, peers: list[peer_pb2.Peer], view: int) -> list[peer_pb2.Peer]:
        """``peers`` as ``view`` shows them (the full view is built for these only)."""
        if view != peer_pb2.PEER_VIEW_FULL:
            return peers
        builder = self.backend.builder
        return [builder.full_peer(p.key.local_nbma, p.key.remote_nbma) or p for p in peers]

    @guarded
    async def ListPeers(
        self, request: state_service_pb2.ListPeersRequest, context: RpcContext
    ) -> state_service_pb2.ListPeersResponse:
        if request.view == peer_pb2.PEER_VIEW_FULL:
            await self.backend.fresh_counters()
        peers = self._select(request.filter, request.view)
        scope = request_rules.scope("peers", request.filter)
        page, token = request_rules.page(
            peers,
            request_rules.peer_key,
            request.page_size,
            request.page_token,
            scope,
            presorted=True,
        )
        out = state_service_pb2.ListPeersResponse(
            peers=self._view(page, request.view), next_page_token=token, total_size=len(peers)
        )
        _stamp(out, self._now())
        return out

    @guarded
    async def GetPeer(
        self, request: state_service_pb2.GetPeerRequest, context: RpcContext
    ) -> state_service_pb2.GetPeerResponse:
        which = request.WhichOneof("peer")
        if which is None:
            raise BadRequestError("peer: give remote_nbma or tunnel_address")
        wanted = request_rules.address(getattr(request, which), which)
        local = (
            request_rules.address(request.local_nbma, "local_nbma") if request.local_nbma else ""
        )
        if request.view == peer_pb2.PEER_VIEW_FULL:
            await self.backend.fresh_counters()
        for p in self._select(peer_pb2.PeerFilter(), request.view):
            value = p.key.remote_nbma if which == "remote_nbma" else p.tunnel_address
            if value == wanted and (not local or p.key.local_nbma == local):
                out = state_service_pb2.GetPeerResponse(peer=self._view([p], request.view)[0])
                out.as_of.FromNanoseconds(int(self._now() * 1e9))
                return out
        raise LookupError(f"no peer with {which} {wanted}")

    @guarded
    async def ListNhrpCache(
        self, request: state_service_pb2.ListNhrpCacheRequest, context: RpcContext
    ) -> state_service_pb2.ListNhrpCacheResponse:
        net = None
        if request.protocol_prefix:
            try:
                net = ipaddress.ip_network(request.protocol_prefix, strict=False)
            except ValueError as exc:
                raise BadRequestError(f"protocol_prefix: {str(exc)[:120]}") from exc
        nbma = (
            request_rules.address(request.nbma_address, "nbma_address")
            if request.nbma_address
            else ""
        )
        entries = []
        for e in self.backend.store.items(wpb.EVENT_KIND_NHRP_CACHE):
            assert isinstance(e, nhrp_pb2.NhrpCacheEntry)
            if request.interface and e.interface != request.interface:
                continue
            if request.types and e.type not in request.types:
                continue
            if nbma and e.nbma_address != nbma:
                continue
            if net is not None and not _in(e.protocol_address, net):
                continue
            entries.append(e)
        query = state_service_pb2.ListNhrpCacheRequest()
        query.CopyFrom(request)
        query.ClearField("page_size")
        query.ClearField("page_token")
        scope = request_rules.scope("cache", query)
        page, token = request_rules.page(
            entries,
            lambda e: e.interface + "|" + request_rules.sortable(e.protocol_address),
            request.page_size,
            request.page_token,
            scope,
        )
        out = state_service_pb2.ListNhrpCacheResponse(
            entries=page, next_page_token=token, total_size=len(entries)
        )
        _stamp(out, self._now())
        return out

    @guarded
    async def ListNhs(
        self, request: state_service_pb2.ListNhsRequest, context: RpcContext
    ) -> state_service_pb2.ListNhsResponse:
        out = state_service_pb2.ListNhsResponse()
        for n in self.backend.store.items(wpb.EVENT_KIND_NHS):
            assert isinstance(n, nhrp_pb2.Nhs)
            if not request.interface or n.interface == request.interface:
                out.nhs.append(n)
        _stamp(out, self._now())
        return out

    @guarded
    async def ListShortcuts(
        self, request: state_service_pb2.ListShortcutsRequest, context: RpcContext
    ) -> state_service_pb2.ListShortcutsResponse:
        shortcuts = await self.backend.shortcuts(request.interface)
        page, token = request_rules.page(
            shortcuts, lambda s: s.prefix, request.page_size, request.page_token, "shortcuts"
        )
        out = state_service_pb2.ListShortcutsResponse(
            shortcuts=page, next_page_token=token, total_size=len(shortcuts)
        )
        _stamp(out, self._now())
        return out

    @guarded
    async def GetNhrpTraffic(
        self, request: state_service_pb2.GetNhrpTrafficRequest, context: RpcContext
    ) -> state_service_pb2.GetNhrpTrafficResponse:
        """nhrpd 8.4 exports no message counters: each tunnel says ``available = false``."""
        config = self.backend.running_config()
        out = state_service_pb2.GetNhrpTrafficResponse()
        for t in config.interfaces if config is not None else ():
            if not request.interface or request.interface in (t.name, t.linux_name):
                out.tunnels.add(interface=t.name, available=False)
        return out

    @guarded
    async def ListOspfNeighbors(
        self, request: state_service_pb2.ListOspfNeighborsRequest, context: RpcContext
    ) -> state_service_pb2.ListOspfNeighborsResponse:
        out = state_service_pb2.ListOspfNeighborsResponse()
        neighbors = await self.backend.ospf_neighbors(request.interface)
        out.ospf_available = neighbors is not None
        if neighbors is None:
            return out
        page, token = request_rules.page(
            neighbors,
            lambda n: request_rules.sortable(n.neighbor_id) + n.interface,
            request.page_size,
            request.page_token,
            "ospf",
        )
        out.neighbors.extend(page)
        out.next_page_token, out.total_size = token, len(neighbors)
        _stamp(out, self._now())
        return out

    @guarded
    async def GetGuardStatus(
        self, request: state_service_pb2.GetGuardStatusRequest, context: RpcContext
    ) -> state_service_pb2.GetGuardStatusResponse:
        return state_service_pb2.GetGuardStatusResponse(guard=self.backend.guard_status())

    @guarded
    async def GetAuthorizationStatus(
        self, request: state_service_pb2.GetAuthorizationStatusRequest, context: RpcContext
    ) -> state_service_pb2.GetAuthorizationStatusResponse:
        b = self.backend
        return state_service_pb2.GetAuthorizationStatusResponse(
            policy=b.authorization_policy(),
            counters=b.authorization_counters(),
            latency=b.authorization_latency(),
            decisions_kept=len(list(api_state.iter_decisions(b.journal))),
        )

    @guarded
    async def ListAuthorizationDecisions(
        self, request: state_service_pb2.ListAuthorizationDecisionsRequest, context: RpcContext
    ) -> state_service_pb2.ListAuthorizationDecisionsResponse:
        remote = (
            request_rules.address(request.remote_nbma, "remote_nbma") if request.remote_nbma else ""
        )
        claimed = (
            request_rules.address(request.claimed_address, "claimed_address")
            if request.claimed_address
            else ""
        )
        since = request_rules.seconds(request.since, "since") if request.HasField("since") else 0.0
        found = []
        for d in api_state.iter_decisions(self.backend.journal):
            m = api_state.decision_message(d)
            if request.verdict and m.verdict != request.verdict:
                continue
            if (request.weak_only and not m.weak) or (remote and m.remote_nbma != remote):
                continue
            if (
                claimed and m.claimed_address != claimed
            ) or m.decided_at.ToNanoseconds() / 1e9 < since:
                continue
            found.append(m)
        found.reverse()  # newest first
        page, token = request_rules.page(
            found,
            lambda m: f"{2**63 - m.id:020d}",
            request.page_size,
            request.page_token,
            "decisions",
        )
        return state_service_pb2.ListAuthorizationDecisionsResponse(
            decisions=page, next_page_token=token, total_size=len(found)
        )


def _in(address: str, net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    try:
        return ipaddress.ip_address(address) in net
    except ValueError:
        return False


# --- ConfigService ------------------------------------------------------------------------
_DATASTORES = {
    config_pb2.CONFIG_DATASTORE_RUNNING: "running",
    config_pb2.CONFIG_DATASTORE_CANDIDATE: "candidate",
    config_pb2.CONFIG_DATASTORE_SAVED: "saved",
    config_pb2.CONFIG_DATASTORE_SAVED_PREVIOUS: "saved-previous",
}


def _text(text: str, field: str) -> str:
    """A configuration text or line of a request: at most 1 MiB, lines of at most 4,096
    characters."""
    size = len(text.encode())
    if size > MAX_TEXT:
        raise BadRequestError(f"{field}: {size} bytes, at most {MAX_TEXT} (1 MiB)")
    for number, line in enumerate(lines(text), 1):
        if len(line) > MAX_LINE:
            raise BadRequestError(
                f"{field}: line {number} has {len(line)} characters, at most {MAX_LINE}"
            )
    return text


def _comment(comment: str) -> str:
    """A revision's comment: a line of printable text (listed and shown back to others)."""
    if len(comment) > MAX_COMMENT:
        raise BadRequestError(f"comment: {len(comment)} characters, at most {MAX_COMMENT}")
    index = first_refused(comment)
    if index is not None:
        raise BadRequestError(f"comment: column {index + 1}: {message(comment[index])}")
    return comment


@dataclass
class ConfigServicer(config_service_pb2_grpc.ConfigServiceServicer):
    backend: Backend

    def _datastore(self, value: config_pb2.ConfigDatastore.ValueType) -> str:
        ds = self.backend.datastores
        name = _DATASTORES.get(value)
        if name is None:
            raise BadRequestError(
                f"datastore: {value} is none of RUNNING, CANDIDATE, SAVED, SAVED_PREVIOUS"
            )
        text = {
            "running": ds.running_text,
            "candidate": ds.candidate_text,
            "saved": ds.saved_text,
            "saved-previous": ds.saved_previous_text,
        }[name]()
        if text is None:
            raise LookupError(f"the {name} configuration does not exist")
        return text

    @guarded
    async def GetConfig(
        self, request: config_service_pb2.GetConfigRequest, context: RpcContext
    ) -> config_service_pb2.GetConfigResponse:
        which = request.WhichOneof("source")
        if which == "revision_number":
            rev = self.backend.datastores.revision(request.revision_number)
            if rev is None:
                raise LookupError(f"no running revision {request.revision_number} is kept")
            text = rev.text
        else:
            text = self._datastore(
                request.datastore if which else config_pb2.CONFIG_DATASTORE_RUNNING
            )
            rev = Revision(0, text, 0.0)
        _config, findings = self.backend.datastores.validate(text)
        tree = config_tree(text)
        if request.redact_secrets or not request.reveal_secrets:  # the interceptor allowed it
            text = mask_text(text)
            _mask_tree(tree.statements)
        out = config_service_pb2.GetConfigResponse(text=text, revision=revision_message(rev))
        out.diagnostics.extend(diagnostic_message(d) for d in findings)
        out.tree.CopyFrom(tree)
        return out

    @guarded
    async def ValidateConfig(
        self, request: config_service_pb2.ValidateConfigRequest, context: RpcContext
    ) -> config_service_pb2.ValidateConfigResponse:
        which = request.WhichOneof("source")
        if which is None:
            raise BadRequestError("source: give text or datastore")
        text = (
            _text(request.text, "text") if which == "text" else self._datastore(request.datastore)
        )
        # an operator's text names no file root then looks at (what exists, its owner, its
        # size would be an oracle): the files are checked for administrators, as they apply
        administrator = caller_role() >= Role.ADMINISTRATOR
        config, findings = self.backend.datastores.validate(text, check_files=administrator)
        out = config_service_pb2.ValidateConfigResponse(valid=config is not None)
        out.diagnostics.extend(diagnostic_message(d) for d in findings)
        if config is not None:
            from frrdmvpn.config.canonical_text import render  # noqa: PLC0415

            canonical = render(config)
            out.canonical_text = canonical if request.reveal_secrets else mask_text(canonical)
        return out

    @guarded
    async def EditConfig(
        self, request: config_service_pb2.EditConfigRequest, context: RpcContext
    ) -> config_service_pb2.EditConfigResponse:
        ds = self.backend.datastores
        _check_candidate(ds, request.expected_candidate_digest)
        mode = MODE_OF.get(request.context.mode or config_pb2.CONFIG_MODE_GLOBAL)
        if mode is None:
            raise BadRequestError(f"context.mode: {request.context.mode} is no configuration mode")
        ctx = Context(mode, tuple(request.context.keys)) if mode is not Mode.CONFIG else ROOT
        for i, line in enumerate(request.lines):
            _text(line, f"lines[{i}]")
        commit = request.commit in (
            config_service_pb2.EDIT_COMMIT_IF_VALID,
            config_service_pb2.EDIT_COMMIT_REQUIRED,
        )
        report = await asyncio.to_thread(
            ds.edit,
            ctx,
            list(request.lines),
            commit=commit,
            dry_run=request.dry_run,
            comment=_comment(request.comment),
        )
        out = config_service_pb2.EditConfigResponse(
            lines_accepted=report.accepted, candidate_pending=ds.candidate is not None
        )
        out.context.CopyFrom(context_message(report.context))
        out.diagnostics.extend(diagnostic_message(d) for d in report.diagnostics)
        out.candidate.CopyFrom(revision_message(Revision(0, report.candidate, 0.0)))
        if report.apply is not None:
            out.apply.CopyFrom(apply_result(report.apply))
        return out

    @guarded
    async def DiscardCandidate(
        self, request: config_service_pb2.DiscardCandidateRequest, context: RpcContext
    ) -> config_service_pb2.DiscardCandidateResponse:
        ds = self.backend.datastores
        _check_candidate(ds, request.expected_candidate_digest)
        ds.discard()
        return config_service_pb2.DiscardCandidateResponse(
            candidate=revision_message(Revision(0, ds.candidate_text(), 0.0))
        )

    async def _apply(
        self,
        text: str,
        request: config_service_pb2.ApplyConfigRequest | config_service_pb2.RollbackConfigRequest,
        origin: str,
    ) -> config_pb2.ApplyResult:
        ds = self.backend.datastores
        report = await asyncio.to_thread(
            ds.apply_text,
            text,
            dry_run=request.dry_run,
            origin=origin,
            comment=_comment(request.comment),
            expected_running=request.expected_running_digest,
        )
        return apply_result(report)

    @guarded
    async def ApplyConfig(
        self, request: config_service_pb2.ApplyConfigRequest, context: RpcContext
    ) -> config_service_pb2.ApplyConfigResponse:
        which = request.WhichOneof("source")
        if which is None:
            raise BadRequestError("source: give text or datastore")
        text = (
            _text(request.text, "text") if which == "text" else self._datastore(request.datastore)
        )
        return config_service_pb2.ApplyConfigResponse(
            result=await self._apply(text, request, "api")
        )

    @guarded
    async def SaveConfig(
        self, request: config_service_pb2.SaveConfigRequest, context: RpcContext
    ) -> config_service_pb2.SaveConfigResponse:
        path, kept = await asyncio.to_thread(
            self.backend.datastores.save, request.expected_running_digest
        )
        text = self.backend.datastores.saved_text() or ""
        return config_service_pb2.SaveConfigResponse(
            saved=revision_message(Revision(0, text, 0.0)),
            path=str(path),
            previous_path="" if kept is None else str(kept),
        )

    @guarded
    async def RollbackConfig(
        self, request: config_service_pb2.RollbackConfigRequest, context: RpcContext
    ) -> config_service_pb2.RollbackConfigResponse:
        which = request.WhichOneof("target")
        targets = {
            config_service_pb2.ROLLBACK_TARGET_SAVED: "saved",
            config_service_pb2.ROLLBACK_TARGET_SAVED_PREVIOUS: "saved-previous",
            config_service_pb2.ROLLBACK_TARGET_PREVIOUS_RUNNING: "previous-running",
        }
        if which == "revision_number":
            target: str | int = request.revision_number
        elif which == "well_known" and request.well_known in targets:
            target = targets[request.well_known]
        else:
            raise BadRequestError(
                "target: give well_known (SAVED, SAVED_PREVIOUS, "
                "PREVIOUS_RUNNING) or revision_number"
            )
        text = self.backend.datastores.rollback_text(target)
        return config_service_pb2.RollbackConfigResponse(
            result=await self._apply(text, request, "rollback")
        )

    @guarded
    async def ListConfigRevisions(
        self, request: config_service_pb2.ListConfigRevisionsRequest, context: RpcContext
    ) -> config_service_pb2.ListConfigRevisionsResponse:
        revs = [revision_message(r) for r in reversed(self.backend.datastores.revisions)]
        page, token = request_rules.page(
            revs,
            lambda r: f"{2**63 - r.number:020d}",
            request.page_size,
            request.page_token,
            "revisions",
        )
        return config_service_pb2.ListConfigRevisionsResponse(
            revisions=page, next_page_token=token, total_size=len(revs)
        )


def _check_candidate(ds: Datastores, expected: str) -> None:
    """ConflictError if ``expected`` is given and is not the candidate's digest."""
    if expected and expected != digest(ds.candidate_text()):
        raise ConflictError("the candidate changed meanwhile; read it again")


def _mask_tree(statements: Iterable[config_pb2.ConfigStatement]) -> None:
    """Mask the secrets of a statement tree (what :func:`mask_text` does to its text)."""
    for statement in statements:
        statement.text = mask_line(statement.text)
        statement.key = mask_line(statement.key)
        _mask_tree(statement.children)


# --- OperationsService --------------------------------------------------------------------
@dataclass
class OperationsServicer(operations_service_pb2_grpc.OperationsServiceServicer):
    backend: Backend
    operations: PeerOperations

    def _targets(self, sel: types_pb2.PeerSelector) -> list[peer_pb2.Peer]:
        which = sel.WhichOneof("target")
        if which is None:
            raise BadRequestError("peer: give remote_nbma, tunnel_address or all")
        peers = self.backend.peers()
        if sel.local_nbma:
            local = request_rules.address(sel.local_nbma, "peer.local_nbma")
            peers = [p for p in peers if p.key.local_nbma == local]
        if sel.interface:
            peers = [p for p in peers if p.interface == sel.interface]
        if which == "all":
            return peers
        wanted = request_rules.address(getattr(sel, which), f"peer.{which}")
        found = [
            p
            for p in peers
            if (p.key.remote_nbma if which == "remote_nbma" else p.tunnel_address) == wanted
        ]
        if not found:
            raise LookupError(f"no peer with {which} {wanted}")
        return found

    @guarded
    async def ClearPeer(
        self, request: operations_service_pb2.ClearPeerRequest, context: RpcContext
    ) -> operations_service_pb2.ClearPeerResponse:
        scopes = {
            operations_service_pb2.CLEAR_SCOPE_NHRP: (True, False),
            operations_service_pb2.CLEAR_SCOPE_IPSEC: (False, True),
            operations_service_pb2.CLEAR_SCOPE_NHRP_AND_IPSEC: (True, True),
        }
        if request.scope not in scopes:
            raise BadRequestError("scope: give NHRP, IPSEC or NHRP_AND_IPSEC")
        peers = self._targets(request.peer)
        nhrp, ipsec = scopes[request.scope]
        everyone = request.peer.WhichOneof("target") == "all"
        results = await self.operations.clear(
            peers,
            nhrp=nhrp,
            ipsec=ipsec,
            everyone=everyone,
            include_static=request.include_static,
            dry_run=request.dry_run,
        )
        return operations_service_pb2.ClearPeerResponse(results=results)

    @guarded
    async def ReinitiatePeer(
        self, request: operations_service_pb2.ReinitiatePeerRequest, context: RpcContext
    ) -> operations_service_pb2.ReinitiatePeerResponse:
        results = await self.operations.reinitiate(self._targets(request.peer))
        return operations_service_pb2.ReinitiatePeerResponse(results=results)

    @guarded
    async def ClearCounters(
        self, request: operations_service_pb2.ClearCountersRequest, context: RpcContext
    ) -> operations_service_pb2.ClearCountersResponse:
        if request.scope not in operations_service_pb2.CounterScope.values() or not request.scope:
            raise BadRequestError("scope: give PEERS, GUARD, AUTHORIZATION, NHRP_TRAFFIC or ALL")
        peers = self._targets(request.peer) if request.peer.WhichOneof("target") else None
        cleared, at = self.operations.clear_counters(request.scope, peers)
        out = operations_service_pb2.ClearCountersResponse(peers_cleared=cleared)
        out.cleared_at.FromNanoseconds(int(at * 1e9))
        return out


# --- WatchService -------------------------------------------------------------------------
@dataclass
class WatchServicer(watch_service_pb2_grpc.WatchServiceServicer):
    backend: Backend
    caller: Callable[[Any], Caller] = lambda context: UNKNOWN

    def _subscribe(
        self, request: watch_service_pb2.WatchRequest, principal: str
    ) -> tuple[Subscription, float | None]:
        """Check the request and register the stream (before its snapshot is read)."""
        f = request_rules.peer_filter(request.peer_filter, "peer_filter")
        if request.peer_view not in peer_pb2.PeerView.values():
            raise BadRequestError(f"peer_view: {request.peer_view} is no PeerView")
        if request.peer_view == peer_pb2.PEER_VIEW_FULL:
            raise BadRequestError(
                "peer_view: Watch streams the basic view (traffic counters change every "
                "second); ListPeers with PEER_VIEW_FULL has them"
            )
        heartbeat = None
        if request.HasField("heartbeat_interval"):
            seconds = request.heartbeat_interval.ToNanoseconds() / 1e9
            heartbeat = min(max(seconds, MIN_HEARTBEAT), MAX_HEARTBEAT)
        keep = None
        if f.ByteSize():
            peers = api_state.PeerLookup(self.backend.store)

            def keep(e: wpb.WatchResponse) -> bool:
                return api_state.event_matches(e, f, peers)

        try:
            sub = self.backend.broker.subscribe(
                request.kinds, keep, not request.skip_snapshot, principal
            )
        except ValueError as exc:
            raise BadRequestError(str(exc)) from exc
        return sub, heartbeat

    async def Watch(
        self, request: watch_service_pb2.WatchRequest, context: RpcContext
    ) -> AsyncIterator[watch_service_pb2.WatchResponse]:
        try:
            sub, heartbeat = self._subscribe(request, self.caller(context).principal)
        except (BadRequestError, TooManyWatchesError) as exc:
            await _abort(context, exc)
            return
        try:
            async for event in self.backend.broker.stream(sub, heartbeat):
                yield event
        finally:
            self.backend.broker.unsubscribe(sub)


# --- the server ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _Malformed:
    """A request whose bytes are no valid message of the method's type."""

    error: str


class MalformedRequests(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Undecodable requests get INVALID_ARGUMENT (gRPC itself would say UNKNOWN)."""

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = await continuation(details)
        if handler is None or handler.request_deserializer is None:
            return handler
        decode = handler.request_deserializer

        def tolerant(data: bytes) -> Any:
            try:
                return decode(data)
            except Exception as exc:  # DecodeError, or worse: the request is refused
                return _Malformed(f"{type(exc).__name__}: {exc}"[:200])

        async def refuse(request: _Malformed, context: Any) -> None:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"malformed request for {details.method}: {request.error}",
            )

        async def decoded(request: Any, context: Any) -> bool:
            if isinstance(request, _Malformed):
                await refuse(request, context)
                return False
            return True

        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                unary_behaviour(handler.unary_unary, decoded),
                request_deserializer=tolerant,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                stream_behaviour(handler.unary_stream, decoded),
                request_deserializer=tolerant,
                response_serializer=handler.response_serializer,
            )
        return handler


@dataclass(frozen=True)
class TlsFiles:
    """Server certificate, key and the CA that signs client certificates (mutual TLS)."""

    cert: Path
    key: Path
    client_ca: Path


def _credentials(tls: TlsFiles) -> grpc.ServerCredentials:
    """The TLS files, each read only if nobody but root could have written it."""

    def load(path: Path, option: str, secret: bool = False) -> bytes:
        return trusted_files.read(path, option, secret=secret, max_bytes=MAX_TLS_FILE)

    return grpc.ssl_server_credentials(
        [(load(tls.key, "--tls-key", secret=True), load(tls.cert, "--tls-cert"))],
        root_certificates=load(tls.client_ca, "--tls-client-ca"),
        require_client_auth=True,
    )


@dataclass(frozen=True)
class _Listener:
    """Where one gRPC server listens and what role its calls have."""

    name: str  # for messages: "unix:/run/frrdmvpn/frrdmvpn.sock"
    role_of: RoleOf
    socket: Path | None = None  # a unix socket, else TCP with mutual TLS
    group: str | None = None


class ApiServer:
    """The gRPC servers of one daemon: one per listener (the operator socket, the
    administrator socket, TCP with mutual TLS), each stamping its calls with the
    listener's role (:mod:`frrdmvpn.api.roles`), all serving the same handlers."""

    def __init__(  # noqa: PLR0917 - each listener's place and owner
        self,
        backend: Backend,
        operations: PeerOperations,
        socket_path: Path = SOCKET,
        group: str | None = GROUP,
        tcp: str | None = None,
        tls: TlsFiles | None = None,
        *,
        admin_socket: Path | None = None,
        admin_group: str | None = ADMIN_GROUP,
    ) -> None:
        if tcp and tls is None:
            raise ValueError("TCP listening needs mutual TLS (server cert, key, client CA)")
        self.backend, self.socket_path, self.group, self.tcp, self.tls = (
            backend,
            socket_path,
            group,
            tcp,
            tls,
        )
        self.admin_socket = admin_socket
        self.health = HealthService()  # one status for every listener
        state, config = StateServicer(backend), ConfigServicer(backend)
        operation = OperationsServicer(backend, operations)
        watch = WatchServicer(backend, self.caller)
        reflection = ReflectionService(
            (*SERVICES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name)
        )
        # Local clients reach each unix listener's gRPC server through a front that knows
        # their uid (SO_PEERCRED); the fronts share one cap of connections per user.
        self.admission = api_admission()
        self.fronts: dict[Path, UnixFront] = {}
        listeners = [_Listener(f"unix:{socket_path}", fixed(Role.OPERATOR), socket_path, group)]
        if admin_socket is not None:
            listeners.append(
                _Listener(
                    f"unix:{admin_socket}", fixed(Role.ADMINISTRATOR), admin_socket, admin_group
                )
            )
        if tcp:
            listeners.append(_Listener(tcp, by_certificate))
        self.servers: list[tuple[_Listener, grpc.aio.Server]] = []
        for listener in listeners:
            server = grpc.aio.server(
                interceptors=[Authorize(listener.role_of, listener.name), MalformedRequests()],
                options=[
                    ("grpc.max_receive_message_length", MAX_MESSAGE),
                    ("grpc.max_send_message_length", 64 * 1024 * 1024),
                    ("grpc.so_reuseport", 0),
                ],
            )
            state_service_pb2_grpc.add_StateServiceServicer_to_server(state, server)
            config_service_pb2_grpc.add_ConfigServiceServicer_to_server(config, server)
            operations_service_pb2_grpc.add_OperationsServiceServicer_to_server(operation, server)
            watch_service_pb2_grpc.add_WatchServiceServicer_to_server(watch, server)
            health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
            reflection_pb2_grpc.add_ServerReflectionServicer_to_server(reflection, server)
            self.servers.append((listener, server))
            if listener.socket is not None:
                front = UnixFront(listener.socket, _internal(listener.socket), self.admission)
                self.fronts[listener.socket] = front
        self.port: int | None = None

    async def set_serving(self, serving: bool) -> None:
        for name in ("", *SERVICES):
            self.health.set(name, SERVING if serving else NOT_SERVING)

    def caller(self, context: Any) -> Caller:
        """Who made the call: a local user (through a front), or a TCP client's
        certificate; :data:`~frrdmvpn.adapters.api_front.UNKNOWN` otherwise."""
        peer = str(context.peer() or "")
        if peer.startswith(("ipv4:", "ipv6:")):
            return tcp_caller(context.auth_context() or {})
        found = (front.caller(peer) for front in self.fronts.values())
        return next((c for c in found if c is not None), UNKNOWN)

    async def start(self) -> None:
        await self.set_serving(False)
        for listener, server in self.servers:
            if listener.socket is not None:
                self._bind(server, listener.socket, listener.group)
            elif self.tls is not None:
                self.port = server.add_secure_port(listener.name, _credentials(self.tls))
        for _, server in self.servers:
            await server.start()
        for front in self.fronts.values():
            await front.start()  # the socket is born 0660: no window with wider access
        for listener, _ in self.servers:
            if listener.socket is not None and listener.group:
                _give(listener.socket, listener.group)
        log.info(
            "API listening on %s",
            ", ".join(
                f"{listener.name} ({_WHO[listener.role_of is by_certificate]})"
                for listener, _ in self.servers
            ),
        )

    @staticmethod
    def _bind(server: grpc.aio.Server, path: Path, group: str | None) -> None:
        """gRPC listens where only root may go; the front serves ``path`` (``start``)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        mode = path.parent.stat().st_mode
        if group and not mode & 0o001:  # clients must be able to pass through
            os.chmod(path.parent, (mode & 0o777) | 0o001)
        internal = _internal(path)
        internal.parent.mkdir(mode=0o700, exist_ok=True)
        os.chmod(internal.parent, 0o700)
        with contextlib.suppress(FileNotFoundError):
            internal.unlink()
        server.add_insecure_port(f"unix:{internal}")

    async def stop(self, grace: float = 1.0) -> None:
        self.health.shutdown()  # watchers learn it before their streams end
        await asyncio.gather(*(server.stop(grace) for _, server in self.servers))
        for path, front in self.fronts.items():  # the servers' goodbyes went through them
            await front.close()
            with contextlib.suppress(FileNotFoundError):
                _internal(path).unlink()


def _internal(socket_path: Path) -> Path:
    """Where a unix listener's gRPC server listens for its front:
    ``/run/frrdmvpn/.frrdmvpn.sock.d/grpc.sock``, in a directory only root may enter."""
    return socket_path.parent / f".{socket_path.name}.d" / "grpc.sock"


# Connections to the API's unix sockets (issue 14, hole 9): 8 per user, 64 for all users
# but root, 16 more for root. Each costs three descriptors (the client's, the relay's, gRPC's).
API_CONNECTIONS = {"per_uid": 8, "total": 64, "root": 16}


def api_admission() -> Admission:
    return Admission(
        "API connections",
        API_CONNECTIONS["per_uid"],
        API_CONNECTIONS["total"],
        {principal_of_uid(0): API_CONNECTIONS["root"]},
    )


_WHO = {False: "role of the socket", True: "role of the client certificate"}


def _give(path: Path, group: str) -> None:
    """Hand the socket to ``group``; without that group only root may use it."""
    try:
        os.chown(path, -1, grp.getgrnam(group).gr_gid)
    except KeyError:
        log.warning("group %r does not exist: %s stays root-only", group, path)
        os.chmod(path, 0o600)


__all__ = ["ApiServer", "TlsFiles", "watch_service_pb2"]
