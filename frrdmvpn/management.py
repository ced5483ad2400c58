"""``frrdmvpnd run``, the management daemon: it applies the saved configuration, keeps the
guards where the configurations need them (:class:`~frrdmvpn.guards.GuardKeeper`), runs the
supervision loop (:class:`~frrdmvpn.supervision.Service`), serves the gRPC API and the
metrics, and configures the node again when a daemon lost part of it (:func:`_reconfigure`).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import ipaddress
import logging
import signal
from collections.abc import Callable
from typing import Any

from frrdmvpn.adapters import config_store, journald, systemd, vtysh
from frrdmvpn.adapters.address_dump import read_addresses
from frrdmvpn.adapters.guard import KernelGuard
from frrdmvpn.adapters.links import Links, tunnel_locals
from frrdmvpn.api.backend import Backend
from frrdmvpn.api.operations import Operations
from frrdmvpn.api.server import ApiServer, TlsFiles
from frrdmvpn.config.diagnostics import ConfigError, Diagnostic
from frrdmvpn.config.validate import check
from frrdmvpn.core.guard_rules import GuardSpec
from frrdmvpn.datastores import ApplyReport, ConflictError, Datastores, digest
from frrdmvpn.guards import GuardKeeper
from frrdmvpn.node_ports import check_trustpoint_file, real_ports
from frrdmvpn.supervision import Service, ensure_guard

log = logging.getLogger(__name__)


def _node_addresses(args: argparse.Namespace, text: str | None) -> tuple[str, list[str]]:
    """This node's NBMA address and its NHS's: from the command line, else from the
    configuration (the tunnel's source, its ``ip nhrp nhs ... nbma`` addresses)."""
    nbma, nhs = args.nbma, list(args.nhs)
    config = check(text)[0] if text else None
    if config is not None and (nbma is None or not nhs):
        sources = Links().source_addresses() if nbma is None else {}
        for t in config.interfaces:
            if nbma is None and t.source is not None:
                src = sources.get(str(t.source)) if isinstance(t.source, str) else t.source
                nbma = None if src is None else str(src)
            if not args.nhs:
                nhs += [
                    str(n.nbma) for n in t.nhrp_nhs if isinstance(n.nbma, ipaddress.IPv4Address)
                ]
    if nbma is None:
        raise ValueError(
            "no NBMA address: give --nbma, or a configuration whose tunnel has a source"
        )
    return nbma, nhs


async def run(args: argparse.Namespace) -> int:  # noqa: PLR0915 - the composition root
    """The daemon: apply the saved configuration, supervise, serve the API."""
    loop = asyncio.get_running_loop()
    frr = vtysh.Frr()  # one session per FRR daemon, for the API and apply too
    vtysh.use(frr)
    sessions = vtysh.SyncFrr(frr, loop)
    # Its ports (real_ports) once the guards' keeper exists, below.
    stores = Datastores(
        saved=args.config or config_store.SAVED,
        running=args.running,
        check_file=check_trustpoint_file,
    )
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
            log.error(
                "%s was not applied: %s (the guards stay fail-closed)", stores.saved, report.message
            )
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
        read_addresses=read_addresses,
        apply_lock=lambda: config_store.locked_if_free(stores.running),
        tunnel_locals=tunnel_locals,
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

    service = Service(
        ipaddress.IPv4Address(nbma),
        [ipaddress.IPv4Address(a) for a in nhs],
        reconfigure=reconfigure,
        observer=backend,
        frr=frr,
        tunnels=tunnels,
        guards=guards,
    )
    backend.fresh_listing = service.fresh_listing  # the full view's counters
    if not args.no_api:
        tls = None
        if args.api_tcp:
            if not (args.tls_cert and args.tls_key and args.tls_client_ca):
                raise ValueError("--api-tcp needs --tls-cert, --tls-key and --tls-client-ca")
            tls = TlsFiles(args.tls_cert, args.tls_key, args.tls_client_ca)
        server = ApiServer(
            backend,
            Operations(service, backend),
            args.api_socket,
            args.api_group or None,
            args.api_tcp,
            tls,
            admin_socket=args.api_admin_socket,
            admin_group=args.api_admin_group or None,
        )
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
    apply = functools.partial(
        stores.apply_text, text, origin=reason, expected_running=digest(running)
    )
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
        log.warning(
            "the configuration drifted (%s): missing or changed: %s; applying it again",
            reason,
            drift,
            extra=journald.fields(event="drift", reason=drift),
        )
    report = await asyncio.to_thread(apply)
    if report.ok:
        log.info("configured again (%s): %s", reason, "; ".join(report.changes) or "no change")
    else:
        log.error("configuring again (%s) failed: %s", reason, report.message)
