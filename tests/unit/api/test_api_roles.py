"""Roles: every call of the protos has one, each listener enforces its own, an operator never
changes the configuration nor sees a secret, and a client cannot choose its role."""

from __future__ import annotations

import asyncio
import importlib
import logging
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any, cast

import grpc
import pytest

from frrdmvpn.api import roles
from frrdmvpn.api.roles import ADMIN_URI, FIELDS, REQUIRED, Role, refusal, role_from_certificate
from frrdmvpn.api.server import SERVICES, TlsFiles
from frrdmvpn.config.secrets import MASK
from frrdmvpn.grpc_std import health_pb2, reflection_pb2
from frrdmvpn.v1 import (
    config_pb2,
    config_service_pb2,
    config_service_pb2_grpc,
    state_service_pb2,
    state_service_pb2_grpc,
    types_pb2,
)
from frrdmvpn.v1 import watch_service_pb2 as wpb
from tests.fakes import api_methods
from tests.fakes.api_node import HUB_TEXT, SC, Node, code_of, run

pytestmark = [pytest.mark.unit, pytest.mark.timeout(120)]

KEY = "frrdmvpn-lab-psk-not-for-production"  # lab-hub.conf's pre-shared key
ROOT = Path(__file__).resolve().parents[3]


def _proto_methods() -> dict[str, Any]:
    """Every method of the frrdmvpn.v1 services, health and reflection, by full name."""
    protos = sorted((ROOT / "proto" / "frrdmvpn" / "v1").glob("*_service.proto"))
    modules = [importlib.import_module(f"frrdmvpn.v1.{proto.stem}_pb2") for proto in protos]
    return api_methods.methods(*modules, health_pb2, reflection_pb2)


METHODS = _proto_methods()
ADMINISTRATOR_ONLY = {
    "/frrdmvpn.v1.ConfigService/EditConfig",
    "/frrdmvpn.v1.ConfigService/DiscardCandidate",
    "/frrdmvpn.v1.ConfigService/ApplyConfig",
    "/frrdmvpn.v1.ConfigService/SaveConfig",
    "/frrdmvpn.v1.ConfigService/RollbackConfig",
}


# --- the table ------------------------------------------------------------------------------
def test_every_call_of_the_protos_has_its_role_in_the_table() -> None:
    assert set(METHODS) == set(REQUIRED)
    assert {m.split("/")[1] for m in METHODS} >= set(SERVICES)
    assert {m for m, r in REQUIRED.items() if r is Role.ADMINISTRATOR} == ADMINISTRATOR_ONLY
    for method, fields in FIELDS.items():
        request = METHODS[method].input_type
        for name, _ in fields:
            assert name in request.fields_by_name, (method, name)
    assert roles.required("/frrdmvpn.v1.ConfigService/NotYetWritten") is Role.ADMINISTRATOR


def test_refusals_name_the_call_and_both_roles() -> None:
    apply = "/frrdmvpn.v1.ConfigService/ApplyConfig"
    assert refusal(apply, None, Role.OPERATOR) == (
        "ConfigService.ApplyConfig needs the administrator role (this connection has the "
        "operator role)"
    )
    assert refusal(apply, None, Role.ADMINISTRATOR) is None
    get = "/frrdmvpn.v1.ConfigService/GetConfig"
    assert refusal(get, config_service_pb2.GetConfigRequest(), Role.OPERATOR) is None
    reveal = config_service_pb2.GetConfigRequest(reveal_secrets=True)
    assert refusal(get, reveal, Role.OPERATOR) == (
        "ConfigService.GetConfig with reveal_secrets needs the administrator role (this "
        "connection has the operator role)"
    )
    assert refusal(get, reveal, Role.ADMINISTRATOR) is None


