"""The proxy and the event socket over real unix sockets, against a fake charon and nhrpd."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from frrdmvpn.adapters.nhrp_event_server import NhrpEventServer
from frrdmvpn.adapters.vici_client import (
    RemoteAuth,
    SharedListing,
    ViciError,
    remote_auths,
    with_certificates,
)
from frrdmvpn.adapters.vici_proxy import ListenPathBusyError, ViciProxy
from frrdmvpn.codec.nhrp_events import AuthorizeBinding
from frrdmvpn.codec.vici import (
    Message,
    Packet,
    PacketType,
    StreamDecoder,
    decode_packet,
    encode_packet,
    frame,
)
from frrdmvpn.core.authorize import ChildSa, Decision
from frrdmvpn.core.vici_translate import InitiateChild
from tests.fakes.charon import DroppingCharon, fake_charon, gre_child, ike_sa, scripted_charon
from tests.fakes.observations import child

T = PacketType
pytestmark = pytest.mark.unit


async def roundtrip(path: Path, packets: list[Packet], answers: int) -> list[Packet]:
    reader, writer = await asyncio.open_unix_connection(str(path))
    for p in packets:
        writer.write(frame(encode_packet(p)))
    dec = StreamDecoder()
    got: list[Packet] = []
    while len(got) < answers:
        data = await asyncio.wait_for(reader.read(65536), 5)
        assert data, "proxy closed early"
        got += [decode_packet(x) for x in dec.feed(data)]
    writer.close()
    return got


def run(coro: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(coro(), 20))


async def proxy_to_fake_charon(
    tmp_path: Path, initiated: list[InitiateChild]
) -> tuple[ViciProxy, asyncio.AbstractServer]:
    """A started proxy on tmp_path/proxy.vici in front of fake_charon."""
    charon = await fake_charon(tmp_path / "charon.vici")
    proxy = ViciProxy(
        tmp_path / "proxy.vici", tmp_path / "charon.vici", initiate=initiated.append, group=None
    )
    await proxy.start()
    return proxy, charon


def test_proxy_passes_through_and_translates(tmp_path: Path) -> None:
    initiated: list[InitiateChild] = []

    async def main() -> None:
        proxy, charon = await proxy_to_fake_charon(tmp_path, initiated)
        got = await roundtrip(
            tmp_path / "proxy.vici",
            [
                Packet(T.EVENT_REGISTER, "child-state-installed"),
                Packet(T.EVENT_REGISTER, "list-sa"),
                Packet(T.CMD_REQUEST, "list-sas", {}),
                Packet(
                    T.CMD_REQUEST,
                    "initiate",
                    {"child": b"dmvpn", "my-host": b"198.51.100.11", "other-host": b"198.51.100.1"},
                ),
            ],
            answers=5,
        )
        assert [(p.type, p.name) for p in got] == [
            (T.EVENT_CONFIRM, None),
            (T.EVENT_CONFIRM, None),
            (T.EVENT, "list-sa"),
            (T.CMD_RESPONSE, None),
            (T.CMD_RESPONSE, None),
        ]
        await proxy.close()
        charon.close()

    run(main)
    assert [(str(i.my_host), str(i.other_host)) for i in initiated] == [
        ("198.51.100.11", "198.51.100.1")
    ]


def test_proxy_survives_garbage_and_a_missing_charon(tmp_path: Path) -> None:
    async def main() -> None:
        proxy = ViciProxy(tmp_path / "proxy.vici", tmp_path / "absent.vici", group=None)
        await proxy.start()
        reader, writer = await asyncio.open_unix_connection(str(tmp_path / "proxy.vici"))
        assert await asyncio.wait_for(reader.read(), 5) == b"", "no charon: client closed"
        writer.close()
        charon = await fake_charon(tmp_path / "charon.vici")
        proxy.upstream = tmp_path / "charon.vici"
        reader, writer = await asyncio.open_unix_connection(str(tmp_path / "proxy.vici"))
        writer.write(frame(b"\x09garbage"))
        assert await asyncio.wait_for(reader.read(), 5) == b"", "garbage: client closed"
        writer.close()
        got = await roundtrip(tmp_path / "proxy.vici", [Packet(T.CMD_REQUEST, "version", {})], 1)
        assert got[0].type is T.CMD_RESPONSE, "the proxy keeps serving"
        await proxy.close()
        charon.close()

    run(main)


def test_proxy_handles_what_came_before_a_framing_fault_then_closes(tmp_path: Path) -> None:
    """One write: an initiate, then a length over the limit. The initiate is carried out as
    if the bytes had arrived in two reads (found by tests/unit/codec/test_fuzz_vici.py)."""
    initiated: list[InitiateChild] = []

    async def main() -> None:
        proxy, charon = await proxy_to_fake_charon(tmp_path, initiated)
        reader, writer = await asyncio.open_unix_connection(str(tmp_path / "proxy.vici"))
        initiate = Packet(
            T.CMD_REQUEST,
            "initiate",
            {"child": b"dmvpn", "my-host": b"198.51.100.11", "other-host": b"198.51.100.1"},
        )
        writer.write(frame(encode_packet(initiate)) + b"\xff\xff\xff\xff")
        await asyncio.wait_for(reader.read(), 5)  # until the proxy closes
        writer.close()
        await proxy.close()
        charon.close()

    run(main)
    assert [str(i.other_host) for i in initiated] == ["198.51.100.1"]


def test_proxy_takes_over_a_stale_socket_but_never_a_served_one(tmp_path: Path) -> None:
    """charon on its default path (not relocated yet) keeps it; a socket file left behind
    (charon never removes its own) is replaced."""
    path = tmp_path / "charon.vici"

    async def main() -> None:
        charon = await fake_charon(path)  # charon itself, on the proxy's path
        proxy = ViciProxy(path, tmp_path / "relocated.vici", group=None)
        with pytest.raises(ListenPathBusyError) as busy:
            await proxy.start()
        assert str(busy.value) == (
            f"something still serves {path} (charon, before it restarts onto "
            f"{tmp_path / 'relocated.vici'}?): not taking it over; restart "
            "strongswan.service, which starts this proxy first"
        )
        got = await roundtrip(path, [Packet(T.CMD_REQUEST, "version", {})], 1)
        assert got[0].type is T.CMD_RESPONSE, "charon still answers on its socket"
        charon.close()
        await charon.wait_closed()
        assert path.exists()  # the file stays, nobody serves it
        await proxy.start()
        await proxy.close()

    run(main)
    done = main_exit(["--listen", str(path), "--config", str(tmp_path / "none.conf")], path)
    assert done.returncode == 3  # frrdmvpn-proxy.service: RestartPreventExitStatus=3
    assert done.stderr.endswith(
        "frrdmvpn-proxy: something still serves " + str(path) + " (charon, before it restarts "
        "onto /run/charon.frrdmvpn.vici?): not taking it over; restart strongswan.service, "
        "which starts this proxy first\n"
    )


def main_exit(argv: list[str], busy: Path) -> subprocess.CompletedProcess[str]:
    """frrdmvpn-proxy run while a server holds ``busy``."""
    with socket.socket(socket.AF_UNIX) as server:
        busy.unlink(missing_ok=True)
        server.bind(str(busy))
        server.listen()
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "frrdmvpn.application.proxy",
                *argv,
                "--pidfile",
                str(busy.with_name("pid")),
                "--events",
                str(busy.with_name("ev.sock")),
                "--journal",
                str(busy.with_name("journal.json")),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


def test_a_decision_that_cannot_be_recorded_is_still_answered(tmp_path: Path) -> None:
    """The journal is for frrdmvpnd; nhrpd waits for the answer whatever the record does."""

    async def decide(event: AuthorizeBinding) -> Decision:
        return Decision(True, "test")

    async def journal(event: AuthorizeBinding, decision: Decision, latency: float) -> None:
        raise ValueError("not serialisable")

    async def main() -> None:
        server = NhrpEventServer(decide, tmp_path / "ev.sock", group=None, journal=journal)
        await server.start()
        reader, writer = await asyncio.open_unix_connection(str(tmp_path / "ev.sock"))
        writer.write(
            b"eventid=7\nevent=authorize-binding\ntype=dynamic\nold_type=invalid\nnum_nhs=0\n"
            b"interface=gre1\nlocal_addr=192.0.2.1\nlocal_nbma=198.51.100.1\n"
            b"remote_addr=192.0.2.11\nremote_nbma=198.51.100.11\n\n"
        )
        answer = await asyncio.wait_for(reader.readuntil(b"\n\n"), 5)
        assert answer == b"eventid=7\nresult=accept\n\n"
        writer.close()
        await server.close()

    run(main)


def test_event_socket_answers_denies_garbage_and_keeps_serving(tmp_path: Path) -> None:
    seen: list[int] = []

    async def decide(event: AuthorizeBinding) -> Decision:
        seen.append(event.eventid)
        if event.eventid == 2:
            raise RuntimeError("charon unreachable")
        return Decision(event.eventid == 1, "test")

    async def main() -> None:
        server = NhrpEventServer(decide, tmp_path / "ev.sock", group=None)
        await server.start()
        reader, writer = await asyncio.open_unix_connection(str(tmp_path / "ev.sock"))
        base = (
            "event=authorize-binding\ntype=dynamic\nold_type=invalid\nnum_nhs=0\n"
            "interface=gre1\nlocal_addr=192.0.2.1\nlocal_nbma=198.51.100.1\n"
            "remote_addr=192.0.2.11\nremote_nbma=198.51.100.11\n"
        )
        for eid in (1, 2):
            writer.write(f"eventid={eid}\n{base}\n".encode())
        writer.write(b"eventid=3\nevent=authorize-binding\ntype=bogus\n\n")
        writer.write(b"eventid=4\nevent=peer-up\n\n")
        await writer.drain()
        replies: dict[str, str] = {}
        buf = b""
        while len(replies) < 4:
            buf += await asyncio.wait_for(reader.read(4096), 5)
            for block in buf.split(b"\n\n")[:-1]:
                fields = dict(line.split("=", 1) for line in block.decode().splitlines())
                replies[fields["eventid"]] = fields["result"]
            buf = buf.split(b"\n\n")[-1]
        assert replies == {"1": "accept", "2": "deny", "3": "deny", "4": "deny"}
        writer.write(b"x" * 70000)
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 5) == b"", "oversize: closed"
        with contextlib.suppress(ConnectionError):
            writer.close()
        reader, writer = await asyncio.open_unix_connection(str(tmp_path / "ev.sock"))
        writer.write(f"eventid=5\n{base}\n".encode())
        assert b"eventid=5\nresult=deny" in await asyncio.wait_for(reader.read(4096), 5)
        writer.close()
        await server.close()
        assert server.counters["accept"] == 1
        assert server.counters["malformed"] >= 2

    run(main)
    assert seen == [1, 2, 5]


def test_shared_listing_serves_many_with_listings_that_start_after_them() -> None:
    started: list[int] = []

    async def main() -> None:
        gate = asyncio.Event()

        async def fetch() -> list[ChildSa]:
            started.append(len(started))
            await gate.wait()
            return []

        listing = SharedListing(fetch)
        first = [asyncio.create_task(listing.get()) for _ in range(5)]
        await asyncio.sleep(0.01)  # the first listing is now running
        later = [asyncio.create_task(listing.get()) for _ in range(5)]
        await asyncio.sleep(0.01)
        gate.set()
        await asyncio.gather(*first, *later)
        assert listing.fetches == 2, "10 callers, one running listing and one after it"

        async def broken() -> list[ChildSa]:
            raise ViciError("charon unreachable")

        failing = SharedListing(broken)
        results = await asyncio.gather(failing.get(), failing.get(), return_exceptions=True)
        assert all(isinstance(r, ViciError) for r in results)

    run(main)
    assert started == [0, 1]


def test_with_certificates_asks_charon_for_auth_class_and_verified_peer_certs(
    tmp_path: Path,
) -> None:
    sock = tmp_path / "charon.vici"
    conns: Message = {
        "dmvpn": {
            "local-1": {"class": b"public key"},
            "remote-1": {"class": b"public key", "id": b"*.lab.example"},
        },
        "legacy": {"remote-1": {"class": b"pre-shared key"}},
    }
    certs: list[Message] = [
        {"type": b"X509", "flag": b"NONE", "has_privkey": b"yes", "data": b"ours"},
        {"type": b"X509", "flag": b"CA", "data": b"the CA"},
        {"type": b"X509", "flag": b"NONE", "data": b"peer-old"},
        {"type": b"X509", "flag": b"NONE", "data": b"peer-new"},
        {"type": b"X509", "flag": b"NONE", "data": b"peer-new"},
    ]
    events = {
        "list-conns": [Packet(T.EVENT, "list-conn", {k: v}) for k, v in conns.items()],
        "list-certs": [Packet(T.EVENT, "list-cert", c) for c in certs],
    }
    ip = ipaddress.ip_address
    base = child(
        ip("198.51.100.11"),
        local=ip("198.51.100.1"),
        local_id="CN=hub",
        remote_id="CN=spoke1",
        local_ts=(),
        remote_ts=(),
        ike_name="dmvpn",
    )
    legacy = dataclasses.replace(base, ike_uniqueid=3, ike_name="legacy")
    elsewhere = dataclasses.replace(base, remote_host=ip("198.51.100.12"), ike_name="gone")
    seen: list[Packet] = []

    async def main() -> None:
        server = await scripted_charon(sock, events, seen)
        try:
            pair = {ip("198.51.100.1"), ip("198.51.100.11")}
            out = await with_certificates(sock, [base, legacy, elsewhere], pair)
        finally:
            server.close()
        assert elsewhere in out  # another pair: untouched, nothing asked for it
        ours = [sa for sa in out if sa.ike_name == "dmvpn"]
        assert [(sa.remote_auth, sa.remote_certs, sa.conn_remote_id) for sa in ours] == [
            ("pubkey", (b"peer-old", b"peer-new"), "*.lab.example")
        ]
        assert [sa.remote_auth for sa in out if sa.ike_name == "legacy"] == ["pre-shared key"]
        asked = [p for p in seen if p.type is T.CMD_REQUEST and p.name == "list-certs"]
        assert len(asked) == 1
        assert asked[0].message == {"type": b"X509", "subject": b"CN=spoke1"}

    run(main)


def test_list_conns_remote_identity_rule() -> None:
    msg: Message = {
        "typed": {"remote-1": {"class": b"public key", "id": b"*.lab.example"}},
        "any": {"remote-1": {"class": b"public key", "id": b"%any"}},
        "unset": {"remote-1": {"class": b"public key"}},
        "eap": {"remote-1": {"class": b"public key", "id": b"x"}, "remote-2": {"class": b"EAP"}},
    }
    assert remote_auths(msg) == {
        "typed": RemoteAuth("pubkey", "*.lab.example"),
        "any": RemoteAuth("pubkey", None),
        "unset": RemoteAuth("pubkey", None),
        "eap": RemoteAuth("EAP", "x"),
    }


def test_a_garbled_child_sa_is_confirmed_by_a_listing_of_its_own(tmp_path: Path) -> None:
    """charon reports a GRE CHILD_SA with its selectors' protocol garbled (its
    getprotobynumber() race): the proxy lists that IKE_SA on a connection of its own and
    tells the client it is installed, as the listing shows it."""
    spoke = b"198.51.100.201"
    listed: Message = {"dmvpn": ike_sa(spoke, gre_child(spoke))}
    garbled: Message = {"up": b"yes", "dmvpn": ike_sa(spoke, gre_child(spoke, spoke + b"/32[ip]"))}

    async def main() -> None:
        charon = DroppingCharon(listed)
        server = await asyncio.start_unix_server(charon.serve, path=str(tmp_path / "c.vici"))
        proxy = ViciProxy(
            tmp_path / "proxy.vici", tmp_path / "c.vici", group=None, profiles={"dmvpn"}
        )
        await proxy.start()
        reader, writer = await asyncio.open_unix_connection(str(tmp_path / "proxy.vici"))
        writer.write(frame(encode_packet(Packet(T.EVENT_REGISTER, "child-state-installed"))))
        decoder, received = StreamDecoder(), list[Packet]()

        async def next_packet() -> Packet:
            while not received:
                data = await asyncio.wait_for(reader.read(65536), 5)
                assert data, "the proxy closed"
                received.extend(decode_packet(x) for x in decoder.feed(data))
            return received.pop(0)

        assert (await next_packet()).type is T.EVENT_CONFIRM
        while not charon.registered:  # the proxy registered charon's stock events
            await asyncio.sleep(0.01)
        charon.announce("child-updown", garbled)
        event = await next_packet()
        assert (event.type, event.name) == (T.EVENT, "child-state-installed")
        assert event.message == {"dmvpn": listed["dmvpn"]}
        assert charon.asked == [{"ike-id": b"3"}]  # that IKE_SA alone
        writer.close()
        await proxy.close()
        server.close()

    run(main)
