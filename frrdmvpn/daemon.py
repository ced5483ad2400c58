"""frrdmvpnd: the management daemon.

Today it manages the fail-closed kernel guards (``frrdmvpnd guard install|remove|status``),
which must exist before charon and nhrpd start and outlive both; the long-running daemon
(config, supervisor, gRPC API) builds on the same pieces.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import logging
import os
import signal
import sys
from pathlib import Path

from frrdmvpn import __version__
from frrdmvpn.adapters import config_store
from frrdmvpn.adapters.guard import GuardError, KernelGuard, xfrm_stats
from frrdmvpn.apply import ApplyError, Ports, apply
from frrdmvpn.config.model import Config
from frrdmvpn.config.render import render
from frrdmvpn.config.validate import check
from frrdmvpn.render.guard import GuardSpec

log = logging.getLogger("frrdmvpn.daemon")


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
    reapply = None
    if args.config is not None:

        def reapply_config() -> None:
            """Apply the saved configuration; never fatal for the supervisor."""
            try:
                if cmd_apply(args) != 0:
                    log.error("%s was not applied; supervising what runs (the guards stay "
                              "fail-closed)", args.config)  # fmt: skip
            except Exception:  # an adapter failing in a way apply did not foresee
                log.exception("applying %s failed", args.config)

        reapply_config()  # the saved configuration first, as a router boots
        reapply = reapply_config  # and again whenever charon comes back without it
    nhs = [ipaddress.IPv4Address(a) for a in args.nhs]
    service = Service(ipaddress.IPv4Address(args.nbma), nhs, reapply=reapply)
    asyncio.run(service.run(args.interval))
    return 0


def _checked(path: Path) -> tuple[Config, str] | None:
    """The file's configuration if it has no error; else print every finding, None."""
    text = config_store.read(path)
    if text is None:
        print(f"frrdmvpnd: {path}: no such file", file=sys.stderr)
        return None
    config, findings = check(text)
    for finding in findings:
        print(finding.format(text, filename=str(path)), file=sys.stderr)
    if any(f.is_error for f in findings):
        errors = sum(f.is_error for f in findings)
        print(f"frrdmvpnd: {path}: {errors} error(s), nothing applied", file=sys.stderr)
        return None
    return config, text


def real_ports() -> Ports:
    """The adapters of the node frrdmvpnd runs on."""
    from frrdmvpn.adapters import nhrp_hooks, vtysh  # noqa: PLC0415 - keep `guard` light
    from frrdmvpn.adapters.links import Links, set_sysctls  # noqa: PLC0415
    from frrdmvpn.adapters.vici_config import CharonConfig  # noqa: PLC0415

    return Ports(
        links=Links(),
        charon=CharonConfig(),
        frr_running=vtysh.running_config,
        frr_configure=vtysh.configure,
        sysctls=set_sysctls,
        hooks=nhrp_hooks.ensure,
    )


def cmd_validate(args: argparse.Namespace) -> int:
    checked = _checked(args.config)
    if checked is not None:
        print(f"frrdmvpnd: {args.config}: valid")
    return 0 if checked is not None else 1


def cmd_apply(args: argparse.Namespace) -> int:
    """Validate, then bring the node from the running configuration to the file's."""
    logging.basicConfig(level=logging.WARNING, format="%(name)s %(levelname)s %(message)s")
    checked = _checked(args.config)
    if checked is None:
        return 1
    config, _ = checked
    with config_store.locked(args.running):  # one apply at a time (CLI, daemon, shell)
        running_text = config_store.read(args.running)
        old = None if running_text is None else check(running_text)[0]
        try:
            plan = apply(config, old, real_ports(), dry_run=args.dry_run)
        except ApplyError as exc:
            state = "restored" if exc.rolled_back else "NOT restored"
            print(f"frrdmvpnd: apply failed: {exc}; previous state {state}", file=sys.stderr)
            return 1
        for change in plan.changes:
            print(("would: " if args.dry_run else "") + change)
        if not args.dry_run:
            config_store.atomic_write(args.running, render(config))
            _reload_proxy(args.running.parent / "proxy.pid")
    print(f"frrdmvpnd: {len(plan.changes)} change(s){' planned' if args.dry_run else ''}")
    return 0


def _reload_proxy(pidfile: Path) -> None:
    """Tell frrdmvpn-proxy to re-read the authorization policy of the running config."""
    with contextlib.suppress(OSError, ValueError):  # no proxy yet: it reads it at start
        os.kill(int(pidfile.read_text().strip()), signal.SIGHUP)


def cmd_save(args: argparse.Namespace) -> int:
    """``write memory``: the running configuration becomes the saved one."""
    running_text = config_store.read(args.running)
    if running_text is None:
        print("frrdmvpnd: nothing applied yet, nothing to save", file=sys.stderr)
        return 1
    kept = config_store.save(args.config, running_text)
    print(f"frrdmvpnd: saved to {args.config}" + (f" (previous kept as {kept})" if kept else ""))
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
    run.add_argument("-c", "--config", type=Path, help="apply this saved configuration first")
    run.add_argument("--running", type=Path, default=config_store.RUNNING,
                     help="where the running configuration is kept")  # fmt: skip
    run.set_defaults(dry_run=False)
    for name, helptext in (
        ("validate", "check a configuration file; print every finding with its line"),
        ("apply", "validate and apply a configuration file (only what differs)"),
        ("save", "write the running configuration to the saved file (write memory)"),
    ):
        cmd = sub.add_parser(name, help=helptext)
        cmd.add_argument("-c", "--config", type=Path, default=config_store.SAVED,
                         help=f"configuration file (default {config_store.SAVED})")  # fmt: skip
        cmd.add_argument("--running", type=Path, default=config_store.RUNNING,
                         help="where the running configuration is kept")  # fmt: skip
        if name == "apply":
            cmd.add_argument("--dry-run", action="store_true", help="only say what would change")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``frrdmvpnd``."""
    args = build_parser().parse_args(argv)
    try:
        commands = {"run": cmd_run, "validate": cmd_validate, "apply": cmd_apply,
                    "save": cmd_save, "guard": cmd_guard}  # fmt: skip
        return commands[args.command](args)
    except (GuardError, ValueError) as exc:
        print(f"frrdmvpnd: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
