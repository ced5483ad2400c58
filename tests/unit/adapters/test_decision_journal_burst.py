"""The proxy's decision journal under a burst (frrdmvpn/adapters/decision_journal.py
``added``): decisions recorded in one turn of the event loop share one write, and none of
them returns before the file holds it (nhrpd acts on an answer only after its decision is
on record: the causal order frrdmvpnd publishes in)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from frrdmvpn.adapters.decision_journal import KEPT, DecisionJournal, read
from frrdmvpn.core.authorize import Decision
from tests.fakes.nhrp_events import authorize_binding

pytestmark = pytest.mark.unit


class Counted(DecisionJournal):
    def __init__(self, path: Path, fail: int = 0) -> None:
        super().__init__(path, mode="psk-map")
        self.writes = 0
        self.fail = fail
        self.written_ids: set[int] = set()

    def write(self) -> None:
        self.writes += 1
        if self.fail:
            self.fail -= 1
            raise OSError("disk full")
        super().write()
        self.written_ids |= {d["id"] for d in self.decisions}


def test_a_burst_shares_one_write_and_each_returns_after_it(tmp_path: Path) -> None:
    journal = Counted(tmp_path / "authorization.json")
    ids_on_file: list[set[int]] = []

    async def one(i: int) -> None:
        await journal.added(authorize_binding(), Decision(True, f"accept {i}"), 0.001)
        on_file = read(journal.path)
        assert on_file is not None
        ids_on_file.append({d["id"] for d in on_file["decisions"]})

    async def main() -> None:
        await asyncio.gather(*(one(i) for i in range(50)))
        assert journal.writes == 1
        await one(50)  # a later decision gets a write of its own
        assert journal.writes == 2

    asyncio.run(main())
    assert all(ids >= set(range(1, 51)) for ids in ids_on_file[:50])
    assert 51 in ids_on_file[50]


def test_a_failed_write_reaches_every_waiter_and_the_next_one_writes_again(
    tmp_path: Path,
) -> None:
    journal = Counted(tmp_path / "authorization.json", fail=1)

    async def one(i: int) -> str:
        try:
            await journal.added(authorize_binding(), Decision(False, f"deny {i}"), 0.001)
        except OSError as exc:
            return str(exc)
        return "written"

    async def main() -> None:
        assert await asyncio.gather(*(one(i) for i in range(3))) == ["disk full"] * 3
        assert await one(3) == "written"

    asyncio.run(main())
    on_file = read(journal.path)
    assert on_file is not None
    assert [d["reason"] for d in on_file["decisions"]] == [f"deny {i}" for i in range(4)]
    assert on_file["counters"] == {"denied": 4}


def test_a_burst_larger_than_the_file_holds_writes_before_any_decision_scrolls_out(
    tmp_path: Path,
) -> None:
    journal = Counted(tmp_path / "authorization.json")
    unwritten: list[int] = []

    async def one(i: int) -> None:
        mine = journal.next_id  # the id added() gives it, before it awaits anything
        await journal.added(authorize_binding(), Decision(True, f"accept {i}"), 0.001)
        if mine not in journal.written_ids:
            unwritten.append(mine)

    async def main() -> None:
        await asyncio.gather(*(one(i) for i in range(3 * KEPT + 10)))

    asyncio.run(main())
    assert not unwritten, f"{len(unwritten)} answers left before a write held their decision"
    assert journal.writes == 4  # one per KEPT decisions, one for the rest


def test_any_failure_of_the_write_reaches_the_waiters(tmp_path: Path) -> None:
    class Broken(DecisionJournal):
        def write(self) -> None:
            raise ValueError("not serialisable")

    journal = Broken(tmp_path / "authorization.json")

    async def main() -> list[BaseException | None]:
        return await asyncio.gather(
            *(journal.added(authorize_binding(), Decision(True, "x"), 0.0) for _ in range(3)),
            return_exceptions=True,
        )

    results = asyncio.run(asyncio.wait_for(main(), 5))
    assert [type(r) for r in results] == [ValueError] * 3
