"""The SA table kept from charon's events (frrdmvpn/core/sa_table.py).

A model charon (below) holds IKE_SAs and CHILD_SAs, changes them as charon does and emits
the events charon's vici plugin sends for each change, in its format (the reference's VICI
facts: ``up=yes`` only on up events; ike-updown, ike-rekey and ike-update carry the IKE_SA
alone, child-updown the IKE_SA with the one CHILD_SA, child-rekey old/new CHILD_SAs); some
changes emit no event at all (a CHILD_SA REKEYING, a rekeyed SA lingering until deleted, a
half-open IKE_SA appearing and vanishing, an SA charon is deleting, whose down event comes
when the delete exchange ends). Events are delivered late, in order, as a socket does;
listings start, catch the model at a later instant and are read later still, several at
once, as ``list-sas`` on another connection does; the event connection breaks and comes
back. Whenever every event sent has been read and the table says it is in sync, it holds
every SA that is up and nothing but those and the ones charon is deleting; an audit then
reports no drift.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from frrdmvpn.codec.vici import Message
from frrdmvpn.core.authorize import ChildSa
from frrdmvpn.core.sa_table import SaTable, child_sas_from_list_sa

pytestmark = pytest.mark.unit
ip = ipaddress.ip_address
HUB = "198.51.100.1"
PEERS = ("198.51.100.11", "198.51.100.12", "198.51.100.13", "203.0.113.7")


@dataclass
class Child:
    uniqueid: int
    state: str = "INSTALLED"
    spi: int = 0

    def section(self) -> Message:
        return {
            "name": b"dmvpn",
            "uniqueid": str(self.uniqueid).encode(),
            "state": self.state.encode(),
            "mode": b"TRANSPORT",
            "protocol": b"ESP",
            "spi-in": f"{0xC0000000 + self.spi:08x}".encode(),
            "spi-out": f"{0xC1000000 + self.spi:08x}".encode(),
            "local-ts": [f"{HUB}/32[gre]".encode()],
            "remote-ts": [b"0.0.0.0/0[gre]"],
        }


@dataclass
class Ike:
    uniqueid: int
    remote: str
    state: str = "ESTABLISHED"
    children: dict[int, Child] = field(default_factory=dict)
    identity: str = ""

    def __post_init__(self) -> None:
        self.identity = self.identity or f"spoke-{self.remote}"  # kept when it moves

    def section(self) -> Message:
        """The IKE_SA alone, as ike-updown, ike-rekey and ike-update carry it."""
        return {
            "uniqueid": str(self.uniqueid).encode(),
            "state": self.state.encode(),
            "local-host": HUB.encode(),
            "remote-host": self.remote.encode(),
            "local-id": HUB.encode(),
            "remote-id": self.identity.encode(),
        }

    def listed(self, children: list[Child] | None = None) -> Message:
        """With CHILD_SAs, as list-sa (all of them) and child-updown (the one) carry it."""
        shown = list(self.children.values()) if children is None else children
        section = self.section()
        section["child-sas"] = {f"dmvpn-{c.uniqueid}": c.section() for c in shown}
        return section


class Charon:
    """Enough of charon's SA handling to emit its events; the ids only grow, as charon's."""

    def __init__(self) -> None:
        self.ikes: dict[int, Ike] = {}
        self.next_id = 1
        self.sent: list[tuple[str, Message]] = []  # in flight, oldest first

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def _emit(self, name: str, msg: Message) -> None:
        self.sent.append((name, msg))

    def _pick(self, n: int, states: tuple[str, ...] = ("ESTABLISHED",)) -> Ike | None:
        ikes = [i for i in self.ikes.values() if i.state in states]
        return ikes[n % len(ikes)] if ikes else None

    def _child(
        self, n: int, states: tuple[str, ...] = ("INSTALLED", "REKEYING")
    ) -> tuple[Ike, Child] | None:
        pairs = [
            (i, c)
            for i in self.ikes.values()
            if i.state == "ESTABLISHED"
            for c in i.children.values()
            if c.state in states
        ]
        return pairs[n % len(pairs)] if pairs else None

    def establish(self, n: int, child_first: bool) -> None:
        ike = Ike(self._id(), PEERS[n % len(PEERS)])
        self.ikes[ike.uniqueid] = ike
        child = Child(self._id(), spi=n)
        ike.children[child.uniqueid] = child
        child_up: tuple[str, Message] = (
            "child-updown",
            {"dmvpn": ike.listed([child]), "up": b"yes"},
        )
        ike_up: tuple[str, Message] = ("ike-updown", {"dmvpn": ike.section(), "up": b"yes"})
        for name, msg in (child_up, ike_up) if child_first else (ike_up, child_up):
            self._emit(name, msg)

    def half_open(self, n: int) -> None:
        """A responder's IKE_SA that has not authenticated yet: listed, no event."""
        ike = Ike(self._id(), PEERS[n % len(PEERS)], state="CONNECTING")
        self.ikes[ike.uniqueid] = ike

    def half_open_fails(self, n: int) -> None:
        ike = self._pick(n, ("CONNECTING",))
        if ike is not None:
            del self.ikes[ike.uniqueid]

    def half_open_up(self, n: int) -> None:
        ike = self._pick(n, ("CONNECTING",))
        if ike is not None:
            ike.state = "ESTABLISHED"
            self._emit("ike-updown", {"dmvpn": ike.section(), "up": b"yes"})

    def add_child(self, n: int) -> None:
        ike = self._pick(n)
        if ike is not None:
            child = Child(self._id(), spi=n)
            ike.children[child.uniqueid] = child
            self._emit("child-updown", {"dmvpn": ike.listed([child]), "up": b"yes"})

    def begin_delete_child(self, n: int) -> None:
        """charon starts a delete exchange: DELETING, no event until it ends."""
        found = self._child(n)
        if found is not None:
            found[1].state = "DELETING"

    def end_delete_child(self, n: int) -> None:
        found = self._child(n, ("DELETING",))
        if found is not None:
            ike, child = found
            self._emit("child-updown", {"dmvpn": ike.listed([child])})
            del ike.children[child.uniqueid]

    def flip_rekeying(self, n: int) -> None:
        """A CHILD_SA's rekey starts or is abandoned: charon reports no event."""
        found = self._child(n)
        if found is not None:
            child = found[1]
            child.state = "REKEYING" if child.state == "INSTALLED" else "INSTALLED"

    def rekey_child(self, n: int) -> None:
        found = self._child(n)
        if found is not None:
            ike, old = found
            old.state = "REKEYED"  # lingers, listed, until finish() deletes it silently
            new = Child(self._id(), spi=old.spi + 100)
            ike.children[new.uniqueid] = new
            section = ike.section()
            section["child-sas"] = {"dmvpn": {"old": old.section(), "new": new.section()}}
            self._emit("child-rekey", {"dmvpn": section})

    def rekey_ike(self, n: int) -> None:
        """The CHILD_SAs move to the new IKE_SA; the event names neither's CHILD_SAs."""
        old = self._pick(n)
        if old is not None:
            new = Ike(self._id(), old.remote, children=old.children, identity=old.identity)
            old.children = {}
            old.state = "REKEYED"  # lingers without CHILD_SAs until finish()
            self.ikes[new.uniqueid] = new
            self._emit("ike-rekey", {"dmvpn": {"old": old.section(), "new": new.section()}})

    def finish(self) -> None:
        """Rekeyed SAs are deleted: no event (their replacements were reported)."""
        for ike in list(self.ikes.values()):
            if ike.state == "REKEYED":
                del self.ikes[ike.uniqueid]
            else:
                for child in list(ike.children.values()):
                    if child.state == "REKEYED":
                        del ike.children[child.uniqueid]

    def begin_delete_ike(self, n: int) -> None:
        ike = self._pick(n)
        if ike is not None:
            ike.state = "DELETING"

    def end_delete_ike(self, n: int) -> None:
        ike = self._pick(n, ("DELETING",))
        if ike is not None:
            self._emit("ike-updown", {"dmvpn": ike.section()})
            del self.ikes[ike.uniqueid]

    def move(self, n: int) -> None:
        """The peer's address changes (NAT, MOBIKE): ike-update names the new endpoints at
        its top, the IKE_SA's section still the old ones."""
        ike = self._pick(n)
        if ike is not None:
            moved = f"192.0.2.{100 + n % 50}"
            update: Message = {
                "local-host": HUB.encode(),
                "local-port": b"4500",
                "remote-host": moved.encode(),
                "remote-port": b"4500",
                "dmvpn": ike.section(),
            }
            self._emit("ike-update", update)
            ike.remote = moved

    def listing(self) -> list[Message]:
        return [{"dmvpn": ike.listed()} for ike in self.ikes.values()]

    def _children_of(self, ike_states: tuple[str, ...], child_states: tuple[str, ...]) -> set[Row]:
        return {
            (c.uniqueid, ike.uniqueid, ike.remote, ike.identity)
            for ike in self.ikes.values()
            if ike.state in ike_states
            for c in ike.children.values()
            if c.state in child_states
        }

    def live(self) -> set[Row]:
        """What is up: (CHILD_SA, IKE_SA, remote host, remote identity)."""
        return self._children_of(("ESTABLISHED",), ("INSTALLED", "REKEYING"))

    def leaving(self) -> set[Row]:
        """What charon is deleting: may still be held until its down event."""
        return self._children_of(("ESTABLISHED",), ("DELETING",)) | self._children_of(
            ("DELETING",), ("INSTALLED", "REKEYING", "DELETING")
        )

    def ike_ids(self, *states: str) -> set[int]:
        return {i.uniqueid for i in self.ikes.values() if i.state in states}


