"""charon's SAs as its events tell them: the table the proxy authorizes from without asking
charon (issue 17). Pure: :mod:`frrdmvpn.adapters.sa_feed` moves charon's messages in and
says when the event connection opened or closed and when a full listing ran.

*In sync* means: charon confirmed the event registrations, then the latest ``list-sas``
started after that was read, and every event since has been applied. Events read while a
listing runs are applied to the table at once and again over the listing when it comes, in
order: charon sends one SA's events in the order they happened, so the replay ends at the
newest state whatever instant the listing caught. A closed event connection, or an event the
table cannot read, leaves it out of sync until the next listing; a listing taken while in
sync is an audit, and what it finds different, unless an event about the same SA explains
it before the adapter asks (:meth:`SaTable.drift`), is :class:`Drift`.

charon reports no event when an SA only changes state in place (REKEYING, a rekeyed SA
lingering until deleted, a half-open IKE_SA, an SA whose delete exchange has begun): the
table keeps the state of the SA's latest event, listings leave SAs that are not up or on
their way out aside, and audits compare what the SAs are, not their states.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from frrdmvpn.codec.nhrp_events import IPAddress
from frrdmvpn.codec.vici import Message, ViciWireError, text, texts
from frrdmvpn.core.authorize import ChildSa
from frrdmvpn.core.supervisor import IkeSa

# What the table listens to; ike-update: an IKE_SA's endpoints change (MOBIKE, NAT).
EVENTS = ("ike-updown", "child-updown", "ike-rekey", "child-rekey", "ike-update")
# How many differences a drift report names before it summarises.
MAX_NAMED = 8
# States an SA is listed in on its way out, or before it is up: charon may send no event
# for them (a rekeyed CHILD_SA is replaced by child-rekey, a half-open IKE_SA never came
# up), so a listing does not put them in the table, and an audit does not call a held SA
# that charon lists in one of them stale: its down event is on the way.
LEAVING_CHILD = frozenset({"REKEYED", "DELETING", "DELETED", "DESTROYING"})
UP_IKE = frozenset({"ESTABLISHED", "REKEYING", "PASSIVE"})

_K = TypeVar("_K")


def child_sa(ike_name: str, ike: Message, child: Message) -> ChildSa:
    """One CHILD_SA of a ``list-sa`` or event section (ValueError, ViciWireError: unreadable)."""
    return ChildSa(
        ike_name=ike_name,
        ike_uniqueid=int(text(ike.get("uniqueid"))),
        child_uniqueid=int(text(child.get("uniqueid"))),
        local_host=ipaddress.ip_address(text(ike.get("local-host"))),
        remote_host=ipaddress.ip_address(text(ike.get("remote-host"))),
        local_id=text(ike.get("local-id"), ""),
        remote_id=text(ike.get("remote-id"), ""),
        state=text(child.get("state"), ""),
        mode=text(child.get("mode"), ""),
        protocol=text(child.get("protocol"), ""),
        local_ts=tuple(texts(child.get("local-ts"))),
        remote_ts=tuple(texts(child.get("remote-ts"))),
        spi_in=int(text(child.get("spi-in"), "0"), 16),
        spi_out=int(text(child.get("spi-out"), "0"), 16),
    )


def _ike(ike: Message) -> IkeSa:
    return IkeSa(
        uniqueid=int(text(ike.get("uniqueid"))),
        local_host=ipaddress.ip_address(text(ike.get("local-host"))),
        remote_host=ipaddress.ip_address(text(ike.get("remote-host"))),
        state=text(ike.get("state"), ""),
    )


def _sections(msg: Message) -> Iterator[tuple[str, Message]]:
    """The IKE_SA sections of a ``list-sa`` or event message (``up=yes`` is no section)."""
    for name, value in msg.items():
        if isinstance(value, dict):
            yield name, value


def _children(ike: Message) -> Iterator[Message]:
    children = ike.get("child-sas")
    if isinstance(children, dict):
        for child in children.values():
            if isinstance(child, dict):
                yield child


def child_sas_from_list_sa(msg: Message) -> list[ChildSa]:
    """Flatten one ``list-sa`` event (one IKE_SA) into its CHILD_SAs."""
    return [child_sa(name, ike, child) for name, ike in _sections(msg) for child in _children(ike)]


def ike_sas_from_list_sa(msg: Message) -> list[IkeSa]:
    """The IKE_SA(s) of one ``list-sa`` event."""
    return [_ike(ike) for _, ike in _sections(msg)]


def _pair(a: IPAddress, b: IPAddress) -> frozenset[IPAddress]:
    return frozenset((a, b))


def _unindex(index: dict[_K, set[int]], key: _K, uniqueid: int) -> None:
    ids = index[key]
    ids.discard(uniqueid)
    if not ids:
        del index[key]


@dataclass(frozen=True)
class Drift:
    """What an audit's listing showed differently from the table: SAs charon holds that the
    table lacked, SAs the table held that charon does not, and SAs that differ."""

    missing: tuple[str, ...] = ()
    stale: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.missing or self.stale or self.changed)

    def summary(self) -> str:
        parts = []
        for what, items in (
            ("missing", self.missing),
            ("stale", self.stale),
            ("changed", self.changed),
        ):
            if items:
                named = ", ".join(items[:MAX_NAMED])
                more = f" and {len(items) - MAX_NAMED} more" if len(items) > MAX_NAMED else ""
                parts.append(f"{what} {named}{more}")
        return "; ".join(parts) or "none"


def _differences(held: ChildSa | IkeSa, listed: ChildSa | IkeSa) -> list[str]:
    """The fields (but the state, which moves without an event) in which two reports of
    one SA differ, each as ``field: held -> listed``."""
    return [
        f"{f.name}: {getattr(held, f.name)!s} -> {getattr(listed, f.name)!s}"
        for f in dataclasses.fields(held)
        if f.name != "state" and getattr(held, f.name) != getattr(listed, f.name)
    ]


class _Sas:
    """CHILD_SAs by unique id, indexed by NBMA pair, and IKE_SAs by unique id."""

    def __init__(self) -> None:
        self.children: dict[int, ChildSa] = {}
        self.ikes: dict[int, IkeSa] = {}
        self.pairs: dict[frozenset[IPAddress], set[int]] = {}
        self.by_ike: dict[int, set[int]] = {}

    def put_child(self, sa: ChildSa) -> None:
        self.drop_child(sa.child_uniqueid)
        self.children[sa.child_uniqueid] = sa
        self.pairs.setdefault(_pair(sa.local_host, sa.remote_host), set()).add(sa.child_uniqueid)
        self.by_ike.setdefault(sa.ike_uniqueid, set()).add(sa.child_uniqueid)

    def drop_child(self, uniqueid: int) -> None:
        old = self.children.pop(uniqueid, None)
        if old is not None:
            _unindex(self.pairs, _pair(old.local_host, old.remote_host), uniqueid)
            _unindex(self.by_ike, old.ike_uniqueid, uniqueid)

    def of_ike(self, uniqueid: int) -> list[ChildSa]:
        return [self.children[i] for i in sorted(self.by_ike.get(uniqueid, ()))]

    def drop_ike(self, uniqueid: int) -> None:
        self.ikes.pop(uniqueid, None)
        for sa in self.of_ike(uniqueid):
            self.drop_child(sa.child_uniqueid)

    def put_listed(self, msg: Message, leaving: set[str] | None = None) -> None:
        """An IKE_SA as a ``list-sa`` or an up event shows it, with its CHILD_SAs, leaving
        out SAs not up or on their way out (their labels go to ``leaving``)."""
        for name, ike in _sections(msg):
            sa = _ike(ike)
            out = leaving if leaving is not None else set()
            if sa.state not in UP_IKE:
                out.add(f"IKE_SA #{sa.uniqueid}")
                out.update(child_sa(name, ike, c).label for c in _children(ike))
                continue
            self.ikes[sa.uniqueid] = sa
            for child in _children(ike):
                listed = child_sa(name, ike, child)
                if listed.state in LEAVING_CHILD:
                    out.add(listed.label)
                else:
                    self.put_child(listed)

    def apply(self, name: str, msg: Message) -> None:
        """One of charon's :data:`EVENTS`; ViciWireError/ValueError if it cannot be read."""
        up = msg.get("up") == b"yes"
        for ike_name, ike in _sections(msg):
            if name == "ike-rekey":
                self._rekey_ike(ike_name, ike)
                continue
            ike_id = int(text(ike.get("uniqueid")))
            if name == "ike-updown":
                if up:
                    self.put_listed({ike_name: ike})
                else:
                    self.drop_ike(ike_id)
            elif name == "child-updown":
                if up or ike_id in self.ikes:  # a down may follow its IKE_SA's
                    self.ikes[ike_id] = _ike(ike)
                for child in _children(ike):
                    sa = child_sa(ike_name, ike, child)
                    if up:
                        self.put_child(sa)
                    else:
                        self.drop_child(sa.child_uniqueid)
            elif name == "child-rekey":
                self.ikes[ike_id] = _ike(ike)
                for rekey in _children(ike):
                    old, new = rekey.get("old"), rekey.get("new")
                    if isinstance(old, dict):
                        self.drop_child(child_sa(ike_name, ike, old).child_uniqueid)
                    if isinstance(new, dict):
                        self.put_child(child_sa(ike_name, ike, new))
            elif name == "ike-update":
                self._update_ike(ike_id, ike, msg)
            else:
                raise ValueError(f"not an SA event: {name!r}")

    def _rekey_ike(self, ike_name: str, sections: Message) -> None:
        """The CHILD_SAs of the old IKE_SA now belong to the new one (charon moves them)."""
        old, new = sections.get("old"), sections.get("new")
        if not isinstance(old, dict) or not isinstance(new, dict):
            raise ViciWireError("ike-rekey without its old and new IKE_SA")
        old_id = int(text(old.get("uniqueid")))
        moved = self.of_ike(old_id)
        self.drop_ike(old_id)
        self.put_listed({ike_name: new})
        new_ike = _ike(new)
        for sa in moved:
            if sa.child_uniqueid not in self.children:
                self.put_child(
                    dataclasses.replace(
                        sa,
                        ike_uniqueid=new_ike.uniqueid,
                        local_host=new_ike.local_host,
                        remote_host=new_ike.remote_host,
                    )
                )

    def _update_ike(self, ike_id: int, ike: Message, msg: Message) -> None:
        """The IKE_SA's endpoints are about to change: to the ``local-host`` and
        ``remote-host`` at the top of the event (its section still shows the old ones)."""
        local = ipaddress.ip_address(text(msg.get("local-host"), text(ike.get("local-host"))))
        remote = ipaddress.ip_address(text(msg.get("remote-host"), text(ike.get("remote-host"))))
        if ike_id in self.ikes:
            self.ikes[ike_id] = dataclasses.replace(
                self.ikes[ike_id], local_host=local, remote_host=remote
            )
        for sa in self.of_ike(ike_id):
            self.put_child(dataclasses.replace(sa, local_host=local, remote_host=remote))


