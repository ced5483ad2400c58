"""The supervision step reads the proxy's decision journal whenever it was written again,
even within the same clock tick as the read before (each decision must reach the API)."""

from __future__ import annotations

import json
import os
from ipaddress import IPv4Address
from pathlib import Path
from typing import cast

import pytest

from frrdmvpn.adapters import decision_journal
from frrdmvpn.adapters.config_store import atomic_write
from frrdmvpn.supervision import Observer, Service

pytestmark = pytest.mark.unit


def _journal(accepted: int) -> str:
    return json.dumps(
        {"started": 1.0, "mode": "psk-map", "counters": {"accepted": accepted}, "decisions": []}
    )


def test_a_journal_written_again_in_the_same_tick_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "authorization.json"
    monkeypatch.setattr(decision_journal, "PATH", path)
    service = Service(IPv4Address("198.51.100.1"), [], tmp_path / "charon.vici", tmp_path)
    service.observer = cast("Observer", object())  # only "is there an observer" is asked
    atomic_write(path, _journal(1))
    tick = path.stat().st_mtime_ns
    first = service.read_journal()
    assert first is not None
    assert first["counters"] == {"accepted": 1}
    assert service.read_journal() is None  # unchanged: not read again
    atomic_write(path, _journal(2))  # the proxy's next decision, same coarse tick
    os.utime(path, ns=(tick, tick))
    second = service.read_journal()
    assert second is not None
    assert second["counters"] == {"accepted": 2}
