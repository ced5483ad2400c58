"""The gRPC API with a hub of 10,000 peers: state building, ListPeers, Watch, memory.

A synthetic observation (10,000 supervisor peers, one IKE_SA with one CHILD_SA each as
charon's ``list-sa`` reports them, one dynamic NHRP cache entry each) is folded into the
store, then served by an in-process ApiServer on a unix socket; the client runs in the same
process and event loop (so each latency includes both ends).

Run: ``.venv/bin/python bench/api_bench.py [--peers N] [--rounds R]``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import functools
import gc
import resource
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any, cast

import grpc

from frrdmvpn.api import convert
from frrdmvpn.api.backend import Backend
from frrdmvpn.api.server import ApiServer
from frrdmvpn.api.state import Observed, StateBuilder
from frrdmvpn.api.tables import Store
from frrdmvpn.codec.vici import Message
from frrdmvpn.core.supervisor import Role, State, SupervisedPeer
from frrdmvpn.datastores import Datastores
from frrdmvpn.v1 import (
    peer_pb2,
    state_service_pb2,
    state_service_pb2_grpc,
    watch_service_pb2_grpc,
)
from frrdmvpn.v1 import watch_service_pb2 as wpb

HUB = "198.51.100.1"
NOW = 1_790_000_000.0
MONO = 86_400.0


def remote(i: int) -> str:
    return str(IPv4Address(0x0A000000 + 0x10000 + i))  # 10.1.0.0 onwards


def tunnel(i: int) -> str:
    return str(IPv4Address(0xAC100000 + 2 + i))  # 172.16.0.2 onwards


def list_sa(i: int, elapsed: int) -> Message:
    """One IKE_SA and its CHILD_SA as frrdmvpn.codec.vici decodes charon's list-sa."""
    nbma = remote(i).encode()
    child: dict[str, Any] = {
        "name": b"dmvpn",
        "uniqueid": str(100_000 + i).encode(),
        "reqid": b"1",
        "state": b"INSTALLED",
        "mode": b"TRANSPORT",
        "protocol": b"ESP",
        "spi-in": f"{0xC0000000 + i:08x}".encode(),
        "spi-out": f"{0xD0000000 + i:08x}".encode(),
        "encr-alg": b"AES_GCM_16",
        "encr-keysize": b"128",
        "bytes-in": str(1000 * i + elapsed).encode(),
        "packets-in": str(i + elapsed).encode(),
        "use-in": b"1",
        "bytes-out": str(2000 * i).encode(),
        "packets-out": str(2 * i).encode(),
        "use-out": b"2",
        "rekey-time": str(3000 - elapsed).encode(),
        "life-time": str(3300 - elapsed).encode(),
        "install-time": str(200 + elapsed).encode(),
        "local-ts": [HUB.encode() + b"/32[gre]"],
        "remote-ts": [nbma + b"/32[gre]"],
    }
    ike: dict[str, Any] = {
        "uniqueid": str(i + 1).encode(),
        "version": b"2",
        "state": b"ESTABLISHED",
        "local-host": HUB.encode(),
        "local-port": b"500",
        "local-id": HUB.encode(),
        "remote-host": nbma,
        "remote-port": b"500",
        "remote-id": nbma,
        "initiator-spi": f"{i + 1:016x}".encode(),
        "responder-spi": f"{i + 7:016x}".encode(),
        "encr-alg": b"AES_GCM_16",
        "encr-keysize": b"128",
        "prf-alg": b"PRF_HMAC_SHA2_256",
        "dh-group": b"CURVE_25519",
        "established": str(200 + elapsed).encode(),
        "rekey-time": str(13_000 - elapsed).encode(),
        "child-sas": {f"dmvpn-{100_000 + i}": child},
    }
    return {"dmvpn": ike}


def peers(n: int) -> tuple[SupervisedPeer, ...]:
    """The supervisor's peers (it keeps them from step to step)."""
    return tuple(
        SupervisedPeer(
            IPv4Address(HUB),
            IPv4Address(remote(i)),
            Role.DYNAMIC,
            State.UP,
            since=MONO - 300,
            reason="NHRP binding and SA up",
            transitions=4,
        )
        for i in range(n)
    )


def published(kept: tuple[SupervisedPeer, ...]) -> tuple[SupervisedPeer, ...]:
    """What one step publishes: a copy of each peer (the supervisor changes its own)."""
    return tuple(dataclasses.replace(p) for p in kept)


