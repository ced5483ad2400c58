"""frrdmvpnd: the management daemon and its commands.

``run`` applies the saved configuration, supervises every peer and serves the API;
``guard`` installs, removes, checks or shows the fail-closed kernel guards, which must exist
before charon and nhrpd start and outlive both; ``configured`` tells systemd whether the
node is configured; ``validate``, ``apply`` and ``save`` work on configuration files.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import sys
from pathlib import Path

from frrdmvpn import __version__
from frrdmvpn.adapters import config_store
from frrdmvpn.adapters.guard import GuardError, KernelGuard, xfrm_stats
from frrdmvpn.config.charon_socket import DROPIN, Kind, dropin_action
from frrdmvpn.config.diagnostics import ConfigError
from frrdmvpn.config.kernel import guard_nbma
from frrdmvpn.config.model import Config
from frrdmvpn.core.guard_rules import GuardSpec

# What only some commands use is imported in their functions (bench/startup.py measures
# them): `guard check` runs before charon and FRR start, `configured` before frrdmvpn's
# units. asyncio, the API (grpc, protobuf) and prometheus_client are the daemon's (`run`),
# pyroute2 is its and `apply`'s.


def _guard(args: argparse.Namespace) -> KernelGuard | None:
    """The guard for ``--nbma``, else for the configuration that runs (``--running``, as
    frrdmvpnd last applied it) or, when none does, the one in ``--config``: every address
    its tunnel sources have (:func:`~frrdmvpn.config.kernel.guard_nbma`). None when the
    configuration defines no tunnel (nothing to guard)."""
    if args.nbma:
        addresses = tuple(ipaddress.IPv4Address(a) for a in args.nbma)
        return KernelGuard(GuardSpec(nbma=addresses, nflog_group=args.nflog_group))
    saved = config_store.read_tunnel_config(args.config)
    if saved is None:
        return None
    from frrdmvpn.adapters.address_dump import read_addresses  # noqa: PLC0415 - `guard` only

    nbma = guard_nbma(config_store.read_running_tunnel(args.running) or saved, read_addresses())
    if not nbma:
        raise ValueError(
            "no NBMA address: give --nbma, or a configuration whose tunnel has "
            "a source with an address"
        )
    return KernelGuard(GuardSpec(nbma=tuple(sorted(nbma)), nflog_group=args.nflog_group))


#: ``configured``'s exit status: systemd's ExecCondition skips the unit on 1-254 and fails
#: it on 255.
CONFIGURED, NOT_CONFIGURED, UNUSABLE = 0, 1, 255


def cmd_configured(args: argparse.Namespace) -> int:
    """Exit 0 when the configuration defines a tunnel, 1 only when it defines none (the
    units stay off until the operator configures the node), 255 when it cannot be used or
    anything unexpected happens (the units fail, and say why). With
    ``--sync-charon-socket`` also write or remove /etc/strongswan.d/frrdmvpn.conf."""
    try:
        node = config_store.read_standing(args.config)
        if args.sync_charon_socket:
            from frrdmvpn.adapters import strongswan_dropin  # noqa: PLC0415 - only this option

            action = dropin_action(node, strongswan_dropin.read(args.dropin))
            strongswan_dropin.carry_out(action, args.dropin)
            print(f"frrdmvpnd: {action.message}")
    except Exception as exc:  # anything unexpected: the unit must fail (255), not be skipped
        print(f"frrdmvpnd: {type(exc).__name__}: {exc}", file=sys.stderr)
        return UNUSABLE
    if node.kind is Kind.UNUSABLE:
        print(f"frrdmvpnd: {node.reason}", file=sys.stderr)
        return UNUSABLE
    if node.kind is Kind.NO_TUNNEL:
        print(f"frrdmvpnd: {node.reason}; nothing to do")
        return NOT_CONFIGURED
    return CONFIGURED


def _guard_check(args: argparse.Namespace) -> int:
    """``guard check``, run before charon and FRR start: exit 1 only when a valid
    configuration defines a tunnel and its guards are missing. A missing or invalid file
    is a warning: charon and FRR must run (DMVPN stays off: without an applied
    configuration there is no tunnel and nhrpd has no DMVPN configuration)."""
    if not args.nbma:
        node = config_store.read_standing(args.config)
        if node.kind is Kind.UNUSABLE:
            print(
                f"frrdmvpnd: warning: {node.reason}\nfrrdmvpnd: warning: guards not "
                "checked; DMVPN stays off until the configuration is fixed",
                file=sys.stderr,
            )
            return 0
        if node.kind is Kind.NO_TUNNEL:
            print(f"frrdmvpnd: {node.reason}; no guard")
            return 0
    guard = _guard(args)
    if guard is None or guard.installed(covering=True):  # wider: a change under way
        return 0
    nbma = ", ".join(str(a) for a in guard.spec.nbma)
    print(
        f"frrdmvpnd: the guards for {nbma} are missing: GRE could leave in clear text "
        "(start frrdmvpn-guard.service)",
        file=sys.stderr,
    )
    return 1


def cmd_guard(args: argparse.Namespace) -> int:
    if args.action == "check":
        return _guard_check(args)
    guard = _guard(args)
    if guard is None:
        print(f"frrdmvpnd: {args.config} configures no tunnel; no guard")
        return 0 if args.action == "remove" else 1
    if args.action == "install":
        listed = guard.listed()  # what an apply under way guards too: kept
        if listed is not None and not listed.nbma <= set(guard.spec.nbma):
            guard.spec = GuardSpec(
                tuple(sorted(listed.nbma | set(guard.spec.nbma))), guard.spec.nflog_group
            )
        guard.install()
        print(f"frrdmvpnd: guard installed for {', '.join(map(str, guard.spec.sorted_nbma))}")
    elif args.action == "remove":
        guard.remove()
        print("frrdmvpnd: guard removed")
    elif args.action == "flush-larval":
        print(f"frrdmvpnd: flushed {guard.flush_larval_states()} larval XFRM states")
    else:
        installed = guard.installed(covering=True)
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
    """The daemon: apply the saved configuration, supervise, serve the API."""
    import asyncio  # noqa: PLC0415 - only the daemon runs an event loop

    from frrdmvpn.adapters import journald  # noqa: PLC0415 - keep the other commands light
    from frrdmvpn.management import run  # noqa: PLC0415 - keep the other commands light

    journald.setup("frrdmvpnd", args.verbose)
    return asyncio.run(run(args))


def _printed_read(path: Path) -> str | None:
    """The file's text; None when there is none or it is not UTF-8 (said on stderr)."""
    try:
        text = config_store.read(path)
    except ConfigError as exc:
        for finding in exc.diagnostics:
            print(finding.format(filename=str(path)), file=sys.stderr)
        print(f"frrdmvpnd: {path}: not UTF-8, nothing applied", file=sys.stderr)
        return None
    if text is None:
        print(f"frrdmvpnd: {path}: no such file", file=sys.stderr)
    return text


