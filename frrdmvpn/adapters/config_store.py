"""Where configurations live: the saved file, and the running one frrdmvpn last applied.

Writes are atomic (temporary file in the same directory, fsync, rename, fsync of the
directory): a reader sees the old file or the new one, never half of one, even across a
crash. Saving keeps the file it replaces as ``<name>.prev``.

Every file frrdmvpn writes holds keys or peer data (a configuration, the peer table, the
authorization decisions): it is born :data:`SECRET` (0600, root only) before a byte is
written, whatever the umask or the mode of the file it replaces; nobody but root needs to
read one (operators read it all through the API). :func:`tighten` brings an older file
(a package's 0644 ``frrdmvpn.conf``) down to that mode.
"""

from __future__ import annotations

import fcntl
import logging
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from frrdmvpn.config.charon_socket import Kind, Standing, standing
from frrdmvpn.config.diagnostics import ConfigError
from frrdmvpn.config.model import Config
from frrdmvpn.config.parse import decode
from frrdmvpn.config.validate import check

SAVED = Path("/etc/frrdmvpn/frrdmvpn.conf")
RUNNING = Path("/run/frrdmvpn/running.conf")


SECRET = 0o600
log = logging.getLogger(__name__)


def atomic_write(path: Path, text: str, mode: int = SECRET) -> None:
    """Replace ``path`` with ``text`` atomically and durably; the new file has exactly
    ``mode`` from its creation on (a stale temporary file is removed, not reused)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(tmp, flags, mode)
    try:
        os.fchmod(fd, mode)  # exactly this mode, whatever the umask: still empty here
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
        atomic_write(previous, old)  # SECRET, not the old file's mode
        kept = previous
    atomic_write(path, text)
    return kept


def tighten(path: Path, mode: int = SECRET) -> int | None:
    """Make a regular file at ``path`` no more open than ``mode`` (a symbolic link is not
    followed); returns the mode it had when it was more open, else None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:  # absent, a symbolic link (ELOOP), unreadable: nothing to tighten here
        return None
    try:
        st = os.fstat(fd)
        old = stat.S_IMODE(st.st_mode)
        if not stat.S_ISREG(st.st_mode) or not old & ~mode:
            return None
        os.fchmod(fd, old & mode)
    finally:
        os.close(fd)
    log.warning("%s was mode %04o; now %04o (it holds keys or peer data)", path, old, old & mode)
    return old


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


@contextmanager
def locked_if_free(running: Path) -> Iterator[bool]:
    """Hold the apply lock if nobody does (an apply under way, in this process or
    another); yields whether it is held, never waits."""
    try:
        lock = open(running.parent / "apply.lock", "a")  # noqa: SIM115 - held across the yield
    except OSError:
        yield False
        return
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        try:
            yield True
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


def announced_path(running: Path) -> Path:
    """Beside the running configuration: the IPsec profiles of a configuration being applied,
    one name a line, which frrdmvpn-proxy allows nhrpd besides the running ones (nhrpd may
    initiate with a new profile before the new configuration is the running one)."""
    return running.with_name("applying-profiles")


def announce(running: Path, names: frozenset[str]) -> None:
    """Write the profiles of the configuration being applied (none: remove the file)."""
    path = announced_path(running)
    if names:
        atomic_write(path, "".join(f"{n}\n" for n in sorted(names)), 0o644)
    else:
        path.unlink(missing_ok=True)


def announced(running: Path) -> frozenset[str]:
    """The profiles :func:`announce` wrote (none if there is no such file or it is not
    UTF-8 text)."""
    try:
        text = read(announced_path(running)) or ""
    except (OSError, ValueError):
        return frozenset()
    return frozenset(line for line in text.splitlines() if line)


def read_standing(path: Path) -> Standing:
    """The standing of the configuration file ``path`` (see :mod:`frrdmvpn.config.charon_socket`);
    one that cannot be read or is not UTF-8 (at its first bad byte) is unusable."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return standing(None, str(path))
    except OSError as exc:
        return standing(None, str(path), exc.strerror or str(exc))
    try:
        text = decode(data)
    except ConfigError as exc:
        lines = [d.format(filename=str(path)) for d in exc.diagnostics]
        return Standing(Kind.UNUSABLE, f"{path} is not valid:\n" + "\n".join(lines))
    return standing(text, str(path))


def read_tunnel_config(path: Path) -> Config | None:
    """The configuration in ``path`` when it defines a tunnel; None when it defines none
    (the package's commented example). Raises ValueError when it cannot be used."""
    node = read_standing(path)
    if node.kind is Kind.UNUSABLE:
        raise ValueError(node.reason)
    return node.config if node.kind is Kind.TUNNEL else None


def read_running_tunnel(path: Path) -> Config | None:
    """The configuration frrdmvpnd applied last (``path``) if it defines a tunnel (none, or
    none readable: None)."""
    try:
        text = read(path)
    except (ConfigError, OSError):
        return None
    config = check(text)[0] if text else None
    return config if config is not None and config.interfaces else None
