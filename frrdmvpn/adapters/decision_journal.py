"""The proxy's authorization decisions, shared with frrdmvpnd through one JSON file.

frrdmvpn-proxy decides; frrdmvpnd shows (API, Watch, shell). The proxy rewrites
``/run/frrdmvpn/authorization.json`` atomically after each decision: the counters since the
proxy started and the latest :data:`KEPT` decisions, each with an id that only grows, so a
reader can tell new decisions from ones it has seen.
"""

from __future__ import annotations

import json
import time
from collections import Counter, deque
from pathlib import Path
from typing import Any

from frrdmvpn.adapters.config_store import atomic_write
from frrdmvpn.core.authorize import Decision
from frrdmvpn.nhrp.events import AuthorizeBinding

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

    def add(self, event: AuthorizeBinding, decision: Decision, latency: float) -> None:
        """Record one answered authorize-binding event and rewrite the file."""
        self.counters["accepted" if decision.accept else "denied"] += 1
        if decision.weak and decision.accept:
            self.counters["weak_accepted"] += 1
        self.decisions.append({
            "id": self.next_id, "at": time.time(), "accept": decision.accept,
            "weak": decision.weak, "reason": decision.reason,
            "identity": decision.peer_identity or "", "mode": self.mode,
            "eventid": event.eventid, "interface": event.interface, "type": event.type,
            "claimed": "" if event.remote_addr is None else str(event.remote_addr),
            "local_nbma": "" if event.local_nbma is None else str(event.local_nbma),
            "remote_nbma": "" if event.remote_nbma is None else str(event.remote_nbma),
            "latency": round(latency, 6),
        })  # fmt: skip
        self.next_id += 1
        self.write()

    def write(self) -> None:
        data = {"started": self.started, "mode": self.mode, "counters": dict(self.counters),
                "decisions": list(self.decisions)}  # fmt: skip
        atomic_write(self.path, json.dumps(data))  # peer identities: root only


def read(path: Path = PATH) -> dict[str, Any] | None:
    """The journal as the proxy last wrote it; None if absent or unreadable."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