def test_the_certificate_role_is_the_uri_san_of_a_verified_tls_peer() -> None:
    tls = {"transport_security_type": [b"ssl"]}
    assert role_from_certificate({**tls, "peer_uri": [ADMIN_URI.encode()]}) is Role.ADMINISTRATOR
    assert role_from_certificate({**tls, "peer_uri": [b"urn:frrdmvpn:role:operator"]}) is (
        Role.OPERATOR
    )
    assert role_from_certificate(tls) is Role.OPERATOR
    assert role_from_certificate({**tls, "peer_dns": [ADMIN_URI.encode()]}) is Role.OPERATOR
    insecure = {"transport_security_type": [b"insecure"], "peer_uri": [ADMIN_URI.encode()]}
    assert role_from_certificate(insecure) is Role.OPERATOR


# --- every call on both sockets ---------------------------------------------------------------
async def _code(channel: grpc.aio.Channel, method: str) -> tuple[grpc.StatusCode, str]:
    """The status of ``method`` called with an empty request (a stream: its first answer)."""
    descriptor = METHODS[method]
    try:
        if descriptor.client_streaming:
            call: Any = channel.stream_stream(method, None, None)(iter([b""]), timeout=10)
            await call.read()
            call.cancel()
        elif descriptor.server_streaming:
            call = channel.unary_stream(method, None, None)(b"", timeout=10)
            await call.read()
            call.cancel()
        else:
            await channel.unary_unary(method, None, None)(b"", timeout=10)
    except grpc.aio.AioRpcError as exc:
        return exc.code(), exc.details() or ""
    return SC.OK, ""


def test_each_call_is_allowed_or_refused_by_the_sockets_role(tmp_path: Path) -> None:
    async def body(node: Node) -> None:
        async with grpc.aio.insecure_channel(f"unix:{node.socket}") as operator:
            for method, role in REQUIRED.items():
                code, details = await _code(operator, method)
                if role is Role.ADMINISTRATOR:
                    name = method[1:].removeprefix("frrdmvpn.v1.").replace("/", ".")
                    assert (code, details) == (
                        SC.PERMISSION_DENIED,
                        f"{name} needs the administrator role (this connection has the "
                        "operator role)",
                    ), method
                else:  # served (an empty request may be a bad one)
                    assert code not in (SC.PERMISSION_DENIED, SC.UNKNOWN), (method, details)
        for method in REQUIRED:
            code, details = await _code(node.channel, method)  # the administrators' socket
            assert code not in (SC.PERMISSION_DENIED, SC.UNKNOWN), (method, details)

    run(tmp_path, body, peers=2)


def _stubs(channel: grpc.aio.Channel) -> tuple[Any, Any]:
    config = cast(
        "config_service_pb2_grpc.ConfigServiceAsyncStub",
        config_service_pb2_grpc.ConfigServiceStub(channel),
    )
    state = cast(
        "state_service_pb2_grpc.StateServiceAsyncStub",
        state_service_pb2_grpc.StateServiceStub(channel),
    )
    return config, state


