"""api.watch: snapshot first, then deltas; nothing lost; bounded queues; overflow resync."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable
from functools import partial

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from frrdmvpn.api.tables import Item, Store
from frrdmvpn.api.watch import Broker, Subscription, TooManyWatchesError
from frrdmvpn.v1 import peer_pb2
from frrdmvpn.v1 import watch_service_pb2 as wpb

pytestmark = pytest.mark.unit

PEER = wpb.EVENT_KIND_PEER
LOCAL = "198.51.100.1"
REMOTES = [f"10.0.0.{i}" for i in range(1, 7)]


def peer(remote: str, state: int) -> peer_pb2.Peer:
    msg = peer_pb2.Peer(state=state)  # type: ignore[arg-type]
    msg.key.local_nbma, msg.key.remote_nbma = LOCAL, remote
    return msg


def table(content: dict[str, int]) -> dict[Hashable, Item]:
    return {(LOCAL, r): Item(s, partial(peer, r, s)) for r, s in content.items()}


def change(store: Store, broker: Broker, content: dict[str, int]) -> None:
    broker.publish(store.replace(PEER, table(content)))


def current(store: Store) -> dict[str, int]:
    return {p.key.remote_nbma: p.state for p in store.items(PEER)}  # type: ignore[attr-defined]


def replay(events: list[wpb.WatchResponse]) -> dict[str, int]:
    """A client's copy of the peer table, rebuilt from what its stream delivered."""
    copy: dict[str, int] = {}
    in_snapshot = False
    for e in events:
        which = e.WhichOneof("event")
        if which == "snapshot_begin":
            copy, in_snapshot = {}, True
        elif which == "snapshot_end":
            in_snapshot = False
        elif which == "peer":
            assert e.snapshot == in_snapshot
            p = e.peer.peer
            if e.peer.change == wpb.CHANGE_TYPE_REMOVED:
                del copy[p.key.remote_nbma]
            else:
                copy[p.key.remote_nbma] = p.state
    return copy


def kinds_of(events: list[wpb.WatchResponse]) -> list[str]:
    return [str(e.WhichOneof("event")) for e in events]


async def take(stream: AsyncIterator[wpb.WatchResponse], n: int) -> list[wpb.WatchResponse]:
    return [await anext(stream) for _ in range(n)]


def test_snapshot_first_then_deltas_in_order() -> None:
    async def main() -> None:
        store = Store()
        broker = Broker(store)
        change(store, broker, {"10.0.0.1": 1, "10.0.0.2": 5})
        sub = broker.subscribe([PEER])
        stream = broker.stream(sub)
        # a change after subscribing, before the stream is read: in the snapshot
        change(store, broker, {"10.0.0.1": 2, "10.0.0.2": 5, "10.0.0.3": 1})
        got = await take(stream, 2 + 3)
        change(store, broker, {"10.0.0.1": 3})  # once it is sent: deltas
        got += await take(stream, 3)
        assert kinds_of(got) == ["snapshot_begin"] + ["peer"] * 3 + ["snapshot_end"] + ["peer"] * 3
        begin, end = got[0].snapshot_begin, got[4].snapshot_end
        assert begin.reason == wpb.SNAPSHOT_REASON_INITIAL
        assert list(begin.kinds) == [PEER]
        assert begin.queue_limit == broker.limit
        assert end.events == 3
        # the snapshot is built when sent: it shows the change
        assert [(e.peer.peer.key.remote_nbma, e.peer.peer.state) for e in got[1:4]] == [
            ("10.0.0.1", 2),
            ("10.0.0.2", 5),
            ("10.0.0.3", 1),
        ]
        assert all(e.snapshot for e in got[:5])
        assert not any(e.snapshot for e in got[5:])
        assert [(e.peer.change, e.peer.peer.key.remote_nbma) for e in got[5:]] == [
            (wpb.CHANGE_TYPE_REMOVED, "10.0.0.2"),
            (wpb.CHANGE_TYPE_REMOVED, "10.0.0.3"),
            (wpb.CHANGE_TYPE_UPDATED, "10.0.0.1"),
        ]
        # numbered per stream, markers included
        assert [e.sequence for e in got] == list(range(1, 9))
        assert replay(got) == current(store)
        await stream.aclose()
        assert sub not in broker.subscriptions

    asyncio.run(main())