class SaTable:
    """charon's IKE_SAs and CHILD_SAs, kept from its events (module docstring)."""

    def __init__(self) -> None:
        self._sas = _Sas()
        self._connected = False
        self._synced = False
        self._generation = 0
        self._replay: list[tuple[str, Message]] | None = None
        self._suspects: dict[tuple[str, int], _Suspect] = {}

    @property
    def in_sync(self) -> bool:
        """Every SA charon holds is here as its latest event showed it."""
        return self._connected and self._synced

    def opened(self) -> None:
        """charon confirmed every registration of :data:`EVENTS`; a listing must follow."""
        self._reset(connected=True)

    def closed(self) -> None:
        """The event connection ended: events may be missed from now on."""
        self._reset(connected=False)

    def out_of_sync(self) -> None:
        """Something went wrong beside the table (the adapter's): wait for a listing."""
        self._synced = False

    def _reset(self, connected: bool) -> None:
        self._connected, self._synced = connected, False
        self._generation += 1  # a listing started before is of no use any more
        self._replay = None
        self._suspects = {}

    def listing_started(self) -> int:
        """A ``list-sas`` is about to be sent; events from now on are kept for replay.
        Returns the listing's number, for :meth:`listed`: only the latest counts."""
        self._generation += 1
        self._replay = []
        return self._generation

    def listing_failed(self, generation: int) -> None:
        """Listing ``generation`` never came; an audit's failure leaves the table in sync."""
        if generation == self._generation:
            self._replay = None

    def event(self, name: str, msg: Message) -> str | None:
        """Apply one of charon's events; why it could not be read (the table is then out of
        sync until the next listing), else None."""
        if self._replay is not None:
            self._replay.append((name, msg))
        if self._suspects:
            self._clear_suspects(*_touched(name, msg))
        try:
            self._sas.apply(name, msg)
        except (ViciWireError, ValueError, KeyError, TypeError) as exc:
            self._synced = False
            return f"unreadable {name} event from charon: {exc}"
        return None

    def listed(self, generation: int, messages: Iterable[Message]) -> str | None:
        """The ``list-sa`` messages of listing ``generation`` (ignored unless it is the one
        started last and the event connection held since). The table becomes the listing
        with the events since replayed over it, in sync; where it differs from the table
        that was in sync (an audit), the differences become suspects of :meth:`drift`.
        Returns why the listing could not be read, else None."""
        if generation != self._generation or self._replay is None:
            return None
        replay, self._replay = self._replay, None
        was_synced = self.in_sync
        fresh, leaving = _Sas(), set[str]()
        what = "list-sas"
        try:
            for msg in messages:
                fresh.put_listed(msg, leaving)
            for name, msg in replay:
                what = f"{name} event replayed over the listing"
                fresh.apply(name, msg)
        except (ViciWireError, ValueError, KeyError, TypeError) as exc:
            self._synced = False
            return f"unreadable {what} from charon: {exc}"
        self._suspects = _compare(self._sas, fresh, leaving) if was_synced else {}
        self._sas = fresh
        self._synced = self._connected
        return None

    def drift(self) -> Drift:
        """What the last audit found different and no event has touched since: an event
        charon sent before that listing may arrive after it, so the adapter asks a moment
        later. Each difference is reported once."""
        found, self._suspects = self._suspects, {}
        by_kind: dict[str, list[str]] = {"missing": [], "stale": [], "changed": []}
        for suspect in sorted(found.values(), key=lambda s: s.label):
            by_kind[suspect.kind].append(suspect.label)
        return Drift(tuple(by_kind["missing"]), tuple(by_kind["stale"]), tuple(by_kind["changed"]))

    def _clear_suspects(self, touched: set[tuple[str, int]], whole: set[int]) -> None:
        for key, suspect in list(self._suspects.items()):
            if key in touched or suspect.ike in whole:
                del self._suspects[key]

    def between(self, local: IPAddress, remote: IPAddress) -> list[ChildSa]:
        """The CHILD_SAs between two NBMA addresses (either direction), oldest first."""
        ids = self._sas.pairs.get(_pair(local, remote), ())
        return [self._sas.children[i] for i in sorted(ids)]

    def children(self) -> list[ChildSa]:
        return [self._sas.children[i] for i in sorted(self._sas.children)]

    def ikes(self) -> list[IkeSa]:
        return [self._sas.ikes[i] for i in sorted(self._sas.ikes)]