def test_an_operator_sees_masked_secrets_and_changes_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def body(node: Node) -> None:
        admin_config, admin_state = _stubs(node.channel)
        applied = await admin_config.ApplyConfig(
            config_service_pb2.ApplyConfigRequest(text=HUB_TEXT)
        )
        assert applied.result.outcome == config_pb2.APPLY_OUTCOME_APPLIED
        node_answer = await admin_state.GetNode(state_service_pb2.GetNodeRequest())
        assert node_answer.caller_role == types_pb2.ROLE_ADMINISTRATOR
        async with grpc.aio.insecure_channel(f"unix:{node.socket}") as channel:
            config, state = _stubs(channel)
            answer = await state.GetNode(state_service_pb2.GetNodeRequest())
            assert answer.caller_role == types_pb2.ROLE_OPERATOR
            shown = await config.GetConfig(config_service_pb2.GetConfigRequest())
            assert KEY not in str(shown)
            assert f"  pre-shared-key {MASK}" in shown.text
            keys = [s for s in shown.tree.statements if s.text == "crypto ikev2 keyring lab"]
            assert keys[0].children[0].children[1].text == f"pre-shared-key {MASK}"
            for request in (
                config_service_pb2.GetConfigRequest(reveal_secrets=True),
                config_service_pb2.GetConfigRequest(reveal_secrets=True, redact_secrets=True),
            ):
                assert await code_of(config.GetConfig(request)) == SC.PERMISSION_DENIED
            checked = await config.ValidateConfig(
                config_service_pb2.ValidateConfigRequest(
                    datastore=config_pb2.CONFIG_DATASTORE_RUNNING
                )
            )
            assert checked.valid
            assert KEY not in checked.canonical_text
            assert f"pre-shared-key {MASK}" in checked.canonical_text
            reveal = config_service_pb2.ValidateConfigRequest(text=HUB_TEXT, reveal_secrets=True)
            assert await code_of(config.ValidateConfig(reveal)) == SC.PERMISSION_DENIED
            edit = config_service_pb2.EditConfigRequest(lines=["hostname x"])
            assert await code_of(config.EditConfig(edit)) == SC.PERMISSION_DENIED
        revealed = await admin_config.GetConfig(
            config_service_pb2.GetConfigRequest(reveal_secrets=True)
        )
        assert f"pre-shared-key {KEY}" in revealed.text
        assert "hostname hub" in revealed.text  # the operator's edit did not happen
        checked = await admin_config.ValidateConfig(
            config_service_pb2.ValidateConfigRequest(text=HUB_TEXT, reveal_secrets=True)
        )
        assert f"pre-shared-key {KEY}" in checked.canonical_text

    with caplog.at_level(logging.DEBUG):
        run(tmp_path, body)
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert (
        f"API: refused on unix:{tmp_path / 'api.sock'}: ConfigService.EditConfig needs the "
        "administrator role (this connection has the operator role)" in refused
    )
    assert not [r for r in caplog.records if KEY in r.getMessage()]


def test_masked_text_fed_back_keeps_the_secret_or_is_refused(tmp_path: Path) -> None:
    async def body(node: Node) -> None:
        config, _ = _stubs(node.channel)
        first = await config.ApplyConfig(config_service_pb2.ApplyConfigRequest(text=HUB_TEXT))
        shown = (await config.GetConfig(config_service_pb2.GetConfigRequest())).text
        assert MASK in shown
        again = await config.ApplyConfig(config_service_pb2.ApplyConfigRequest(text=shown))
        assert again.result.outcome == config_pb2.APPLY_OUTCOME_UNCHANGED, again.result.message
        assert again.result.running.digest == first.result.running.digest
        edit = config_service_pb2.EditConfigRequest(
            lines=["crypto ikev2 keyring lab", " peer any", f"  pre-shared-key {MASK}"],
            commit=config_service_pb2.EDIT_COMMIT_REQUIRED,
        )
        edited = await config.EditConfig(edit)
        assert edited.lines_accepted == 3
        assert edited.apply.outcome == config_pb2.APPLY_OUTCOME_UNCHANGED
        moved = shown.replace(" peer any", " peer other")
        refused = await config.ApplyConfig(config_service_pb2.ApplyConfigRequest(text=moved))
        assert refused.result.outcome == config_pb2.APPLY_OUTCOME_REJECTED
        (d,) = refused.result.diagnostics
        assert d.message == (
            "no pre-shared key is configured here to keep: type the pre-shared key itself "
            "(<removed> stands for the one configured)"
        )
        assert (d.token, d.column) == (MASK, 18)
        revealed = await config.GetConfig(config_service_pb2.GetConfigRequest(reveal_secrets=True))
        assert f"pre-shared-key {KEY}" in revealed.text

    run(tmp_path, body)