def test_two_streams_number_their_own_messages() -> None:
    async def main() -> None:
        store = Store()
        broker = Broker(store)
        first = broker.stream(broker.subscribe([PEER]))
        assert kinds_of(await take(first, 2)) == ["snapshot_begin", "snapshot_end"]
        change(store, broker, {"10.0.0.1": 1})
        second = broker.stream(broker.subscribe([PEER]))
        a = await take(first, 1)
        b = await take(second, 3)
        assert a[0].sequence == 3
        assert [e.sequence for e in b] == [1, 2, 3]
        assert a[0].peer == b[1].peer  # one event, two numbers

    asyncio.run(main())


Op = tuple[str, object]
ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("change"),
            st.dictionaries(st.sampled_from(REMOTES), st.integers(1, 5), max_size=6),
        ),
        st.tuples(st.just("subscribe"), st.booleans()),
        st.tuples(st.just("consume"), st.tuples(st.integers(0, 7), st.integers(0, 12))),
    ),
    max_size=40,
)


class Consumer:
    """Reads its stream only as far as it is given credit."""

    def __init__(self, broker: Broker, sub: Subscription) -> None:
        self.sub = sub
        self.events: list[wpb.WatchResponse] = []
        self.credit = asyncio.Semaphore(0)
        self.stream = broker.stream(sub)
        self.task = asyncio.get_running_loop().create_task(self.run())

    async def run(self) -> None:
        while True:
            await self.credit.acquire()
            self.events.append(await anext(self.stream))


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


@settings(max_examples=150, deadline=None)
@given(ops, st.integers(2, 8))
def test_replaying_snapshot_and_deltas_reproduces_the_table(plan: list[Op], limit: int) -> None:
    """Random table changes interleaved with subscribing and slow, partial reading: every
    stream, read to the end, rebuilds the store's table exactly, its numbering has no gap,
    and no queue ever holds more than ``limit`` events."""

    async def main() -> None:
        store = Store()
        broker = Broker(store, limit=limit)
        consumers: list[Consumer] = []
        for op, arg in plan:
            if op == "change":
                assert isinstance(arg, dict)
                change(store, broker, arg)
            elif op == "subscribe":
                sub = broker.subscribe([PEER], principal=f"uid {len(consumers)}")
                consumers.append(Consumer(broker, sub))
                if arg:  # the stream starts reading before the next change
                    await settle()
            elif consumers:
                assert isinstance(arg, tuple)
                index, n = arg
                c = consumers[index % len(consumers)]
                for _ in range(n):
                    c.credit.release()
                await settle()
            assert all(len(c.sub.queue) <= limit for c in consumers)
        for c in consumers:
            for _ in range(10_000):
                c.credit.release()
        await settle()
        for c in consumers:
            assert c.sub.queue == type(c.sub.queue)()
            assert not c.sub.resync
            assert [e.sequence for e in c.events] == list(range(1, len(c.events) + 1))
            assert replay(c.events) == current(store)
            c.task.cancel()
            await asyncio.gather(c.task, return_exceptions=True)
            await c.stream.aclose()
        assert broker.subscriptions == set()

    asyncio.run(main())


def test_slow_consumer_gets_overflow_then_a_fresh_snapshot() -> None:
    async def main() -> None:
        store = Store()
        broker = Broker(store, limit=4)
        sub = broker.subscribe([PEER])
        stream = broker.stream(sub)
        assert kinds_of(await take(stream, 2)) == ["snapshot_begin", "snapshot_end"]
        for i in range(1, 21):  # 20 changes, nobody reading
            change(store, broker, {"10.0.0.1": 1 + i % 5, "10.0.0.2": 1 + (i + 1) % 5})
            assert len(sub.queue) <= 4
        got = await take(stream, 1 + 1 + 2 + 1)
        assert kinds_of(got) == ["overflow", "snapshot_begin", "peer", "peer", "snapshot_end"]
        overflow = got[0].overflow
        assert overflow.snapshot_follows
        assert overflow.queue_limit == 4
        assert overflow.lost_events == 5  # the 4 queued and the one that did not fit
        assert got[1].snapshot_begin.reason == wpb.SNAPSHOT_REASON_OVERFLOW
        assert replay(got) == current(store)
        # then deltas again
        change(store, broker, {"10.0.0.1": 5})
        (delta,) = await take(stream, 1)
        assert delta.peer.change == wpb.CHANGE_TYPE_REMOVED
        assert [e.sequence for e in got] == [3, 4, 5, 6, 7]
        assert delta.sequence == 8

    asyncio.run(main())


