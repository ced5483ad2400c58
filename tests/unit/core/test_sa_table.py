"""The SA table kept from charon's events (frrdmvpn/core/sa_table.py).

A model charon (below) holds IKE_SAs and CHILD_SAs, changes them as charon does and emits
the events charon's vici plugin sends for each change (docs: the reference's VICI facts:
``up=yes`` only on up events, child-updown with the one child, child-rekey with old/new,
ike-rekey with old/new IKE_SAs, ike-update with the new endpoints); some changes emit no
event at all (a CHILD_SA REKEYING, a rekeyed SA lingering until deleted, a half-open IKE_SA
appearing and vanishing). Hypothesis interleaves changes with listings that start, catch the
model at some later instant and are read later still, as a real ``list-sas`` on another
connection does. Whenever the table says it is in sync it must hold exactly the SAs that
are up in the model, and an audit must find no drift.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from frrdmvpn.codec.vici import Message
from frrdmvpn.core.authorize import ChildSa
from frrdmvpn.core.sa_table import Drift, SaTable, child_sas_from_list_sa

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

    def section(self, children: list[Child] | None = None) -> Message:
        shown = list(self.children.values()) if children is None else children
        return {
            "uniqueid": str(self.uniqueid).encode(),
            "state": self.state.encode(),
            "local-host": HUB.encode(),
            "remote-host": self.remote.encode(),
            "local-id": HUB.encode(),
            "remote-id": self.identity.encode(),
            "child-sas": {f"dmvpn-{c.uniqueid}": c.section() for c in shown},
        }


class Charon:
    """Enough of charon's SA handling to emit its events; the ids only grow, as charon's."""

    def __init__(self) -> None:
        self.ikes: dict[int, Ike] = {}
        self.next_id = 1
        self.sent: list[tuple[str, Message]] = []

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def _emit(self, name: str, msg: Message) -> None:
        self.sent.append((name, msg))

    def _pick(self, n: int, states: tuple[str, ...] = ("ESTABLISHED",)) -> Ike | None:
        ikes = [i for i in self.ikes.values() if i.state in states]
        return ikes[n % len(ikes)] if ikes else None

    def _child(self, n: int) -> tuple[Ike, Child] | None:
        pairs = [
            (i, c)
            for i in self.ikes.values()
            if i.state == "ESTABLISHED"
            for c in i.children.values()
            if c.state in ("INSTALLED", "REKEYING")
        ]
        return pairs[n % len(pairs)] if pairs else None

    def establish(self, n: int, child_first: bool) -> None:
        ike = Ike(self._id(), PEERS[n % len(PEERS)])
        self.ikes[ike.uniqueid] = ike
        child = Child(self._id(), spi=n)
        ike.children[child.uniqueid] = child
        child_up: tuple[str, Message] = (
            "child-updown",
            {"dmvpn": ike.section([child]), "up": b"yes"},
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
            self._emit("child-updown", {"dmvpn": ike.section([child]), "up": b"yes"})

    def delete_child(self, n: int) -> None:
        found = self._child(n)
        if found is not None:
            ike, child = found
            child.state = "DELETING"
            self._emit("child-updown", {"dmvpn": ike.section([child])})
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
            section = ike.section([])
            section["child-sas"] = {"dmvpn": {"old": old.section(), "new": new.section()}}
            self._emit("child-rekey", {"dmvpn": section})

    def rekey_ike(self, n: int) -> None:
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

    def delete_ike(self, n: int, with_children: bool) -> None:
        ike = self._pick(n)
        if ike is not None:
            ike.state = "DELETING"
            self._emit("ike-updown", {"dmvpn": ike.section(None if with_children else [])})
            del self.ikes[ike.uniqueid]

    def move(self, n: int) -> None:
        """The peer's address changes (NAT, MOBIKE): ike-update, then the new endpoint."""
        ike = self._pick(n)
        if ike is not None:
            moved = f"192.0.2.{100 + n % 50}"
            section = ike.section()
            del section["child-sas"]
            section["new-local-host"] = HUB.encode()
            section["new-remote-host"] = moved.encode()
            self._emit("ike-update", {"dmvpn": section})
            ike.remote = moved

    def listing(self) -> list[Message]:
        return [{"dmvpn": ike.section()} for ike in self.ikes.values()]

    def live(self) -> set[tuple[int, int, str, str]]:
        """What is up: (CHILD_SA, IKE_SA, remote host, remote identity)."""
        return {
            (c.uniqueid, ike.uniqueid, ike.remote, ike.identity)
            for ike in self.ikes.values()
            if ike.state == "ESTABLISHED"
            for c in ike.children.values()
            if c.state in ("INSTALLED", "REKEYING")
        }

    def live_ikes(self) -> set[int]:
        return {i.uniqueid for i in self.ikes.values() if i.state == "ESTABLISHED"}


