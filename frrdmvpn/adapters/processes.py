"""This node's processes by pid, read from ``/proc``: whether one still runs a program as a
user, and ending one that hangs through a pidfd (a signal never reaches a process that
reused the pid)."""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
from collections.abc import Iterator
from pathlib import Path

PROC = Path("/proc")


def uid_of(user: str) -> int | None:
    """``user``'s uid; None if there is no such user."""
    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        return None


@contextlib.contextmanager
def held(pid: int) -> Iterator[int | None]:
    """A pidfd of process ``pid`` (None if there is none), closed afterwards."""
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        yield None
        return
    try:
        yield pidfd
    finally:
        os.close(pidfd)


def running(pid: int, program: str, uid: int, proc: Path = PROC) -> bool:
    """Whether process ``pid`` exists, is not a zombie, runs ``program`` (its ``comm``, which
    the kernel truncates to 15 characters) and runs as ``uid`` only (real, effective, saved
    and filesystem uid)."""
    try:
        stat = (proc / str(pid) / "stat").read_text()
        status = (proc / str(pid) / "status").read_text()
    except OSError:
        return False
    head, _, tail = stat.rpartition(")")  # "pid (comm) state ...": comm may hold ")"
    comm = head.partition("(")[2]
    state = tail.split()[:1]
    uids = next((line.split()[1:] for line in status.splitlines() if line.startswith("Uid:")), [])
    return (comm == program[:15] and state not in (["Z"], ["X"], [])
            and len(uids) == 4 and all(u == str(uid) for u in uids))  # fmt: skip


def kill(pidfd: int) -> None:
    """SIGKILL the process ``pidfd`` holds; nothing if it has exited already."""
    with contextlib.suppress(ProcessLookupError):
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
