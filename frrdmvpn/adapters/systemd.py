"""systemd's notify protocol (sd_notify(3)), written by hand: no python-systemd needed.

A message is one datagram of ``KEY=value`` lines sent to the AF_UNIX socket named by
``$NOTIFY_SOCKET`` (a path, or an abstract name when it starts with ``@``). Every helper
returns whether the datagram went out and never raises: outside systemd they do nothing.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping


def _address(value: str) -> bytes | None:
    """The socket address for a ``$NOTIFY_SOCKET`` value, or None when not AF_UNIX."""
    if value.startswith("/"):
        return os.fsencode(value)
    if value.startswith("@") and len(value) > 1:
        return b"\0" + os.fsencode(value[1:])
    return None  # empty, relative, or another family (e.g. systemd's "vsock:")


def notify(message: str, env: Mapping[str, str] | None = None) -> bool:
    """Send ``message`` to ``$NOTIFY_SOCKET``; False when unset, unsupported or failed."""
    environ = os.environ if env is None else env
    address = _address(environ.get("NOTIFY_SOCKET", ""))
    if address is None or not message:
        return False
    data = message.encode()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            return sock.sendto(data, address) == len(data)
    except OSError:
        return False


def _one_line(text: str) -> str:
    """``text`` with line breaks turned to spaces: a newline would start a new variable."""
    return " ".join(text.splitlines())


def ready(status: str = "", env: Mapping[str, str] | None = None) -> bool:
    """Startup is finished (``READY=1``), with an optional status line."""
    message = "READY=1"
    if status:
        message += f"\nSTATUS={_one_line(status)}"
    return notify(message, env)


def reloading(env: Mapping[str, str] | None = None) -> bool:
    """A reload starts (``RELOADING=1``); send :func:`ready` when it is done.

    ``MONOTONIC_USEC`` (CLOCK_MONOTONIC, µs) is what Type=notify-reload (systemd ≥ 253)
    uses to tell this reload from an earlier one.
    """
    usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    return notify(f"RELOADING=1\nMONOTONIC_USEC={usec}", env)


def stopping(env: Mapping[str, str] | None = None) -> bool:
    """Shutdown starts (``STOPPING=1``)."""
    return notify("STOPPING=1", env)


def status(text: str, env: Mapping[str, str] | None = None) -> bool:
    """Set the one-line status ``systemctl status`` shows."""
    return notify(f"STATUS={_one_line(text)}", env)


def watchdog_ping(env: Mapping[str, str] | None = None) -> bool:
    """Keep the service watchdog from firing (``WATCHDOG=1``)."""
    return notify("WATCHDOG=1", env)


def watchdog_interval(env: Mapping[str, str] | None = None) -> float | None:
    """Seconds between watchdog pings (half of ``WATCHDOG_USEC``), or None when not asked.

    None as well when ``WATCHDOG_PID`` names another process or a value is not a number.
    """
    environ = os.environ if env is None else env
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
        pid = environ.get("WATCHDOG_PID", "")
        if pid and int(pid) != os.getpid():
            return None
    except ValueError:
        return None
    if usec <= 0:
        return None
    return usec / 2 / 1_000_000