def _checked(path: Path, running: Path) -> tuple[Config, str] | None:
    """The file's configuration if it has no error; else print every finding, None. A
    masked secret keeps the running configuration's, as when the daemon applies it."""
    text = _printed_read(path)
    if text is None:
        return None
    from frrdmvpn.datastores import Datastores  # noqa: PLC0415 - `validate` only
    from frrdmvpn.node_ports import check_trustpoint_file  # noqa: PLC0415 - likewise

    # the certificate and key files are root's: another user could not check them
    files = check_trustpoint_file if os.geteuid() == 0 else None
    config, findings = Datastores(saved=path, running=running, check_file=files).validate(text)
    for finding in findings:
        print(finding.format(text, filename=str(path)), file=sys.stderr)
    if any(f.is_error for f in findings):
        errors = sum(f.is_error for f in findings)
        print(f"frrdmvpnd: {path}: {errors} error(s), nothing applied", file=sys.stderr)
        return None
    assert config is not None  # no error
    return config, text


def cmd_validate(args: argparse.Namespace) -> int:
    checked = _checked(args.config, args.running)
    if checked is not None:
        print(f"frrdmvpnd: {args.config}: valid")
    return 0 if checked is not None else 1


def cmd_apply(args: argparse.Namespace) -> int:
    """Validate, then bring the node from the running configuration to the file's."""
    from frrdmvpn.datastores import Datastores  # noqa: PLC0415 - `apply` only
    from frrdmvpn.node_ports import check_trustpoint_file, real_ports  # noqa: PLC0415 - likewise

    logging.basicConfig(level=logging.WARNING, format="%(name)s %(levelname)s %(message)s")
    text = _printed_read(args.config)
    if text is None:
        return 1
    stores = Datastores(
        saved=args.config, running=args.running, ports=real_ports, check_file=check_trustpoint_file
    )
    report = stores.apply_text(text, dry_run=args.dry_run, origin="cli")
    for finding in report.diagnostics:
        print(finding.format(text, filename=str(args.config)), file=sys.stderr)
    if not report.ok:
        print(f"frrdmvpnd: {args.config}: {report.message}", file=sys.stderr)
        return 1
    for change in report.changes:
        print(("would: " if args.dry_run else "") + change)
    print(f"frrdmvpnd: {len(report.changes)} change(s){' planned' if args.dry_run else ''}")
    return 0


