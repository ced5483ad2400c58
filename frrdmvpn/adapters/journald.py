"""Logging to journald's native protocol, or to stderr, with structured fields.

A log call carries its fields with :func:`fields`::

    log.info("peer %s: %s", peer, why, extra=fields(peer=peer, event="transition", reason=why))

Under systemd (:func:`setup` finds ``$JOURNAL_STREAM`` naming this process's stderr and
journald's socket) every record becomes one journal entry whose fields are searchable:
``journalctl FRRDMVPN_PEER=198.51.100.11``. Elsewhere the fields follow the line on stderr
as ``peer=198.51.100.11 event=transition reason="..."``.

The native protocol (systemd's "Native Journal Protocol"), written by hand: one datagram
to ``/run/systemd/journal/socket`` holds ``NAME=value`` lines; a value with a newline is
sent as ``NAME``, newline, its length as a 64-bit little-endian integer, the bytes, newline.
A datagram larger than the socket's send buffer fails with ``EMSGSIZE``: the same bytes
then go into a sealed memfd passed with ``SCM_RIGHTS`` (journald reads entries that way);
where a memfd cannot be made or passed, MESSAGE (and any other value as long) is cut to
:data:`TRUNCATED_MESSAGE` bytes with a note saying so and the datagram is sent again.
"""

from __future__ import annotations

import array
import errno
import fcntl
import logging
import os
import re
import socket
import stat
import struct
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

SOCKET = Path("/run/systemd/journal/socket")
PREFIX = "FRRDMVPN_"
FIELD_NAME_MAX = 64  # journald drops longer field names
TRUNCATED_MESSAGE = 32 * 1024  # bytes of MESSAGE kept when nothing larger can be sent
SEND_TIMEOUT = 5.0  # seconds a stalled journald may hold a log call (then it is dropped)
STDERR_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"
_HANDLER_NAMES = frozenset({"frrdmvpn-journal", "frrdmvpn-stderr"})
_INVALID = re.compile(r"[^A-Z0-9_]")


def fields(**kw: object) -> dict[str, dict[str, str]]:
    """``extra=`` for a log call: its structured fields, every value as text; a value of
    None (an address an event did not carry) is left out rather than logged as "None"."""
    return {"fields": {key: str(value) for key, value in kw.items() if value is not None}}


def record_fields(record: logging.LogRecord) -> dict[str, str]:
    """The structured fields a record carries (none when it has no valid ``fields``)."""
    carried = getattr(record, "fields", None)
    if not isinstance(carried, Mapping):
        return {}
    return {str(key): str(value) for key, value in carried.items()}


def field_name(key: str) -> str | None:
    """The journal field for ``key``: ``FRRDMVPN_`` and ``key`` upper-cased, every other
    character than ``[A-Z0-9_]`` turned to ``_``; None when nothing of ``key`` is left."""
    name = _INVALID.sub("_", key.upper()).lstrip("_")
    if not name:
        return None
    return (PREFIX + name)[:FIELD_NAME_MAX]


def syslog_priority(levelno: int) -> int:
    """The syslog priority (0 emerg .. 7 debug) for a logging level."""
    if levelno >= logging.CRITICAL:
        return 2
    if levelno >= logging.ERROR:
        return 3
    if levelno >= logging.WARNING:
        return 4
    if levelno >= logging.INFO:
        return 6
    return 7


def encode_field(name: str, value: str | bytes) -> bytes:
    """One field in the native protocol: ``NAME=value\\n``, or the binary form when the
    value holds a newline."""
    data = value if isinstance(value, bytes) else value.encode("utf-8", "replace")
    key = name.encode("ascii")
    if b"\n" in data:
        return key + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
    return key + b"=" + data + b"\n"


def encode_entry(items: Iterable[tuple[str, str | bytes]]) -> bytes:
    """A whole journal entry (one datagram's payload)."""
    return b"".join(encode_field(name, value) for name, value in items)


