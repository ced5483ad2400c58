"""The trap initiator: kick, check for the SA, clear larval states and kick again."""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path

import pytest

from frrdmvpn.adapters.initiator import Initiator
from frrdmvpn.adapters.vici_client import ViciError
from frrdmvpn.core.authorize import ChildSa
from frrdmvpn.core.vici_translate import InitiateChild
from tests.fakes.observations import child

pytestmark = pytest.mark.unit

ip = ipaddress.ip_address
REQ = InitiateChild("dmvpn", ip("198.51.100.11"), ip("198.51.100.1"))
OTHER = InitiateChild("dmvpn", ip("198.51.100.11"), ip("198.51.100.12"))
GRE_SA = child(ip("198.51.100.1"), local_id="a", remote_id="b")


class Charon:
    """Lists the SAs it has; the SA appears after ``appear_after`` kicks (never if 0)."""

    def __init__(self, appear_after: int, fail_listings: int = 0) -> None:
        self.appear_after = appear_after
        self.fail_listings = fail_listings
        self.kicked: list[InitiateChild] = []
        self.flushes = 0
        self.events: list[str] = []

    def kick(self, req: InitiateChild) -> None:
        self.kicked.append(req)
        self.events.append("kick")

    async def flush(self) -> int:
        self.flushes += 1
        self.events.append("flush")
        return 1

    async def listing(self, _path: Path) -> list[ChildSa]:
        if self.fail_listings:
            self.fail_listings -= 1
            raise ViciError("charon is restarting")
        up = self.appear_after and len(self.kicked) >= self.appear_after
        return [GRE_SA] if up else []


def make(charon: Charon, delays: tuple[float, ...] = (0.01, 0.01, 0.01)) -> Initiator:
    return Initiator(
        Path("/nonexistent"),
        charon.flush,
        kick=charon.kick,
        listing=charon.listing,
        delays=delays,
    )


def test_first_kick_that_works_ends_the_follow_up_without_flushing() -> None:
    charon = Charon(appear_after=1)

    async def main() -> None:
        init = make(charon)
        init.request(REQ)
        await init.wait_idle()

    asyncio.run(main())
    assert charon.events == ["kick"]


def test_lost_acquire_is_retried_after_clearing_larval_states() -> None:
    charon = Charon(appear_after=3)

    async def main() -> None:
        init = make(charon, delays=(0.01,) * 5)
        init.request(REQ)
        await init.wait_idle()
        assert (init.kicks, init.flushes) == (3, 2)

    asyncio.run(main())
    assert charon.events == ["kick", "flush", "kick", "flush", "kick"]


def test_gives_up_after_the_bounded_attempts() -> None:
    charon = Charon(appear_after=0)

    async def main() -> None:
        init = make(charon, delays=(0.01,) * 4)
        init.request(REQ)
        await init.wait_idle()

    asyncio.run(main())
    assert charon.kicked == [REQ] * 4
    assert charon.flushes == 3


def test_one_follow_up_per_pair_others_run_alongside() -> None:
    charon = Charon(appear_after=0)

    async def main() -> None:
        init = make(charon, delays=(0.05, 0.05))
        init.request(REQ)
        init.request(REQ)  # nhrpd asking again meanwhile: no second follow-up
        init.request(OTHER)
        await asyncio.sleep(0)
        assert len(init._running) == 2
        await init.wait_idle()
        assert not init._running
        init.request(REQ)  # after it ended, a new request starts a new one
        await init.wait_idle()

    asyncio.run(main())
    assert charon.kicked.count(REQ) == 4
    assert charon.kicked.count(OTHER) == 2


def test_failing_listing_flush_and_kick_do_not_stop_the_follow_up() -> None:
    charon = Charon(appear_after=3, fail_listings=1)
    calls = {"kick": 0}

    def flaky_kick(req: InitiateChild) -> None:
        calls["kick"] += 1
        if calls["kick"] == 1:
            raise OSError("network is unreachable")
        charon.kick(req)

    async def failing_flush() -> int:
        raise RuntimeError("ip xfrm failed")

    async def main() -> None:
        init = Initiator(
            Path("/x"), failing_flush, kick=flaky_kick, listing=charon.listing, delays=(0.01,) * 5
        )
        init.request(REQ)
        await init.wait_idle()
        assert init.kicks == 4  # the failed kick, then three that reach the trap

    asyncio.run(main())
