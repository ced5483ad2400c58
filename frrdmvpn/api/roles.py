"""Who may call what: the API's two roles, every call's role, and the interceptor that
enforces them.

A role belongs to the connection and is fixed on the server's side, where no client can
forge it: the unix socket the call came in on (``frrdmvpn.sock``, group ``frrdmvpn``:
operator; ``frrdmvpn-admin.sock``, group ``frrdmvpn-admin``: administrator; root may open
either), or, over TCP, the client certificate the TLS handshake verified (a
subjectAltName URI ``urn:frrdmvpn:role:admin`` makes an administrator, any other
certificate of the client CA an operator). The operator shows, clears, debugs and
watches; the administrator also configures and may see secrets in clear.

:data:`REQUIRED` names every call with its role (a unit test compares it with the
protos); a call that is not in it needs the administrator role. :data:`FIELDS` names the
request fields that need more than their call (``reveal_secrets``). :class:`Authorize`
refuses what the connection's role does not allow with PERMISSION_DENIED, and lets the
handler read the role (:func:`caller_role`).
"""

from __future__ import annotations

import contextvars
import enum
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import grpc

log = logging.getLogger("frrdmvpn.api")

ADMIN_URI = "urn:frrdmvpn:role:admin"
"""The subjectAltName URI of an administrator's client certificate."""


class Role(enum.IntEnum):
    """What a connection may do; a higher role may do everything a lower one may."""

    OPERATOR = 1
    ADMINISTRATOR = 2

    @property
    def title(self) -> str:
        return self.name.lower()


_OPERATOR_CALLS = {
    "frrdmvpn.v1.StateService": (
        "GetNode",
        "ListPeers",
        "GetPeer",
        "ListNhrpCache",
        "ListNhs",
        "ListShortcuts",
        "GetNhrpTraffic",
        "ListOspfNeighbors",
        "GetGuardStatus",
        "GetAuthorizationStatus",
        "ListAuthorizationDecisions",
    ),
    "frrdmvpn.v1.ConfigService": ("GetConfig", "ValidateConfig", "ListConfigRevisions"),
    "frrdmvpn.v1.OperationsService": ("ClearPeer", "ReinitiatePeer", "ClearCounters"),
    "frrdmvpn.v1.WatchService": ("Watch",),
    "grpc.health.v1.Health": ("Check", "Watch", "List"),
    "grpc.reflection.v1alpha.ServerReflection": ("ServerReflectionInfo",),
}
_ADMINISTRATOR_CALLS = {
    "frrdmvpn.v1.ConfigService": (
        "EditConfig",
        "DiscardCandidate",
        "ApplyConfig",
        "SaveConfig",
        "RollbackConfig",
    ),
}

REQUIRED: Mapping[str, Role] = {
    f"/{service}/{method}": role
    for calls, role in (
        (_OPERATOR_CALLS, Role.OPERATOR),
        (_ADMINISTRATOR_CALLS, Role.ADMINISTRATOR),
    )
    for service, methods in calls.items()
    for method in methods
}
"""Every call the daemon serves, with the role it needs."""

FIELDS: Mapping[str, tuple[tuple[str, Role], ...]] = {
    "/frrdmvpn.v1.ConfigService/GetConfig": (("reveal_secrets", Role.ADMINISTRATOR),),
    "/frrdmvpn.v1.ConfigService/ValidateConfig": (("reveal_secrets", Role.ADMINISTRATOR),),
}
"""Request fields that, when set, need a role above their call's."""


def required(method: str) -> Role:
    """The role ``method`` (``/package.Service/Method``) needs; unknown: administrator."""
    return REQUIRED.get(method, Role.ADMINISTRATOR)


def refusal(method: str, request: Any, role: Role) -> str | None:
    """Why a connection with ``role`` may not make this call (None: it may)."""
    name = method.strip("/").rsplit(".", 1)[-1].replace("/", ".")
    need = required(method)
    if role < need:
        return f"{name} needs the {need.title} role (this connection has the {role.title} role)"
    for field, need in FIELDS.get(method, ()):
        if role < need and getattr(request, field, False) is True:
            return (
                f"{name} with {field} needs the {need.title} role (this connection has "
                f"the {role.title} role)"
            )
    return None


