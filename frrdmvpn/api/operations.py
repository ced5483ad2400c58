"""The OperationsService's work: clear a peer (IPsec through charon, NHRP through nhrpd),
re-initiate it, clear counters.

The supervision loop is reached through :class:`Supervision` (implemented by
:class:`frrdmvpn.supervision.Service`), so the loop imports nothing of the API.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Collection
from pathlib import Path
from typing import Protocol

from frrdmvpn.adapters.journald import fields
from frrdmvpn.adapters.vici_client import ViciError, terminate_ike
from frrdmvpn.adapters.vtysh import VtyshError, run_command
from frrdmvpn.api.backend import Backend, OperationError, results
from frrdmvpn.core.supervisor import IPAddress
from frrdmvpn.v1 import operations_service_pb2, peer_pb2

log = logging.getLogger("frrdmvpn.supervisor")


class Supervision(Protocol):
    """What the operations need of the supervision loop."""

    @property
    def upstream(self) -> Path:
        """charon's VICI socket."""

    @property
    def wake(self) -> asyncio.Event:
        """Set: the loop steps now."""

    def initiate(self, local: IPAddress, remote: IPAddress) -> None:
        """Have charon initiate the peer's SA."""

    def reset_counters(self, remotes: Collection[str] | None) -> int:
        """Zero the counts of the peers at ``remotes`` (None: all); how many."""


Result = operations_service_pb2.PeerOperationResult


class PeerOperations(Protocol):
    """The operations the API's OperationsService carries out (:class:`Operations`)."""

    async def clear(
        self,
        peers: list[peer_pb2.Peer],
        *,
        nhrp: bool,
        ipsec: bool,
        everyone: bool,
        include_static: bool,
        dry_run: bool,
    ) -> list[Result]:
        """Clear the peers' SAs and/or nhrpd's cache; one result per peer."""

    async def reinitiate(self, peers: list[peer_pb2.Peer]) -> list[Result]:
        """Have charon initiate each peer's SA; one result per peer."""

    def clear_counters(self, scope: int, peers: list[peer_pb2.Peer] | None) -> tuple[int, float]:
        """Zero the counters of ``scope`` (of ``peers``, None: all); how many, and when."""


class Control(Protocol):
    """What the operations do to charon and nhrpd (the port to their adapters)."""

    async def terminate_ike(self, unique_id: int) -> None:
        """Terminate the IKE_SA ``unique_id``; :class:`ViciError` if charon refuses."""

    async def nhrp_command(self, command: str) -> None:
        """An exec command of nhrpd's; :class:`VtyshError` if nhrpd refuses."""


class _Adapters:
    """:class:`Control` over charon's VICI socket (the loop's) and nhrpd's vty."""

    def __init__(self, supervision: Supervision) -> None:
        self.supervision = supervision

    async def terminate_ike(self, unique_id: int) -> None:
        await terminate_ike(self.supervision.upstream, unique_id)

    async def nhrp_command(self, command: str) -> None:
        await run_command(command)


class Operations:
    """The API's operations on peers, over the supervision loop, the backend and
    :class:`Control`."""

    def __init__(
        self, supervision: Supervision, backend: Backend, control: Control | None = None
    ) -> None:
        self.supervision = supervision
        self.backend = backend
        self.control = control or _Adapters(supervision)

    async def clear(
        self,
        peers: list[peer_pb2.Peer],
        *,
        nhrp: bool,
        ipsec: bool,
        everyone: bool,
        include_static: bool,
        dry_run: bool,
    ) -> list[Result]:
        out: list[Result] = []
        if nhrp and not everyone:
            return results(
                peers,
                False,
                "nhrpd (FRR 8.4) clears only its whole cache: clear "
                "all peers, or clear IPsec, which also drops the peer's NHRP "
                "entries",
            )
        for peer in peers:
            done, notes = True, []
            if ipsec:
                ike_ids = [i.unique_id for i in peer.crypto.ike_sas]
                if not ike_ids:
                    notes.append("no IKE_SA")
                for uid in ike_ids:
                    if dry_run:
                        notes.append(f"would terminate IKE_SA #{uid}")
                        continue
                    try:
                        await self.control.terminate_ike(uid)
                        notes.append(f"terminated IKE_SA #{uid}")
                        log.info(
                            "peer %s: IKE_SA #%d cleared (API)",
                            peer.key.remote_nbma,
                            uid,
                            extra=fields(
                                peer=peer.key.remote_nbma,
                                event="clear",
                                reason=f"IKE_SA #{uid} terminated",
                            ),
                        )
                    except ViciError as exc:
                        done = False
                        notes.append(str(exc))
            out += results([peer], done, "; ".join(notes))
        if nhrp and everyone:
            command = "clear ip nhrp cache"
            if dry_run:
                note = f"would run {command!r}"
            else:
                try:
                    await self.control.nhrp_command(command)
                    note = "nhrpd cache cleared (dynamic and cached entries)"
                except VtyshError as exc:
                    return results(peers, False, str(exc))
            if not out:
                out = results(peers, True, note)
            else:
                for r in out:
                    r.message = "; ".join(m for m in (r.message, note) if m)
        self.supervision.wake.set()
        return out

    async def reinitiate(self, peers: list[peer_pb2.Peer]) -> list[Result]:
        for peer in peers:
            local = ipaddress.ip_address(peer.key.local_nbma)
            remote = ipaddress.ip_address(peer.key.remote_nbma)
            self.supervision.initiate(local, remote)
        self.supervision.wake.set()
        return results(peers, True, "initiation requested")

    def clear_counters(self, scope: int, peers: list[peer_pb2.Peer] | None) -> tuple[int, float]:
        """Reset peer counters; baseline the guard's and the authorizer's."""
        now = time.time()
        api = self.backend
        cleared = 0
        if scope == operations_service_pb2.COUNTER_SCOPE_NHRP_TRAFFIC:
            raise OperationError("nhrpd (FRR 8.4) keeps no NHRP traffic counters")
        if scope in (
            operations_service_pb2.COUNTER_SCOPE_PEERS,
            operations_service_pb2.COUNTER_SCOPE_ALL,
        ):
            wanted = None if peers is None else {p.key.remote_nbma for p in peers}
            cleared = self.supervision.reset_counters(wanted)
        if scope in (
            operations_service_pb2.COUNTER_SCOPE_GUARD,
            operations_service_pb2.COUNTER_SCOPE_ALL,
        ):
            _, counters, report, _ = api.guard_raw
            api.baselines.guard = dict(counters)
            api.baselines.guard_logged = {k: int(v) for k, v in report.get("counts", {}).items()}
            api.baselines.guard_since = now
        if scope in (
            operations_service_pb2.COUNTER_SCOPE_AUTHORIZATION,
            operations_service_pb2.COUNTER_SCOPE_ALL,
        ):
            api.baselines.authorization = dict((api.journal or {}).get("counters", {}))
            api.baselines.authorization_since = now
        self.supervision.wake.set()
        return cleared, now