class JournalHandler(logging.Handler):
    """Send each record to journald as one native-protocol entry; never raises.

    A record that cannot be delivered (no journald, a stalled one, a bad format string) is
    dropped and counted in :attr:`dropped`, without the traceback :meth:`handleError`
    prints: a daemon's logging must not spam stderr, which journald reads too.
    """

    def __init__(
        self,
        identifier: str,
        socket_path: Path = SOCKET,
        level: int = logging.NOTSET,
    ) -> None:
        super().__init__(level)
        self.identifier = identifier
        self.socket_path = socket_path
        self.dropped = 0
        self._sock: socket.socket | None = None
        self._stalled = False

    def entry(self, record: logging.LogRecord) -> list[tuple[str, str | bytes]]:
        """The journal fields for ``record``, MESSAGE first."""
        items: list[tuple[str, str | bytes]] = [
            ("MESSAGE", self.format(record)),
            ("PRIORITY", str(syslog_priority(record.levelno))),
            ("SYSLOG_IDENTIFIER", self.identifier),
            ("LOGGER", record.name),
            ("CODE_FILE", record.pathname),
            ("CODE_LINE", str(record.lineno)),
            ("CODE_FUNC", record.funcName or ""),
        ]
        for key, value in record_fields(record).items():
            name = field_name(key)
            if name is not None:
                items.append((name, value))
        return items

    def emit(self, record: logging.LogRecord) -> None:
        try:
            items = self.entry(record)
            self._send(items)
        except RecursionError:  # as logging's own handlers do
            raise
        except Exception:
            self.dropped += 1

    def close(self) -> None:
        self.acquire()
        try:
            if self._sock is not None:
                self._sock.close()
                self._sock = None
        finally:
            self.release()
        super().close()

    def _socket(self) -> socket.socket:
        if self._sock is None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        # A stalled journald (its queue full) holds one call up to SEND_TIMEOUT; the calls
        # after it do not wait at all until an entry goes out again.
        self._sock.settimeout(0.0 if self._stalled else SEND_TIMEOUT)
        return self._sock

    def _send(self, items: list[tuple[str, str | bytes]]) -> None:
        data = encode_entry(items)
        # sendto, not connect: the entry goes to the journald running now, also after a
        # restart of journald (which a connected socket would not follow).
        address = os.fspath(self.socket_path)
        sock = self._socket()
        try:
            sock.sendto(data, address)
        except (TimeoutError, BlockingIOError):
            self._stalled = True
            raise
        except OSError as exc:
            if exc.errno not in (errno.EMSGSIZE, errno.ENOBUFS):
                raise
            try:
                self._send_fd(sock, data, address)
            except OSError:
                sock.sendto(encode_entry(_truncated(items)), address)
        self._stalled = False

    @staticmethod
    def _send_fd(sock: socket.socket, data: bytes, address: str) -> None:
        """The entry as a sealed memfd: journald accepts it from any user."""
        fd = os.memfd_create("frrdmvpn-journal", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.lseek(fd, 0, os.SEEK_SET)  # for a reader that reads rather than maps it
            seals = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals | fcntl.F_SEAL_SEAL)
            rights = array.array("i", [fd]).tobytes()
            sock.sendmsg([], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, rights)], 0, address)
        finally:
            os.close(fd)


def _truncated(items: list[tuple[str, str | bytes]]) -> list[tuple[str, str | bytes]]:
    """``items`` with every value (MESSAGE foremost) cut to :data:`TRUNCATED_MESSAGE`
    bytes, and a note saying so."""
    out: list[tuple[str, str | bytes]] = []
    for name, value in items:
        data = value if isinstance(value, bytes) else value.encode("utf-8", "replace")
        if len(data) > TRUNCATED_MESSAGE:
            kept = data[:TRUNCATED_MESSAGE].decode("utf-8", "ignore")
            out.append((name, f"{kept} [truncated: {len(data)} bytes in all]"))
        else:
            out.append((name, value))
    return out


def _quote(value: str) -> str:
    if value and not any(c.isspace() or c in '"=\\' for c in value):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t") + '"'


class FieldsFormatter(logging.Formatter):
    """The usual line, then the record's fields: `` peer=... event=... reason="..."``.

    A value is quoted when it is empty or holds whitespace, ``"``, ``=`` or ``\\``; inside
    the quotes ``"`` and ``\\`` are escaped and line breaks written as ``\\n``, so that a
    record stays one line (a traceback still follows on the lines after it).
    """

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        line = super().formatMessage(record)
        carried = record_fields(record)
        if not carried:
            return line
        return line + "".join(f" {key}={_quote(value)}" for key, value in carried.items())


def stderr_is_journal(env: Mapping[str, str], fd: int = 2) -> bool:
    """Whether ``$JOURNAL_STREAM`` (``device:inode``, set by systemd) names ``fd``.

    systemd.exec(5) asks for this comparison: a process whose stderr was redirected
    elsewhere (a shell in a unit, ``2>file``) inherits the variable but must not rely on it.
    """
    value = env.get("JOURNAL_STREAM", "")
    device, sep, inode = value.partition(":")
    if not sep:
        return False
    try:
        st = os.fstat(fd)
        return (int(device), int(inode)) == (st.st_dev, st.st_ino)
    except (OSError, ValueError):
        return False


def _is_socket(path: Path) -> bool:
    try:
        return stat.S_ISSOCK(path.stat().st_mode)
    except OSError:
        return False


def setup(
    identifier: str,
    verbose: bool,
    env: Mapping[str, str] | None = None,
    socket_path: Path = SOCKET,
) -> None:
    """Configure the root logger for a daemon: journald when stderr is the journal and its
    socket is there, else stderr with :class:`FieldsFormatter`; DEBUG when ``verbose``.

    Calling it again replaces the handler an earlier call installed (other handlers stay).
    """
    environ = os.environ if env is None else env
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.name in _HANDLER_NAMES]:
        root.removeHandler(old)
        old.close()
    handler: logging.Handler
    if stderr_is_journal(environ) and _is_socket(socket_path):
        handler = JournalHandler(identifier, socket_path)
        handler.set_name("frrdmvpn-journal")
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(FieldsFormatter(STDERR_FORMAT))
        handler.set_name("frrdmvpn-stderr")
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
