"""gRPC's standard server reflection (``grpc.reflection.v1alpha.ServerReflection``,
proto/grpc/reflection/v1alpha) for frrdmvpnd's asyncio server: what grpcurl needs to list,
describe and call the API without the ``.proto`` files.

Each request on the stream gets one response, in order (:func:`answer`, over a descriptor
pool, by default the process's: every generated module registers its files there). A file
comes with every file it depends on, transitively, the one asked for first. What the pool
does not hold is a NOT_FOUND error response, a request that asks nothing INVALID_ARGUMENT:
the stream goes on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import FileDescriptor
from google.protobuf.descriptor_pool import DescriptorPool

from frrdmvpn.grpc_std import reflection_pb2, reflection_pb2_grpc

SERVICE_NAME = reflection_pb2.DESCRIPTOR.services_by_name["ServerReflection"].full_name


def _with_dependencies(file: FileDescriptor) -> list[bytes]:
    """``file`` and everything it imports, transitively, each once, ``file`` first."""
    found: dict[str, FileDescriptor] = {}
    todo = [file]
    while todo:
        current = todo.pop()
        if current.name not in found:
            found[current.name] = current
            todo += reversed(current.dependencies)
    out = []
    for each in found.values():
        proto = descriptor_pb2.FileDescriptorProto()
        each.CopyToProto(proto)
        out.append(proto.SerializeToString())
    return out


def _file_of_symbol(pool: DescriptorPool, symbol: str) -> FileDescriptor:
    """The file defining ``symbol``; a method is looked up through its service (protobuf's
    upb pool does not index methods). KeyError when there is none."""
    try:
        return pool.FindFileContainingSymbol(symbol)
    except KeyError:
        parent, _, member = symbol.rpartition(".")
        if not parent or member not in pool.FindServiceByName(parent).methods_by_name:
            raise
        return pool.FindFileContainingSymbol(parent)


def _error(code: grpc.StatusCode, message: str) -> reflection_pb2.ServerReflectionResponse:
    return reflection_pb2.ServerReflectionResponse(
        error_response=reflection_pb2.ErrorResponse(error_code=code.value[0], error_message=message)
    )


def _files(file: FileDescriptor) -> reflection_pb2.ServerReflectionResponse:
    files = reflection_pb2.FileDescriptorResponse(file_descriptor_proto=_with_dependencies(file))
    return reflection_pb2.ServerReflectionResponse(file_descriptor_response=files)


def _lookup(
    request: reflection_pb2.ServerReflectionRequest, services: tuple[str, ...], pool: DescriptorPool
) -> reflection_pb2.ServerReflectionResponse:
    """The answer, without the envelope; KeyError when the pool lacks what is asked for."""
    which = request.WhichOneof("message_request")
    if which == "list_services":
        listing = reflection_pb2.ListServiceResponse(
            service=[reflection_pb2.ServiceResponse(name=name) for name in services]
        )
        return reflection_pb2.ServerReflectionResponse(list_services_response=listing)
    if which == "file_by_filename":
        return _files(pool.FindFileByName(request.file_by_filename))
    if which == "file_containing_symbol":
        return _files(_file_of_symbol(pool, request.file_containing_symbol))
    if which == "file_containing_extension":
        asked = request.file_containing_extension
        message = pool.FindMessageTypeByName(asked.containing_type)
        extension = pool.FindExtensionByNumber(message, asked.extension_number)
        return _files(pool.FindFileContainingSymbol(extension.full_name))
    if which == "all_extension_numbers_of_type":
        message = pool.FindMessageTypeByName(request.all_extension_numbers_of_type)
        numbers = sorted(e.number for e in pool.FindAllExtensions(message))
        found = reflection_pb2.ExtensionNumberResponse(
            base_type_name=message.full_name, extension_number=numbers
        )
        return reflection_pb2.ServerReflectionResponse(all_extension_numbers_response=found)
    return _error(grpc.StatusCode.INVALID_ARGUMENT, "the request asks nothing")


def answer(
    request: reflection_pb2.ServerReflectionRequest,
    services: Iterable[str],
    pool: DescriptorPool | None = None,
) -> reflection_pb2.ServerReflectionResponse:
    """The response to one reflection request about a server offering ``services``."""
    try:
        response = _lookup(request, tuple(sorted(services)), pool or descriptor_pool.Default())
    except KeyError:
        which = request.WhichOneof("message_request") or ""
        asked = request.file_containing_extension if which == "file_containing_extension" else None
        what = (
            f"extension {asked.extension_number} of {asked.containing_type!r}"
            if asked is not None
            else repr(getattr(request, which))
        )
        response = _error(grpc.StatusCode.NOT_FOUND, f"{which.replace('_', ' ')} {what}: not found")
    response.valid_host = request.host
    response.original_request.CopyFrom(request)
    return response


class ReflectionService(reflection_pb2_grpc.ServerReflectionServicer):
    """ServerReflectionInfo over the process's descriptor pool for ``services``."""

    def __init__(self, services: Iterable[str], pool: DescriptorPool | None = None) -> None:
        self.services = tuple(sorted({*services, SERVICE_NAME}))
        self.pool = pool

    async def ServerReflectionInfo(  # noqa: N802 - the protocol's name
        self, request_iterator: Any, context: Any
    ) -> AsyncIterator[reflection_pb2.ServerReflectionResponse]:
        async for request in request_iterator:
            yield answer(request, self.services, self.pool)
