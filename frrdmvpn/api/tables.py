"""The node's state as API messages, and the changes between two states. Pure: no I/O.

The service replaces a whole table (every peer, every NHRP entry...) after each observation;
:meth:`Store.replace` keeps the messages of items whose source did not change (comparing the
core's values, not serialised messages, so 10,000 unchanged peers cost 10,000 equality tests)
and returns one event per item added, changed or removed. One-shot events (an authorization
decision, a guard drop, a configuration change) go through :meth:`Store.record`.
"""

from __future__ import annotations

import functools
import ipaddress
import time
import uuid
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from google.protobuf.message import Message

from frrdmvpn.v1 import watch_service_pb2 as wpb

Kind: TypeAlias = wpb.EventKind.ValueType
Change: TypeAlias = wpb.ChangeType.ValueType

# The tables the store keeps, and the WatchResponse field each one's events go in.
TABLES: dict[Kind, str] = {
    wpb.EVENT_KIND_PEER: "peer",
    wpb.EVENT_KIND_IPSEC_SA: "ipsec_sa",
    wpb.EVENT_KIND_NHRP_CACHE: "nhrp_cache",
    wpb.EVENT_KIND_NHS: "nhs",
}
# Kinds that are one message, replaced whole (a snapshot holds the current one).
SINGLETONS: dict[Kind, str] = {
    wpb.EVENT_KIND_NODE: "node",
    wpb.EVENT_KIND_GUARD: "guard",
    wpb.EVENT_KIND_CONFIG: "config",
}
# Kinds that are a stream of facts (a snapshot holds the latest few).
JOURNALS: dict[Kind, str] = {wpb.EVENT_KIND_AUTHORIZATION: "authorization"}
WATCHABLE = frozenset(TABLES) | frozenset(SINGLETONS) | frozenset(JOURNALS)
JOURNAL_KEPT = 64  # decisions a snapshot replays


def kind_name(kind: Kind) -> str:
    """``EVENT_KIND_PEER`` -> ``peer`` (for messages)."""
    return str(wpb.EventKind.Name(kind)).removeprefix("EVENT_KIND_").lower()


@dataclass(frozen=True)
class Item:
    """One item of a table: its source value (compared with ``==``: no need to hash it)
    and a builder of its message."""

    source: object
    build: Callable[[], Message]


_FORGOTTEN = object()  # a source equal to no observation's


@dataclass
class _Entry:
    source: object
    message: Message


