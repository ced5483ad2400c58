"""Files written in a directory, as inotify reports them (on the event loop).

The proxy rewrites its decision journal by renaming a new file over it: a watch of the
directory sees ``IN_MOVED_TO`` with the journal's name at once, without polling its mtime.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
from collections.abc import Callable
from pathlib import Path

from frrdmvpn.codec.inotify import (
    IN_CLOEXEC,
    IN_CLOSE_WRITE,
    IN_MOVED_TO,
    IN_NONBLOCK,
    IN_Q_OVERFLOW,
    InotifyError,
    parse,
)

log = logging.getLogger(__name__)


class DirectoryWatch:
    """Call ``on_change(name)`` when a file named in ``names`` is written in ``directory`` or
    renamed into it (``name`` is "" when the kernel dropped events: anything may have
    changed)."""

    def __init__(self, directory: Path, names: set[str], on_change: Callable[[str], None]) -> None:
        self.directory = directory
        self.names = names
        self.on_change = on_change
        self.fd: int | None = None

    def open(self) -> None:
        """OSError if inotify is not available (the caller then polls)."""
        libc = ctypes.CDLL(None, use_errno=True)
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        wd = libc.inotify_add_watch(fd, os.fsencode(self.directory), IN_CLOSE_WRITE | IN_MOVED_TO)
        if wd < 0:
            err = ctypes.get_errno()
            os.close(fd)
            raise OSError(err, f"inotify_add_watch {self.directory}")
        self.fd = fd
        asyncio.get_running_loop().add_reader(fd, self._readable)

    def _readable(self) -> None:
        assert self.fd is not None
        try:
            data = os.read(self.fd, 65536)
        except (BlockingIOError, InterruptedError):
            return
        try:
            events = parse(data)
        except InotifyError as exc:
            log.warning("watching %s: %s", self.directory, exc)
            self.on_change("")
            return
        for name in {"" if e.mask & IN_Q_OVERFLOW else e.name for e in events}:
            if name == "" or name in self.names:
                self.on_change(name)

    def close(self) -> None:
        if self.fd is not None:
            asyncio.get_running_loop().remove_reader(self.fd)
            os.close(self.fd)
            self.fd = None