Row = tuple[int, int, str, str]


def held(table: SaTable) -> set[Row]:
    return {
        (sa.child_uniqueid, sa.ike_uniqueid, str(sa.remote_host), sa.remote_id)
        for sa in table.children()
    }


CHANGES = st.sampled_from(
    [
        "establish",
        "establish",
        "add_child",
        "begin_delete_child",
        "end_delete_child",
        "flip_rekeying",
        "rekey_child",
        "rekey_ike",
        "finish",
        "begin_delete_ike",
        "end_delete_ike",
        "move",
        "half_open",
        "half_open_fails",
        "half_open_up",
    ]
)
HARNESS = st.sampled_from(["deliver", "deliver", "start", "snapshot", "read", "reconnect"])
STEPS = st.lists(
    st.one_of(
        st.tuples(CHANGES, st.integers(0, 7), st.booleans()),
        st.tuples(HARNESS, st.integers(0, 7), st.booleans()),
    ),
    max_size=80,
)


def plan(text: str) -> list[tuple[str, int, bool]]:
    """Steps written ``name[:n]``, e.g. ``"start snapshot establish:3 deliver:7 read"``."""
    steps = []
    for word in text.split():
        name, _, n = word.partition(":")
        steps.append((name, int(n or 0), True))
    return steps


