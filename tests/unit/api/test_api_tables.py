"""api.store: table diffs as Watch events, singletons, journals, snapshots (pure)."""

from __future__ import annotations

from collections.abc import Hashable
from functools import partial

import pytest

from frrdmvpn.api.tables import Item, Store
from frrdmvpn.v1 import ipsec_pb2, peer_pb2, types_pb2
from frrdmvpn.v1 import watch_service_pb2 as wpb

pytestmark = pytest.mark.unit

PEER = wpb.EVENT_KIND_PEER
LOCAL = "198.51.100.1"


def peer(remote: str, state: int = types_pb2.PEER_STATE_UP, reason: str = "") -> peer_pb2.Peer:
    msg = peer_pb2.Peer(state=state, state_reason=reason)  # type: ignore[arg-type]
    msg.key.local_nbma, msg.key.remote_nbma = LOCAL, remote
    msg.state_since.FromSeconds(1_700_000_000)
    return msg


def items(**states: int) -> dict[Hashable, Item]:
    """remote (with _ for .) -> state, as the Items of a peer table."""
    out: dict[Hashable, Item] = {}
    for name, state in states.items():
        remote = name.removeprefix("r").replace("_", ".")
        out[(LOCAL, remote)] = Item((state,), partial(peer, remote, state, f"now {state}"))
    return out


def _same(event: wpb.IpsecSaEvent) -> wpb.IpsecSaEvent:
    return event


def changes(events: list[wpb.WatchResponse]) -> list[tuple[str, int, int]]:
    names = {
        wpb.CHANGE_TYPE_ADDED: "added",
        wpb.CHANGE_TYPE_UPDATED: "updated",
        wpb.CHANGE_TYPE_REMOVED: "removed",
    }
    return [
        (
            names[e.peer.change],
            int(e.peer.peer.key.remote_nbma.rsplit(".", 1)[1]),
            e.peer.peer.state,
        )
        for e in events
    ]


def test_replace_added_updated_removed() -> None:
    store = Store(clock=lambda: 1000.0)
    up, ike = types_pb2.PEER_STATE_UP, types_pb2.PEER_STATE_IKE
    first = store.replace(PEER, items(r10_0_0_1=up, r10_0_0_2=ike))
    assert changes(first) == [("added", 1, up), ("added", 2, ike)]
    second = store.replace(PEER, items(r10_0_0_2=up, r10_0_0_3=up))
    # removals first, then additions and updates in key order
    assert changes(second) == [("removed", 1, up), ("updated", 2, up), ("added", 3, up)]
    removed = second[0]
    assert removed.peer.peer.state_reason == f"now {up}"  # announced with its last message
    assert [p.key.remote_nbma for p in store.items(PEER)] == ["10.0.0.2", "10.0.0.3"]  # type: ignore[attr-defined]
    assert store.get(PEER, (LOCAL, "10.0.0.1")) is None
    assert store.get(PEER, (LOCAL, "10.0.0.2")) == peer("10.0.0.2", up, f"now {up}")
    assert all(e.epoch == store.epoch and e.time.seconds == 1000 for e in first + second)


def test_unchanged_sources_emit_nothing_and_build_nothing() -> None:
    store = Store()
    built: list[str] = []

    def table(reason: str) -> dict[Hashable, Item]:
        def build(remote: str) -> peer_pb2.Peer:
            built.append(remote)
            return peer(remote, reason=reason)

        return {(LOCAL, r): Item(("same",), partial(build, r)) for r in ("10.0.0.1", "10.0.0.2")}

    assert len(store.replace(PEER, table("a"))) == 2
    built.clear()
    sequence = store.sequence
    assert store.replace(PEER, table("b")) == []
    assert built == []
    assert store.sequence == sequence


def test_changed_source_with_the_same_message_emits_nothing() -> None:
    store = Store()
    key: Hashable = (LOCAL, "10.0.0.1")
    store.replace(PEER, {key: Item(1, partial(peer, "10.0.0.1"))})
    assert store.replace(PEER, {key: Item(2, partial(peer, "10.0.0.1"))}) == []
    # and the new source is kept: the builder is not called again for it
    called = []

    def build() -> peer_pb2.Peer:
        called.append(1)
        return peer("10.0.0.1")

    assert store.replace(PEER, {key: Item(2, build)}) == []
    assert called == []


def test_peer_transition_filled_on_state_change_only() -> None:
    store = Store()
    store.replace(PEER, items(r10_0_0_1=types_pb2.PEER_STATE_IKE))
    (event,) = store.replace(PEER, items(r10_0_0_1=types_pb2.PEER_STATE_UP))
    t = event.peer.transition
    assert event.peer.change == wpb.CHANGE_TYPE_UPDATED
    assert (t.from_state, t.to_state) == (types_pb2.PEER_STATE_IKE, types_pb2.PEER_STATE_UP)
    assert t.reason == f"now {types_pb2.PEER_STATE_UP}"
    assert t.at == event.peer.peer.state_since
    # same state, other content: UPDATED without a transition
    key: Hashable = (LOCAL, "10.0.0.1")
    other: dict[Hashable, Item] = {
        key: Item("x", partial(peer, "10.0.0.1", types_pb2.PEER_STATE_UP, "other"))
    }
    (event,) = store.replace(PEER, other)
    assert event.peer.change == wpb.CHANGE_TYPE_UPDATED
    assert not event.peer.HasField("transition")
    # an added peer has no transition either
    (event,) = store.replace(PEER, {**other, **items(r10_0_0_9=types_pb2.PEER_STATE_DOWN)})
    assert event.peer.change == wpb.CHANGE_TYPE_ADDED
    assert not event.peer.HasField("transition")


