"""S8 where it is called, not only the functions: ``frrdmvpnd run`` tightens an older saved
file and its ``.prev`` before anything else (tests/unit/adapters/test_config_store.py tests
``tighten`` itself), and the service writes ``guard.json`` as root's, like ``peers.json``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
from collections.abc import Iterator
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from frrdmvpn import management
from frrdmvpn.adapters import vtysh
from frrdmvpn.application import frrdmvpnd
from frrdmvpn.supervision import Service

pytestmark = pytest.mark.unit


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def umask_0() -> Iterator[None]:
    old = os.umask(0)
    yield
    os.umask(old)


def test_run_tightens_the_saved_file_and_prev_before_it_does_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The package's file is 0644 and an editor may have put keys in it. This node has no
    tunnel source yet, so ``run`` stops at its first step (the NBMA address): the files
    were tightened before it."""
    monkeypatch.setattr(vtysh, "_default", vtysh._default)  # run sets the process's sessions
    etc = tmp_path / "etc"
    etc.mkdir()
    saved, prev = etc / "frrdmvpn.conf", etc / "frrdmvpn.conf.prev"
    saved.write_text("hostname spoke1\n")
    prev.write_text("hostname spoke0\n")
    saved.chmod(0o644)
    prev.chmod(0o664)
    outside = tmp_path / "other.conf"  # a link is never followed
    outside.write_text("hostname other\n")
    outside.chmod(0o644)
    running = tmp_path / "run" / "running.conf"
    args = frrdmvpnd.build_parser().parse_args(
        ["run", "-c", str(saved), "--running", str(running), "--no-api"]
    )
    with pytest.raises(ValueError, match="no NBMA address"):
        asyncio.run(management.run(args))
    assert (mode(saved), mode(prev)) == (0o600, 0o600)
    assert saved.read_text() == "hostname spoke1\n"  # tightened, not rewritten
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert f"{saved} was mode 0644; now 0600 (it holds keys or peer data)" in warnings
    assert f"{prev} was mode 0664; now 0600 (it holds keys or peer data)" in warnings
    assert not running.exists()  # nothing applied
    prev.unlink()
    prev.symlink_to(outside)
    with pytest.raises(ValueError, match="no NBMA address"):
        asyncio.run(management.run(args))
    assert mode(outside) == 0o644


@pytest.mark.usefixtures("umask_0")
def test_guard_json_is_born_root_only_like_peers_json(tmp_path: Path) -> None:
    """Under umask 0, over files a former version left 0644 and a stale 0666 temporary."""
    status = tmp_path / "run"
    status.mkdir()
    for name in ("peers.json", "guard.json"):
        (status / name).write_text("{}")
        (status / name).chmod(0o644)
    (status / ".guard.json.tmp").write_text("stale")
    (status / ".guard.json.tmp").chmod(0o666)
    service = Service(
        IPv4Address("198.51.100.11"), [], tmp_path / "charon.vici", status, frr=vtysh.Frr(tmp_path)
    )
    service._write_status()  # what every step of the service ends with
    assert sorted(p.name for p in status.iterdir()) == ["guard.json", "peers.json"]
    assert json.loads((status / "guard.json").read_text()) == service.report.as_dict()
    assert (mode(status / "guard.json"), mode(status / "peers.json")) == (0o600, 0o600)
