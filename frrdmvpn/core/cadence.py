"""When the supervisor looks again, and when the configuration is audited. Pure: no clock.

What changes mostly says so: charon's events, the kernel's neighbour notifications (nhrpd
writes one per binding), the proxy's decisions, a daemon's vty connection closing. Each
wakes the supervisor at once; for :attr:`Cadence.settle` seconds after it, it looks every
:attr:`Cadence.fast` seconds, since the daemons finish what was announced a little later
(nhrpd counts an SA after charon reported it). With nothing happening it looks every
:attr:`Cadence.rest` seconds, an audit of what an event could have missed, so its cost per
second is that of one observation divided by ``rest`` (linear in the peers, not more).
A peer's own timer (an NHS retry) and a neighbour entry watched step by step are kept too.

The configuration is audited separately (:class:`Audits`): on a schedule, and soon after
FRR was restarted or reloaded (``vtysh -b`` or ``frr-reload`` may still be running then).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

#: Never step again sooner than this (a timer that is due already is served next).
MIN_WAIT = 0.05


@dataclass
class Cadence:
    """Seconds between supervision steps."""

    fast: float = 1.0
    settle: float = 10.0
    rest: float = 10.0
    busy_until: float = -math.inf

    def stirred(self, now: float) -> None:
        """Something changed: look every ``fast`` seconds for the next ``settle``."""
        self.busy_until = max(self.busy_until, now + self.settle)

    def wait(self, now: float, due: float | None = None, watching: bool = False) -> float:
        """Seconds until the next step unless an event comes first. ``due``: the earliest
        timer of a peer; ``watching``: the supervisor counts something step by step."""
        interval = self.fast if watching or now < self.busy_until else self.rest
        if due is not None:
            interval = min(interval, due - now)
        return max(interval, MIN_WAIT)


@dataclass
class Audits:
    """When to compare what runs with the configuration: every ``period`` seconds, and at
    the times :meth:`soon` asked for."""

    period: float = 30.0
    next_at: float = 0.0
    extra: list[float] = field(default_factory=list)

    def soon(self, now: float, *delays: float) -> None:
        """Also audit ``delays`` seconds from now."""
        self.extra = sorted({*self.extra, *(now + d for d in delays)})

    def due(self, now: float) -> bool:
        """Whether an audit is due now; if so it counts as done."""
        extra = [t for t in self.extra if t <= now]
        if now < self.next_at and not extra:
            return False
        self.extra = [t for t in self.extra if t > now]
        self.next_at = now + self.period
        return True

    def wait(self, now: float) -> float:
        """Seconds until the next audit."""
        return max(min([self.next_at, *self.extra]) - now, MIN_WAIT)
