"""frrdmvpn-proxy's serve in process against the fake charon; nhrpd's authorize-binding."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

from frrdmvpn.application.proxy import build_parser
from frrdmvpn.codec.vici import Message, Packet, PacketType
from frrdmvpn.enforcement import serve
from tests.fakes.charon import scripted_charon

# spoke2 (198.51.100.12) claims 192.0.2.12: lab-hub.conf's psk-map grants it exactly that.
EVENT = (
    "eventid={eventid}\nevent=authorize-binding\ntype=dynamic\nold_type=invalid\nnum_nhs=0\n"
    "interface=dmvpn0\nlocal_addr=192.0.2.1\nlocal_nbma=198.51.100.1\n"
    "remote_addr=192.0.2.12\nremote_nbma=198.51.100.12\n\n"
)

# What charon lists for spoke2: an INSTALLED ESP transport CHILD_SA protecting GRE between
# the two NBMA addresses, its IKE identity its own address.
SPOKE2_SA: Message = {
    "dmvpn": {
        "uniqueid": b"3",
        "version": b"2",
        "state": b"ESTABLISHED",
        "local-host": b"198.51.100.1",
        "remote-host": b"198.51.100.12",
        "local-id": b"198.51.100.1",
        "remote-id": b"198.51.100.12",
        "child-sas": {
            "dmvpn-5": {
                "name": b"dmvpn",
                "uniqueid": b"5",
                "state": b"INSTALLED",
                "mode": b"TRANSPORT",
                "protocol": b"ESP",
                "spi-in": b"c0000001",
                "spi-out": b"c0000002",
                "local-ts": [b"198.51.100.1/32[gre]"],
                "remote-ts": [b"198.51.100.12/32[gre]"],
            }
        },
    },
}


def proxy_args(tmp_path: Path) -> argparse.Namespace:
    return build_parser().parse_args(
        [
            "--listen",
            str(tmp_path / "charon.vici"),
            "--upstream",
            str(tmp_path / "frrdmvpn-charon.vici"),
            "--events",
            str(tmp_path / "run" / "nhrp-events.sock"),
            "--config",
            str(tmp_path / "running.conf"),
            "--pidfile",
            str(tmp_path / "run" / "proxy.pid"),
            "--journal",
            str(tmp_path / "run" / "authorization.json"),
        ]
    )


async def until(condition: Callable[[], bool]) -> None:
    """A wait for what the proxy does on its own (not a timed assertion)."""
    while not condition():
        await asyncio.sleep(0.01)


async def ask(events: Path, eventid: int) -> str:
    """Send one authorize-binding as nhrpd does; nhrpd's answer."""
    reader, writer = await asyncio.open_unix_connection(str(events))
    writer.write(EVENT.format(eventid=eventid).encode())
    answer = await asyncio.wait_for(reader.readuntil(b"\n\n"), 10)
    writer.close()
    return answer.decode()


def run_proxy(
    tmp_path: Path,
    body: Callable[[argparse.Namespace], Awaitable[None]],
    seen: list[Packet] | None = None,
) -> None:
    """``serve`` until ``body`` is done, then SIGTERM, as systemd stops it; what the proxy
    sent charon goes to ``seen``."""
    args = proxy_args(tmp_path)
    seen = [] if seen is None else seen

    async def main() -> None:
        charon = await scripted_charon(
            args.upstream, {"list-sas": [Packet(PacketType.EVENT, "list-sa", SPOKE2_SA)]}, seen
        )
        proxy = asyncio.create_task(serve(args))
        try:
            await until(lambda: args.pidfile.exists() or proxy.done())  # both sockets listen
            assert not proxy.done(), proxy.exception()
            await body(args)
            os.kill(os.getpid(), signal.SIGTERM)  # the proxy's handler, not pytest's
            await asyncio.wait_for(proxy, 10)
        finally:
            proxy.cancel()
            charon.close()
        assert not args.pidfile.exists()

    asyncio.run(asyncio.wait_for(main(), 50))
