"""Fuzz: the proxy's decision journal as frrdmvpnd reads it
(frrdmvpn/adapters/decision_journal.py ``read``, then the API's views of it), whatever the
file holds: torn or edited by hand, from another version, or not JSON at all.

Properties: ``read`` returns None or a journal every consumer takes as it is (new decisions
become Watch events; counters, latency, the decisions listed) without raising, in memory
proportional to the file. Generation: the journal DecisionJournal writes, with values
replaced by other JSON (strings, huge or non-finite numbers, nesting), keys dropped, bytes
mutated.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from frrdmvpn.adapters.decision_journal import DecisionJournal, read
from frrdmvpn.api import state as api_state
from frrdmvpn.api.backend import Backend
from frrdmvpn.core.authorize import Decision
from frrdmvpn.datastores import Datastores
from tests.fakes.nhrp_events import authorize_binding
from tests.fuzzing import MARKS, assert_bounded, budget, mutations

pytestmark = MARKS

EVENT = authorize_binding()


def _written() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        journal = DecisionJournal(Path(tmp) / "authorization.json", mode="psk-map")
        journal.add(EVENT, Decision(True, "accept: spoke1 owns 192.0.2.11/32"), 0.0012)
        journal.add(EVENT, Decision(False, "deny: no key", weak=False), 0.0009)
        data: dict[str, Any] = json.loads(journal.path.read_text())
    return data


WRITTEN = _written()
ODD = st.sampled_from(
    [
        None,
        True,
        -1,
        0,
        2**64,
        1e308,
        -1e308,
        float("inf"),
        float("nan"),
        "",
        "x",
        "1e999",
        [],
        {},
        [1],
        {"id": 1},
    ]
)
json_values = st.recursive(
    ODD | st.integers() | st.floats() | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def journals(draw: st.DrawFn) -> bytes:
    data = json.loads(json.dumps(WRITTEN))
    for _ in range(draw(st.integers(1, 4))):
        target = data
        where = draw(st.sampled_from(["top", "counters", "decision"]))
        counters, decisions = data.get("counters"), data.get("decisions")
        if where == "counters" and isinstance(counters, dict):
            target = counters
        elif where == "decision" and isinstance(decisions, list) and decisions:
            picked = decisions[draw(st.integers(0, len(decisions) - 1))]
            target = picked if isinstance(picked, dict) else target
        keys = sorted(target) or ["x"]
        key = draw(st.sampled_from(keys))
        if draw(st.booleans()):
            target[key] = draw(json_values)
        else:
            target.pop(key, None)
    return json.dumps(data).encode()


files = journals() | journals().flatmap(mutations) | st.binary(max_size=60)


def _consume(journal: dict[str, Any] | None) -> None:
    """What frrdmvpnd does with a journal it read: each step, and each API call."""
    with tempfile.TemporaryDirectory() as tmp:
        stores = Datastores(saved=Path(tmp) / "frrdmvpn.conf", running=Path(tmp) / "running")
        backend = Backend(stores, hostname="hub")
        backend.journal_read(journal)
        backend.journal_read(journal)  # read again: nothing new
        backend.authorization_counters()
        backend.authorization_latency()
        for d in api_state.iter_decisions(backend.journal):
            api_state.decision_message(d)


@budget(200)
@given(files)
@example(json.dumps({**WRITTEN, "started": "yesterday"}).encode())
@example(json.dumps({**WRITTEN, "counters": [1, 2]}).encode())
@example(json.dumps({**WRITTEN, "decisions": [{"id": "x"}]}).encode())
@example(json.dumps({**WRITTEN, "decisions": [{"id": 1, "at": 1e300}]}).encode())
@example(b'{"decisions": [{"id": 1, "latency": Infinity}]}')
def test_whatever_the_file_holds_frrdmvpnd_reads_it_or_ignores_it(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "authorization.json"
        path.write_bytes(data)
        journal = assert_bounded(lambda: read(path), len(data), factor=256)
    assert journal is None or isinstance(journal, dict), repr(journal)
    _consume(journal)


def test_the_journal_the_proxy_writes_reads_back_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "authorization.json"
    path.write_text(json.dumps(WRITTEN))
    assert read(path) == WRITTEN