@dataclass(frozen=True)
class _Suspect:
    kind: str  # missing, stale or changed
    label: str
    ike: int  # the IKE_SA it belongs to (an event about it may explain the difference)


def _uniqueid(value: object) -> int | None:
    if isinstance(value, bytes) and value.isdigit():
        return int(value)
    return None


def _touched(name: str, msg: Message) -> tuple[set[tuple[str, int]], set[int]]:
    """The IKE_SAs and CHILD_SAs an event names (old and new ones of a rekey too), and the
    IKE_SAs it concerns as a whole with their CHILD_SAs (ike-updown, ike-rekey, ike-update:
    a child event carries its IKE_SA's section but says nothing of its other CHILD_SAs)."""
    out: set[tuple[str, int]] = set()

    def add(kind: str, section: object) -> None:
        if isinstance(section, dict) and (i := _uniqueid(section.get("uniqueid"))) is not None:
            out.add((kind, i))

    for _, section in _sections(msg):
        for ike in (section, section.get("old"), section.get("new")):
            add("ike", ike)
            if isinstance(ike, dict):
                for child in _children(ike):
                    for part in (child, child.get("old"), child.get("new")):
                        add("child", part)
    whole = {i for kind, i in out if kind == "ike"} if name.startswith("ike-") else set()
    return out, whole


