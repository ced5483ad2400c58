"""The API over TCP (mutual TLS), from its files to its callers: frrdmvpnd reads
``--tls-cert``, ``--tls-key`` and ``--tls-client-ca`` through the reader of F2 (up to
1 MiB) and listens on nothing when one is refused; a client is known by its verified
certificate's subject (frrdmvpn/adapters/api_front.py ``tcp_caller``), the principal whose
``Watch`` streams are capped (L5).
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections import Counter
from ipaddress import IPv4Address
from pathlib import Path
from typing import cast

import grpc
import pytest

from frrdmvpn.adapters.api_front import UNKNOWN, Caller, tcp_caller
from frrdmvpn.adapters.trusted_files import UntrustedFileError
from frrdmvpn.api.backend import Backend
from frrdmvpn.api.server import MAX_TLS_FILE, ApiServer, TlsFiles
from frrdmvpn.datastores import Datastores
from frrdmvpn.v1 import watch_service_pb2 as wpb
from frrdmvpn.v1 import watch_service_pb2_grpc
from lab import pki
from tests.fakes.api_node import FakeOperations, Node, read, run

pytestmark = [
    pytest.mark.unit,
    pytest.mark.timeout(120),
    pytest.mark.skipif(os.geteuid() != 0, reason="the reader trusts only root's files"),
]

NOBODY = 65534


class Pki:
    """A server certificate from one CA, two client certificates from another."""

    def __init__(self, base: Path) -> None:
        server_ca, self.client_ca_dir = base / "sca", base / "cca"
        self.cert, self.key = pki.issue(
            server_ca, pki.Identity("api", (IPv4Address("127.0.0.1"),)), 1
        )
        self.alice = pki.issue(
            self.client_ca_dir, pki.Identity("alice", (IPv4Address("192.0.2.200"),)), 2
        )
        self.bob = pki.issue(
            self.client_ca_dir, pki.Identity("bob", (IPv4Address("192.0.2.201"),)), 3
        )
        self.client_ca = pki.make_ca(self.client_ca_dir)
        self.trust = pki.make_ca(server_ca).read_bytes()

    def tls(self, **files: Path) -> TlsFiles:
        return TlsFiles(
            files.get("cert", self.cert),
            files.get("key", self.key),
            files.get("client_ca", self.client_ca),
        )

    def credentials(self, client: tuple[Path, Path]) -> grpc.ChannelCredentials:
        cert, key = client
        return grpc.ssl_channel_credentials(self.trust, key.read_bytes(), cert.read_bytes())


def watcher(channel: grpc.aio.Channel) -> watch_service_pb2_grpc.WatchServiceAsyncStub:
    return cast(
        "watch_service_pb2_grpc.WatchServiceAsyncStub",
        watch_service_pb2_grpc.WatchServiceStub(channel),
    )


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


def refused(tmp_path: Path, tls: TlsFiles) -> UntrustedFileError:
    """Start an API with ``tls``: the refusal, after which nothing listens."""
    backend = Backend(Datastores(saved=tmp_path / "s", running=tmp_path / "r"))

    async def main() -> tuple[UntrustedFileError, int | None]:
        api = ApiServer(backend, FakeOperations(), tmp_path / "api.sock", None, "127.0.0.1:0", tls)
        try:
            with pytest.raises(UntrustedFileError) as info:
                await api.start()
        finally:
            await api.stop(0)
        return info.value, api.port

    error, port = asyncio.run(main())
    assert port is None
    assert not (tmp_path / "api.sock").exists()
    return error


def test_a_tls_file_the_reader_refuses_stops_the_api_and_says_why(
    tmp_path: Path, certs: Pki
) -> None:
    own = tmp_path / "files"
    own.mkdir()
    key_text = certs.key.read_bytes()

    def copy(source: Path, name: str, mode: int) -> Path:
        path = own / name
        shutil.copyfile(source, path)
        path.chmod(mode)
        return path

    open_key = copy(certs.key, "open.key", 0o644)
    error = refused(tmp_path, certs.tls(key=open_key))
    assert str(error) == (
        f"--tls-key {open_key} is readable by others (mode 0644): a private key is 0600 or 0640"
    )
    foreign = copy(certs.cert, "foreign.pem", 0o644)
    os.chown(foreign, NOBODY, NOBODY)
    error = refused(tmp_path, certs.tls(cert=foreign))
    assert str(error) == f"--tls-cert {foreign} is owned by uid 65534 (nobody), not root"
    fifo = own / "ca.fifo"
    os.mkfifo(fifo, 0o644)  # opened, it would block the daemon's start
    error = refused(tmp_path, certs.tls(client_ca=fifo))
    assert str(error) == f"--tls-client-ca {fifo} is not a regular file: it is a FIFO"
    huge = own / "huge-ca.pem"
    huge.write_bytes(certs.client_ca.read_bytes() * (MAX_TLS_FILE // 500))
    huge.chmod(0o644)
    error = refused(tmp_path, certs.tls(client_ca=huge))
    assert str(error) == (
        f"--tls-client-ca {huge} has {huge.stat().st_size} bytes: at most {MAX_TLS_FILE}"
    )
    writable_dir = tmp_path / "open"
    writable_dir.mkdir()
    writable_dir.chmod(0o777)
    moved = copy(certs.key, "key", 0o600).rename(writable_dir / "hub.key")
    error = refused(tmp_path, certs.tls(key=moved))
    assert str(error) == (
        f"--tls-key {moved} lies in {writable_dir}, which is writable by "
        "group or others (mode 0777): only root may write there"
    )
    assert key_text.decode() not in str(error)


def test_a_client_ca_bundle_over_one_vici_value_is_still_read(tmp_path: Path, certs: Pki) -> None:
    """1 MiB for a TLS file, not a trustpoint file's 65535 bytes: a CA bundle is long."""
    bundle = tmp_path / "bundle.pem"
    one = certs.client_ca.read_bytes()
    bundle.write_bytes(one * (70000 // len(one) + 1))
    bundle.chmod(0o644)
    assert 65535 < bundle.stat().st_size < MAX_TLS_FILE

    async def body(node: Node) -> None:
        assert node.server.port
        async with grpc.aio.secure_channel(
            f"127.0.0.1:{node.server.port}", certs.credentials(certs.alice)
        ) as channel:
            call = watcher(channel).Watch(wpb.WatchRequest())
            assert (await read(call)).HasField("snapshot_begin")
            call.cancel()

    run(tmp_path, body, tcp="127.0.0.1:0", tls=certs.tls(client_ca=bundle))


def test_each_client_certificate_is_its_own_principal(tmp_path: Path, certs: Pki) -> None:
    """Two certificates from the client CA: one holding all its Watch streams does not take
    the other's (on gRPC's auth context of a real handshake)."""
    alice = "certificate CN=alice,O=frrdmvpn lab"
    bob = "certificate CN=bob,O=frrdmvpn lab"

    async def body(node: Node) -> None:
        admission = node.backend.broker.admission
        admission.per_principal = 2
        target = f"127.0.0.1:{node.server.port}"
        alice_channel = grpc.aio.secure_channel(target, certs.credentials(certs.alice))
        bob_channel = grpc.aio.secure_channel(target, certs.credentials(certs.bob))
        try:
            calls = [watcher(alice_channel).Watch(wpb.WatchRequest()) for _ in range(2)]
            for call in calls:
                assert (await read(call)).HasField("snapshot_begin")
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await read(watcher(alice_channel).Watch(wpb.WatchRequest()))
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert info.value.details() == (
                f"{alice} holds 2 Watch streams, the limit per client is 2: close one and "
                "watch again"
            )
            bobs = watcher(bob_channel).Watch(wpb.WatchRequest())
            assert (await read(bobs)).HasField("snapshot_begin")
            assert Counter({alice: 2, bob: 1}) == +admission.held
            for call in [*calls, bobs]:
                call.cancel()
        finally:
            await alice_channel.close(None)
            await bob_channel.close(None)

    run(tmp_path, body, tcp="127.0.0.1:0", tls=certs.tls())


def test_what_grpc_verified_names_the_caller() -> None:
    """The subject first, else the common name; nothing verified is nobody's in particular."""
    subject = {"x509_subject": [b"CN=alice,O=frrdmvpn lab"], "x509_common_name": [b"alice"]}
    assert tcp_caller(subject) == Caller(
        "certificate CN=alice,O=frrdmvpn lab", certificate="CN=alice,O=frrdmvpn lab"
    )
    assert tcp_caller({"x509_common_name": [b"alice"]}) == Caller(
        "certificate alice", certificate="alice"
    )
    assert tcp_caller({"x509_subject": [b"CN=\xff"]}).principal == "certificate CN=\ufffd"
    assert tcp_caller({}) is UNKNOWN
    assert tcp_caller({"x509_subject": []}) is UNKNOWN