def role_from_certificate(auth_context: Mapping[str, Any]) -> Role:
    """The role a verified TLS client certificate gives: administrator with the
    subjectAltName URI :data:`ADMIN_URI`, else operator. Without TLS: operator."""
    if auth_context.get("transport_security_type") != [b"ssl"]:
        return Role.OPERATOR
    uris = auth_context.get("peer_uri", [])
    return Role.ADMINISTRATOR if ADMIN_URI.encode() in uris else Role.OPERATOR


_CALLER: contextvars.ContextVar[Role] = contextvars.ContextVar("frrdmvpn_api_role")


def caller_role() -> Role:
    """The role of the call being handled (operator outside :class:`Authorize`)."""
    return _CALLER.get(Role.OPERATOR)


RoleOf = Callable[[Any], Role]
"""A listener's role source: the call's context -> its role."""


def fixed(role: Role) -> RoleOf:
    """Every call of this listener has ``role`` (a unix socket)."""
    return lambda context: role


def by_certificate(context: Any) -> Role:
    """The role of the client certificate of this call's TLS connection."""
    return role_from_certificate(context.auth_context())


class Authorize(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Refuse what the connection's role does not allow (PERMISSION_DENIED, logged), and
    run the handler with :func:`caller_role` set (in the call's own task: gRPC runs each
    call in one)."""

    def __init__(self, role_of: RoleOf, listener: str) -> None:
        self.role_of, self.listener = role_of, listener

    async def _check(self, method: str, request: Any, context: Any) -> Role:
        role = self.role_of(context)
        why = refusal(method, request, role)
        if why is not None:
            log.warning("API: refused on %s: %s", self.listener, why)
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, why)
        return role

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = await continuation(details)
        if handler is None:
            return None
        method = details.method

        async def admit(request: Any, context: Any) -> bool:
            """Refuse (abort) or record the role; ``request`` is a request iterator for a
            client stream, whose fields cannot be looked at: there the call decides."""
            _CALLER.set(await self._check(method, request, context))
            return True

        common = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary is not None:
            behaviour = unary_behaviour(handler.unary_unary, admit)
            return grpc.unary_unary_rpc_method_handler(behaviour, **common)
        if handler.unary_stream is not None:
            behaviour = stream_behaviour(handler.unary_stream, admit)
            return grpc.unary_stream_rpc_method_handler(behaviour, **common)
        if handler.stream_stream is not None:
            behaviour = stream_behaviour(handler.stream_stream, admit)
            return grpc.stream_stream_rpc_method_handler(behaviour, **common)
        behaviour = unary_behaviour(handler.stream_unary, admit)
        return grpc.stream_unary_rpc_method_handler(behaviour, **common)


Admit = Callable[[Any, Any], Awaitable[bool]]
"""``admit(request, context)``: False ends the call (it has been answered or aborted)."""


def unary_behaviour(inner: Any, admit: Admit) -> Any:
    """A behaviour with one answer that first awaits ``admit``, then ``inner``."""

    async def answering(request: Any, context: Any) -> Any:
        if await admit(request, context):
            return await inner(request, context)
        return None

    return answering


def stream_behaviour(inner: Any, admit: Admit) -> Any:
    """A streaming behaviour that first awaits ``admit``, then streams as ``inner`` does: by
    yielding (an async generator) or by ``context.write`` (a coroutine, as grpc's health
    servicer does)."""
    if inspect.isasyncgenfunction(inner):

        async def generating(request: Any, context: Any) -> AsyncIterator[Any]:
            if await admit(request, context):
                async for item in _closing(inner(request, context)):
                    yield item

        return generating

    async def writing(request: Any, context: Any) -> None:
        if await admit(request, context):
            await inner(request, context)

    return writing


async def _closing(items: Any) -> AsyncIterator[Any]:
    """``items`` (an async generator), closed at once when the stream ends or is cancelled."""
    try:
        async for item in items:
            yield item
    finally:
        close = getattr(items, "aclose", None)
        if close is not None:
            await close()
