"""bench/lab_results.py: the lab's numbers of several runs become one table; a number only
one run measured shows a dash for the others; a bad argument or file is a clear error."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[3]


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lab_results", ROOT / "bench/lab_results.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_releases_side_by_side(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.json").write_text(json.dumps({"sa_terminated_outage_s": 0.49, "x_s": 2}))
    (tmp_path / "b.json").write_text(json.dumps({"sa_terminated_outage_s": 0.51}))
    assert _bench().main([f"bookworm={tmp_path / 'a.json'}", f"trixie={tmp_path / 'b.json'}"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "| measure | bookworm | trixie |",
        "|---|---:|---:|",
        "| sa_terminated_outage_s | 0.49 | 0.51 |",
        "| x_s | 2 | — |",
    ]


@pytest.mark.parametrize("arg", ["no-label", "=path", "label="])
def test_an_unlabelled_run_is_refused(arg: str) -> None:
    with pytest.raises(SystemExit) as e:
        _bench().main([arg])
    assert e.value.code == 2


def test_a_missing_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _bench().main([f"a={tmp_path / 'missing.json'}"])
    assert "missing.json" in capsys.readouterr().err
