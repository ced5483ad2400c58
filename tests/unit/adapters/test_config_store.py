"""Saved and running configuration files: atomic writes, the previous file kept."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from frrdmvpn.adapters import config_store
from frrdmvpn.application import frrdmvpnd
from frrdmvpn.config.parse import parse_strict
from frrdmvpn.datastores import Datastores
from tests.fakes.world import World

pytestmark = pytest.mark.unit
EXAMPLE = Path(__file__).resolve().parents[3] / "docs" / "examples" / "lab-hub.conf"


def test_save_replaces_atomically_and_keeps_the_previous_file(tmp_path: Path) -> None:
    path = tmp_path / "etc" / "frrdmvpn.conf"
    assert config_store.save(path, "hostname a\n") is None
    kept = config_store.save(path, "hostname b\n")
    assert kept == tmp_path / "etc" / "frrdmvpn.conf.prev"
    assert path.read_text() == "hostname b\n"
    assert kept.read_text() == "hostname a\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["frrdmvpn.conf", "frrdmvpn.conf.prev"]
    assert oct(path.stat().st_mode & 0o777) == oct(0o600)


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o7777


def test_every_file_is_born_0600_whatever_the_umask_and_the_files_before_it(
    tmp_path: Path,
) -> None:
    """Issue 14 hole 6: the saved file shipped 0644 made its .prev 0644; a stale temporary
    file (0666 from a crash) was reused with its mode; the mode is final before any byte."""
    path = tmp_path / "etc" / "frrdmvpn.conf"
    path.parent.mkdir()
    path.write_text("pre-shared-key old\n")
    path.chmod(0o644)
    stale = path.with_name(".frrdmvpn.conf.tmp")
    stale.write_text("")
    stale.chmod(0o666)
    created: list[int] = []
    real_open = os.open

    def watching_open(file: Any, flags: int, mode: int = 0o777, **kw: Any) -> int:
        fd = real_open(file, flags, mode, **kw)
        if flags & os.O_CREAT:
            created.append(os.fstat(fd).st_mode & 0o7777)
        return fd

    old_umask = os.umask(0)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(os, "open", watching_open)
            kept = config_store.save(path, "pre-shared-key new\n")
    finally:
        os.umask(old_umask)
    assert kept is not None
    assert created == [0o600, 0o600]  # .prev, then the file: born 0600, not widened later
    assert (mode(kept), mode(path)) == (0o600, 0o600)
    assert kept.read_text() == "pre-shared-key old\n"
    assert not stale.exists()


def test_tighten_an_older_file_but_never_through_a_link(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "frrdmvpn.conf"
    path.write_text("pre-shared-key k\n")
    path.chmod(0o644)
    assert config_store.tighten(path) == 0o644
    assert mode(path) == 0o600
    assert f"{path} was mode 0644; now 0600 (it holds keys or peer data)" in caplog.text
    assert config_store.tighten(path) is None  # already tight
    target = tmp_path / "elsewhere"
    target.write_text("")
    target.chmod(0o644)
    link = tmp_path / "link.conf"
    link.symlink_to(target)
    assert config_store.tighten(link) is None
    assert mode(target) == 0o644
    assert config_store.tighten(tmp_path / "absent") is None


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
    assert frrdmvpnd.main(["validate", "-c", str(EXAMPLE)]) == 0
    bad = tmp_path / "bad.conf"
    bad.write_text(EXAMPLE.read_text().replace("tunnel key 42", "tunnel key forty-two"))
    assert frrdmvpnd.main(["validate", "-c", str(bad)]) == 1
    err = capsys.readouterr().err
    line = next(i for i, t in enumerate(bad.read_text().splitlines(), 1) if "forty-two" in t)
    assert f"bad.conf:{line}:13: error:" in err
    assert "nothing applied" in err
    assert frrdmvpnd.main(["validate", "-c", str(tmp_path / "missing.conf")]) == 1


def test_save_command_copies_running_to_saved(tmp_path: Path) -> None:
    running, saved = tmp_path / "running.conf", tmp_path / "frrdmvpn.conf"
    assert frrdmvpnd.main(["save", "-c", str(saved), "--running", str(running)]) == 1
    running.write_text(EXAMPLE.read_text())
    assert frrdmvpnd.main(["save", "-c", str(saved), "--running", str(running)]) == 0
    assert saved.read_text() == EXAMPLE.read_text()


def test_the_peer_table_the_decisions_and_the_running_file_are_root_only(tmp_path: Path) -> None:
    """peers.json and guard.json were written 0644 (the umask's), the decision journal 0640."""
    from frrdmvpn.adapters.decision_journal import DecisionJournal  # noqa: PLC0415
    from frrdmvpn.datastores import Datastores  # noqa: PLC0415
    from frrdmvpn.supervision import _write_json  # noqa: PLC0415
    from tests.fakes.world import World  # noqa: PLC0415

    old_umask = os.umask(0o022)
    try:
        _write_json(tmp_path / "run" / "peers.json", '[{"remote": "198.51.100.2"}]')
        DecisionJournal(tmp_path / "run" / "authorization.json").write()
        world = World()
        text = EXAMPLE.read_text()
        ds = Datastores(
            saved=tmp_path / "etc" / "frrdmvpn.conf",
            running=tmp_path / "run" / "running.conf",
            ports=lambda: world.ports(parse_strict(text)),
        )
        assert ds.apply_text(text).ok
        ds.save()
    finally:
        os.umask(old_umask)
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert [str(p) for p in written] == [
        "etc/frrdmvpn.conf",
        "run/apply.lock",
        "run/authorization.json",
        "run/peers.json",
        "run/running.conf",
    ]
    assert {str(p): mode(tmp_path / p) for p in written if p.name != "apply.lock"} == {
        "etc/frrdmvpn.conf": 0o600,
        "run/authorization.json": 0o600,
        "run/peers.json": 0o600,
        "run/running.conf": 0o600,
    }


@pytest.fixture
def sighups() -> Iterator[list[int]]:
    """SIGHUPs this process receives (the proxy's pidfile will name it), by count."""
    got: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        got.append(signum)

    old = signal.signal(signal.SIGHUP, handler)
    try:
        yield got
    finally:
        signal.signal(signal.SIGHUP, old)


def test_a_new_profile_is_announced_while_it_is_applied(tmp_path: Path, sighups: list[int]) -> None:
    running = tmp_path / "run" / "running.conf"
    running.parent.mkdir()
    (running.parent / "proxy.pid").write_text(f"{os.getpid()}\n")
    seen: list[tuple[str, frozenset[str], int]] = []

    class Watching(World):
        def frr_configure(self, daemon: str, lines: list[str]) -> None:
            seen.append((daemon, config_store.announced(running), len(sighups)))
            super().frr_configure(daemon, lines)

    world = Watching()
    text = EXAMPLE.read_text()
    stores = Datastores(
        saved=tmp_path / "saved.conf",
        running=running,
        ports=lambda: world.ports(parse_strict(text)),
    )
    assert stores.apply_text(text).ok
    assert seen[0] == ("nhrpd", frozenset({"dmvpn"}), 1), "announced and signalled first"
    assert config_store.announced(running) == frozenset(), "withdrawn once running"
    assert not config_store.announced_path(running).exists()
    assert len(sighups) == 3  # announced, running, withdrawn
    seen.clear()
    renamed = text.replace("profile dmvpn", "profile dmvpn2")
    world.fail_on = "vtysh nhrpd"
    stores.ports = lambda: world.ports(parse_strict(renamed))
    assert not stores.apply_text(renamed).ok
    assert seen[0] == ("nhrpd", frozenset({"dmvpn2"}), 4)
    assert config_store.announced(running) == frozenset(), "withdrawn after a failure too"
    assert len(sighups) == 5
