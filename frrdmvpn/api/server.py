"""The gRPC API (frrdmvpn.v1): a thin adapter over :class:`~frrdmvpn.api.backend.Backend`.

Handlers check their request, call the backend, and build the answer; errors become status
codes with a message an operator can act on (INVALID_ARGUMENT for a bad request, NOT_FOUND,
FAILED_PRECONDITION for a stale digest or a configuration that cannot be applied, ABORTED
when the configuration changed meanwhile). The server listens on a unix socket (0660, group
``frrdmvpn``) and, only if asked, on TCP with mutual TLS. gRPC health and reflection are
served too; health says SERVING once the guards are installed and the configuration applied.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import contextlib
import functools
import grp
import hashlib
import ipaddress
import json
import logging
import os
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message

from frrdmvpn.adapters import vtysh
from frrdmvpn.api import state as api_state
from frrdmvpn.api.backend import (
    Backend,
    OperationError,
    apply_result,
    diagnostic_message,
    revision_message,
)
from frrdmvpn.api.config_tree import MODE_OF, config_tree, context_message
from frrdmvpn.api.convert import CACHE_TYPES
from frrdmvpn.api.health import NOT_SERVING, SERVING, HealthService
from frrdmvpn.api.reflection import ReflectionService
from frrdmvpn.api.watch import Subscription, TooManyWatchesError
from frrdmvpn.config.model import tunnel_name
from frrdmvpn.config.modes import ROOT, Context, Mode
from frrdmvpn.datastores import ConflictError, Datastores, Revision, digest
from frrdmvpn.grpc_std import health_pb2, health_pb2_grpc, reflection_pb2_grpc
from frrdmvpn.v1 import (
    config_pb2,
    config_service_pb2,
    config_service_pb2_grpc,
    nhrp_pb2,
    operations_service_pb2,
    operations_service_pb2_grpc,
    ospf_pb2,
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
GROUP = "frrdmvpn"
MAX_MESSAGE = 4 * 1024 * 1024  # requests larger than this are refused by gRPC itself
MAX_TEXT = 1024 * 1024  # a configuration text, in bytes (UTF-8)
MAX_LINE = 4096  # characters of one configuration line
MIN_HEARTBEAT = 1.0  # seconds; shorter intervals are raised to it
MAX_HEARTBEAT = 24 * 3600.0  # and longer ones lowered to a day
DEFAULT_PAGE, MAX_PAGE = 100, 1000
SERVICES = (
    "frrdmvpn.v1.StateService",
    "frrdmvpn.v1.ConfigService",
    "frrdmvpn.v1.OperationsService",
    "frrdmvpn.v1.WatchService",
)

T = TypeVar("T", bound=Message)


class BadRequestError(ValueError):
    """The request is malformed: INVALID_ARGUMENT with this message."""


# --- request helpers ----------------------------------------------------------------------
def _address(value: str, field: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError as exc:
        raise BadRequestError(f"{field}: {value[:64]!r} is not an IP address") from exc


def _filter(f: peer_pb2.PeerFilter, field: str) -> peer_pb2.PeerFilter:
    """A peer filter checked and with canonical addresses."""
    try:
        return api_state.normalized_filter(f)
    except ValueError as exc:
        raise BadRequestError(f"{field}.{exc}") from exc


def _page(
    items: list[T],
    key: Callable[[T], str],
    size: int,
    token: str,
    scope: str,
    *,
    presorted: bool = False,
) -> tuple[list[T], str]:
    """One page of ``items`` (in a stable order by ``key``) after the token's key;
    ``presorted``: ``items`` are in that order already (a page then costs no sorting and
    a few ``key`` calls)."""
    if size < 0:
        raise BadRequestError("page_size: must not be negative")
    size = min(size or DEFAULT_PAGE, MAX_PAGE)
    after = ""
    if token:
        try:
            data = json.loads(base64.urlsafe_b64decode(token.encode()).decode())
            after, token_scope = str(data["after"]), str(data["scope"])
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise BadRequestError("page_token: malformed (use next_page_token as given)") from exc
        if token_scope != scope:
            raise BadRequestError("page_token: it belongs to another listing or filter")
    if presorted:
        rest = items[bisect.bisect_right(items, after, key=key) :] if after else items
    else:
        keyed = sorted(((key(i), i) for i in items), key=lambda pair: pair[0])
        rest = [i for k, i in keyed if k > after] if after else [i for _, i in keyed]
    page = rest[:size]
    next_token = ""
    if len(rest) > size:
        raw = json.dumps({"after": key(page[-1]), "scope": scope}).encode()
        next_token = base64.urlsafe_b64encode(raw).decode()
    return page, next_token


def _sortable(*addresses: str) -> str:
    """Addresses as text that sorts as they do (10.0.0.9 before 10.0.0.10)."""
    return "|".join(_sortable_one(a) for a in addresses)


@functools.lru_cache(maxsize=65536)
def _sortable_one(address: str) -> str:
    try:
        return ipaddress.ip_address(address).packed.hex().rjust(32, "0")
    except ValueError:
        return address


def _scope(kind: str, request: Message) -> str:
    """What a page token is valid for: one listing with one filter (the request without
    its page fields)."""
    raw = request.SerializeToString(deterministic=True)
    return f"{kind}:{hashlib.sha256(raw).hexdigest()[:24]}"


def _peer_key(p: peer_pb2.Peer) -> str:
    """The order of the store's PEER table (frrdmvpn.api.store._order of its keys)."""
    return _sortable(p.key.local_nbma, p.key.remote_nbma)


