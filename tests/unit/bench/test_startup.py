"""bench/startup.py: a command's imports and wall time become a row of the table."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[3]


def _bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    spec = importlib.util.spec_from_file_location("startup", ROOT / "bench/startup.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # its dataclass looks itself up
    spec.loader.exec_module(module)
    return module


def test_configured_is_measured_and_imports_nothing_heavy(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _bench(monkeypatch).main(["--runs", "1", "--only", "frrdmvpnd configured"]) == 0
    header, rule, row = capsys.readouterr().out.splitlines()
    assert header.startswith("| command | modules | import time | heavy packages |")
    assert rule.startswith("|---|")
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[0] == "`frrdmvpnd configured`"
    assert int(cells[1]) > 100  # the configuration's modules
    assert cells[3] == "—"  # none of bench/startup.py's HEAVY
    assert cells[5] == "0"  # the copy of the lab's spoke1 defines a tunnel


def test_two_trees_side_by_side(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = _bench(monkeypatch)
    assert bench.main(["--runs", "1", "--only", "pass", "--before", str(ROOT)]) == 0
    header, _, row = capsys.readouterr().out.splitlines()
    assert header.startswith("| command | modules before | after | import time before |")
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[0] == "`python -c pass`"
    assert cells[1] == cells[2]  # the same tree
    assert cells[-1] == "0"
