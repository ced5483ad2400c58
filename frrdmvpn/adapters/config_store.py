"""Where configurations live: the saved file, and the running one frrdmvpn last applied.

Writes are atomic (temporary file in the same directory, fsync, rename, fsync of the
directory): a reader sees the old file or the new one, never half of one, even across a
crash. Saving keeps the file it replaces as ``<name>.prev``.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from frrdmvpn.config.parse import decode

SAVED = Path("/etc/frrdmvpn/frrdmvpn.conf")
RUNNING = Path("/run/frrdmvpn/running.conf")


def atomic_write(path: Path, text: str, mode: int = 0o640) -> None:
    """Replace ``path`` with ``text`` (UTF-8, whatever the locale) atomically and durably."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def save(path: Path, text: str) -> Path | None:
    """Write ``text`` as the saved configuration, keeping the old file as ``.prev``;
    returns the kept file, if there was one."""
    previous = path.with_name(path.name + ".prev")
    kept = None
    if path.exists():
        # the bytes as they are, even those that are not UTF-8 (surrogateescape both ways)
        old = path.read_bytes().decode(errors="surrogateescape")
        atomic_write(previous, old, mode=path.stat().st_mode & 0o777)
        kept = previous
    atomic_write(path, text)
    return kept


@contextmanager
def locked(running: Path) -> Iterator[None]:
    """Hold the apply lock (``flock`` on ``apply.lock`` beside the running file)."""
    running.parent.mkdir(parents=True, exist_ok=True)
    with open(running.parent / "apply.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def read(path: Path) -> str | None:
    """The file's text, or None if there is none. A file that is not UTF-8 raises
    :class:`~frrdmvpn.config.diagnostics.ConfigError` at its first bad byte."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    return decode(data)