def _compare(held: _Sas, listed: _Sas, leaving: set[str]) -> dict[tuple[str, int], _Suspect]:
    """The differences between the table and a listing (replayed), keyed by SA."""
    out: dict[tuple[str, int], _Suspect] = {}
    for i, sa in listed.children.items():
        if i not in held.children:
            out[("child", i)] = _Suspect("missing", sa.label, sa.ike_uniqueid)
        elif diff := _differences(held.children[i], sa):
            out[("child", i)] = _Suspect(
                "changed", f"{sa.label} [{'; '.join(diff)}]", sa.ike_uniqueid
            )
    for i, sa in held.children.items():
        if i not in listed.children and sa.label not in leaving:
            out[("child", i)] = _Suspect("stale", sa.label, sa.ike_uniqueid)
    for i, ike in listed.ikes.items():
        if i not in held.ikes:
            out[("ike", i)] = _Suspect("missing", f"IKE_SA #{i}", i)
        elif diff := _differences(held.ikes[i], ike):
            out[("ike", i)] = _Suspect("changed", f"IKE_SA #{i} [{'; '.join(diff)}]", i)
    for i in held.ikes:
        if i not in listed.ikes and f"IKE_SA #{i}" not in leaving:
            out[("ike", i)] = _Suspect("stale", f"IKE_SA #{i}", i)
    return out