def cmd_save(args: argparse.Namespace) -> int:
    """``write memory``: the running configuration becomes the saved one."""
    from frrdmvpn.datastores import Datastores  # noqa: PLC0415 - `save` only

    try:
        _, kept = Datastores(saved=args.config, running=args.running).save()
    except FileNotFoundError:
        print("frrdmvpnd: nothing applied yet, nothing to save", file=sys.stderr)
        return 1
    print(f"frrdmvpnd: saved to {args.config}" + (f" (previous kept as {kept})" if kept else ""))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="frrdmvpnd", description=__doc__)
    parser.add_argument("--version", action="version", version=f"frrdmvpnd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    guard = sub.add_parser("guard", help="the fail-closed GRE guards (nftables + XFRM block)")
    guard.add_argument(
        "action",
        choices=["install", "remove", "status", "check", "flush-larval"],
        help="check: exit 1 only when a valid configuration defines a tunnel "
        "and its guards are missing",
    )
    guard.add_argument(
        "--nbma",
        action="append",
        metavar="ADDR",
        help="a local NBMA (underlay) address; repeat for several (default: "
        "the configured tunnel source's)",
    )
    guard.add_argument(
        "-c",
        "--config",
        type=Path,
        default=config_store.SAVED,
        help=f"configuration file (default {config_store.SAVED})",
    )
    guard.add_argument(
        "--running",
        type=Path,
        default=config_store.RUNNING,
        help="the configuration frrdmvpnd applied last, guarded when it "
        "defines a tunnel (default %(default)s)",
    )
    guard.add_argument("--nflog-group", type=int, default=3, help="NFLOG group for drops")
    configured = sub.add_parser(
        "configured",
        help="exit 0 when the configuration defines a "
        "tunnel, 1 when it defines none, 255 when it cannot be used "
        "(systemd's ExecCondition: skip, or fail)",
    )
    configured.add_argument(
        "-c",
        "--config",
        type=Path,
        default=config_store.SAVED,
        help=f"configuration file (default {config_store.SAVED})",
    )
    configured.add_argument(
        "--sync-charon-socket",
        action="store_true",
        help=f"also write {DROPIN} (charon's VICI socket moves aside) "
        "when the configuration defines a tunnel, remove it when it "
        "defines none, leave it when the file cannot be used",
    )
    configured.add_argument(
        "--dropin", type=Path, default=DROPIN, help=f"that file (default {DROPIN})"
    )
    run = sub.add_parser("run", help="apply the configuration, supervise every peer, serve the API")
    run.add_argument(
        "--nbma",
        help="this node's NBMA (underlay) address (default: the configured tunnel source's)",
    )
    run.add_argument(
        "--nhs",
        action="append",
        default=[],
        metavar="ADDR",
        help="an NHS's NBMA address, kept up always; repeat for several",
    )
    run.add_argument("--interval", type=float, default=1.0, help="seconds between checks")
    run.add_argument("-v", "--verbose", action="store_true", help="log debug messages too")
    run.add_argument("-c", "--config", type=Path, help="apply this saved configuration first")
    run.add_argument(
        "--api-socket",
        type=Path,
        default=Path("/run/frrdmvpn/frrdmvpn.sock"),
        help="the gRPC API's unix socket",
    )
    run.add_argument(
        "--api-group",
        default="frrdmvpn",
        help="group of the operators (show, clear, debug: --api-socket)",
    )
    run.add_argument(
        "--api-admin-socket",
        type=Path,
        default=Path("/run/frrdmvpn/frrdmvpn-admin.sock"),
        help="the gRPC API's unix socket for administrators",
    )
    run.add_argument(
        "--api-admin-group",
        default="frrdmvpn-admin",
        help="group of the administrators (configuration, secrets: "
        "--api-admin-socket); root is always one",
    )
    run.add_argument("--api-tcp", metavar="HOST:PORT", help="also listen on TCP (mutual TLS)")
    run.add_argument("--tls-cert", type=Path, help="server certificate (PEM) for --api-tcp")
    run.add_argument("--tls-key", type=Path, help="its private key (PEM)")
    run.add_argument(
        "--tls-client-ca",
        type=Path,
        help="CA that signs client certificates (a subjectAltName URI "
        "urn:frrdmvpn:role:admin makes an administrator, else an "
        "operator)",
    )
    run.add_argument("--no-api", action="store_true", help="serve no API")
    run.add_argument(
        "--metrics",
        metavar="HOST:PORT",
        help="serve Prometheus metrics on localhost, e.g. 127.0.0.1:9742",
    )
    run.add_argument(
        "--running",
        type=Path,
        default=config_store.RUNNING,
        help="where the running configuration is kept",
    )
    run.set_defaults(dry_run=False)
    for name, helptext in (
        ("validate", "check a configuration file; print every finding with its line"),
        ("apply", "validate and apply a configuration file (only what differs)"),
        ("save", "write the running configuration to the saved file (write memory)"),
    ):
        cmd = sub.add_parser(name, help=helptext)
        cmd.add_argument(
            "-c",
            "--config",
            type=Path,
            default=config_store.SAVED,
            help=f"configuration file (default {config_store.SAVED})",
        )
        cmd.add_argument(
            "--running",
            type=Path,
            default=config_store.RUNNING,
            help="where the running configuration is kept",
        )
        if name == "apply":
            cmd.add_argument("--dry-run", action="store_true", help="only say what would change")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``frrdmvpnd``."""
    args = build_parser().parse_args(argv)
    try:
        commands = {
            "run": cmd_run,
            "validate": cmd_validate,
            "apply": cmd_apply,
            "save": cmd_save,
            "guard": cmd_guard,
            "configured": cmd_configured,
        }
        return commands[args.command](args)
    except (GuardError, ValueError) as exc:
        print(f"frrdmvpnd: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
