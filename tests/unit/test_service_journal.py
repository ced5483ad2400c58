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


def test_only_a_new_decision_in_the_journal_stirs_the_supervisor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An audit of the proxy's SA table rewrites the journal with its counters alone: no
    step for that, or a hub would step every second for ever (lab audits every 5 s)."""
    path = tmp_path / "authorization.json"
    monkeypatch.setattr(decision_journal, "PATH", path)
    service = Service(IPv4Address("198.51.100.1"), [], tmp_path / "charon.vici", tmp_path)
    stirred: list[int] = []
    monkeypatch.setattr(service, "stir", lambda: stirred.append(1))

    def write(counters: dict[str, int], started: float = 1.0) -> int:
        journal = {"started": started, "mode": "psk-map", "counters": counters, "decisions": []}
        atomic_write(path, json.dumps(journal))
        service.journal_written()
        return len(stirred)

    assert write({"accepted": 1}) == 1  # the first look: a decision not seen before
    assert write({"accepted": 1, "sa_table_audits": 1}) == 1
    assert write({"accepted": 1, "sa_table_audits": 2, "sa_table_drift": 1}) == 1
    assert write({"accepted": 1, "denied": 1, "sa_table_audits": 2}) == 2
    assert write({"accepted": 2, "denied": 1, "sa_table_audits": 3}) == 3
    path.write_text("not a journal")
    service.journal_written()
    assert len(stirred) == 4  # unreadable: look (the step reports it)
    assert write({"accepted": 2, "denied": 1}) == 5  # readable again: a step to re-read
    # the proxy restarted and decided as often as before: new decisions all the same
    assert write({"accepted": 2, "denied": 1}, started=2.0) == 6
