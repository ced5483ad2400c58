"""``frrdmvpnd run``: install the guards, then supervise every peer of one NBMA address.

Each step asks charon (VICI, its own socket), nhrpd (vtysh JSON) for the current state; the
pure :class:`~frrdmvpn.core.supervisor.Supervisor` says what changed and what to initiate.
The peer table is written to ``/run/frrdmvpn/peers.json`` after every step.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import os
import random
import signal
from pathlib import Path

from frrdmvpn.adapters.guard import GuardError, KernelGuard
from frrdmvpn.adapters.vici_client import ViciError, list_sas
from frrdmvpn.adapters.vici_proxy import DEFAULT_UPSTREAM, kick_gre
from frrdmvpn.adapters.vtysh import VtyshError, nhrp_view
from frrdmvpn.core.supervisor import (
    FlushLarval,
    Initiate,
    Observation,
    Supervisor,
    Transition,
)
from frrdmvpn.render.guard import GuardSpec
from frrdmvpn.vici.translate import Initiate as ProxyInitiate

log = logging.getLogger("frrdmvpn.supervisor")
STATUS = Path("/run/frrdmvpn/peers.json")


def _write_status(sup: Supervisor, path: Path) -> None:
    table = [
        {
            "local": str(p.local), "remote": str(p.remote), "role": p.role.value,
            "state": p.state.name, "since": round(p.since, 3), "reason": p.reason,
            "transitions": p.transitions, "initiations": p.initiations,
        }
        for p in sorted(sup.peers.values(), key=lambda p: p.remote)
    ]  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(table, indent=1))
    os.replace(tmp, path)


async def supervise(
    nbma: ipaddress.IPv4Address,
    nhs: list[ipaddress.IPv4Address],
    upstream: Path = DEFAULT_UPSTREAM,
    interval: float = 1.0,
    status: Path = STATUS,
) -> None:
    """Run until SIGTERM/SIGINT; the guards stay installed on exit (fail-closed)."""
    guard = KernelGuard(GuardSpec((nbma,)))
    if not await asyncio.to_thread(guard.installed):
        await asyncio.to_thread(guard.install)
        log.info("guards installed for %s", nbma)
    sup = Supervisor(nbma, nhs, rand=random.random)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("supervising %s (NHS: %s)", nbma, ", ".join(map(str, nhs)) or "none")
    while not stop.is_set():
        try:
            ikes, children = await list_sas(upstream)
            charon_up = True
        except ViciError as exc:
            log.debug("charon: %s", exc)
            ikes, children, charon_up = [], [], False
        try:
            bindings, sas = await nhrp_view()
        except VtyshError as exc:
            log.debug("nhrpd: %s", exc)
            bindings, sas = [], {}
        obs = Observation(charon_up, tuple(ikes), tuple(children), tuple(bindings), sas)
        for action in sup.step(obs, loop.time()):
            if isinstance(action, Transition):
                log.info("peer %s: %s -> %s: %s", action.remote, action.old.name,
                         action.new.name, action.reason)  # fmt: skip
            elif isinstance(action, Initiate):
                log.info("peer %s: initiate (attempt %d)", action.remote, action.attempt)
                try:
                    kick_gre(ProxyInitiate("dmvpn", action.local, action.remote))
                except OSError as exc:
                    log.warning("peer %s: initiate failed: %s", action.remote, exc)
            elif isinstance(action, FlushLarval):
                try:
                    flushed = await asyncio.to_thread(guard.flush_larval_states)
                    log.info("charon is up: flushed %d stale larval XFRM states", flushed)
                except GuardError as exc:
                    log.warning("flushing larval states: %s", exc)
        _write_status(sup, status)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
    log.info("stopping; the guards stay in place")
