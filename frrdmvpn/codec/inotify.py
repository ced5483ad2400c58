"""inotify's event records (what ``read()`` on an inotify descriptor returns). Pure: the
descriptor lives in :mod:`frrdmvpn.adapters.file_events`."""

from __future__ import annotations

import struct
from dataclasses import dataclass

IN_CLOSE_WRITE = 0x00000008
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000
_EVENT = struct.Struct("=iIII")  # watch descriptor, mask, cookie, length of the name


class InotifyError(ValueError):
    """Bytes that are not whole inotify events."""


@dataclass(frozen=True)
class FileEvent:
    """One event: which watch, what happened (``IN_*`` bits), to which name in it."""

    wd: int
    mask: int
    name: str


def parse(data: bytes) -> list[FileEvent]:
    """The events of one read (the kernel never splits one between reads)."""
    out: list[FileEvent] = []
    pos = 0
    while pos < len(data):
        if pos + _EVENT.size > len(data):
            raise InotifyError(f"truncated inotify event at {pos}")
        wd, mask, _cookie, length = _EVENT.unpack_from(data, pos)
        end = pos + _EVENT.size + length
        if end > len(data):
            raise InotifyError(f"inotify event at {pos} names {length} bytes past the end")
        name = data[pos + _EVENT.size : end].split(b"\0", 1)[0]
        out.append(FileEvent(wd, mask, name.decode(errors="replace")))
        pos = end
    return out
