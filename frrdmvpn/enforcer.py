"""``frrdmvpn-proxy``: the small, long-lived enforcement process.

It holds what must survive a restart of the management daemon: nhrpd's VICI connection
(the proxy on ``/var/run/charon.vici``) and nhrpd's event socket with its pending
``authorize-binding`` decisions. It keeps no state of its own that could go stale: every
decision asks charon for the SAs as they are now.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import signal
from pathlib import Path

from frrdmvpn import __version__
from frrdmvpn.adapters.guard import KernelGuard
from frrdmvpn.adapters.initiator import Initiator
from frrdmvpn.adapters.nhrp_events import DEFAULT_PATH as EVENTS_PATH
from frrdmvpn.adapters.nhrp_events import NhrpEventServer
from frrdmvpn.adapters.vici_client import SharedListing, list_child_sas, with_certificates
from frrdmvpn.adapters.vici_proxy import DEFAULT_LISTEN, DEFAULT_UPSTREAM, ViciProxy
from frrdmvpn.core.authorize import Decision, Policy, PolicyMode, authorize
from frrdmvpn.nhrp.events import AuthorizeBinding
from frrdmvpn.render.guard import GuardSpec

log = logging.getLogger("frrdmvpn.proxy")


def flush_larval_states() -> int:
    """Clear larval XFRM states (they would swallow the trap's next ACQUIRE)."""
    # The guard's NBMA addresses do not matter for this: no rule is installed or read.
    return KernelGuard(GuardSpec((ipaddress.IPv4Address("192.0.2.1"),))).flush_larval_states()


MODES = {
    "certificate": PolicyMode.CERTIFICATE,
    "psk-map": PolicyMode.PSK_MAP,
    "any": PolicyMode.ANY_AUTHENTICATED,
}


def parse_psk_map(
    items: list[str],
) -> dict[str, frozenset[ipaddress.IPv4Network | ipaddress.IPv6Network]]:
    """``IDENTITY=NET[,NET...]`` items into the authorizer's map."""
    out: dict[str, frozenset[ipaddress.IPv4Network | ipaddress.IPv6Network]] = {}
    for item in items:
        ident, sep, nets = item.rpartition("=")
        if not sep or not ident:
            raise argparse.ArgumentTypeError(f"--psk-map {item!r}: expected IDENTITY=NET[,NET]")
        out[ident] = frozenset(ipaddress.ip_network(n, strict=False) for n in nets.split(","))
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="frrdmvpn-proxy", description=__doc__)
    p.add_argument("--version", action="version", version=f"frrdmvpn-proxy {__version__}")
    p.add_argument("--listen", type=Path, default=DEFAULT_LISTEN, help="socket nhrpd uses")
    p.add_argument("--upstream", type=Path, default=DEFAULT_UPSTREAM, help="charon's socket")
    p.add_argument("--events", type=Path, default=EVENTS_PATH, help="nhrpd's event socket")
    p.add_argument("--tunnel-subnet", required=True, type=ipaddress.ip_network)
    p.add_argument("--auth", choices=sorted(MODES), default="psk-map")
    p.add_argument("--psk-map", action="append", default=[], metavar="ID=NET[,NET]")
    p.add_argument("--group", default="frr", help="group allowed to use both sockets")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


async def serve(args: argparse.Namespace) -> None:
    policy = Policy(
        mode=MODES[args.auth],
        tunnel_subnet=args.tunnel_subnet,
        psk_map=parse_psk_map(args.psk_map),
    )
    if policy.mode is PolicyMode.ANY_AUTHENTICATED:
        log.warning("authorization mode 'any': every authenticated peer may claim any address")

    listing = SharedListing(lambda: list_child_sas(args.upstream))

    async def decide(event: AuthorizeBinding) -> Decision:
        sas = await listing.get()
        if policy.mode is PolicyMode.CERTIFICATE and event.local_nbma and event.remote_nbma:
            # Stock VICI lists no certificates: ask charon for the ones it verified.
            pair = {event.local_nbma, event.remote_nbma}
            sas = await with_certificates(args.upstream, sas, pair)
        return authorize(event, sas, policy)

    async def flush_larval() -> int:
        return await asyncio.to_thread(flush_larval_states)

    initiator = Initiator(args.upstream, flush_larval)
    proxy = ViciProxy(args.listen, args.upstream, initiate=initiator.request, group=args.group)
    events = NhrpEventServer(decide, args.events, group=args.group)
    await proxy.start()
    await events.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("frrdmvpn-proxy %s ready", __version__)
    await stop.wait()
    await events.close()
    await proxy.close()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``frrdmvpn-proxy``."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
