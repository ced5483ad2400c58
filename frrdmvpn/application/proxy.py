"""``frrdmvpn-proxy``: the small, long-lived enforcement process.

It holds what must survive a restart of the management daemon: nhrpd's VICI connection
(the proxy on ``/run/charon.vici``) and nhrpd's event socket with its pending
``authorize-binding`` decisions. It accepts a binding from a table of charon's SAs kept from
charon's events only while that table is known to be in sync (audited by a full listing
every ``--sa-audit`` seconds); any other decision asks charon for the SAs as they are now.
Through the proxy root may do anything,
nhrpd's user only what nhrpd does, on DMVPN's IPsec profiles (those of the configuration,
or ``--profile``), and no one else anything (:mod:`frrdmvpn.core.vici_access`).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import sys
from pathlib import Path

from frrdmvpn import __version__
from frrdmvpn.adapters.decision_journal import PATH as JOURNAL_PATH
from frrdmvpn.adapters.journald import setup as setup_logging
from frrdmvpn.adapters.nhrp_event_server import DEFAULT_PATH as EVENTS_PATH
from frrdmvpn.adapters.sa_feed import AUDIT_PERIOD
from frrdmvpn.adapters.vici_proxy import DEFAULT_LISTEN, DEFAULT_UPSTREAM, ListenPathBusyError
from frrdmvpn.enforcement import MODES, PolicyError, serve

#: Exit status when the listening path is served already (frrdmvpn-proxy.service does not
#: restart on it: RestartPreventExitStatus=).
LISTEN_PATH_BUSY = 3


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="frrdmvpn-proxy", description=__doc__)
    p.add_argument("--version", action="version", version=f"frrdmvpn-proxy {__version__}")
    p.add_argument("--listen", type=Path, default=DEFAULT_LISTEN, help="socket nhrpd uses")
    p.add_argument("--upstream", type=Path, default=DEFAULT_UPSTREAM, help="charon's socket")
    p.add_argument("--events", type=Path, default=EVENTS_PATH, help="nhrpd's event socket")
    p.add_argument(
        "--config",
        type=Path,
        help="take the authorization policy from this "
        "frrdmvpn.conf (re-read on SIGHUP) instead of the options below",
    )
    p.add_argument(
        "--tunnel-subnet", type=ipaddress.ip_network, help="the tunnel's subnet (without --config)"
    )
    p.add_argument(
        "--pidfile",
        type=Path,
        default=Path("/run/frrdmvpn/proxy.pid"),
        help="where `frrdmvpnd apply` finds this process to send SIGHUP",
    )
    p.add_argument(
        "--auth",
        choices=sorted(MODES),
        default="psk-map",
        help="how bindings are authorized (without --config)",
    )
    p.add_argument(
        "--psk-map",
        action="append",
        default=[],
        metavar="ID=NET[,NET]",
        help="an IKE identity and what it may claim (no --config); repeat. Without "
        "the keys only address identities can be tied to a peer: others claim "
        "nothing",
    )
    p.add_argument(
        "--journal",
        type=Path,
        default=JOURNAL_PATH,
        help="where decisions are recorded for frrdmvpnd",
    )
    p.add_argument(
        "--profile",
        action="append",
        default=[],
        metavar="NAME",
        help="an IPsec profile (charon connection) of DMVPN's, which nhrpd may "
        "initiate and terminate (without --config); repeat",
    )
    p.add_argument("--group", default="frr", help="group allowed to use both sockets")
    p.add_argument(
        "--nhrpd-user",
        default="frr",
        help="nhrpd's user: its connections have a "
        "budget of their own that other users cannot take, and it may send only "
        "what nhrpd sends; other users but root may send nothing",
    )
    p.add_argument(
        "--sa-audit",
        type=_audit_period,
        default=AUDIT_PERIOD,
        metavar="SECONDS",
        help="how often a full listing of charon's SAs audits the table kept from its "
        f"events (default {AUDIT_PERIOD:g}; 1 to 86400)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log debug messages too")
    return p


def _audit_period(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds") from None
    if not 1 <= seconds <= 86400:
        raise argparse.ArgumentTypeError(f"{value} s is not between 1 and 86400")
    return seconds


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``frrdmvpn-proxy``."""
    args = build_parser().parse_args(argv)
    setup_logging("frrdmvpn-proxy", args.verbose)
    try:
        asyncio.run(serve(args))
    except PolicyError as exc:
        print(f"frrdmvpn-proxy: {exc}", file=sys.stderr)
        return 2
    except ListenPathBusyError as exc:
        print(f"frrdmvpn-proxy: {exc}", file=sys.stderr)
        return LISTEN_PATH_BUSY
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
