"""Fixtures of the unit tier."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory other users can reach (pytest's tmp_path is root's only): for clients
    run as other uids against a server of the test."""
    path = Path(tempfile.mkdtemp(prefix="fadm-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)
