"""frrdmvpnd: the management daemon.

Today it manages the fail-closed kernel guards (``frrdmvpnd guard install|remove|status``),
which must exist before charon and nhrpd start and outlive both; the long-running daemon
(config, supervisor, gRPC API) builds on the same pieces.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import ipaddress
import json
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from frrdmvpn import __version__
from frrdmvpn.adapters import config_store, journal, strongswan_dropin, trusted_files
from frrdmvpn.adapters.guard import GuardError, KernelGuard, xfrm_stats
from frrdmvpn.apply import Ports
from frrdmvpn.config.charon_socket import DROPIN, Kind, Standing, dropin_action, standing
from frrdmvpn.config.diagnostics import ConfigError, Diagnostic
from frrdmvpn.config.model import Config
from frrdmvpn.config.parse import decode
from frrdmvpn.config.swan import TrustpointFile
from frrdmvpn.config.validate import check
from frrdmvpn.datastores import ApplyReport, ConflictError, Datastores, digest
from frrdmvpn.guards import GuardKeeper
from frrdmvpn.render.guard import GuardSpec, guard_nbma

log = logging.getLogger("frrdmvpn.daemon")


def _decoded(path: Path, data: bytes) -> str:
    """``data``, read from ``path``, as text; ValueError at its first byte that is not
    UTF-8."""
    try:
        return decode(data)
    except ConfigError as exc:
        lines = [d.format(filename=str(path)) for d in exc.diagnostics]
        raise ValueError(f"{path} is not valid:\n" + "\n".join(lines)) from None


def _config_text(path: Path) -> str:
    """The text of the configuration file; ValueError saying why there is none (unreadable,
    not UTF-8: at the first bad byte)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from exc
    return _decoded(path, data)


