"""Watch subscriptions: snapshot first, then deltas, each subscriber's backlog bounded.

A subscription is registered before its snapshot is taken, and both happen in the event
loop that also applies every change to the :class:`~frrdmvpn.api.tables.Store`, so nothing
falls between the snapshot and the first delta. A subscriber that falls ``limit`` events
behind loses its backlog (memory stays bounded): it receives an ``Overflow`` telling how
many events it lost, then a fresh snapshot, then deltas again.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncGenerator, Callable, Iterable

from frrdmvpn.api.tables import WATCHABLE, Kind, Store
from frrdmvpn.core.admission import Admission, Refusal, Ticket
from frrdmvpn.v1 import watch_service_pb2 as wpb

DEFAULT_LIMIT = 4096  # events a subscriber may be behind before it is resynchronised
# Concurrent streams (one more is refused: RESOURCE_EXHAUSTED): each client (a local user,
# a TCP client's certificate) may hold PER_CLIENT, all but root together MAX_SUBSCRIPTIONS;
# root has ROOT_SUBSCRIPTIONS of its own. One client can no longer take every slot.
MAX_SUBSCRIPTIONS = 64
PER_CLIENT = 8
ROOT_SUBSCRIPTIONS = 16
ROOT = "uid 0"

EventFilter = Callable[[wpb.WatchResponse], bool]


class TooManyWatchesError(RuntimeError):
    """The client, or all clients, hold every stream they may (the message says which)."""


class Subscription:
    """One watcher's queue."""

    def __init__(
        self, kinds: frozenset[Kind], limit: int, keep: EventFilter | None, snapshots: bool = True
    ) -> None:
        self.kinds = kinds
        self.limit = limit
        self.keep = keep
        self.snapshots = snapshots  # False: skip_snapshot (an overflow is then only noticed)
        self.queue: deque[wpb.WatchResponse] = deque()
        # a snapshot (or, without snapshots, an Overflow notice) owed before any delta
        self.resync: wpb.SnapshotReason.ValueType = (
            wpb.SNAPSHOT_REASON_INITIAL if snapshots else wpb.SNAPSHOT_REASON_UNSPECIFIED
        )
        self.lost = 0
        self.sent = 0  # the stream's last sequence number
        self.wake = asyncio.Event()
        self.ticket: Ticket | None = None  # its slot in the broker's admission

    def offer(self, event: wpb.WatchResponse) -> None:
        if _kind(event) not in self.kinds or (self.keep is not None and not self.keep(event)):
            return
        if self.resync:
            if not self.snapshots:  # no snapshot will carry it: count it as lost
                self.lost += 1
            return  # else the snapshot owed is built when sent: it includes this change
        if len(self.queue) >= self.limit:
            self.lost += len(self.queue) + 1
            self.queue.clear()
            self.resync = wpb.SNAPSHOT_REASON_OVERFLOW
        else:
            self.queue.append(event)
        self.wake.set()


def _kind(event: wpb.WatchResponse) -> Kind:
    return _FIELD_KINDS.get(event.WhichOneof("event") or "", wpb.EVENT_KIND_UNSPECIFIED)


_FIELD_KINDS: dict[str, Kind] = {
    "node": wpb.EVENT_KIND_NODE,
    "peer": wpb.EVENT_KIND_PEER,
    "ipsec_sa": wpb.EVENT_KIND_IPSEC_SA,
    "nhrp_cache": wpb.EVENT_KIND_NHRP_CACHE,
    "nhs": wpb.EVENT_KIND_NHS,
    "guard": wpb.EVENT_KIND_GUARD,
    "authorization": wpb.EVENT_KIND_AUTHORIZATION,
    "config": wpb.EVENT_KIND_CONFIG,
}


def kind_names(kinds: Iterable[Kind]) -> str:
    return ", ".join(
        wpb.EventKind.Name(k) if k in wpb.EventKind.values() else str(k) for k in sorted(kinds)
    )


