"""Server reflection's answers (frrdmvpn.api.reflection.answer) for any question a client
may send: one response per request, the request echoed, a file with everything it imports,
and an error response (never an exception) for what the server does not hold."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import descriptor_pb2
from hypothesis import given
from hypothesis import strategies as st

from frrdmvpn.api import server  # noqa: F401 - registers frrdmvpn.v1's files in the pool
from frrdmvpn.api.reflection import answer
from frrdmvpn.grpc_std import reflection_pb2

pytestmark = pytest.mark.unit

Request = reflection_pb2.ServerReflectionRequest
SERVICES = ("frrdmvpn.v1.StateService",)
ANSWERS = {
    "file_descriptor_response",
    "all_extension_numbers_response",
    "list_services_response",
    "error_response",
}


def _names(response: reflection_pb2.ServerReflectionResponse) -> list[str]:
    return [
        descriptor_pb2.FileDescriptorProto.FromString(f).name
        for f in response.file_descriptor_response.file_descriptor_proto
    ]


def test_a_file_comes_first_with_everything_it_imports_once() -> None:
    response = answer(Request(file_by_filename="frrdmvpn/v1/state_service.proto"), SERVICES)
    names = _names(response)
    assert names[0] == "frrdmvpn/v1/state_service.proto"
    assert len(names) == len(set(names))
    assert {
        "frrdmvpn/v1/peer.proto",
        "frrdmvpn/v1/types.proto",
        "google/protobuf/timestamp.proto",
    } <= set(names)
    # a method: the upb runtime does not index methods, the cpp one (Debian's) does
    by_method = answer(Request(file_containing_symbol="frrdmvpn.v1.StateService.GetNode"), SERVICES)
    assert _names(by_method) == names


def test_extensions_of_a_type_without_any() -> None:
    numbers = answer(Request(all_extension_numbers_of_type="frrdmvpn.v1.Peer"), SERVICES)
    found = numbers.all_extension_numbers_response
    assert (found.base_type_name, list(found.extension_number)) == ("frrdmvpn.v1.Peer", [])
    asked = reflection_pb2.ExtensionRequest(
        containing_type="frrdmvpn.v1.Peer", extension_number=1000
    )
    missing = answer(Request(file_containing_extension=asked), SERVICES)
    assert (missing.error_response.error_code, missing.error_response.error_message) == (
        grpc.StatusCode.NOT_FOUND.value[0],
        "file containing extension extension 1000 of 'frrdmvpn.v1.Peer': not found",
    )


@given(
    host=st.text(max_size=20),
    field=st.sampled_from(
        [
            "file_by_filename",
            "file_containing_symbol",
            "all_extension_numbers_of_type",
            "list_services",
            "file_containing_extension",
            None,
        ]
    ),
    value=st.text(max_size=60),
    number=st.integers(min_value=-(2**31), max_value=2**31 - 1),
)
def test_any_question_gets_exactly_one_answer(
    host: str, field: str | None, value: str, number: int
) -> None:
    request = Request(host=host)
    if field == "file_containing_extension":
        request.file_containing_extension.containing_type = value
        request.file_containing_extension.extension_number = number
    elif field is not None:
        setattr(request, field, value)
    response = answer(request, SERVICES)
    assert response.WhichOneof("message_response") in ANSWERS
    assert response.valid_host == host
    assert response.original_request == request