def test_a_refused_secret_reaches_no_watcher_and_no_answer(tmp_path: Path) -> None:
    """``pre-shared-key local KEY`` (IOS syntax): refused, and the key is in no diagnostic,
    no Watch event, no log."""
    bad = HUB_TEXT.replace(f"pre-shared-key {KEY}", f"pre-shared-key local {KEY}")

    async def body(node: Node) -> None:
        config, _ = _stubs(node.channel)
        async with grpc.aio.insecure_channel(f"unix:{node.socket}") as operator:
            watch = cast(Any, operator).unary_stream(
                "/frrdmvpn.v1.WatchService/Watch",
                request_serializer=wpb.WatchRequest.SerializeToString,
                response_deserializer=wpb.WatchResponse.FromString,
            )(wpb.WatchRequest(kinds=[wpb.EVENT_KIND_CONFIG], skip_snapshot=True), timeout=30)
            checked = await config.ValidateConfig(
                config_service_pb2.ValidateConfigRequest(text=bad)
            )
            rejected = await config.ApplyConfig(config_service_pb2.ApplyConfigRequest(text=bad))
            assert rejected.result.outcome == config_pb2.APPLY_OUTCOME_REJECTED
            event = await asyncio.wait_for(watch.read(), 30)
            watch.cancel()
        for answer in (checked, rejected, event):
            assert KEY not in str(answer)
        (d,) = checked.diagnostics
        assert (d.message, d.token) == ("unexpected extra input", MASK)

    run(tmp_path, body)


# --- TCP: the client certificate says the role -------------------------------------------------
def _issue(directory: Path, name: str, san: str) -> tuple[bytes, bytes]:
    """A client certificate of the CA in ``directory`` with subjectAltName ``san``."""
    from lab import pki  # noqa: PLC0415

    serial = abs(hash(name)) % 10**9
    cert, key = pki.sign(
        directory, name, f"/OU=admin/CN={name}", [f"subjectAltName={san}"], serial=serial, days=30
    )
    return cert.read_bytes(), key.read_bytes()


def test_over_tls_the_client_certificate_gives_the_role(tmp_path: Path) -> None:
    from lab import pki  # noqa: PLC0415

    server_ca, client_ca = tmp_path / "sca", tmp_path / "cca"
    cert, key = pki.issue(server_ca, pki.Identity("api", (IPv4Address("127.0.0.1"),)), 1)
    pki.make_ca(client_ca)
    clients = {
        "admin": (
            _issue(client_ca, "admin", f"URI:{ADMIN_URI},DNS:admin.example"),
            types_pb2.ROLE_ADMINISTRATOR,
        ),
        "operator": (
            _issue(client_ca, "operator", "URI:urn:frrdmvpn:role:operator"),
            types_pb2.ROLE_OPERATOR,
        ),
        "plain": (_issue(client_ca, "plain", "DNS:plain.example"), types_pb2.ROLE_OPERATOR),
        "dns": (
            _issue(client_ca, "dns", f"DNS:{ADMIN_URI.replace(':', '-')}"),
            types_pb2.ROLE_OPERATOR,
        ),
    }
    trust = pki.make_ca(server_ca).read_bytes()
    tls = TlsFiles(cert, key, client_ca / "ca.pem")

    async def body(node: Node) -> None:
        target = f"127.0.0.1:{node.server.port}"
        for name, ((pem, private), role) in clients.items():
            creds = grpc.ssl_channel_credentials(trust, private, pem)
            async with grpc.aio.secure_channel(target, creds) as channel:
                config, state = _stubs(channel)
                answer = await state.GetNode(state_service_pb2.GetNodeRequest())
                assert answer.caller_role == role, name
                apply = config.ApplyConfig(
                    config_service_pb2.ApplyConfigRequest(text=HUB_TEXT, dry_run=True)
                )
                want = SC.OK if role == types_pb2.ROLE_ADMINISTRATOR else SC.PERMISSION_DENIED
                assert await code_of(apply) == want, name

    run(tmp_path, body, tcp="127.0.0.1:0", tls=tls)