def cache(n: int) -> tuple[dict[str, Any], ...]:
    """nhrpd's dynamic entries (fresh dicts each step, as parsed from its vty)."""
    return tuple(
        {
            "interface": "dmvpn0",
            "type": "dynamic",
            "protocol": tunnel(i),
            "nbma": remote(i),
            "claimed_nbma": remote(i),
            "used": False,
            "timeout": True,
            "auth": False,
            "identity": remote(i),
        }
        for i in range(n)
    )


def listing(n: int, elapsed: int = 0) -> list[Message]:
    """charon's ``list-sa`` messages, ``elapsed`` s after the first."""
    return [list_sa(i, elapsed) for i in range(n)]


_KEPT: dict[int, tuple[SupervisedPeer, ...]] = {}


def observation(
    n: int,
    elapsed: int = 0,
    sas: list[Message] | None = None,
    entries: tuple[dict[str, Any], ...] | None = None,
) -> Observed:
    """What one supervision step of a hub with ``n`` spokes sees, ``elapsed`` s later;
    ``sas``: the listing it holds (the supervisor reuses one until charon reports a
    change), else a new one; ``entries``: nhrpd's cache it holds (nhrpd answered the same
    text), else a new one."""
    messages = listing(n, elapsed) if sas is None else sas
    records = tuple(convert.sa_records(messages))
    kept = _KEPT.setdefault(n, peers(n))
    entries = cache(n) if entries is None else entries
    return Observed(published(kept), records, entries, (), NOW + elapsed, NOW - MONO)


def rss_mib() -> tuple[float, float]:
    """(current, peak) resident set size of this process, MiB."""
    current = 0.0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            current = int(line.split()[1]) / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return current, peak


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