def _stamp(msg: Any, now: float) -> None:
    msg.as_of.FromNanoseconds(int(now * 1e9))


_CODES: dict[type[Exception], grpc.StatusCode] = {
    BadRequestError: grpc.StatusCode.INVALID_ARGUMENT,
    LookupError: grpc.StatusCode.NOT_FOUND,
    ConflictError: grpc.StatusCode.ABORTED,
    OperationError: grpc.StatusCode.FAILED_PRECONDITION,
    FileNotFoundError: grpc.StatusCode.FAILED_PRECONDITION,
    TooManyWatchesError: grpc.StatusCode.RESOURCE_EXHAUSTED,
}


async def _abort(context: grpc.aio.ServicerContext[Any, Any], exc: Exception) -> None:
    # a KeyError or IndexError is a bug in a handler, not a peer or revision not found
    if not isinstance(exc, KeyError | IndexError):
        for cls, code in _CODES.items():
            if isinstance(exc, cls):
                await context.abort(code, str(exc))
    log.exception("API handler failed")
    await context.abort(grpc.StatusCode.INTERNAL, f"internal error: {exc}")


def guarded(fn: Any) -> Any:
    """Map the backend's exceptions to status codes; never let one end the server."""

    async def wrapper(self: Any, request: Any, context: Any) -> Any:
        try:
            return await fn(self, request, context)
        except (grpc.aio.AbortError, asyncio.CancelledError):
            raise
        except Exception as exc:  # every error gets a status
            await _abort(context, exc)
            return None

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
    async def GetNode(self, request: Any, context: Any) -> Any:
        node = self.backend.node_summary()
        _stamp(node, self._now())
        return state_service_pb2.GetNodeResponse(node=node)

    def _select(self, f: peer_pb2.PeerFilter, view: int) -> list[peer_pb2.Peer]:
        """The peers (basic view, in the store's order) that pass a filter; the full view
        differs only in counters, which no filter looks at."""
        f = _filter(f, "filter")
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
    async def ListPeers(self, request: Any, context: Any) -> Any:
        peers = self._select(request.filter, request.view)
        scope = _scope("peers", request.filter)
        page, token = _page(
            peers, _peer_key, request.page_size, request.page_token, scope, presorted=True
        )
        out = state_service_pb2.ListPeersResponse(
            peers=self._view(page, request.view), next_page_token=token, total_size=len(peers)
        )
        _stamp(out, self._now())
        return out

    @guarded
    async def GetPeer(self, request: Any, context: Any) -> Any:
        which = request.WhichOneof("peer")
        if which is None:
            raise BadRequestError("peer: give remote_nbma or tunnel_address")
        wanted = _address(getattr(request, which), which)
        local = _address(request.local_nbma, "local_nbma") if request.local_nbma else ""
        for p in self._select(peer_pb2.PeerFilter(), request.view):
            value = p.key.remote_nbma if which == "remote_nbma" else p.tunnel_address
            if value == wanted and (not local or p.key.local_nbma == local):
                out = state_service_pb2.GetPeerResponse(peer=self._view([p], request.view)[0])
                out.as_of.FromNanoseconds(int(self._now() * 1e9))
                return out
        raise LookupError(f"no peer with {which} {wanted}")

    @guarded
    async def ListNhrpCache(self, request: Any, context: Any) -> Any:
        net = None
        if request.protocol_prefix:
            try:
                net = ipaddress.ip_network(request.protocol_prefix, strict=False)
            except ValueError as exc:
                raise BadRequestError(f"protocol_prefix: {str(exc)[:120]}") from exc
        nbma = _address(request.nbma_address, "nbma_address") if request.nbma_address else ""
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
        scope = _scope("cache", query)
        page, token = _page(
            entries,
            lambda e: e.interface + "|" + _sortable(e.protocol_address),
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
    async def ListNhs(self, request: Any, context: Any) -> Any:
        out = state_service_pb2.ListNhsResponse()
        for n in self.backend.store.items(wpb.EVENT_KIND_NHS):
            assert isinstance(n, nhrp_pb2.Nhs)
            if not request.interface or n.interface == request.interface:
                out.nhs.append(n)
        _stamp(out, self._now())
        return out

    @guarded
    async def ListShortcuts(self, request: Any, context: Any) -> Any:
        try:
            data = await vtysh.show_json("show ip nhrp shortcut json")
        except vtysh.VtyshError as exc:
            raise OperationError(f"nhrpd: {exc}") from exc
        shortcuts = []
        for e in vtysh._table(data):
            name = tunnel_name(str(e.get("interface", "")))
            if request.interface and name != request.interface:
                continue
            shortcuts.append(
                nhrp_pb2.Shortcut(
                    interface=name,
                    prefix=str(e.get("prefix", "")),
                    via=str(e.get("via", "")),
                    identity=str(e.get("identity", "")),
                    type=CACHE_TYPES.get(str(e.get("type")), nhrp_pb2.NHRP_CACHE_TYPE_UNSPECIFIED),
                )
            )
        page, token = _page(
            shortcuts, lambda s: s.prefix, request.page_size, request.page_token, "shortcuts"
        )
        out = state_service_pb2.ListShortcutsResponse(
            shortcuts=page, next_page_token=token, total_size=len(shortcuts)
        )
        _stamp(out, self._now())
        return out

    @guarded
    async def GetNhrpTraffic(self, request: Any, context: Any) -> Any:
        """nhrpd 8.4 exports no message counters: each tunnel says ``available = false``."""
        config = self.backend.running_config()
        out = state_service_pb2.GetNhrpTrafficResponse()
        for t in config.interfaces if config is not None else ():
            if not request.interface or request.interface in (t.name, t.linux_name):
                out.tunnels.add(interface=t.name, available=False)
        return out

    @guarded
    async def ListOspfNeighbors(self, request: Any, context: Any) -> Any:
        out = state_service_pb2.ListOspfNeighborsResponse()
        try:
            data = await vtysh.show_json("show ip ospf neighbor json", daemon="ospfd")
        except vtysh.VtyshError:
            out.ospf_available = False
            return out
        out.ospf_available = True
        neighbors = []
        for rid, entries in dict(data.get("neighbors", {})).items():
            for e in entries if isinstance(entries, list) else []:
                iface = tunnel_name(str(e.get("ifaceName", "")).split(":")[0])
                if request.interface and iface != request.interface:
                    continue
                state, _, role = str(e.get("nbrState", "")).partition("/")
                n = ospf_pb2.OspfNeighbor(
                    neighbor_id=str(rid),
                    priority=int(e.get("nbrPriority", 0)),
                    address=str(e.get("ifaceAddress", "")),
                    interface=iface,
                )
                n.state = _OSPF_STATES.get(state, ospf_pb2.OSPF_NEIGHBOR_STATE_UNSPECIFIED)
                n.role = _OSPF_ROLES.get(role, ospf_pb2.OSPF_NEIGHBOR_ROLE_UNSPECIFIED)
                if "deadTimeMsecs" in e:
                    n.dead_time_remaining.FromMilliseconds(int(e["deadTimeMsecs"]))
                neighbors.append(n)
        page, token = _page(
            neighbors,
            lambda n: _sortable(n.neighbor_id) + n.interface,
            request.page_size,
            request.page_token,
            "ospf",
        )
        out.neighbors.extend(page)
        out.next_page_token, out.total_size = token, len(neighbors)
        _stamp(out, self._now())
        return out

    @guarded
    async def GetGuardStatus(self, request: Any, context: Any) -> Any:
        return state_service_pb2.GetGuardStatusResponse(guard=self.backend.guard_status())

    @guarded
    async def GetAuthorizationStatus(self, request: Any, context: Any) -> Any:
        b = self.backend
        return state_service_pb2.GetAuthorizationStatusResponse(
            policy=b.authorization_policy(),
            counters=b.authorization_counters(),
            latency=b.authorization_latency(),
            decisions_kept=len(list(api_state.iter_decisions(b.journal))),
        )

    @guarded
    async def ListAuthorizationDecisions(self, request: Any, context: Any) -> Any:
        remote = _address(request.remote_nbma, "remote_nbma") if request.remote_nbma else ""
        claimed = (
            _address(request.claimed_address, "claimed_address") if request.claimed_address else ""
        )
        since = request.since.ToNanoseconds() / 1e9 if request.HasField("since") else 0.0
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
        page, token = _page(
            found,
            lambda m: f"{2**63 - m.id:020d}",
            request.page_size,
            request.page_token,
            "decisions",
        )
        return state_service_pb2.ListAuthorizationDecisionsResponse(
            decisions=page, next_page_token=token, total_size=len(found)
        )


_OSPF_STATES = {
    "Down": ospf_pb2.OSPF_NEIGHBOR_STATE_DOWN,
    "Attempt": ospf_pb2.OSPF_NEIGHBOR_STATE_ATTEMPT,
    "Init": ospf_pb2.OSPF_NEIGHBOR_STATE_INIT,
    "2-Way": ospf_pb2.OSPF_NEIGHBOR_STATE_TWO_WAY,
    "ExStart": ospf_pb2.OSPF_NEIGHBOR_STATE_EXSTART,
    "Exchange": ospf_pb2.OSPF_NEIGHBOR_STATE_EXCHANGE,
    "Loading": ospf_pb2.OSPF_NEIGHBOR_STATE_LOADING,
    "Full": ospf_pb2.OSPF_NEIGHBOR_STATE_FULL,
}
_OSPF_ROLES = {
    "DR": ospf_pb2.OSPF_NEIGHBOR_ROLE_DR,
    "Backup": ospf_pb2.OSPF_NEIGHBOR_ROLE_BDR,
    "DROther": ospf_pb2.OSPF_NEIGHBOR_ROLE_DROTHER,
    "": ospf_pb2.OSPF_NEIGHBOR_ROLE_NONE,
    "PointToPoint": ospf_pb2.OSPF_NEIGHBOR_ROLE_NONE,
}


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
    for number, line in enumerate(text.splitlines(), 1):
        if len(line) > MAX_LINE:
            raise BadRequestError(
                f"{field}: line {number} has {len(line)} characters, at most {MAX_LINE}"
            )
    return text


@dataclass
class ConfigServicer(config_service_pb2_grpc.ConfigServiceServicer):
    backend: Backend

    def _datastore(self, value: Any) -> str:
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
    async def GetConfig(self, request: Any, context: Any) -> Any:
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
        if request.redact_secrets:
            text = _redact(text)
        out = config_service_pb2.GetConfigResponse(text=text, revision=revision_message(rev))
        out.diagnostics.extend(diagnostic_message(d) for d in findings)
        out.tree.CopyFrom(config_tree(text))
        return out

    @guarded
    async def ValidateConfig(self, request: Any, context: Any) -> Any:
        which = request.WhichOneof("source")
        if which is None:
            raise BadRequestError("source: give text or datastore")
        text = (
            _text(request.text, "text") if which == "text" else self._datastore(request.datastore)
        )
        config, findings = self.backend.datastores.validate(text)
        out = config_service_pb2.ValidateConfigResponse(valid=config is not None)
        out.diagnostics.extend(diagnostic_message(d) for d in findings)
        if config is not None:
            from frrdmvpn.config.render import render  # noqa: PLC0415

            out.canonical_text = render(config)
        return out

    @guarded
    async def EditConfig(self, request: Any, context: Any) -> Any:
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
            comment=request.comment,
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
    async def DiscardCandidate(self, request: Any, context: Any) -> Any:
        ds = self.backend.datastores
        _check_candidate(ds, request.expected_candidate_digest)
        ds.discard()
        return config_service_pb2.DiscardCandidateResponse(
            candidate=revision_message(Revision(0, ds.candidate_text(), 0.0))
        )

    async def _apply(self, text: str, request: Any, origin: str) -> Any:
        ds = self.backend.datastores
        report = await asyncio.to_thread(
            ds.apply_text,
            text,
            dry_run=request.dry_run,
            origin=origin,
            comment=request.comment,
            expected_running=request.expected_running_digest,
        )
        return apply_result(report)

    @guarded
    async def ApplyConfig(self, request: Any, context: Any) -> Any:
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
    async def SaveConfig(self, request: Any, context: Any) -> Any:
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
    async def RollbackConfig(self, request: Any, context: Any) -> Any:
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
    async def ListConfigRevisions(self, request: Any, context: Any) -> Any:
        revs = [revision_message(r) for r in reversed(self.backend.datastores.revisions)]
        page, token = _page(
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


def _redact(text: str) -> str:
    """Replace pre-shared keys and NHRP passwords by ``<removed>`` (IOS's show style)."""
    out = []
    for line in text.splitlines():
        words = list(re.finditer(r"\S+", line))
        found = [w.group() for w in words]
        secret = None
        if "pre-shared-key" in found:  # pre-shared-key [local|remote] [0|6|7] KEY
            secret = found.index("pre-shared-key") + 1
            if secret < len(found) - 1 and found[secret] in ("local", "remote"):
                secret += 1
            if secret < len(found) - 1 and found[secret] in ("0", "6", "7"):
                secret += 1
        elif found[:3] == ["ip", "nhrp", "authentication"]:  # not "authentication local"
            secret = 3
        if secret is not None and secret < len(words):
            out.append(line[: words[secret].start()] + "<removed>")
        else:
            out.append(line)
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


# --- OperationsService --------------------------------------------------------------------
@dataclass
class OperationsServicer(operations_service_pb2_grpc.OperationsServiceServicer):
    backend: Backend
    operations: Any  # frrdmvpn.service.Operations (clear, reinitiate, counters)

    def _targets(self, sel: types_pb2.PeerSelector) -> list[peer_pb2.Peer]:
        which = sel.WhichOneof("target")
        if which is None:
            raise BadRequestError("peer: give remote_nbma, tunnel_address or all")
        peers = self.backend.peers()
        if sel.local_nbma:
            local = _address(sel.local_nbma, "peer.local_nbma")
            peers = [p for p in peers if p.key.local_nbma == local]
        if sel.interface:
            peers = [p for p in peers if p.interface == sel.interface]
        if which == "all":
            return peers
        wanted = _address(getattr(sel, which), f"peer.{which}")
        found = [
            p
            for p in peers
            if (p.key.remote_nbma if which == "remote_nbma" else p.tunnel_address) == wanted
        ]
        if not found:
            raise LookupError(f"no peer with {which} {wanted}")
        return found

    @guarded
    async def ClearPeer(self, request: Any, context: Any) -> Any:
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
    async def ReinitiatePeer(self, request: Any, context: Any) -> Any:
        results = await self.operations.reinitiate(self._targets(request.peer))
        return operations_service_pb2.ReinitiatePeerResponse(results=results)

    @guarded
    async def ClearCounters(self, request: Any, context: Any) -> Any:
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

    def _subscribe(self, request: Any) -> tuple[Subscription, float | None]:
        """Check the request and register the stream (before its snapshot is read)."""
        f = _filter(request.peer_filter, "peer_filter")
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
            sub = self.backend.broker.subscribe(request.kinds, keep, not request.skip_snapshot)
        except ValueError as exc:
            raise BadRequestError(str(exc)) from exc
        return sub, heartbeat

    async def Watch(self, request: Any, context: Any) -> AsyncIterator[Any]:
        try:
            sub, heartbeat = self._subscribe(request)
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

        if handler.unary_unary is not None:
            inner = handler.unary_unary

            async def unary(request: Any, context: Any) -> Any:
                if isinstance(request, _Malformed):
                    return await refuse(request, context)
                return await inner(request, context)

            return grpc.unary_unary_rpc_method_handler(
                unary,
                request_deserializer=tolerant,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            stream = handler.unary_stream

            async def streaming(request: Any, context: Any) -> Any:
                if isinstance(request, _Malformed):
                    await refuse(request, context)
                    return
                items = stream(request, context)
                try:
                    async for item in items:
                        yield item
                finally:  # a cancelled stream ends its handler now, not when collected
                    await items.aclose()

            return grpc.unary_stream_rpc_method_handler(
                streaming,
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
    return grpc.ssl_server_credentials(
        [(tls.key.read_bytes(), tls.cert.read_bytes())],
        root_certificates=tls.client_ca.read_bytes(),
        require_client_auth=True,
    )


class ApiServer:
    """The gRPC server of one daemon."""

    def __init__(  # noqa: PLR0917 - frrdmvpn.daemon passes them positionally
        self,
        backend: Backend,
        operations: Any,
        socket_path: Path = SOCKET,
        group: str | None = GROUP,
        tcp: str | None = None,
        tls: TlsFiles | None = None,
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
        self.health = HealthService()
        self.server = grpc.aio.server(
            interceptors=[MalformedRequests()],
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE),
                ("grpc.max_send_message_length", 64 * 1024 * 1024),
                ("grpc.so_reuseport", 0),
            ],
        )
        state_service_pb2_grpc.add_StateServiceServicer_to_server(
            StateServicer(backend), self.server
        )
        config_service_pb2_grpc.add_ConfigServiceServicer_to_server(
            ConfigServicer(backend), self.server
        )
        operations_service_pb2_grpc.add_OperationsServiceServicer_to_server(
            OperationsServicer(backend, operations), self.server
        )
        watch_service_pb2_grpc.add_WatchServiceServicer_to_server(
            WatchServicer(backend), self.server
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        names = (*SERVICES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name)
        reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
            ReflectionService(names), self.server
        )
        self.port: int | None = None

    async def set_serving(self, serving: bool) -> None:
        for name in ("", *SERVICES):
            self.health.set(name, SERVING if serving else NOT_SERVING)

    async def start(self) -> None:
        await self.set_serving(False)
        self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        mode = self.socket_path.parent.stat().st_mode
        if self.group and not mode & 0o001:  # clients must be able to pass through
            os.chmod(self.socket_path.parent, (mode & 0o777) | 0o001)
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        # the socket is born 0660 (gRPC binds it here): no window with wider access. The
        # umask is the process's: hold it only across this call, which does not yield to
        # other tasks (that would create their files and directories under it)
        old = os.umask(0o117)
        try:
            self.server.add_insecure_port(f"unix:{self.socket_path}")
        finally:
            os.umask(old)
        if self.tcp and self.tls is not None:
            self.port = self.server.add_secure_port(self.tcp, _credentials(self.tls))
        await self.server.start()
        if self.group:
            try:
                os.chown(self.socket_path, -1, grp.getgrnam(self.group).gr_gid)
            except KeyError:
                log.warning("group %r does not exist: the API socket stays root-only", self.group)
                os.chmod(self.socket_path, 0o600)
        log.info(
            "API listening on %s%s",
            self.socket_path,
            f" and {self.tcp} (mutual TLS)" if self.tcp else "",
        )

    async def stop(self, grace: float = 1.0) -> None:
        self.health.shutdown()  # watchers learn it before their streams end
        await self.server.stop(grace)
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()


__all__ = ["ApiServer", "TlsFiles", "watch_service_pb2"]
