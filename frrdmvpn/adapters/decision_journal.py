"""The proxy's authorization decisions, shared with frrdmvpnd through one JSON file.

frrdmvpn-proxy decides; frrdmvpnd shows (API, Watch, shell). The proxy rewrites
``/run/frrdmvpn/authorization.json`` atomically after each decision: the counters since the
proxy started and the latest :data:`KEPT` decisions, each with an id that only grows, so a
reader can tell new decisions from ones it has seen.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
from collections import Counter, deque
from pathlib import Path
from typing import Any, BinaryIO

from frrdmvpn.adapters.config_store import atomic_write
from frrdmvpn.codec.nhrp_events import AuthorizeBinding
from frrdmvpn.core.authorize import Decision

PATH = Path("/run/frrdmvpn/authorization.json")
KEPT = 256


class DecisionJournal:
    """Append decisions; readers get them from :func:`read`."""

    def __init__(self, path: Path = PATH, mode: str = "") -> None:
        self.path = path
        self.mode = mode
        self.started = time.time()
        self.counters: Counter[str] = Counter()
        self.decisions: deque[dict[str, Any]] = deque(maxlen=KEPT)
        self.next_id = 1
        self._pending: asyncio.Future[None] | None = None
        self._batch = 0  # decisions waiting for the pending write

    def add(self, event: AuthorizeBinding, decision: Decision, latency: float) -> None:
        """Record one answered authorize-binding event and rewrite the file."""
        self.record(event, decision, latency)
        self.write()

    async def added(self, event: AuthorizeBinding, decision: Decision, latency: float) -> None:
        """:meth:`add` for the proxy's event loop: returns once the file holds the decision.
        Decisions recorded in the same turn of the loop (a burst of registrations) share
        one write; OSError if that write failed."""
        self.record(event, decision, latency)
        if self._pending is None:
            loop = asyncio.get_running_loop()
            self._pending = loop.create_future()
            self._batch = 0
            loop.call_soon(self._write_pending, self._pending)
        pending = self._pending
        self._batch += 1
        if self._batch == KEPT:  # the file holds KEPT decisions: write before they scroll out
            self._write_pending(pending)
        await asyncio.shield(pending)

    def _write_pending(self, done: asyncio.Future[None]) -> None:
        if done.done():  # written already: the batch was full
            return
        if self._pending is done:
            self._pending = None  # a decision recorded from now on needs a write of its own
        try:
            self.write()
        except Exception as exc:  # every waiter learns it; none is left waiting
            done.set_exception(exc)
        else:
            done.set_result(None)

    def record(self, event: AuthorizeBinding, decision: Decision, latency: float) -> None:
        """Keep one decision in memory (the file is written by :meth:`write`)."""
        self.counters["accepted" if decision.accept else "denied"] += 1
        if decision.weak and decision.accept:
            self.counters["weak_accepted"] += 1
        self.decisions.append(
            {
                "id": self.next_id,
                "at": time.time(),
                "accept": decision.accept,
                "weak": decision.weak,
                "reason": decision.reason,
                "identity": decision.peer_identity or "",
                "mode": self.mode,
                "eventid": event.eventid,
                "interface": event.interface,
                "type": event.type,
                "claimed": "" if event.remote_addr is None else str(event.remote_addr),
                "local_nbma": "" if event.local_nbma is None else str(event.local_nbma),
                "remote_nbma": "" if event.remote_nbma is None else str(event.remote_nbma),
                "latency": round(latency, 6),
            }
        )
        self.next_id += 1

    def write(self) -> None:
        data = {
            "started": self.started,
            "mode": self.mode,
            "counters": dict(self.counters),
            "decisions": list(self.decisions),
        }
        atomic_write(self.path, json.dumps(data))  # peer identities: root only


MAX_BYTES = 4 * 1024 * 1024  # the proxy writes ~0.5 KiB a decision, KEPT of them
READ_CHUNK = 65536
MAX_TIME = 253402300799.0  # 9999-12-31T23:59:59Z, the last instant a Timestamp holds
MAX_COUNT = 2**63 - 1

_DECISION_TYPES: dict[str, tuple[type, ...]] = {
    "id": (int,),
    "at": (int, float),
    "accept": (bool,),
    "weak": (bool,),
    "reason": (str,),
    "identity": (str,),
    "mode": (str,),
    "eventid": (int,),
    "interface": (str,),
    "type": (str,),
    "claimed": (str,),
    "local_nbma": (str,),
    "remote_nbma": (str,),
    "latency": (int, float),
}
_RANGES: dict[str, tuple[float, float]] = {
    "id": (0, MAX_COUNT),
    "at": (0, MAX_TIME),
    "eventid": (0, 0xFFFFFFFF),
    "latency": (0, MAX_TIME),
}


def _fits(key: str, value: object, types: tuple[type, ...]) -> bool:
    """``value`` is of one of ``types`` (a bool is no number) and in ``key``'s range."""
    if isinstance(value, bool) and bool not in types:
        return False
    if not isinstance(value, types):
        return False
    low, high = _RANGES.get(key, (-math.inf, math.inf))
    return not isinstance(value, int | float) or isinstance(value, bool) or low <= value <= high


def parse(data: bytes) -> dict[str, Any] | None:
    """The journal in ``data`` as the proxy writes it; None if it is not one. A decision
    with a field of another type or out of range is left out (the rest still count)."""
    try:
        journal = json.loads(data)
    except ValueError:  # not UTF-8, not JSON
        return None
    except RecursionError:  # nested deeper than the parser goes
        return None
    if not isinstance(journal, dict):
        return None
    started, mode = journal.get("started", 0.0), journal.get("mode", "")
    counters, decisions = journal.get("counters", {}), journal.get("decisions", [])
    if not (
        _fits("at", started, (int, float))
        and isinstance(mode, str)
        and isinstance(counters, dict)
        and isinstance(decisions, list)
    ):
        return None
    return {
        "started": float(started),
        "mode": mode,
        "counters": {k: v for k, v in counters.items() if _fits("id", v, (int,))},
        "decisions": [
            d
            for d in decisions
            if isinstance(d, dict)
            and all(_fits(k, d[k], types) for k, types in _DECISION_TYPES.items() if k in d)
        ],
    }


def read(path: Path = PATH) -> dict[str, Any] | None:
    """The journal as the proxy last wrote it; None if absent, unreadable, larger than
    :data:`MAX_BYTES` or not a journal (:func:`parse`). No more than one byte over the cap
    is read, even where ``fstat`` knows no size (not a regular file) or the file grows."""
    try:
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > MAX_BYTES:
                return None
            data = _read_capped(f, size)
    except OSError:
        return None
    return parse(data) if len(data) <= MAX_BYTES else None


def _read_capped(f: BinaryIO, size: int) -> bytes:
    """At most :data:`MAX_BYTES` + 1 bytes of ``f``, whose size ``fstat`` says is ``size``:
    a regular file in one read, whatever else (a FIFO, a file that grows) in chunks."""
    chunks: list[bytes] = []
    held, want = 0, size + 1
    while held <= MAX_BYTES:
        asked = min(want, MAX_BYTES + 1 - held)
        chunk = f.read(asked)
        chunks.append(chunk)
        held, want = held + len(chunk), READ_CHUNK
        if len(chunk) < asked:  # a buffered read comes back short only at the end
            break
    return b"".join(chunks)
