"""Cisco-style time formats: ``UpDn Tm`` ages, hh:mm:ss clocks, protobuf times to seconds.

IOS prints an age as ``hh:mm:ss`` below a day, ``1d02h`` below a week, ``2w3d`` below a
year and ``1y2w`` beyond (samples: ``00:29:40``, ``6d12h``, ``3w5d``, ``48w0d``).
"""

from __future__ import annotations

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

NEVER = "never"

_DAY = 86400
_WEEK = 7 * _DAY
_YEAR = 365 * _DAY


def epoch(ts: Timestamp) -> float:
    """Seconds since the epoch of ``ts``."""
    return ts.seconds + ts.nanos / 1e9


def seconds(d: Duration) -> float:
    """Length of ``d`` in seconds."""
    return d.seconds + d.nanos / 1e9


def clock(secs: float) -> str:
    """``hh:mm:ss`` (hours unbounded; negative values print as 00:00:00)."""
    s = max(0, int(secs))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def cisco_age(secs: float) -> str:
    """An IOS age: ``00:01:23``, ``1d02h``, ``2w3d`` or ``1y2w``."""
    s = max(0, int(secs))
    if s < _DAY:
        return clock(s)
    if s < _WEEK:
        return f"{s // _DAY}d{s % _DAY // 3600:02d}h"
    if s < _YEAR:
        return f"{s // _WEEK}w{s % _WEEK // _DAY}d"
    return f"{s // _YEAR}y{s % _YEAR // _WEEK}w"


def age(when: float | None, now: float) -> str:
    """The IOS age of an instant, or ``never`` when there is none."""
    return NEVER if when is None else cisco_age(now - when)


def remaining(until: float | None, now: float) -> float | None:
    """Seconds from ``now`` until ``until`` (at least 0), or None when there is no end."""
    return None if until is None else max(0.0, until - now)