def test_sequence_grows_by_one_per_event() -> None:
    store = Store()
    events = store.replace(PEER, items(r10_0_0_1=1, r10_0_0_2=1, r10_0_0_3=1))
    events += store.replace(PEER, items(r10_0_0_1=2))
    events += store.set_singleton(wpb.EVENT_KIND_GUARD, wpb.GuardEvent().status)
    events += store.record(wpb.EVENT_KIND_AUTHORIZATION, wpb.AuthorizationEvent())
    # 3 added; 1 updated, 2 removed; a guard status; a decision
    assert [e.sequence for e in events] == list(range(1, 9))
    assert store.sequence == 8


def test_singletons_change_only_when_different() -> None:
    store = Store()
    node = wpb.NodeEvent().node
    node.hostname = "hub"
    assert len(store.set_singleton(wpb.EVENT_KIND_NODE, node)) == 1
    assert store.set_singleton(wpb.EVENT_KIND_NODE, node) == []
    (event,) = store.set_singleton(wpb.EVENT_KIND_NODE, type(node)(hostname="hub2"))
    assert event.node.node.hostname == "hub2"


def test_snapshot_content_and_order() -> None:
    store = Store(clock=lambda: 5.0)
    store.replace(PEER, items(r10_0_0_10=1, r10_0_0_9=2, r10_0_0_1=3))
    sa_items: dict[Hashable, Item] = {}
    for uid in (10, 9, 100):
        event = wpb.IpsecSaEvent(ike_sa=ipsec_pb2.IkeSa(unique_id=uid))
        sa_items[(uid,)] = Item(uid, partial(_same, event))
    store.replace(wpb.EVENT_KIND_IPSEC_SA, sa_items)
    store.set_singleton(wpb.EVENT_KIND_NODE, wpb.NodeEvent().node)
    config = wpb.ConfigEvent(type=wpb.CONFIG_EVENT_TYPE_APPLIED)
    config.status.unsaved_changes = True
    store.record(wpb.EVENT_KIND_CONFIG, config)
    store.record(wpb.EVENT_KIND_AUTHORIZATION, wpb.AuthorizationEvent())
    sequence = store.sequence

    snap = store.snapshot(
        [
            PEER,
            wpb.EVENT_KIND_IPSEC_SA,
            wpb.EVENT_KIND_NODE,
            wpb.EVENT_KIND_CONFIG,
            wpb.EVENT_KIND_AUTHORIZATION,
        ]
    )
    assert store.sequence == sequence  # reading changes nothing
    assert all(e.snapshot and e.time.seconds == 5 for e in snap)
    kinds = [e.WhichOneof("event") for e in snap]
    # in EventKind order; decisions are history, not state: none in a snapshot
    assert kinds == ["node", "peer", "peer", "peer", "ipsec_sa", "ipsec_sa", "ipsec_sa", "config"]
    peers = [e.peer for e in snap if e.WhichOneof("event") == "peer"]
    assert [p.peer.key.remote_nbma for p in peers] == ["10.0.0.1", "10.0.0.9", "10.0.0.10"]
    assert {p.change for p in peers} == {wpb.CHANGE_TYPE_ADDED}
    sas = [e.ipsec_sa for e in snap if e.WhichOneof("event") == "ipsec_sa"]
    assert [s.ike_sa.unique_id for s in sas] == [9, 10, 100]
    assert {s.change for s in sas} == {wpb.CHANGE_TYPE_ADDED}
    # the configuration's standing, not the last change
    assert snap[-1].config.type == wpb.CONFIG_EVENT_TYPE_CURRENT
    assert snap[-1].config.status.unsaved_changes
    assert store.snapshot([wpb.EVENT_KIND_GUARD]) == []  # a singleton not set yet


def test_items_follow_additions_and_removals() -> None:
    store = Store()
    store.replace(PEER, items(r10_0_0_2=1))
    assert [p.key.remote_nbma for p in store.items(PEER)] == ["10.0.0.2"]  # type: ignore[attr-defined]
    store.replace(PEER, items(r10_0_0_2=1, r10_0_0_1=1))
    assert [p.key.remote_nbma for p in store.items(PEER)] == ["10.0.0.1", "10.0.0.2"]  # type: ignore[attr-defined]
    store.replace(PEER, items(r10_0_0_1=2))
    assert [p.state for p in store.items(PEER)] == [2]  # type: ignore[attr-defined]
    store.replace(PEER, {})
    assert store.items(PEER) == []


def test_journal_keeps_the_latest() -> None:
    store = Store()
    for i in range(100):
        event = wpb.AuthorizationEvent()
        event.decision.id = i
        store.record(wpb.EVENT_KIND_AUTHORIZATION, event)
    kept = store.journal(wpb.EVENT_KIND_AUTHORIZATION)
    assert len(kept) == 64
    assert [m.decision.id for m in kept][-1] == 99  # type: ignore[attr-defined]