class Broker:
    """Fans the store's events out to subscriptions."""

    def __init__(
        self,
        store: Store,
        limit: int = DEFAULT_LIMIT,
        max_subscriptions: int = MAX_SUBSCRIPTIONS,
        per_client: int = PER_CLIENT,
    ) -> None:
        self.store = store
        self.limit = limit
        self.admission = Admission(
            "Watch streams", per_client, max_subscriptions, {ROOT: ROOT_SUBSCRIPTIONS}
        )
        self.subscriptions: set[Subscription] = set()

    def publish(self, events: Iterable[wpb.WatchResponse]) -> None:
        """Called after the store has changed, with the events that change made."""
        for event in events:
            for sub in self.subscriptions:
                sub.offer(event)

    def subscribe(
        self,
        kinds: Iterable[Kind] = (),
        keep: EventFilter | None = None,
        snapshot: bool = True,
        principal: str = "unknown",
    ) -> Subscription:
        """Register now; ``kinds`` empty means every watchable kind. ValueError for a kind
        that cannot be watched, :class:`TooManyWatchesError` when ``principal`` (see
        :mod:`frrdmvpn.core.admission`) may not open one more."""
        wanted = frozenset(kinds) or WATCHABLE
        unknown = wanted - WATCHABLE
        if unknown:
            raise ValueError(
                f"kinds: cannot watch {kind_names(unknown)}; watchable kinds are "
                + kind_names(WATCHABLE)
            )
        ticket = self.admission.admit(principal)
        if isinstance(ticket, Refusal):
            raise TooManyWatchesError(f"{ticket.reason}: close one and watch again")
        sub = Subscription(wanted, self.limit, keep, snapshot)
        sub.ticket = ticket
        self.subscriptions.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self.subscriptions.discard(sub)
        if sub.ticket is not None:
            self.admission.release(sub.ticket)

    async def stream(
        self, sub: Subscription, heartbeat: float | None = None
    ) -> AsyncGenerator[wpb.WatchResponse, None]:
        """The subscription's events until the consumer stops iterating, numbered 1, 2...
        for this stream (markers and heartbeats included)."""
        try:
            while True:
                if sub.resync:
                    for event in self._resync(sub):
                        yield self._number(sub, event)
                    continue
                if sub.queue:
                    shared = sub.queue.popleft()  # other streams hold it too: number a copy
                    event = wpb.WatchResponse()
                    event.CopyFrom(shared)
                    yield self._number(sub, event)
                    continue
                sub.wake.clear()
                try:
                    await asyncio.wait_for(sub.wake.wait(), heartbeat)
                except TimeoutError:
                    yield self._number(
                        sub, self._marker(wpb.WatchResponse(heartbeat=wpb.Heartbeat()))
                    )
        finally:
            self.unsubscribe(sub)

    @staticmethod
    def _number(sub: Subscription, event: wpb.WatchResponse) -> wpb.WatchResponse:
        sub.sent += 1
        event.sequence = sub.sent
        return event

    def _resync(self, sub: Subscription) -> list[wpb.WatchResponse]:
        """Overflow notice (if any), then the snapshot (if wanted); the queue restarts
        empty. Built from the live state now, so nothing published before is missing."""
        reason, sub.resync = sub.resync, wpb.SNAPSHOT_REASON_UNSPECIFIED
        sub.queue.clear()
        out = []
        if reason == wpb.SNAPSHOT_REASON_OVERFLOW:
            overflow = wpb.Overflow(
                lost_events=sub.lost, queue_limit=sub.limit, snapshot_follows=sub.snapshots
            )
            out.append(self._marker(wpb.WatchResponse(overflow=overflow)))
            sub.lost = 0
        if not sub.snapshots:
            return out
        items = self.store.snapshot(sub.kinds)
        if sub.keep is not None:
            items = [e for e in items if sub.keep(e)]
        begin = wpb.SnapshotBegin(reason=reason, queue_limit=sub.limit)
        begin.kinds.extend(sorted(sub.kinds))
        out.append(self._marker(wpb.WatchResponse(snapshot_begin=begin, snapshot=True)))
        out.extend(items)
        end = wpb.SnapshotEnd(events=len(items))
        out.append(self._marker(wpb.WatchResponse(snapshot_end=end, snapshot=True)))
        return out

    def _marker(self, event: wpb.WatchResponse) -> wpb.WatchResponse:
        event.epoch = self.store.epoch
        event.time.FromNanoseconds(int(self.store.clock() * 1e9))
        return event
