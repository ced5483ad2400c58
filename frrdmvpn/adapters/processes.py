"""This node's processes by pid, read from ``/proc``: whether one still runs a program, and
ending one that hangs."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

PROC = Path("/proc")


def running(pid: int, program: str, proc: Path = PROC) -> bool:
    """Whether process ``pid`` exists, is not a zombie and runs ``program`` (its ``comm``,
    which the kernel truncates to 15 characters)."""
    try:
        stat = (proc / str(pid) / "stat").read_text()
    except OSError:
        return False
    head, _, tail = stat.rpartition(")")  # "pid (comm) state ...": comm may hold ")"
    comm = head.partition("(")[2]
    state = tail.split()[:1]
    return comm == program[:15] and state not in (["Z"], ["X"], [])


def kill(pid: int) -> None:
    """SIGKILL ``pid``; nothing if it is gone already."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