@dataclass
class Store:
    """Current messages per kind, a sequence number and the daemon's epoch."""

    epoch: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    sequence: int = 0
    clock: Callable[[], float] = time.time
    tables: dict[Kind, dict[Hashable, _Entry]] = field(
        default_factory=lambda: {k: {} for k in TABLES}
    )
    singletons: dict[Kind, Message] = field(default_factory=dict)
    journals: dict[Kind, list[Message]] = field(default_factory=lambda: {k: [] for k in JOURNALS})
    # each table's keys in order, kept until a key comes or goes (ListPeers sorts no more)
    _sorted: dict[Kind, list[Hashable]] = field(default_factory=dict, repr=False)

    def keys(self, kind: Kind) -> list[Hashable]:
        """The keys of one table, in order (see :func:`_order`)."""
        keys = self._sorted.get(kind)
        if keys is None:
            keys = self._sorted[kind] = sorted(self.tables[kind], key=_order)
        return keys

    def items(self, kind: Kind) -> list[Message]:
        """The current messages of one table, in key order."""
        table = self.tables[kind]
        return [table[k].message for k in self.keys(kind)]

    def get(self, kind: Kind, key: Hashable) -> Message | None:
        entry = self.tables[kind].get(key)
        return None if entry is None else entry.message

    def singleton(self, kind: Kind) -> Message | None:
        return self.singletons.get(kind)

    def journal(self, kind: Kind) -> list[Message]:
        return list(self.journals[kind])

    def _event(
        self, kind: Kind, payload: Message, snapshot: bool = False, at: float | None = None
    ) -> wpb.WatchResponse:
        out = wpb.WatchResponse(sequence=self.sequence, epoch=self.epoch, snapshot=snapshot)
        out.time.FromNanoseconds(int((self.clock() if at is None else at) * 1e9))
        name = TABLES.get(kind) or SINGLETONS.get(kind) or JOURNALS[kind]
        getattr(out, name).CopyFrom(payload)
        return out

    def _item_event(
        self,
        kind: Kind,
        change: Change,
        message: Any,
        previous: Any = None,
        *,
        snapshot: bool = False,
        at: float | None = None,
    ) -> wpb.WatchResponse:
        """A table item's event, its message copied once (into the event)."""
        out = wpb.WatchResponse(sequence=self.sequence, epoch=self.epoch, snapshot=snapshot)
        out.time.FromNanoseconds(int((self.clock() if at is None else at) * 1e9))
        fill(out, kind, change, message, previous)
        return out

    def replace(self, kind: Kind, items: Mapping[Hashable, Item]) -> list[wpb.WatchResponse]:
        """Make ``items`` the table's content; one event per difference (removed items are
        announced with their last message; a peer whose state changed carries the
        transition). Removals come first, then additions and updates, each in key order."""
        sources = {key: item.source for key, item in items.items()}
        return self.replace_from(kind, sources, lambda key: items[key].build())

    def replace_from(
        self, kind: Kind, sources: Mapping[Hashable, object], build: Callable[[Any], Message]
    ) -> list[wpb.WatchResponse]:
        """:meth:`replace` without an :class:`Item` per item: ``build(key)`` makes the
        message of a key whose source is new or changed (10,000 unchanged peers cost
        10,000 comparisons and no allocation)."""
        table = self.tables[kind]
        removed = sorted(table.keys() - sources.keys(), key=_order)
        changed: list[tuple[Hashable, Any, _Entry | None]] = []
        for key, source in sources.items():
            entry = table.get(key)
            if entry is not None and entry.source == source:
                continue
            message = build(key)
            if entry is not None and entry.message == message:
                entry.source = source  # a source change the API does not show
                continue
            changed.append((key, (source, message), entry))
        if not removed and not changed:
            return []
        events: list[wpb.WatchResponse] = []
        at = self.clock()
        for key in removed:
            old = table.pop(key)
            self.sequence += 1
            events.append(self._item_event(kind, wpb.CHANGE_TYPE_REMOVED, old.message, at=at))
        changed.sort(key=lambda c: _order(c[0]))
        added = bool(removed)
        for key, (source, message), entry in changed:
            table[key] = _Entry(source, message)
            self.sequence += 1
            if entry is None:
                added = True
                events.append(self._item_event(kind, wpb.CHANGE_TYPE_ADDED, message, at=at))
            else:
                events.append(
                    self._item_event(kind, wpb.CHANGE_TYPE_UPDATED, message, entry.message, at=at)
                )
        if added:
            self._sorted.pop(kind, None)
        return events

    def override(self, kind: Kind, key: Hashable, message: Message) -> list[wpb.WatchResponse]:
        """Replace one item's message ahead of the next observation (a fact an event told:
        charon deleted the peer's SA). The item's source is forgotten, so the next
        :meth:`replace` rebuilds it and announces whatever the observation says then."""
        entry = self.tables[kind].get(key)
        if entry is None or entry.message == message:
            return []
        previous, entry.message, entry.source = entry.message, message, _FORGOTTEN
        self.sequence += 1
        return [self._item_event(kind, wpb.CHANGE_TYPE_UPDATED, message, previous, at=self.clock())]

    def set_singleton(self, kind: Kind, message: Message) -> list[wpb.WatchResponse]:
        """Replace a singleton; an event only if it changed."""
        if self.singletons.get(kind) == message:
            return []
        self.singletons[kind] = message
        self.sequence += 1
        return [self._event(kind, _singleton_payload(kind, message))]

    def record(self, kind: Kind, payload: Message) -> list[wpb.WatchResponse]:
        """A one-shot event (kept in the journal of its kind when it has one). For a
        singleton kind (CONFIG) the event also becomes the current one a snapshot shows."""
        if kind in self.journals:
            journal = self.journals[kind]
            journal.append(payload)
            del journal[:-JOURNAL_KEPT]
        elif kind == wpb.EVENT_KIND_CONFIG:
            self.singletons[kind] = payload
        self.sequence += 1
        return [self._event(kind, payload)]

    def snapshot(self, kinds: Iterable[Kind]) -> list[wpb.WatchResponse]:
        """Every current item of ``kinds`` as ADDED events marked ``snapshot``; singletons
        as their current message. Journal kinds (authorization decisions) are history, not
        state: a snapshot holds none of them (ListAuthorizationDecisions has them)."""
        out: list[wpb.WatchResponse] = []
        at = self.clock()
        for kind in sorted(set(kinds)):
            if kind in TABLES:
                added = wpb.CHANGE_TYPE_ADDED
                out.extend(
                    self._item_event(kind, added, m, snapshot=True, at=at) for m in self.items(kind)
                )
            elif kind in SINGLETONS and kind in self.singletons:
                payload = _singleton_payload(kind, self.singletons[kind], current=True)
                out.append(self._event(kind, payload, True, at))
        return out


