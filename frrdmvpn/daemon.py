"""frrdmvpnd: the management daemon.

Today it manages the fail-closed kernel guards (``frrdmvpnd guard install|remove|status``),
which must exist before charon and nhrpd start and outlive both; the long-running daemon
(config, supervisor, gRPC API) builds on the same pieces.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import logging
import sys

from frrdmvpn import __version__
from frrdmvpn.adapters.guard import GuardError, KernelGuard, xfrm_stats
from frrdmvpn.render.guard import GuardSpec


def _guard(args: argparse.Namespace) -> KernelGuard:
    nbma = tuple(ipaddress.IPv4Address(a) for a in args.nbma)
    return KernelGuard(GuardSpec(nbma=nbma, nflog_group=args.nflog_group))


def cmd_guard(args: argparse.Namespace) -> int:
    guard = _guard(args)
    if args.action == "install":
        guard.install()
        print(f"frrdmvpnd: guard installed for {', '.join(args.nbma)}")
    elif args.action == "remove":
        guard.remove()
        print("frrdmvpnd: guard removed")
    elif args.action == "flush-larval":
        print(f"frrdmvpnd: flushed {guard.flush_larval_states()} larval XFRM states")
    else:
        installed = guard.installed()
        try:
            counters = guard.counters()
        except GuardError:  # no table: `installed` already says so
            counters = {}
        status = {
            "installed": installed,
            "counters": counters,
            "xfrm": {k: v for k, v in xfrm_stats().items() if v},
        }
        print(json.dumps(status, indent=1))
        return 0 if status["installed"] else 1
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from frrdmvpn.service import Service  # noqa: PLC0415 - keeps `guard` light

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    nhs = [ipaddress.IPv4Address(a) for a in args.nhs]
    asyncio.run(Service(ipaddress.IPv4Address(args.nbma), nhs).run(args.interval))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="frrdmvpnd", description=__doc__)
    parser.add_argument("--version", action="version", version=f"frrdmvpnd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    guard = sub.add_parser("guard", help="the fail-closed GRE guards (nftables + XFRM block)")
    guard.add_argument("action", choices=["install", "remove", "status", "flush-larval"])
    guard.add_argument("--nbma", action="append", required=True, metavar="ADDR",
                       help="a local NBMA (underlay) address; repeat for several")  # fmt: skip
    guard.add_argument("--nflog-group", type=int, default=3, help="NFLOG group for drops")
    run = sub.add_parser("run", help="install the guards and supervise every peer")
    run.add_argument("--nbma", required=True, help="this node's NBMA (underlay) address")
    run.add_argument("--nhs", action="append", default=[], metavar="ADDR",
                     help="an NHS's NBMA address, kept up always; repeat for several")  # fmt: skip
    run.add_argument("--interval", type=float, default=1.0, help="seconds between checks")
    run.add_argument("-v", "--verbose", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``frrdmvpnd``."""
    args = build_parser().parse_args(argv)
    try:
        return cmd_run(args) if args.command == "run" else cmd_guard(args)
    except (GuardError, ValueError) as exc:
        print(f"frrdmvpnd: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
