"""What ``frrdmvpn-proxy`` (:mod:`frrdmvpn.application.proxy`) runs: the VICI proxy and
nhrpd's event socket (:func:`serve`), the authorization policy and IPsec profiles they decide
with (re-read on SIGHUP), and the per-UID admission budgets of both sockets.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import logging
import os
import signal
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from frrdmvpn import __version__
from frrdmvpn.adapters import config_store, systemd
from frrdmvpn.adapters.decision_journal import DecisionJournal
from frrdmvpn.adapters.guard import KernelGuard
from frrdmvpn.adapters.initiator import Initiator
from frrdmvpn.adapters.nhrp_event_server import NhrpEventServer
from frrdmvpn.adapters.sa_feed import AUDIT_PERIOD, SaFeed
from frrdmvpn.adapters.unix_server import principal_of_uid, uid_of
from frrdmvpn.adapters.vici_client import SharedListing, list_child_sas, with_certificates
from frrdmvpn.adapters.vici_proxy import ViciProxy
from frrdmvpn.codec.nhrp_events import AuthorizeBinding
from frrdmvpn.config.diagnostics import ConfigError
from frrdmvpn.config.model import Config
from frrdmvpn.config.parse import decode
from frrdmvpn.config.policy import authorization_policy
from frrdmvpn.config.swan import connection_names
from frrdmvpn.config.validate import check
from frrdmvpn.core.admission import Admission
from frrdmvpn.core.authorize import ChildSa, Decision, Policy, PolicyMode, authorize
from frrdmvpn.core.guard_rules import GuardSpec
from frrdmvpn.core.sa_table import Drift, SaTable

log = logging.getLogger("frrdmvpn.proxy")


def flush_larval_states() -> int:
    """Clear larval XFRM states (they would swallow the trap's next ACQUIRE)."""
    # The guard's NBMA addresses do not matter for this: no rule is installed or read.
    return KernelGuard(GuardSpec((ipaddress.IPv4Address("192.0.2.1"),))).flush_larval_states()


# Per-UID caps on both sockets (issue 14, hole 9). nhrpd's user and root have budgets of
# their own, never taken by others: nhrpd keeps one connection to each socket (a few while it
# reconnects); root's swanctl reaches charon through the proxy too. Every other member of
# the group may hold PER_UID, all of them together TOTAL. In descriptors, at worst (a VICI
# client costs two: its socket and charon's; an event client one):
# (4 + 16 + 32) * 2 + (4 + 4 + 16) = 128, far below the 1024 a service gets by default, so
# nhrpd's connections and the decisions' own VICI connections always find one.
VICI_BUDGET = {"nhrpd": 4, "root": 16, "per_uid": 4, "total": 32}
EVENTS_BUDGET = {"nhrpd": 4, "root": 4, "per_uid": 2, "total": 16}


def admissions(nhrpd_uid: int | None) -> tuple[Admission, Admission]:
    """The admission policies of the VICI proxy and of the event socket."""

    def admission(what: str, budget: dict[str, int]) -> Admission:
        reserved = {principal_of_uid(0): budget["root"]}
        if nhrpd_uid is not None and nhrpd_uid != 0:
            reserved[principal_of_uid(nhrpd_uid)] = budget["nhrpd"]
        return Admission(what, budget["per_uid"], budget["total"], reserved)

    return admission("VICI connections", VICI_BUDGET), admission(
        "event socket connections", EVENTS_BUDGET
    )


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


def read_config(path: Path) -> Config:
    """The configuration in ``path``, validated; :class:`PolicyError` with its errors."""
    try:
        text = decode(path.read_bytes())
    except OSError as exc:
        raise PolicyError(f"{path}: {exc}") from exc
    except ConfigError as exc:  # not UTF-8: no policy, but the proxy still relays
        found = [f.format(filename=str(path)) for f in exc.diagnostics]
        raise PolicyError("\n".join(found)) from None
    config, findings = check(text)
    errors = [f.format(text, filename=str(path)) for f in findings if f.is_error]
    if errors:
        raise PolicyError("\n".join(errors))
    return config


def load_policy(args: argparse.Namespace, config: Config | None = None) -> Policy:
    """The policy from ``--config`` (validated; ``config``: as already read) or from the
    command line."""
    if args.config is not None:
        if config is None:
            config = read_config(args.config)
        policy = authorization_policy(config)
        if policy is None:
            raise PolicyError(f"{args.config}: no tunnel with an address, so no policy")
    else:
        if args.tunnel_subnet is None:
            raise PolicyError("give --config, or --tunnel-subnet with --auth/--psk-map")
        policy = Policy(MODES[args.auth], args.tunnel_subnet, parse_psk_map(args.psk_map))
    if policy.mode is PolicyMode.ANY_AUTHENTICATED:
        log.warning("authorization mode 'any': every authenticated peer may claim any address")
    return policy


def load_profiles(args: argparse.Namespace, running: frozenset[str]) -> frozenset[str]:
    """DMVPN's IPsec profiles: ``--profile``; with ``--config`` the ``running``
    configuration's and those of a configuration being applied (announced beside it)."""
    if args.config is None:
        return frozenset(args.profile)
    return running | config_store.announced(args.config)


class PolicyError(ValueError):
    """The authorization policy could not be read."""


def _initial_policy(args: argparse.Namespace, config: Config | None = None) -> Policy | None:
    """The policy to start with. With ``--config`` a missing or invalid file is not fatal:
    nothing has been applied yet, so every binding is denied until a SIGHUP brings one."""
    try:
        return load_policy(args, config)
    except PolicyError as exc:
        if args.config is None:
            raise
        log.warning(
            "no authorization policy yet (%s): denying every binding until the "
            "configuration is applied",
            exc,
        )
        return None


@dataclass
class Settings:
    """What the proxy decides with, re-read on SIGHUP: the authorization policy (None: no
    configuration applied yet) and the running configuration's IPsec profiles."""

    policy: Policy | None
    running: frozenset[str] = frozenset()

    @classmethod
    def initial(cls, args: argparse.Namespace) -> Settings:
        config = None
        if args.config is not None:
            with contextlib.suppress(PolicyError):  # _initial_policy says why
                config = read_config(args.config)
        running = frozenset() if config is None else connection_names(config)
        return cls(_initial_policy(args, config), running)

    def reload(self, args: argparse.Namespace) -> None:
        """Both as the configuration now says; what it cannot give stays as it was."""
        try:
            config = None if args.config is None else read_config(args.config)
            if config is not None:
                self.running = connection_names(config)
            self.policy = load_policy(args, config)
            log.info("authorization policy reloaded: %s", self.policy.mode.value)
        except PolicyError as exc:  # keep deciding with the policy that was valid
            log.warning("authorization policy NOT reloaded, keeping the previous one: %s", exc)


class Authorizer:
    """Decides nhrpd's authorize-binding events: an accept from the SA table kept from
    charon's events when it is in sync (no round trip), anything else from a fresh listing
    (an SA installed a moment ago, the full reason of a denial); counts both in ``journal``."""

    def __init__(
        self,
        upstream: Path,
        settings: Settings,
        journal: DecisionJournal,
        audit_period: float = AUDIT_PERIOD,
    ) -> None:
        self.upstream = upstream
        self.settings = settings
        self.journal = journal
        self.table = SaTable()
        self.feed = SaFeed(upstream, self.table, self._audited, audit_period=audit_period)
        self.listing = SharedListing(lambda: list_child_sas(upstream))

    def _audited(self, drift: Drift) -> None:
        self.journal.counters["sa_table_audits"] += 1
        if drift:
            self.journal.counters["sa_table_drift"] += 1
        try:
            self.journal.write()
        except OSError as exc:  # the counters are written with the next decision
            log.warning("recording the SA table's audit: %s", exc)

    async def decide(self, event: AuthorizeBinding) -> Decision:
        policy = self.settings.policy
        if policy is None:
            return Decision(
                False,
                f"deny {event.remote_addr} via {event.remote_nbma}: no "
                "configuration applied yet, so no authorization policy",
            )
        local, remote = event.local_nbma, event.remote_nbma
        if self.table.in_sync and local is not None and remote is not None:
            decision = await self._judge(policy, event, self.table.between(local, remote))
            if decision.accept:
                self.journal.counters["from_sa_table"] += 1
                return decision
        self.journal.counters["from_listing"] += 1
        return await self._judge(policy, event, await self.listing.get())

    async def _judge(self, policy: Policy, event: AuthorizeBinding, sas: list[ChildSa]) -> Decision:
        if policy.mode is PolicyMode.CERTIFICATE and event.local_nbma and event.remote_nbma:
            # Stock VICI lists no certificates: ask charon for the ones it verified.
            pair = {event.local_nbma, event.remote_nbma}
            sas = await with_certificates(self.upstream, sas, pair)
        return authorize(event, sas, policy)


def _feed_ended(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:  # SaFeed.run never returns
        log.error(
            "the SA table's feed ended: every decision asks charon", exc_info=task.exception()
        )


def _log_profiles(profiles: Collection[str]) -> None:
    log.info("nhrpd may use the IPsec profiles %s", ", ".join(sorted(profiles)) or "(none)")


async def serve(args: argparse.Namespace) -> None:
    settings = Settings.initial(args)

    def reload() -> None:
        settings.reload(args)
        profiles = load_profiles(args, settings.running)
        if profiles != proxy.profiles:
            proxy.profiles = profiles
            _log_profiles(profiles)

    journal = DecisionJournal(args.journal)
    authorizer = Authorizer(args.upstream, settings, journal, args.sa_audit)
    decide = authorizer.decide

    async def flush_larval() -> int:
        return await asyncio.to_thread(flush_larval_states)

    initiator = Initiator(args.upstream, flush_larval)
    nhrpd_uid = uid_of(args.nhrpd_user)
    if nhrpd_uid is None:
        log.warning(
            "no user %r: nhrpd's connections get no budget of their own, and only "
            "root may use charon through the proxy",
            args.nhrpd_user,
        )
    vici_admission, events_admission = admissions(nhrpd_uid)
    proxy = ViciProxy(
        args.listen,
        args.upstream,
        initiate=initiator.request,
        group=args.group,
        admission=vici_admission,
        nhrpd_uid=nhrpd_uid,
        profiles=load_profiles(args, settings.running),
    )
    _log_profiles(proxy.profiles)

    async def record(event: AuthorizeBinding, decision: Decision, latency: float) -> None:
        journal.mode = "" if settings.policy is None else settings.policy.mode.value
        await journal.added(event, decision, latency)

    events = NhrpEventServer(
        decide, args.events, group=args.group, journal=record, admission=events_admission
    )
    feeding = asyncio.create_task(authorizer.feed.run())
    feeding.add_done_callback(_feed_ended)
    await proxy.start()
    await events.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reload)
    if args.pidfile is not None:
        args.pidfile.parent.mkdir(parents=True, exist_ok=True)
        args.pidfile.write_text(f"{os.getpid()}\n")
    log.info("frrdmvpn-proxy %s ready", __version__)
    systemd.notify("READY=1")  # both sockets listen: nhrpd (frr.service) may start
    await stop.wait()
    systemd.notify("STOPPING=1")
    await events.close()
    await proxy.close()
    feeding.cancel()
    if args.pidfile is not None:  # a stale pid could make apply signal another process
        args.pidfile.unlink(missing_ok=True)
