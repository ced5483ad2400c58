"""bench/lab_test_times.py: two junit files become one table, a test that moved into a class
keeping its row."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[3]


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "lab_test_times", ROOT / "bench/lab_test_times.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _junit(path: Path, cases: str) -> Path:
    path.write_text(f'<testsuites><testsuite name="pytest">{cases}</testsuite></testsuites>')
    return path


def test_runs_side_by_side_with_outcomes_and_sums(tmp_path: Path) -> None:
    before = _junit(
        tmp_path / "before.xml",
        '<testcase classname="tests.lab.test_a" name="test_cert" time="90.5"/>'
        '<testcase classname="tests.lab.test_a" name="test_gone" time="3">'
        '<failure message="x"/></testcase>',
    )
    after = _junit(
        tmp_path / "after.xml",
        '<testcase classname="tests.lab.test_a.TestOnCertificates" name="test_cert" '
        'time="40.25"/><testcase classname="tests.lab.test_b" name="test_new" '
        'time="1"><skipped message="y"/></testcase>',
    )
    bench = _bench()
    lines = bench.table(bench.cases(before), bench.cases(after)).splitlines()
    assert lines[2:] == [
        "| `tests/lab/test_a.py::test_cert` | 90.5 | 40.2 |",
        "| `tests/lab/test_b.py::test_new` | — | 1.0 (skipped) |",
        "| `tests/lab/test_a.py::test_gone` | 3.0 (failed) | — |",
        "| **sum** (2 / 2 tests) | 94 | 41 |",
    ]