def change(charon: Charon, what: str, n: int, flag: bool) -> None:
    if what == "establish":
        charon.establish(n, flag)
    elif what == "finish":
        charon.finish()
    else:
        getattr(charon, what)(n)


@dataclass
class Listing:
    generation: int
    snapshot: list[Message] | None = None


@settings(max_examples=2000, deadline=None)
@given(STEPS)
# an SA that comes up between a listing's snapshot and its reading (the replay)
@example(plan("start snapshot establish:3 deliver:7 read"))
# two listings at once: the older must count neither before the newer nor after it
@example(plan("start snapshot establish:3 start deliver:7 snapshot read:1 read"))
@example(plan("start snapshot establish:3 deliver:7 start read snapshot read"))
# events charon sent before an audit's snapshot, read after it: no drift
@example(plan("rekey_ike start snapshot read deliver:7"))
@example(plan("move start snapshot read deliver:7"))
@example(
    plan("establish:3 start snapshot read deliver:7 rekey_ike move start snapshot read deliver:7")
)
def test_in_sync_the_table_holds_exactly_what_charon_has_up(
    steps: list[tuple[str, int, bool]],
) -> None:
    charon, table = Charon(), SaTable()
    # Some SAs exist before frrdmvpn connects; their events went nowhere.
    charon.establish(1, True)
    charon.establish(2, False)
    charon.rekey_child(0)
    charon.sent.clear()
    table.opened()
    listings: list[Listing] = []
    drifted: list[str] = []
    steps = [("start", 0, False), ("snapshot", 0, False), ("read", 0, False), *steps]
    for what, n, flag in steps:
        if what == "deliver":  # the next n + 1 events reach the table, in order
            for name, msg in charon.sent[: n + 1]:
                assert table.event(name, msg) is None
            del charon.sent[: n + 1]
        elif what == "start":
            listings.append(Listing(table.listing_started()))
        elif what == "snapshot":  # charon takes one listing's snapshot now
            waiting = [x for x in listings if x.snapshot is None]
            if waiting:
                waiting[n % len(waiting)].snapshot = charon.listing()
        elif what == "read":  # one listing's messages arrive, whichever
            ready = [x for x in listings if x.snapshot is not None]
            if ready:
                listing = ready[n % len(ready)]
                listings.remove(listing)
                assert listing.snapshot is not None
                assert table.listed(listing.generation, listing.snapshot) is None
        elif what == "reconnect":  # events in flight are lost with the connection
            table.closed()
            assert not table.in_sync
            charon.sent.clear()
            table.opened()
        else:
            change(charon, what, n, flag)
        if table.in_sync and not charon.sent:
            live, rows = charon.live(), held(table)
            assert live <= rows, f"missing {live - rows}"
            assert rows <= live | charon.leaving(), f"held {rows - live - charon.leaving()}"
            ikes = {i.uniqueid for i in table.ikes()}
            assert (
                charon.ike_ids("ESTABLISHED") <= ikes <= charon.ike_ids("ESTABLISHED", "DELETING")
            )
            if drift := table.drift():
                drifted.append(drift.summary())
    # whatever happened, the next listing after every event was read brings it in sync
    for name, msg in charon.sent:
        assert table.event(name, msg) is None
    if drift := table.drift():
        drifted.append(drift.summary())
    assert not drifted
    assert table.listed(table.listing_started(), charon.listing()) is None
    assert table.in_sync
    assert charon.live() <= held(table) <= charon.live() | charon.leaving()
    assert not table.drift()


