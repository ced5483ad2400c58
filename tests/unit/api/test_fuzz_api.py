"""Fuzz: every RPC of the gRPC API (frrdmvpn/api/server.py), through the real server in
process as tests/unit/api/test_api_server.py starts it, fed what an API client may send.

Properties: whatever the bytes of a request, the answer is a status a client can act on
(OK, INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION, ABORTED, RESOURCE_EXHAUSTED, and
PERMISSION_DENIED for an operator), never INTERNAL or UNKNOWN (a handler that broke), within
the call's deadline; the server keeps serving. Generation: each method's request message
built from its descriptor, fields filled with values the handlers look at (addresses,
prefixes, configuration lines and texts, page tokens, unknown enum values, huge and negative
numbers, timestamps out of range), serialized, then maybe mutated; and plain bytes.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from hypothesis import event, example, given
from hypothesis import strategies as st

from frrdmvpn.api.backend import Backend
from frrdmvpn.api.server import ApiServer
from frrdmvpn.apply import Ports
from frrdmvpn.datastores import ApplyReport, Datastores
from frrdmvpn.grpc_std import health_pb2
from frrdmvpn.v1 import (
    config_service_pb2,
    operations_service_pb2,
    state_service_pb2,
    watch_service_pb2,
)
from tests.fakes import api_methods
from tests.fakes.api_node import (
    HUB_TEXT,
    REFUSALS,
    FakeFrr,
    FakeOperations,
    observation,
    remote,
    tunnel,
)
from tests.fakes.world import World
from tests.fuzzing import MARKS, budget, mutations

pytestmark = [*MARKS, pytest.mark.timeout(300)]

SC = grpc.StatusCode
UNARY = {
    name: method.input_type
    for name, method in api_methods.unary(
        config_service_pb2, state_service_pb2, operations_service_pb2, health_pb2
    ).items()
}
WATCH = watch_service_pb2.DESCRIPTOR.services_by_name["WatchService"].methods_by_name["Watch"]
OPERATOR_REFUSALS = REFUSALS | {SC.PERMISSION_DENIED}


# --- the node under test ---------------------------------------------------------------------


class AnyWorld(World):
    """test_apply's fakes, with FRR taking whatever lines it is sent (a fuzzed text applies
    configurations no test listed)."""

    def frr_configure(self, daemon: str, lines: list[str]) -> None:
        self._maybe_fail(f"vtysh {self.asked}")


@pytest.fixture(scope="module")
def sockets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """An ApiServer over Datastores with fake ports and 20 peers, served from a thread of its
    own (the hypothesis tests call it with blocking stubs)."""
    tmp = tmp_path_factory.mktemp("api")
    paths = {"operator": tmp / "api.sock", "administrator": tmp / "admin.sock"}
    started, stop = threading.Event(), threading.Event()
    failed: list[BaseException] = []

    async def serve() -> None:
        world = AnyWorld()
        stores = Datastores(
            saved=tmp / "etc" / "frrdmvpn.conf",
            running=tmp / "run" / "running",
            ports=lambda: Ports(
                world,
                world,
                world.frr_running,
                world.frr_configure,
                world.sysctls,
                world.hooks,
                world.read_file,
                world,
            ),
        )
        backend = Backend(stores, hostname="hub", frr=FakeFrr())
        loop = asyncio.get_running_loop()

        def config_changed(what: str, report: ApplyReport | None) -> None:
            loop.call_soon_threadsafe(backend.config_changed, what, report)

        stores.on_change = config_changed
        backend.observed(observation(20, down=(3,)))
        api = ApiServer(
            backend,
            FakeOperations(),
            socket_path=paths["operator"],
            group=None,
            admin_socket=paths["administrator"],
            admin_group=None,
        )
        await api.start()
        started.set()
        try:
            await asyncio.to_thread(stop.wait)
        finally:
            await api.stop(0)

    def thread() -> None:
        try:
            asyncio.run(serve())
        except BaseException as exc:  # reported by the fixture
            failed.append(exc)
            started.set()

    runner = threading.Thread(target=thread, daemon=True)
    runner.start()
    started.wait(30)
    assert not failed, failed
    try:
        yield paths
    finally:
        stop.set()
        runner.join(30)


@pytest.fixture(scope="module")
def channels(sockets: dict[str, Path]) -> Iterator[dict[str, grpc.Channel]]:
    out = {role: grpc.insecure_channel(f"unix:{path}") for role, path in sockets.items()}
    yield out
    for channel in out.values():
        channel.close()


def code_of(call: Any, data: bytes) -> grpc.StatusCode:
    try:
        call(data, timeout=10)
    except grpc.RpcError as exc:
        code: grpc.StatusCode = exc.code()
        return code
    return SC.OK


def alive(channels: dict[str, grpc.Channel]) -> None:
    call = channels["operator"].unary_unary(
        "/frrdmvpn.v1.StateService/GetNode", request_serializer=None, response_deserializer=None
    )
    assert code_of(call, b"") is SC.OK, "the server no longer answers"


# --- requests built from the methods' descriptors ------------------------------------------


EXAMPLES = Path(__file__).resolve().parents[3] / "docs" / "examples"
CONFIG_LINES = sorted(
    {line for p in EXAMPLES.glob("*.conf") for line in p.read_text().splitlines()}
)


def _token(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


ODD_ADDRESSES = ["198.51.100.1", "2001:db8::1", "198.51.100.300", "::g", ""]
ADDRESSES = st.sampled_from(
    [remote(i) for i in range(0, 22, 3)] + [tunnel(i) for i in (0, 5)] + ODD_ADDRESSES
)
STRINGS = (
    st.sampled_from(
        [
            "",
            "192.0.2.0/28",
            "10.0.0.0/33",
            "0.0.0.0/0",
            "Tunnel0",
            "dmvpn0",
            "hub",
            "%%%",
            "AAAA",
            "hmac-sha256:" + "0" * 64,
            "<removed>",
            "spoke1",
            "\x00",
            "é",
            "\u2028",
            "x" * 5000,
            _token({"after": "", "scope": "peers"}),
            _token({"after": [1], "scope": {}}),
            _token([]),
            _token({"after": "z" * 40, "scope": "cache:0"}),
            HUB_TEXT,
            HUB_TEXT.replace("42", "x"),
            "interface Tunnel1\n ip address 192.0.2.1 255.255.255.0\n",
        ]
    )
    | ADDRESSES
    | st.sampled_from(CONFIG_LINES)
    | st.text(max_size=20)
)
#: What a field of that name is mostly given: a value its handler reads further.
BY_NAME: dict[str, st.SearchStrategy[str]] = {
    "text": st.sampled_from(
        [
            HUB_TEXT,
            HUB_TEXT.replace(" ip mtu 1400", " ip mtu 1380"),
            HUB_TEXT.replace("hostname hub", "hostname hub2"),
            "",
        ]
    ),
    "lines": st.sampled_from(CONFIG_LINES),
    "interface": st.sampled_from(["Tunnel0", "dmvpn0", "Tunnel9"]),
    "protocol_prefix": st.sampled_from(["192.0.2.0/28", "192.0.2.10/32", "2001:db8::/32"]),
    "keys": st.sampled_from(["Tunnel0", "lab", "dmvpn", "any"]),
    "page_token": st.just(""),
}


def _strings(name: str) -> st.SearchStrategy[str]:
    if name in BY_NAME:
        return BY_NAME[name] | STRINGS
    if any(part in name for part in ("nbma", "address", "host")):
        return ADDRESSES | STRINGS
    return STRINGS


INTS = {
    FieldDescriptor.TYPE_INT32: st.sampled_from([0, 1, -1, 2**31 - 1, -(2**31)]),
    FieldDescriptor.TYPE_INT64: st.sampled_from([0, 1, -1, 2**63 - 1, -(2**63), 315537897600]),
    FieldDescriptor.TYPE_UINT32: st.sampled_from([0, 1, 7, 1000, 1001, 2**32 - 1]),
    FieldDescriptor.TYPE_UINT64: st.sampled_from([0, 1, 7, 2**64 - 1]),
}
FLOATS = st.sampled_from([0.0, -1.0, 1e-9, 1e300, float("inf"), float("nan")])


PLAIN = {
    FieldDescriptor.TYPE_BYTES: st.binary(max_size=16),
    FieldDescriptor.TYPE_BOOL: st.booleans(),
    FieldDescriptor.TYPE_DOUBLE: FLOATS,
    FieldDescriptor.TYPE_FLOAT: FLOATS,
    **INTS,
}


def _value(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    if field.type == FieldDescriptor.TYPE_STRING:
        return _strings(field.name)
    if field.type == FieldDescriptor.TYPE_ENUM:
        assert field.enum_type is not None
        known = st.sampled_from([v.number for v in field.enum_type.values])
        return st.one_of(known, known, known, st.integers(-3, 99))
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        assert field.message_type is not None
        return messages(field.message_type, depth + 1)
    return PLAIN.get(field.type, st.integers(0, 2**31 - 1))


def messages(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[Any]:
    cls = message_factory.GetMessageClass(descriptor)
    if depth > 3:
        return st.just(cls())

    @st.composite
    def build(draw: st.DrawFn) -> Any:
        msg = cls()
        for field in descriptor.fields:
            if draw(st.integers(0, 2)):  # a third of the fields set: most requests pass
                continue
            strategy = _value(field, depth)
            if field.is_repeated:
                values = draw(st.lists(strategy, max_size=3))
                if field.type == FieldDescriptor.TYPE_MESSAGE:
                    for v in values:
                        getattr(msg, field.name).add().CopyFrom(v)
                else:
                    getattr(msg, field.name).extend(values)
            elif field.type == FieldDescriptor.TYPE_MESSAGE:
                getattr(msg, field.name).CopyFrom(draw(strategy))
            else:
                setattr(msg, field.name, draw(strategy))
        return msg

    return build()


def requests(descriptor: Descriptor) -> st.SearchStrategy[bytes]:
    """Mostly well-formed requests (the handlers' own checks are the deep part), some
    mutated, some plain bytes."""
    built = messages(descriptor).map(lambda m: m.SerializeToString())
    return st.one_of(built, built, built, built.flatmap(mutations), st.binary(max_size=40))


calls = st.sampled_from(sorted(UNARY)).flatmap(
    lambda method: st.tuples(st.just(method), requests(UNARY[method]))
)
roles = st.sampled_from(["administrator", "administrator", "operator"])
FAR_FUTURE = state_service_pb2.ListAuthorizationDecisionsRequest()
FAR_FUTURE.since.seconds = 2**63 - 1


@budget(300, deadline=None)
@given(calls, roles)
# Found: a Timestamp outside the years 1-9999 made ToNanoseconds raise: INTERNAL.
@example(
    ("/frrdmvpn.v1.StateService/ListAuthorizationDecisions", FAR_FUTURE.SerializeToString()),
    "operator",
)
def test_every_rpc_answers_any_request_with_a_status(
    channels: dict[str, grpc.Channel], call: tuple[str, bytes], role: str
) -> None:
    method, request = call
    stub = channels[role].unary_unary(method, request_serializer=None, response_deserializer=None)
    code = code_of(stub, request)
    event(f"{method.rsplit('/', 1)[1]}: {code.name}")  # --hypothesis-show-statistics
    allowed = REFUSALS if role == "administrator" else OPERATOR_REFUSALS
    assert code in allowed, (method, role, request, code)
    alive(channels)


def _watch(channel: grpc.Channel, request: bytes) -> grpc.StatusCode:
    """A Watch stream's first message (then it is cancelled), or its refusal."""
    stream = channel.unary_stream(
        f"/{WATCH.containing_service.full_name}/{WATCH.name}",
        request_serializer=None,
        response_deserializer=None,
    )
    call: Any = stream(request, timeout=0.5)
    try:
        next(iter(call))
    except StopIteration:
        return SC.OK
    except grpc.RpcError as exc:
        code: grpc.StatusCode = exc.code()
        return code
    finally:
        call.cancel()
    return SC.OK


@budget(30, deadline=None)
@given(requests(WATCH.input_type), roles)
@example(watch_service_pb2.WatchRequest(kinds=[99]).SerializeToString(), "operator")  # type: ignore[list-item]
def test_watch_streams_or_refuses_any_request(
    channels: dict[str, grpc.Channel], request: bytes, role: str
) -> None:
    code = _watch(channels[role], request)
    # A valid request that skips its snapshot may see nothing before the deadline: a live
    # stream, which is what it asked for.
    assert code in REFUSALS | {SC.DEADLINE_EXCEEDED}, (request, code)
    alive(channels)
