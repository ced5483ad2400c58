"""This node's processes by pid, read from ``/proc``: what one runs and as whom, and ending
one that hangs, through a pidfd where the kernel and the sandbox allow one (a signal then
never reaches a process that reused the pid)."""

from __future__ import annotations

import contextlib
import errno
import os
import pwd
import signal
from collections.abc import Iterator
from pathlib import Path

from frrdmvpn.core.stuck_exit import ProcessInfo

PROC = Path("/proc")


def uid_of(user: str) -> int | None:
    """``user``'s uid; None if there is no such user."""
    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        return None


def inspect(pid: int, proc: Path = PROC) -> ProcessInfo | None:
    """Process ``pid`` as ``/proc`` shows it; None if there is none."""
    try:
        stat = (proc / str(pid) / "stat").read_text()
        status = (proc / str(pid) / "status").read_text()
    except OSError:
        return None
    head, _, tail = stat.rpartition(")")  # "pid (comm) state ...": comm may hold ")"
    line = next((x.split()[1:] for x in status.splitlines() if x.startswith("Uid:")), [])
    return ProcessInfo(
        head.partition("(")[2], (tail.split() or ["?"])[0], tuple(int(u) for u in line)
    )


class Handle:
    """A process to signal: by pidfd, or by pid where no pidfd may be had (``pidfd_open``
    refused by a seccomp filter or an old kernel)."""

    def __init__(self, pid: int, pidfd: int | None) -> None:
        self.pid = pid
        self.pidfd = pidfd

    def kill(self) -> None:
        """SIGKILL it; nothing if it has exited already."""
        with contextlib.suppress(ProcessLookupError):
            if self.pidfd is not None:
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
            else:
                os.kill(self.pid, signal.SIGKILL)


@contextlib.contextmanager
def held(pid: int) -> Iterator[Handle | None]:
    """A handle on process ``pid`` (None if there is no such process), closed afterwards."""
    try:
        pidfd: int | None = os.pidfd_open(pid)
    except ProcessLookupError:
        yield None
        return
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOSYS, errno.EACCES):
            raise
        pidfd = None
    try:
        yield Handle(pid, pidfd)
    finally:
        if pidfd is not None:
            os.close(pidfd)