def _standing(path: Path) -> Standing:
    """The standing of the configuration file ``path`` (see :mod:`.config.charon_socket`)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return standing(None, str(path))
    except OSError as exc:
        return standing(None, str(path), exc.strerror or str(exc))
    try:
        text = _decoded(path, data)
    except ValueError as exc:  # not UTF-8
        return Standing(Kind.UNUSABLE, str(exc))
    return standing(text, str(path))


def _tunnel_config(path: Path) -> Config | None:
    """The configuration in ``path`` when it defines a tunnel; None when it defines none
    (the package's commented example). Raises ValueError when it cannot be used."""
    node = _standing(path)
    if node.kind is Kind.UNUSABLE:
        raise ValueError(node.reason)
    return node.config if node.kind is Kind.TUNNEL else None


def _guard(args: argparse.Namespace) -> KernelGuard | None:
    """The guard for ``--nbma``, else for the configuration that runs (``--running``, as
    frrdmvpnd last applied it) or, when none does, the one in ``--config``: every address
    its tunnel sources have (:func:`~frrdmvpn.render.guard.guard_nbma`). None when the
    configuration defines no tunnel (nothing to guard)."""
    if args.nbma:
        addresses = tuple(ipaddress.IPv4Address(a) for a in args.nbma)
        return KernelGuard(GuardSpec(nbma=addresses, nflog_group=args.nflog_group))
    saved = _tunnel_config(args.config)
    if saved is None:
        return None
    nbma = guard_nbma(_running_config(args.running) or saved, _read_addresses())
    if not nbma:
        raise ValueError("no NBMA address: give --nbma, or a configuration whose tunnel has "
                         "a source with an address")  # fmt: skip
    return KernelGuard(GuardSpec(nbma=tuple(sorted(nbma)), nflog_group=args.nflog_group))


def _running_config(path: Path) -> Config | None:
    """The configuration frrdmvpnd applied last if it defines a tunnel (none: None)."""
    try:
        text = config_store.read(path)
    except (ConfigError, OSError):
        return None
    config = check(text)[0] if text else None
    return config if config is not None and config.interfaces else None


def _tunnel_locals(names: set[str]) -> set[ipaddress.IPv4Address]:
    """The local address of each GRE link of these names, as the kernel has it (a link that
    is missing, not GRE or without a local address adds nothing)."""
    from frrdmvpn.adapters.links import LinkError, Links  # noqa: PLC0415 - keep `guard` light

    links = Links()
    try:
        found = set()
        for name in sorted(names):
            try:
                tunnel = links.tunnel(name)
            except LinkError:
                continue
            if tunnel is not None and tunnel.local is not None:
                found.add(tunnel.local)
        return found
    finally:
        links.close()


def _read_addresses() -> dict[str, tuple[ipaddress.IPv4Address, ...]]:
    """Every interface's IPv4 addresses, as the kernel has them now."""
    from frrdmvpn.adapters.links import Links  # noqa: PLC0415 - keep `guard` light

    links = Links()
    try:
        return links.addresses()
    finally:
        links.close()


#: ``configured``'s exit status: systemd's ExecCondition skips the unit on 1-254 and fails
#: it on 255.
CONFIGURED, NOT_CONFIGURED, UNUSABLE = 0, 1, 255


def cmd_configured(args: argparse.Namespace) -> int:
    """Exit 0 when the configuration defines a tunnel, 1 only when it defines none (the
    units stay off until the operator configures the node), 255 when it cannot be used or
    anything unexpected happens (the units fail, and say why). With
    ``--sync-charon-socket`` also write or remove /etc/strongswan.d/frrdmvpn.conf."""
    try:
        node = _standing(args.config)
        if args.sync_charon_socket:
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
        node = _standing(args.config)
        if node.kind is Kind.UNUSABLE:
            print(f"frrdmvpnd: warning: {node.reason}\nfrrdmvpnd: warning: guards not "
                  "checked; DMVPN stays off until the configuration is fixed",
                  file=sys.stderr)  # fmt: skip
            return 0
        if node.kind is Kind.NO_TUNNEL:
            print(f"frrdmvpnd: {node.reason}; no guard")
            return 0
    guard = _guard(args)
    if guard is None or guard.installed(covering=True):  # wider: a change under way
        return 0
    nbma = ", ".join(str(a) for a in guard.spec.nbma)
    print(f"frrdmvpnd: the guards for {nbma} are missing: GRE could leave in clear text "
          "(start frrdmvpn-guard.service)", file=sys.stderr)  # fmt: skip
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
            guard.spec = GuardSpec(tuple(sorted(listed.nbma | set(guard.spec.nbma))),
                                   guard.spec.nflog_group)  # fmt: skip
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
    journal.setup("frrdmvpnd", args.verbose)
    return asyncio.run(_run(args))


def _node_addresses(args: argparse.Namespace, text: str | None) -> tuple[str, list[str]]:
    """This node's NBMA address and its NHS's: from the command line, else from the
    configuration (the tunnel's source, its ``ip nhrp nhs ... nbma`` addresses)."""
    nbma, nhs = args.nbma, list(args.nhs)
    config = check(text)[0] if text else None
    if config is not None and (nbma is None or not nhs):
        from frrdmvpn.adapters.links import Links  # noqa: PLC0415

        sources = Links().source_addresses() if nbma is None else {}
        for t in config.interfaces:
            if nbma is None and t.source is not None:
                src = sources.get(str(t.source)) if isinstance(t.source, str) else t.source
                nbma = None if src is None else str(src)
            if not args.nhs:
                nhs += [str(n.nbma) for n in t.nhrp_nhs
                        if isinstance(n.nbma, ipaddress.IPv4Address)]  # fmt: skip
    if nbma is None:
        raise ValueError("no NBMA address: give --nbma, or a configuration whose tunnel has "
                         "a source")  # fmt: skip
    return nbma, nhs


async def _run(args: argparse.Namespace) -> int:  # noqa: PLR0915 - the composition root
    from frrdmvpn.adapters import systemd, vtysh  # noqa: PLC0415
    from frrdmvpn.api.backend import Backend  # noqa: PLC0415
    from frrdmvpn.api.operations import Operations  # noqa: PLC0415
    from frrdmvpn.api.server import ApiServer, TlsFiles  # noqa: PLC0415
    from frrdmvpn.supervision import Service, ensure_guard  # noqa: PLC0415

    loop = asyncio.get_running_loop()
    frr = vtysh.Frr()  # one session per FRR daemon, for the API and apply too
    vtysh.use(frr)
    sessions = vtysh.SyncFrr(frr, loop)
    # Its ports (real_ports) once the guards' keeper exists, below.
    stores = Datastores(saved=args.config or config_store.SAVED, running=args.running,
                        check_file=check_trustpoint_file)  # fmt: skip
    for kept in (stores.saved, stores.saved.with_name(stores.saved.name + ".prev")):
        config_store.tighten(kept)  # a 0644 file from before: it holds the keys
    backend = Backend(stores)

    ready = {"guards": False, "config": False}
    server: Any = None

    async def mark(part: str) -> None:
        """Ready (health SERVING, READY=1) once the guards are in place and a configuration
        has been applied; a daemon started with a bad file becomes ready with a good one."""
        if ready[part]:
            return
        ready[part] = True
        if all(ready.values()):
            backend.set_ready()
            if server is not None:
                await server.set_serving(True)
            systemd.ready(f"supervising {backend.hostname}")

    def config_changed(what: str, report: ApplyReport | None) -> None:
        loop.call_soon_threadsafe(backend.config_changed, what, report)
        if what == "applied":
            asyncio.run_coroutine_threadsafe(mark("config"), loop)

    stores.on_change = config_changed

    async def apply_saved(origin: str) -> bool:
        """Apply the saved file; never fatal (the guards stay fail-closed)."""
        undecodable: tuple[Diagnostic, ...] = ()
        try:
            text = config_store.read(stores.saved)
        except ConfigError as exc:
            text, undecodable = None, exc.diagnostics
        for finding in undecodable:
            log.error("%s", finding.format(filename=str(stores.saved)))
        if undecodable:
            log.error("%s was not applied (the guards stay fail-closed)", stores.saved)
            return False
        if text is None:
            log.error("%s: no such file; supervising what runs", stores.saved)
            return False
        try:
            report = await asyncio.to_thread(stores.apply_text, text, origin=origin)
        except Exception:  # an adapter failing in a way apply did not foresee
            log.exception("applying %s failed", stores.saved)
            return False
        for finding in report.diagnostics:
            log.warning("%s", finding.format(text, filename=str(stores.saved)))
        if not report.ok:
            log.error("%s was not applied: %s (the guards stay fail-closed)", stores.saved,
                      report.message)  # fmt: skip
        return report.ok

    try:
        text = config_store.read(stores.saved) if args.config else stores.running_text()
    except ConfigError:
        text = None  # not UTF-8: apply_saved says where

    nbma, nhs = await asyncio.to_thread(_node_addresses, args, text)  # pyroute2 blocks
    # The guards follow the configurations (the one that runs, and the one about to be
    # applied) and their tunnel sources' addresses. The start-up NBMA address (--nbma, else
    # the tunnel source's now) is always guarded while this process runs: the supervisor's
    # initiations kick charon's trap with GRE from it (kick_gre), whatever runs since.
    start = check(text)[0] if text else None
    guards = GuardKeeper(
        KernelGuard(GuardSpec((ipaddress.IPv4Address(nbma),))),
        [c for c in (backend.running_config(), start) if c is not None and c.interfaces],
        pinned=[ipaddress.IPv4Address(nbma)],
        running=backend.running_config,
        read_addresses=_read_addresses,
        apply_lock=lambda: config_store.locked_if_free(stores.running),
        tunnel_locals=_tunnel_locals,
    )
    stores.ports = lambda: real_ports(sessions, guards)
    # Before anything can send GRE.
    await ensure_guard(guards)
    if args.config is None:
        await mark("config")  # nothing to apply: what runs is the configuration
    else:
        await apply_saved("startup")
    backend.config_current()

    async def reconfigure(reason: str, audit: bool) -> None:
        """Bring the node back to its running configuration after a daemon lost some of it
        (a restart; ``audit``: first only check, and say what drifted)."""
        await _reconfigure(stores, reason, audit, saved=args.config is not None)

    def tunnels() -> set[str]:
        config = backend.running_config()
        return set() if config is None else {t.linux_name for t in config.interfaces}

    service = Service(ipaddress.IPv4Address(nbma), [ipaddress.IPv4Address(a) for a in nhs],
                      reconfigure=reconfigure, observer=backend, frr=frr, tunnels=tunnels,
                      guards=guards)  # fmt: skip
    if not args.no_api:
        tls = None
        if args.api_tcp:
            if not (args.tls_cert and args.tls_key and args.tls_client_ca):
                raise ValueError("--api-tcp needs --tls-cert, --tls-key and --tls-client-ca")
            tls = TlsFiles(args.tls_cert, args.tls_key, args.tls_client_ca)
        server = ApiServer(backend, Operations(service, backend), args.api_socket,
                           args.api_group or None, args.api_tcp, tls,
                           admin_socket=args.api_admin_socket,
                           admin_group=args.api_admin_group or None)  # fmt: skip
        await server.start()
    metrics = None
    if args.metrics:
        from frrdmvpn.adapters import metrics as metrics_adapter  # noqa: PLC0415

        host, _, port = args.metrics.rpartition(":")
        metrics = metrics_adapter.start(host or "127.0.0.1", int(port), backend.metrics_view)

    def sighup() -> None:
        log.info("SIGHUP: reading %s again", stores.saved)
        systemd.reloading()
        task = loop.create_task(apply_saved("sighup"))
        task.add_done_callback(lambda _: systemd.ready())

    loop.add_signal_handler(signal.SIGHUP, sighup)

    async def started() -> None:
        """Service.run installed (or found) the guards before calling this."""
        if not ready["config"]:
            log.warning("the configuration is not applied: the API reports NOT_SERVING")
        await mark("guards")

    try:
        await service.run(args.interval, on_started=started)
    finally:
        systemd.stopping()
        if server is not None:
            await server.stop()
        if metrics is not None:
            metrics.close()
        await frr.close()
    return 0


async def _reconfigure(stores: Datastores, reason: str, audit: bool, saved: bool = False) -> None:
    """Apply the running configuration again (only what differs); with ``audit`` only when a
    dry run finds something missing or changed, which is logged. Nothing applied yet (the
    start's apply failed: FRR or charon was not there): the saved file, if ``saved``.

    An apply made meanwhile (``frrdmvpnd apply``, the API) wins: the text read here is applied
    only while it is still the running configuration (else that apply's result stands)."""
    running = stores.running_text()
    text: str | None = running
    if not text and saved:
        try:
            text = stores.saved_text()
        except ConfigError:
            return  # not UTF-8: the start's apply said where
    if not text:
        return  # nothing to restore
    apply = functools.partial(stores.apply_text, text, origin=reason,
                              expected_running=digest(running))  # fmt: skip
    try:
        await _reapply(apply, reason, audit)
    except ConflictError as exc:
        log.info("not configuring again (%s): %s", reason, exc)


async def _reapply(apply: Callable[..., ApplyReport], reason: str, audit: bool) -> None:
    """:func:`_reconfigure`'s apply: after a dry run that finds drift, with ``audit``."""
    if audit:
        plan = await asyncio.to_thread(apply, dry_run=True)
        if not plan.ok:
            log.warning("checking the configuration (%s): %s", reason, plan.message)
        if not plan.ok or not plan.changes:
            return
        drift = "; ".join(plan.changes)
        log.warning("the configuration drifted (%s): missing or changed: %s; applying it again",
                    reason, drift, extra=journal.fields(event="drift", reason=drift))  # fmt: skip
    report = await asyncio.to_thread(apply)
    if report.ok:
        log.info("configured again (%s): %s", reason, "; ".join(report.changes) or "no change")
    else:
        log.error("configuring again (%s) failed: %s", reason, report.message)


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


def real_ports(frr: Any = None, guards: GuardKeeper | None = None) -> Ports:
    """The adapters of the node frrdmvpnd runs on; FRR through ``frr`` (a
    :class:`~frrdmvpn.adapters.vtysh.SyncFrr`; default: a connection per call); the guards
    through ``guards`` (default: widened by this apply alone; the daemon narrows them)."""
    from frrdmvpn.adapters import nhrp_hooks, vtysh  # noqa: PLC0415 - keep `guard` light
    from frrdmvpn.adapters.links import Links, set_sysctls  # noqa: PLC0415
    from frrdmvpn.adapters.vici_config import CharonConfig  # noqa: PLC0415

    sessions = frr if frr is not None else vtysh.SyncFrr()
    return Ports(
        links=Links(),
        charon=CharonConfig(),
        frr_running=sessions.running_config,
        frr_configure=sessions.configure,
        sysctls=set_sysctls,
        hooks=nhrp_hooks.ensure,
        read_file=read_trustpoint_file,
        guard=guards if guards is not None else GuardKeeper(narrows=False),
    )


def read_trustpoint_file(f: TrustpointFile) -> bytes:
    """A trustpoint's file, if only root could have written it."""
    return trusted_files.read(f.path, f.keyword, secret=f.secret)


def check_trustpoint_file(f: TrustpointFile) -> None:
    """Raise if :func:`read_trustpoint_file` would refuse the file (reads nothing)."""
    trusted_files.check(f.path, f.keyword, secret=f.secret)


def cmd_validate(args: argparse.Namespace) -> int:
    checked = _checked(args.config, args.running)
    if checked is not None:
        print(f"frrdmvpnd: {args.config}: valid")
    return 0 if checked is not None else 1


def cmd_apply(args: argparse.Namespace) -> int:
    """Validate, then bring the node from the running configuration to the file's."""
    logging.basicConfig(level=logging.WARNING, format="%(name)s %(levelname)s %(message)s")
    text = _printed_read(args.config)
    if text is None:
        return 1
    stores = Datastores(saved=args.config, running=args.running, ports=real_ports,
                        check_file=check_trustpoint_file)  # fmt: skip
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
    guard.add_argument("action", choices=["install", "remove", "status", "check", "flush-larval"],
                       help="check: exit 1 only when a valid configuration defines a tunnel "
                       "and its guards are missing")  # fmt: skip
    guard.add_argument("--nbma", action="append", metavar="ADDR",
                       help="a local NBMA (underlay) address; repeat for several (default: "
                       "the configured tunnel source's)")  # fmt: skip
    guard.add_argument("-c", "--config", type=Path, default=config_store.SAVED,
                       help=f"configuration file (default {config_store.SAVED})")  # fmt: skip
    guard.add_argument("--running", type=Path, default=config_store.RUNNING,
                       help="the configuration frrdmvpnd applied last, guarded when it "
                       "defines a tunnel (default %(default)s)")  # fmt: skip
    guard.add_argument("--nflog-group", type=int, default=3, help="NFLOG group for drops")
    configured = sub.add_parser("configured", help="exit 0 when the configuration defines a "
                                "tunnel, 1 when it defines none, 255 when it cannot be used "
                                "(systemd's ExecCondition: skip, or fail)")  # fmt: skip
    configured.add_argument("-c", "--config", type=Path, default=config_store.SAVED,
                            help=f"configuration file (default {config_store.SAVED})")  # fmt: skip
    configured.add_argument("--sync-charon-socket", action="store_true",
                            help=f"also write {DROPIN} (charon's VICI socket moves aside) "
                            "when the configuration defines a tunnel, remove it when it "
                            "defines none, leave it when the file cannot be used")  # fmt: skip
    configured.add_argument("--dropin", type=Path, default=DROPIN,
                            help=f"that file (default {DROPIN})")  # fmt: skip
    run = sub.add_parser("run", help="apply the configuration, supervise every peer, serve "
                         "the API")  # fmt: skip
    run.add_argument("--nbma", help="this node's NBMA (underlay) address (default: the "
                     "configured tunnel source's)")  # fmt: skip
    run.add_argument("--nhs", action="append", default=[], metavar="ADDR",
                     help="an NHS's NBMA address, kept up always; repeat for several")  # fmt: skip
    run.add_argument("--interval", type=float, default=1.0, help="seconds between checks")
    run.add_argument("-v", "--verbose", action="store_true", help="log debug messages too")
    run.add_argument("-c", "--config", type=Path, help="apply this saved configuration first")
    run.add_argument("--api-socket", type=Path, default=Path("/run/frrdmvpn/frrdmvpn.sock"),
                     help="the gRPC API's unix socket")  # fmt: skip
    run.add_argument("--api-group", default="frrdmvpn",
                     help="group of the operators (show, clear, debug: --api-socket)")  # fmt: skip
    run.add_argument("--api-admin-socket", type=Path,
                     default=Path("/run/frrdmvpn/frrdmvpn-admin.sock"),
                     help="the gRPC API's unix socket for administrators")  # fmt: skip
    run.add_argument("--api-admin-group", default="frrdmvpn-admin",
                     help="group of the administrators (configuration, secrets: "
                          "--api-admin-socket); root is always one")  # fmt: skip
    run.add_argument("--api-tcp", metavar="HOST:PORT", help="also listen on TCP (mutual TLS)")
    run.add_argument("--tls-cert", type=Path, help="server certificate (PEM) for --api-tcp")
    run.add_argument("--tls-key", type=Path, help="its private key (PEM)")
    run.add_argument("--tls-client-ca", type=Path,
                     help="CA that signs client certificates (a subjectAltName URI "
                          "urn:frrdmvpn:role:admin makes an administrator, else an "
                          "operator)")  # fmt: skip
    run.add_argument("--no-api", action="store_true", help="serve no API")
    run.add_argument("--metrics", metavar="HOST:PORT",
                     help="serve Prometheus metrics on localhost, e.g. 127.0.0.1:9742")  # fmt: skip
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
                    "save": cmd_save, "guard": cmd_guard,
                    "configured": cmd_configured}  # fmt: skip
        return commands[args.command](args)
    except (GuardError, ValueError) as exc:
        print(f"frrdmvpnd: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