async def atimed(fn: Callable[[], Awaitable[Any]], rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        await fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def summary(times: list[float]) -> str:
    if len(times) == 1:
        return f"{times[0]:.1f} ms"
    return f"median {statistics.median(times):.1f} ms, max {max(times):.1f} ms (n={len(times)})"


def build(n: int, rows: list[tuple[str, str]]) -> None:
    """StateBuilder alone: a first observation, then unchanged ones: at rest (the listing
    reused; nhrpd's entries and the peers fresh copies) and after a new listing (clocks
    and counters moved)."""
    messages, entries = listing(n), cache(n)
    obs = observation(n, sas=messages, entries=entries)
    builder = StateBuilder(Store())
    gc.collect()
    first = timed(lambda: builder.update(obs))
    rest = []
    for step in range(3):
        again = observation(n, elapsed=10 * (step + 1), sas=messages, entries=entries)
        gc.collect()
        rest.append(timed(functools.partial(builder.update, again)))
        assert builder.update(again) == []
    unchanged = []
    for step in range(3):
        later = observation(n, elapsed=40 + step)
        gc.collect()
        unchanged.append(timed(functools.partial(builder.update, later)))
        assert builder.update(later) == []
    rows.append(
        (
            f"StateBuilder.update, first observation ({n} peers, SAs, cache entries)",
            f"{first:.0f} ms",
        )
    )
    rows.append(
        (
            "StateBuilder.update, unchanged at rest (listing and nhrpd answer reused)",
            summary(rest),
        )
    )
    rows.append(
        (
            "StateBuilder.update, unchanged, new listing and nhrpd answer (clocks and "
            "counters moved)",
            summary(unchanged),
        )
    )
    rows.append(
        (
            "every peer with counters (StateBuilder.full_peers)",
            f"{timed(builder.full_peers):.0f} ms",
        )
    )


def feed(backend: Backend, n: int, rows: list[tuple[str, str]]) -> None:
    """Backend.supervised, the daemon's call after each step: records from the listing,
    the builder, the node summary, publishing."""
    messages, kept, answer = listing(n), peers(n), cache(n)

    def step(elapsed: int, sas: list[Message], entries: tuple[dict[str, Any], ...]) -> float:
        fresh = published(kept)
        gc.collect()
        return timed(
            lambda: backend.supervised(
                fresh,
                sas,
                cache=entries,
                nhs=(),
                now=NOW + elapsed,
                wall_offset=NOW - MONO,
                journal=None,
            )
        )

    first = step(0, messages, answer)
    rest = step(10, messages, answer)
    moved = step(20, listing(n, elapsed=20), cache(n))
    rows.append((f"Backend.supervised, first step, {n} peers", f"{first:.0f} ms"))
    rows.append(
        (
            "Backend.supervised, unchanged step at rest (listing, nhrpd answer reused)",
            f"{rest:.0f} ms",
        )
    )
    rows.append(
        ("Backend.supervised, unchanged step, new listing and nhrpd answer", f"{moved:.0f} ms")
    )


class Client:
    """The calls measured, over one channel."""

    def __init__(self, channel: grpc.aio.Channel, n: int) -> None:
        self.n = n
        self.state = cast(
            "state_service_pb2_grpc.StateServiceAsyncStub",
            state_service_pb2_grpc.StateServiceStub(channel),
        )
        self.watch = cast(
            "watch_service_pb2_grpc.WatchServiceAsyncStub",
            watch_service_pb2_grpc.WatchServiceStub(channel),
        )

    async def first_page(self) -> None:
        page = await self.state.ListPeers(state_service_pb2.ListPeersRequest(page_size=1000))
        assert len(page.peers) == min(self.n, 1000)

    async def full_view_page(self) -> None:
        request = state_service_pb2.ListPeersRequest(page_size=1000, view=peer_pb2.PEER_VIEW_FULL)
        page = await self.state.ListPeers(request)
        assert page.peers[-1].crypto.inbound.bytes > 0

    async def all_pages(self) -> None:
        token, count = "", 0
        while True:
            page = await self.state.ListPeers(
                state_service_pb2.ListPeersRequest(page_size=1000, page_token=token)
            )
            count += len(page.peers)
            token = page.next_page_token
            if not token:
                break
        assert count == self.n, count

    async def snapshot(self) -> None:
        call = self.watch.Watch(wpb.WatchRequest(kinds=[wpb.EVENT_KIND_PEER]))
        count = 0
        while True:
            event = await call.read()
            assert isinstance(event, wpb.WatchResponse)
            if event.WhichOneof("event") == "snapshot_end":
                break
            count += 1
        call.cancel()
        assert count == self.n + 1, count  # SnapshotBegin and one event per peer


class NoOperations:
    """The OperationsService is not measured here."""

    async def clear(self, peers: list[Any], **kw: bool) -> list[Any]:
        raise NotImplementedError

    async def reinitiate(self, peers: list[Any]) -> list[Any]:
        raise NotImplementedError

    def clear_counters(self, scope: int, peers: list[Any] | None) -> tuple[int, float]:
        raise NotImplementedError


async def serve(n: int, rounds: int, rows: list[tuple[str, str]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        backend = Backend(Datastores(saved=Path(tmp) / "s.conf", running=Path(tmp) / "r.conf"))
        feed(backend, n, rows)
        sock = Path(tmp) / "api.sock"
        server = ApiServer(backend, NoOperations(), socket_path=sock, group=None)
        await server.start()
        channel = grpc.aio.insecure_channel(
            f"unix:{sock}", options=[("grpc.max_receive_message_length", 64 << 20)]
        )
        try:
            client = Client(channel, n)
            await client.first_page()  # warm up the channel
            pages = await atimed(client.first_page, rounds)
            full = await atimed(client.full_view_page, rounds)
            listing = await atimed(client.all_pages, rounds)
            snaps = await atimed(client.snapshot, rounds)
        finally:
            for _ in range(200):  # let cancelled streams end before the server stops
                if not backend.broker.subscriptions:
                    break
                await asyncio.sleep(0.01)
            await channel.close(None)
            await server.stop(0)
    rows.append(("ListPeers, page 1 (1,000 peers)", summary(pages)))
    rows.append(("ListPeers, page 1, view=FULL (counters)", summary(full)))
    rows.append((f"ListPeers, full listing ({n // 1000} pages of 1,000)", summary(listing)))
    rows.append((f"Watch(PEER): subscribe to SnapshotEnd, {n} peers", summary(snaps)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--peers", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rows: list[tuple[str, str]] = []
    base, _ = rss_mib()
    build(args.peers, rows)
    gc.collect()
    asyncio.run(serve(args.peers, args.rounds, rows))
    current, peak = rss_mib()
    rows.append(
        (
            "process RSS: before / after (peak)",
            f"{base:.0f} MiB / {current:.0f} MiB ({peak:.0f} MiB)",
        )
    )
    width = max(len(r[0]) for r in rows)
    for what, value in rows:
        print(f"{what:<{width}}  {value}")


if __name__ == "__main__":
    main()
