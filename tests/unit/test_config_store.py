"""Saved and running configuration files: atomic writes, the previous file kept."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from frrdmvpn import daemon
from frrdmvpn.adapters import config_store

pytestmark = pytest.mark.unit
EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "lab-hub.conf"


def test_save_replaces_atomically_and_keeps_the_previous_file(tmp_path: Path) -> None:
    path = tmp_path / "etc" / "frrdmvpn.conf"
    assert config_store.save(path, "hostname a\n") is None
    kept = config_store.save(path, "hostname b\n")
    assert kept == tmp_path / "etc" / "frrdmvpn.conf.prev"
    assert path.read_text() == "hostname b\n"
    assert kept.read_text() == "hostname a\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["frrdmvpn.conf", "frrdmvpn.conf.prev"]
    assert oct(path.stat().st_mode & 0o777) == oct(0o640)


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "frrdmvpn.conf"
    config_store.atomic_write(path, "hostname a\n")

    class BoomError(Exception):
        pass

    real_replace = os.replace

    def failing_replace(src: str | Path, dst: str | Path) -> None:
        raise BoomError

    os.replace = failing_replace  # type: ignore[assignment]
    try:
        with pytest.raises(BoomError):
            config_store.atomic_write(path, "hostname b\n")
    finally:
        os.replace = real_replace
    assert path.read_text() == "hostname a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["frrdmvpn.conf"]


def test_validate_command_reports_lines_and_exit_status(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert daemon.main(["validate", "-c", str(EXAMPLE)]) == 0
    bad = tmp_path / "bad.conf"
    bad.write_text(EXAMPLE.read_text().replace("tunnel key 42", "tunnel key forty-two"))
    assert daemon.main(["validate", "-c", str(bad)]) == 1
    err = capsys.readouterr().err
    line = next(i for i, t in enumerate(bad.read_text().splitlines(), 1) if "forty-two" in t)
    assert f"bad.conf:{line}:13: error:" in err
    assert "nothing applied" in err
    assert daemon.main(["validate", "-c", str(tmp_path / "missing.conf")]) == 1


def test_save_command_copies_running_to_saved(tmp_path: Path) -> None:
    running, saved = tmp_path / "running.conf", tmp_path / "frrdmvpn.conf"
    assert daemon.main(["save", "-c", str(saved), "--running", str(running)]) == 1
    running.write_text(EXAMPLE.read_text())
    assert daemon.main(["save", "-c", str(saved), "--running", str(running)]) == 0
    assert saved.read_text() == EXAMPLE.read_text()