def fill(out: wpb.WatchResponse, kind: Kind, change: Change, message: Any, previous: Any) -> None:
    """Put a table item's message in ``out`` as the event of its kind."""
    if kind == wpb.EVENT_KIND_PEER:
        event = out.peer
        event.change = change
        event.peer.CopyFrom(message)
        if previous is not None and previous.state != message.state:
            t = event.transition
            t.from_state, t.to_state, t.reason = previous.state, message.state, message.state_reason
            t.at.CopyFrom(message.state_since)
    elif kind == wpb.EVENT_KIND_NHRP_CACHE:
        out.nhrp_cache.change = change
        out.nhrp_cache.entry.CopyFrom(message)
    elif kind == wpb.EVENT_KIND_NHS:
        out.nhs.change = change
        out.nhs.nhs.CopyFrom(message)
    else:  # IPSEC_SA: the table holds the events themselves
        out.ipsec_sa.CopyFrom(message)
        out.ipsec_sa.change = change


def wrap(kind: Kind, change: Change, message: Any, previous: Any = None) -> Message:
    """A table item's message as the payload of its event."""
    out = wpb.WatchResponse()
    fill(out, kind, change, message, previous)
    payload: Message = getattr(out, TABLES[kind])
    return payload


def _singleton_payload(kind: Kind, message: Any, current: bool = False) -> Message:
    if kind == wpb.EVENT_KIND_NODE:
        return wpb.NodeEvent(node=message)
    if kind == wpb.EVENT_KIND_GUARD:
        return wpb.GuardEvent(status=message)
    assert isinstance(message, wpb.ConfigEvent)  # stored as such
    if current:  # the standing, not the last change
        return wpb.ConfigEvent(type=wpb.CONFIG_EVENT_TYPE_CURRENT, status=message.status)
    return message


def _order(key: Any) -> tuple[str, ...]:
    """Keys are tuples of addresses, names and ids: order them as text that sorts as they
    do (10.0.0.9 before 10.0.0.10, unique id 9 before 10), stably. For addresses this is
    the order of ``frrdmvpn.api.request_rules.sortable`` too (ListPeers pages by it)."""
    if isinstance(key, tuple):
        return tuple(_pad(k) for k in key)
    return (_pad(key),)


def _pad(value: object) -> str:
    if isinstance(value, int):  # charon's unique ids
        return f"{value:020d}"
    return _padded_text(str(value))


@functools.lru_cache(maxsize=65536)
def _padded_text(text: str) -> str:
    try:  # an address: its bytes in hex, IPv4 before IPv6
        return ipaddress.ip_address(text).packed.hex().rjust(32, "0")
    except ValueError:
        return text
