"""A burst of N authorize-binding events through frrdmvpn-proxy's real ``serve`` (issue 17).

What a hub's proxy does when N spokes register at once (after a hub restart): nhrpd sends N
``authorize-binding`` events on its event socket; for each the proxy needs charon's SAs. A
stand-in charon in another process holds N IKE_SAs, each with one CHILD_SA protecting GRE
to its spoke (addresses in 2001:db8::/32), answers ``list-sas`` with all of them and
confirms event registrations as charon does (it sends no events: nothing changes). The
proxy runs ``serve`` as ``frrdmvpn-proxy`` does, with a PSK map of N identities; the
events go out in one write, as nhrpd's queue would, and each answer's latency is taken
from that write (proxy, stand-in and sender: three processes). Run it on two trees (e.g. a
worktree of the previous commit) for before and after; the stand-in counts the listings
it served.

Run: ``.venv/bin/python bench/authorize_burst.py [--peers 100,1000] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import tempfile
import time
from ipaddress import IPv6Address
from pathlib import Path
from typing import Any

from frrdmvpn.application.proxy import build_parser
from frrdmvpn.codec.vici import (
    Message,
    Packet,
    PacketType,
    StreamDecoder,
    decode_packet,
    encode_packet,
    frame,
)
from frrdmvpn.enforcement import serve

HUB = IPv6Address("2001:db8::1")
HUB_TUNNEL = IPv6Address("2001:db8:2::1")


def spoke(i: int) -> tuple[IPv6Address, IPv6Address]:
    """Spoke ``i``'s NBMA and tunnel address."""
    return IPv6Address(int(IPv6Address("2001:db8:1::")) + 2 + i), IPv6Address(
        int(HUB_TUNNEL) + 1 + i
    )


def list_sa(i: int) -> Message:
    nbma, _ = spoke(i)
    return {
        f"dmvpn-{i}": {
            "uniqueid": str(2 * i + 1).encode(),
            "state": b"ESTABLISHED",
            "local-host": str(HUB).encode(),
            "remote-host": str(nbma).encode(),
            "local-id": str(HUB).encode(),
            "remote-id": str(nbma).encode(),
            "child-sas": {
                f"dmvpn-{2 * i + 2}": {
                    "name": b"dmvpn",
                    "uniqueid": str(2 * i + 2).encode(),
                    "state": b"INSTALLED",
                    "mode": b"TRANSPORT",
                    "protocol": b"ESP",
                    "spi-in": f"{0xC0000000 + i:08x}".encode(),
                    "spi-out": f"{0xC1000000 + i:08x}".encode(),
                    "local-ts": [f"{HUB}/128[gre]".encode()],
                    "remote-ts": [f"{nbma}/128[gre]".encode()],
                }
            },
        }
    }


def charon(path: str, peers: int, listings: Any) -> None:
    """The stand-in charon's process: serve VICI on ``path`` until killed."""
    listed = b"".join(
        frame(encode_packet(Packet(PacketType.EVENT, "list-sa", list_sa(i)))) for i in range(peers)
    )
    confirm = frame(encode_packet(Packet(PacketType.EVENT_CONFIRM)))
    done = frame(encode_packet(Packet(PacketType.CMD_RESPONSE, None, {"success": b"yes"})))

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = StreamDecoder()
        while data := await reader.read(65536):
            for payload in decoder.feed(data):
                p = decode_packet(payload)
                if p.type is PacketType.EVENT_REGISTER:
                    writer.write(confirm)
                elif p.type is PacketType.CMD_REQUEST:
                    if p.name == "list-sas":
                        with listings.get_lock():
                            listings.value += 1
                        writer.write(listed)
                    writer.write(done)
            await writer.drain()
        writer.close()

    async def main() -> None:
        server = await asyncio.start_unix_server(client, path=path)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def _serve(args: argparse.Namespace) -> None:
    """The proxy's process, as ``frrdmvpn-proxy`` runs ``serve``."""
    asyncio.run(serve(args))


def event(eventid: int, i: int) -> bytes:
    nbma, tunnel = spoke(i)
    return (
        f"eventid={eventid}\nevent=authorize-binding\ntype=dynamic\nold_type=invalid\n"
        f"num_nhs=0\ninterface=gre1\nlocal_addr={HUB_TUNNEL}\nlocal_nbma={HUB}\n"
        f"remote_addr={tunnel}\nremote_nbma={nbma}\n\n"
    ).encode()


async def burst(events: Path, peers: int, first_id: int) -> list[float]:
    """Send N events at once; each answer's latency in ms."""
    reader, writer = await asyncio.open_unix_connection(str(events))
    sent = time.perf_counter()
    writer.write(b"".join(event(first_id + i, i) for i in range(peers)))
    await writer.drain()
    latencies = []
    accepted = 0
    for _ in range(peers):
        answer = await asyncio.wait_for(reader.readuntil(b"\n\n"), 60)
        latencies.append((time.perf_counter() - sent) * 1000)
        accepted += b"result=accept" in answer
    writer.close()
    assert accepted == peers, f"{peers - accepted} of {peers} denied"
    return latencies


def run(peers: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        upstream = d / "charon.vici"
        listings = multiprocessing.Value("i", 0)
        stand_in = multiprocessing.Process(
            target=charon, args=(str(upstream), peers, listings), daemon=True
        )
        stand_in.start()
        while not upstream.exists():
            time.sleep(0.01)
        argv = [
            "--listen", str(d / "proxy.vici"), "--upstream", str(upstream),
            "--events", str(d / "events.sock"), "--journal", str(d / "journal.json"),
            "--pidfile", str(d / "proxy.pid"), "--tunnel-subnet", "2001:db8:2::/64",
            "--auth", "psk-map", "--group", str(os.getgid()),
        ]  # fmt: skip
        for i in range(peers):
            nbma, tunnel = spoke(i)
            argv += ["--psk-map", f"{nbma}={tunnel}/128"]
        args = build_parser().parse_args(argv)

        proxy = multiprocessing.Process(target=_serve, args=(args,), daemon=True)
        proxy.start()
        while not args.pidfile.exists():
            assert proxy.is_alive()
            time.sleep(0.01)
        time.sleep(1.0)  # the SA table's first listing, where there is one
        for r in range(rounds):
            before = listings.value
            t0 = time.perf_counter()
            lat = sorted(asyncio.run(burst(args.events, peers, 1 + r * peers)))
            total = time.perf_counter() - t0
            p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
            print(
                f"{peers:6d} peers, round {r + 1}: all answered in {total * 1000:8.1f} ms, "
                f"p50 {statistics.median(lat):8.1f} ms, p99 {p99:8.1f} ms, "
                f"listings {listings.value - before}"
            )
        proxy.terminate()
        proxy.join(10)
        stand_in.kill()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--peers", default="100,1000", help="comma-separated spoke counts")
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    for n in (int(x) for x in a.peers.split(",")):
        run(n, a.rounds)


if __name__ == "__main__":
    main()