def deliver(charon: Charon, table: SaTable) -> None:
    for name, msg in charon.sent:
        assert table.event(name, msg) is None
    charon.sent.clear()


def list_into(table: SaTable, charon: Charon) -> str | None:
    return table.listed(table.listing_started(), charon.listing())


def test_between_finds_a_pair_either_way_round_and_follows_a_move() -> None:
    charon, table = Charon(), SaTable()
    table.opened()
    assert list_into(table, charon) is None
    charon.establish(0, True)  # 198.51.100.11
    charon.establish(1, True)  # 198.51.100.12
    deliver(charon, table)
    (sa,) = table.between(ip(HUB), ip("198.51.100.12"))
    assert sa.remote_id == "spoke-198.51.100.12"
    assert table.between(ip("198.51.100.12"), ip(HUB)) == [sa]
    charon.move(1)
    deliver(charon, table)
    assert table.between(ip(HUB), ip("198.51.100.12")) == []
    (moved,) = table.between(ip(HUB), ip("192.0.2.101"))
    assert moved.child_uniqueid == sa.child_uniqueid


def synced(charon: Charon) -> SaTable:
    table = SaTable()
    table.opened()
    assert list_into(table, charon) is None
    assert table.in_sync
    return table


def test_never_in_sync_before_a_listing_after_the_connection_opened() -> None:
    charon, table = Charon(), SaTable()
    charon.establish(0, True)
    list_into(table, charon)
    assert not table.in_sync, "a listing without an event connection proves nothing"
    before = table.listing_started()
    table.opened()
    assert table.listed(before, charon.listing()) is None
    assert not table.in_sync, "a listing started before the connection opened proves nothing"
    table.listing_failed(table.listing_started())
    assert not table.in_sync
    list_into(table, charon)
    assert table.in_sync


def test_only_the_listing_started_last_counts() -> None:
    """An older listing read after a newer one would bring back what the newer one and the
    events since have removed."""
    charon = Charon()
    charon.establish(0, True)
    table = synced(charon)
    older = table.listing_started()
    old_snapshot = charon.listing()
    (ike,) = charon.ikes.values()
    charon.begin_delete_ike(0)
    charon.end_delete_ike(0)
    deliver(charon, table)
    newer = table.listing_started()
    assert table.listed(older, old_snapshot) is None  # read first: still of no use
    assert table.children() == []
    assert table.listed(newer, charon.listing()) is None
    assert table.listed(older, old_snapshot) is None  # and after
    assert table.in_sync
    assert table.children() == []
    assert ike.uniqueid not in {i.uniqueid for i in table.ikes()}


def test_a_lost_event_connection_or_an_unreadable_event_leaves_sync() -> None:
    charon = Charon()
    charon.establish(0, True)
    table = synced(charon)
    table.closed()
    assert not table.in_sync
    table = synced(charon)
    garbled: Message = {"dmvpn": {"uniqueid": b"9", "local-host": b"x"}, "up": b"yes"}
    why = table.event("child-updown", garbled)
    assert why is not None
    assert "unreadable child-updown" in why
    assert not table.in_sync
    no_id: Message = {"dmvpn": {"local-host": HUB.encode(), "remote-host": HUB.encode()}}
    assert table.event("ike-updown", no_id) is not None, "a down event without its SA's id"
    list_into(table, charon)
    assert table.in_sync, "the next listing brings it back"
    table.out_of_sync()
    assert not table.in_sync