def test_skip_snapshot_deltas_only_and_overflow_without_snapshot() -> None:
    async def main() -> None:
        store = Store()
        broker = Broker(store, limit=2)
        change(store, broker, {"10.0.0.1": 1})
        sub = broker.subscribe([PEER], snapshot=False)
        stream = broker.stream(sub)
        change(store, broker, {"10.0.0.1": 2})
        (first,) = await take(stream, 1)
        assert first.peer.change == wpb.CHANGE_TYPE_UPDATED
        assert first.sequence == 1
        for state in (3, 4, 5, 1, 2):
            change(store, broker, {"10.0.0.1": state})
        change(store, broker, {"10.0.0.1": 3})  # after the overflow: lost too
        (overflow,) = await take(stream, 1)
        assert overflow.overflow.lost_events == 6  # every one of them
        assert not overflow.overflow.snapshot_follows
        change(store, broker, {"10.0.0.1": 4})
        (delta,) = await take(stream, 1)
        assert delta.peer.peer.state == 4

    asyncio.run(main())


def test_filter_and_kinds() -> None:
    async def main() -> None:
        store = Store()
        broker = Broker(store)
        change(store, broker, {"10.0.0.1": 1, "10.0.0.2": 5})
        store.set_singleton(wpb.EVENT_KIND_GUARD, wpb.GuardEvent().status)

        def up_only(e: wpb.WatchResponse) -> bool:
            return e.WhichOneof("event") != "peer" or e.peer.peer.state == 5

        stream = broker.stream(broker.subscribe([PEER, wpb.EVENT_KIND_GUARD], up_only))
        got = await take(stream, 4)
        assert kinds_of(got) == ["snapshot_begin", "peer", "guard", "snapshot_end"]
        assert got[1].peer.peer.key.remote_nbma == "10.0.0.2"
        assert got[3].snapshot_end.events == 2
        broker.publish(store.set_singleton(wpb.EVENT_KIND_NODE, wpb.NodeEvent().node))  # not asked
        change(store, broker, {"10.0.0.1": 5, "10.0.0.2": 5})
        (delta,) = await take(stream, 1)
        assert delta.peer.peer.key.remote_nbma == "10.0.0.1"

    asyncio.run(main())


def test_heartbeat_when_nothing_happens() -> None:
    async def main() -> None:
        broker = Broker(Store())
        stream = broker.stream(broker.subscribe([PEER]), heartbeat=0.01)
        got = await take(stream, 3)
        assert kinds_of(got) == ["snapshot_begin", "snapshot_end", "heartbeat"]
        assert got[2].sequence == 3

    asyncio.run(main())


@pytest.mark.parametrize(
    "kinds", [[wpb.EVENT_KIND_SHORTCUT], [wpb.EVENT_KIND_UNSPECIFIED], [PEER, 99]]
)
def test_unknown_kinds_are_refused(kinds: list[int]) -> None:
    broker = Broker(Store())
    with pytest.raises(ValueError, match="cannot watch"):
        broker.subscribe(kinds)  # type: ignore[arg-type]
    assert broker.subscriptions == set()


def test_every_kind_when_none_asked() -> None:
    sub = Broker(Store()).subscribe()
    assert PEER in sub.kinds
    assert wpb.EVENT_KIND_CONFIG in sub.kinds


def test_subscriptions_are_limited_per_client_and_in_all() -> None:
    """Issue 14 hole 9: one client (here uid 1000) could hold all 64 slots; now it holds at
    most its share, the others theirs, and root has slots no one else can take."""
    broker = Broker(Store(), max_subscriptions=3, per_client=2)
    broker.subscribe(principal="uid 1000")
    held = broker.subscribe(principal="uid 1000")
    with pytest.raises(TooManyWatchesError) as info:
        broker.subscribe(principal="uid 1000")
    assert str(info.value) == (
        "uid 1000 holds 2 Watch streams, the limit per client is 2: close one and watch again"
    )
    broker.subscribe(principal="certificate CN=shell,O=corp")
    with pytest.raises(TooManyWatchesError) as info:
        broker.subscribe(principal="uid 1001")
    assert str(info.value) == (
        "3 Watch streams are open, the limit for all clients is 3: close one and watch again"
    )
    assert all(broker.subscribe(principal="uid 0") for _ in range(16))  # root's own slots
    broker.unsubscribe(held)
    broker.unsubscribe(held)  # twice: the slot is given back once
    broker.subscribe(principal="uid 1001")
    assert broker.admission.held == {
        "uid 1000": 1,
        "certificate CN=shell,O=corp": 1,
        "uid 1001": 1,
        "uid 0": 16,
    }
