"""gRPC's standard health service (``grpc.health.v1.Health``, proto/grpc/health/v1) for
frrdmvpnd's asyncio server.

The server sets each service's status by name (:meth:`HealthService.set`; ``""`` is the
daemon as a whole). ``Check`` answers the status now, NOT_FOUND for a name never set;
``List`` every status; ``Watch`` the status now (SERVICE_UNKNOWN for a name not set yet),
then each change, until the client cancels or the server stops. A watcher that reads
slowly gets the latest status, not every one in between: nothing queues up per stream.
After :meth:`HealthService.shutdown` every service is NOT_SERVING and stays so.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, TypeAlias

import grpc

from frrdmvpn.grpc_std import health_pb2, health_pb2_grpc

Status: TypeAlias = health_pb2.HealthCheckResponse.ServingStatus.ValueType
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN


class HealthService(health_pb2_grpc.HealthServicer):
    """The statuses of a server's services, and the Health RPCs over them."""

    def __init__(self) -> None:
        self._status: dict[str, Status] = {}
        self._changed: dict[str, set[asyncio.Event]] = {}
        self._frozen = False

    def set(self, service: str, status: Status) -> None:
        """``service``'s status is now ``status`` (ignored after :meth:`shutdown`)."""
        if self._frozen:
            return
        self._status[service] = status
        for event in self._changed.get(service, ()):
            event.set()

    def shutdown(self) -> None:
        """Every known service NOT_SERVING, for good (the server is going away)."""
        for service in list(self._status):
            self.set(service, NOT_SERVING)
        self._frozen = True

    def status(self, service: str) -> Status | None:
        """``service``'s status; None when it was never set."""
        return self._status.get(service)

    async def Check(  # noqa: N802 - the protocol's name
        self, request: health_pb2.HealthCheckRequest, context: Any
    ) -> health_pb2.HealthCheckResponse:
        status = self._status.get(request.service)
        if status is None:
            context.set_code(grpc.StatusCode.NOT_FOUND)
            context.set_details(f"unknown service {request.service!r}")
            return health_pb2.HealthCheckResponse()
        return health_pb2.HealthCheckResponse(status=status)

    async def List(  # noqa: N802 - the protocol's name
        self, request: health_pb2.HealthListRequest, context: Any
    ) -> health_pb2.HealthListResponse:
        return health_pb2.HealthListResponse(
            statuses={
                name: health_pb2.HealthCheckResponse(status=status)
                for name, status in self._status.items()
            }
        )

    async def Watch(  # noqa: N802 - the protocol's name
        self, request: health_pb2.HealthCheckRequest, context: Any
    ) -> AsyncIterator[health_pb2.HealthCheckResponse]:
        changed = asyncio.Event()
        watchers = self._changed.setdefault(request.service, set())
        watchers.add(changed)
        try:
            sent: Status | None = None
            while True:
                changed.clear()
                status = self._status.get(request.service, SERVICE_UNKNOWN)
                if status != sent:
                    yield health_pb2.HealthCheckResponse(status=status)
                    sent = status
                await changed.wait()
        finally:
            watchers.discard(changed)
            if not watchers:
                self._changed.pop(request.service, None)