def test_an_audit_that_fails_keeps_the_table_in_sync() -> None:
    charon = Charon()
    charon.establish(0, True)
    table = synced(charon)
    table.listing_failed(table.listing_started())
    assert table.in_sync


def test_an_audit_reports_what_events_never_told_and_corrects_it() -> None:
    charon = Charon()
    charon.establish(0, True)
    charon.establish(1, True)
    table = synced(charon)
    charon.sent.clear()
    # one SA goes without its event reaching us, another comes the same way
    gone = next(iter(charon.ikes.values()))
    del charon.ikes[gone.uniqueid]
    charon.establish(2, True)
    charon.sent.clear()
    assert list_into(table, charon) is None
    drift = table.drift()
    assert drift
    (child,) = gone.children.values()
    assert drift.stale == (
        f"CHILD_SA #{child.uniqueid} (IKE_SA #{gone.uniqueid})",
        f"IKE_SA #{gone.uniqueid}",
    )
    assert len(drift.missing) == 2
    assert "stale CHILD_SA" in drift.summary()
    assert held(table) == charon.live()
    assert not table.drift(), "reported once"
    # the same differences explained by late events are no drift
    table = synced(charon)
    charon.establish(3, True)
    late = list(charon.sent)
    charon.sent.clear()
    assert list_into(table, charon) is None
    for name, msg in late:
        table.event(name, msg)
    assert not table.drift()


def test_a_changed_sa_is_reported_with_what_changed() -> None:
    charon = Charon()
    charon.establish(0, True)
    table = synced(charon)
    charon.sent.clear()
    ike = next(iter(charon.ikes.values()))
    (child,) = ike.children.values()
    child.spi = 7  # new SPIs in charon's listing, and no event said so
    assert list_into(table, charon) is None
    (changed,) = table.drift().changed
    assert changed.startswith(f"CHILD_SA #{child.uniqueid} (IKE_SA #{ike.uniqueid}) [")
    assert f"spi_in: {0xC0000000} -> {0xC0000007}" in changed
    assert f"spi_out: {0xC1000000} -> {0xC1000007}" in changed
    assert "state" not in changed


def test_a_listing_charon_garbled_is_no_sync() -> None:
    table = SaTable()
    table.opened()
    garbled: list[Message] = [{"dmvpn": {"uniqueid": b"1", "state": b"ESTABLISHED"}}]
    found = table.listed(table.listing_started(), garbled)
    assert found is not None
    assert "unreadable list-sas" in found
    assert not table.in_sync


def test_an_event_that_is_no_sa_event_is_refused() -> None:
    table = SaTable()
    assert table.event("log", {"dmvpn": {"uniqueid": b"1"}}) is not None


def test_authorization_sees_the_table_as_a_listing_would() -> None:
    """The table's CHILD_SAs are the authorizer's: the same values a listing gives."""
    charon = Charon()
    charon.establish(0, True)
    table = synced(charon)
    listed: list[ChildSa] = [sa for msg in charon.listing() for sa in child_sas_from_list_sa(msg)]
    assert table.children() == listed


def test_a_child_down_after_its_ike_sa_went_down_brings_nothing_back() -> None:
    """charon may report a CHILD_SA's end after its IKE_SA's (the IKE_SA deleted first)."""
    charon = Charon()
    charon.establish(0, True)
    table = synced(charon)
    (ike,) = charon.ikes.values()
    (child,) = ike.children.values()
    ike_down: Message = {"dmvpn": ike.section()}
    child_down: Message = {"dmvpn": ike.listed([child])}
    assert table.event("ike-updown", ike_down) is None
    assert table.event("child-updown", child_down) is None
    assert table.children() == []
    assert table.ikes() == []


def test_an_event_about_a_sibling_does_not_hide_a_drift() -> None:
    """A child event carries its IKE_SA's section: it explains that IKE_SA and the CHILD_SAs
    it names, not the IKE_SA's other CHILD_SAs."""
    charon = Charon()
    charon.establish(0, True)
    table = synced(charon)
    charon.sent.clear()
    (ike,) = charon.ikes.values()
    (gone,) = ike.children.values()
    del ike.children[gone.uniqueid]  # its down event never reaches the table
    assert list_into(table, charon) is None
    charon.add_child(0)  # a sibling comes up in the grace period
    deliver(charon, table)
    assert table.drift().stale == (f"CHILD_SA #{gone.uniqueid} (IKE_SA #{ike.uniqueid})",)