def held(table: SaTable) -> set[tuple[int, int, str, str]]:
    return {
        (sa.child_uniqueid, sa.ike_uniqueid, str(sa.remote_host), sa.remote_id)
        for sa in table.children()
    }


CHANGES = st.sampled_from(
    [
        "establish",
        "establish",
        "add_child",
        "delete_child",
        "flip_rekeying",
        "rekey_child",
        "rekey_ike",
        "finish",
        "delete_ike",
        "move",
        "half_open",
        "half_open_fails",
        "half_open_up",
    ]
)
STEPS = st.lists(
    st.one_of(
        st.tuples(CHANGES, st.integers(0, 7), st.booleans()),
        st.tuples(st.sampled_from(["start", "snapshot", "read"]), st.just(0), st.just(False)),
    ),
    max_size=60,
)


def change(charon: Charon, what: str, n: int, flag: bool) -> None:
    if what == "establish":
        charon.establish(n, flag)
    elif what == "delete_ike":
        charon.delete_ike(n, flag)
    elif what == "finish":
        charon.finish()
    else:
        getattr(charon, what)(n)


@settings(max_examples=400, deadline=None)
@given(STEPS)
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
    steps = [("start", 0, False), ("snapshot", 0, False), ("read", 0, False), *steps]
    started, snapshot = False, None
    for what, n, flag in steps:
        if what == "start" and not started:
            table.listing_started()
            started, snapshot = True, None
        elif what == "snapshot" and started and snapshot is None:
            snapshot = charon.listing()
        elif what == "read" and snapshot is not None:
            was = table.in_sync
            found = table.listed(snapshot)
            started, snapshot = False, None
            if was:
                assert isinstance(found, Drift)
                assert not found, found.summary()
            else:
                assert found is None
        elif what not in ("start", "snapshot", "read"):
            change(charon, what, n, flag)
            for name, msg in charon.sent:
                assert table.event(name, msg) is None
            charon.sent.clear()
        if table.in_sync:
            assert held(table) == charon.live()
            assert {i.uniqueid for i in table.ikes()} == charon.live_ikes()
    assert table.in_sync


def test_between_finds_a_pair_either_way_round_and_follows_a_move() -> None:
    charon, table = Charon(), SaTable()
    table.opened()
    table.listing_started()
    assert table.listed([]) is None
    charon.establish(0, True)  # 198.51.100.11
    charon.establish(1, True)  # 198.51.100.12
    for name, msg in charon.sent:
        table.event(name, msg)
    charon.sent.clear()
    (sa,) = table.between(ip(HUB), ip("198.51.100.12"))
    assert sa.remote_id == "spoke-198.51.100.12"
    assert table.between(ip("198.51.100.12"), ip(HUB)) == [sa]
    charon.move(1)
    for name, msg in charon.sent:
        table.event(name, msg)
    assert table.between(ip(HUB), ip("198.51.100.12")) == []
    (moved,) = table.between(ip(HUB), ip("192.0.2.101"))
    assert moved.child_uniqueid == sa.child_uniqueid


def synced(charon: Charon) -> SaTable:
    table = SaTable()
    table.opened()
    table.listing_started()
    assert table.listed(charon.listing()) is None
    assert table.in_sync
    return table


def test_never_in_sync_before_a_listing_after_the_connection_opened() -> None:
    charon, table = Charon(), SaTable()
    charon.establish(0, True)
    table.listing_started()
    table.listed(charon.listing())
    assert not table.in_sync, "a listing without an event connection proves nothing"
    table.opened()
    assert not table.in_sync
    table.listing_started()
    table.listing_failed()
    assert not table.in_sync
    table.listing_started()
    table.listed(charon.listing())
    assert table.in_sync


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
    table.listing_started()
    table.listed(charon.listing())
    assert table.in_sync, "the next listing brings it back"


def test_an_audit_that_fails_keeps_the_table_in_sync() -> None:
    charon = Charon()
    charon.establish(0, True)
    table = synced(charon)
    table.listing_started()
    table.listing_failed()
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
    table.listing_started()
    drift = table.listed(charon.listing())
    assert isinstance(drift, Drift)
    assert drift
    (child,) = gone.children.values()
    assert drift.stale == (
        f"CHILD_SA #{child.uniqueid} (IKE_SA #{gone.uniqueid})",
        f"IKE_SA #{gone.uniqueid}",
    )
    assert len(drift.missing) == 2
    assert "stale CHILD_SA" in drift.summary()
    assert held(table) == charon.live()


def test_a_listing_charon_garbled_is_no_sync() -> None:
    table = SaTable()
    table.opened()
    table.listing_started()
    found = table.listed([{"dmvpn": {"uniqueid": b"1", "state": b"ESTABLISHED"}}])
    assert isinstance(found, str)
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
