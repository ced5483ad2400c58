"""Whether frrdmvpnd may end a daemon that is still there after its vty connection was lost
(:mod:`frrdmvpn.supervision` checks 10 s later; docs/security.md P5). Pure."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProcessInfo:
    """``/proc/PID/stat`` and ``status``: the program (``comm``, at most 15 characters), the
    state letter (``Z``: a zombie) and the real, effective, saved and filesystem uids."""

    comm: str
    state: str
    uids: tuple[int, ...]


def refusal(info: ProcessInfo, daemon: str, owner: int | None, user: str) -> str | None:
    """Why a process still there after ``daemon``'s vty connection was lost must not be
    ended (None: it may): frrdmvpnd ends only ``daemon`` itself, run wholly as ``user``
    (uid ``owner``), so what that user writes (the pid file) can make it end nothing the
    user could not end."""
    if owner is None:
        return f"no user {user} on this node"
    if info.comm != daemon[:15]:
        return f"the pid is {info.comm!r}'s now"
    if info.state in ("Z", "X"):
        return f"it is exiting (state {info.state})"
    if len(info.uids) != 4 or any(u != owner for u in info.uids):
        return f"it runs as uids {' '.join(map(str, info.uids))}, not {user}'s ({owner})"
    return None
