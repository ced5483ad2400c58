"""The API's methods as the generated descriptors declare them, by full name."""

from __future__ import annotations

from types import ModuleType

from google.protobuf.descriptor import MethodDescriptor


def methods(*modules: ModuleType) -> dict[str, MethodDescriptor]:
    """Every method of the services in ``modules`` (generated ``*_pb2``), by full name
    (``/package.Service/Method``), in the order of the modules and the protos."""
    return {
        f"/{service.full_name}/{method.name}": method
        for module in modules
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    }


def unary(*modules: ModuleType) -> dict[str, MethodDescriptor]:
    """The methods of :func:`methods` that take one request and give one response."""
    return {
        name: method
        for name, method in methods(*modules).items()
        if not method.client_streaming and not method.server_streaming
    }
