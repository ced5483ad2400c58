"""FRR's vty socket framing, as vtysh speaks it to each daemon. No I/O.

* request: the command's text and one NUL byte. A newline does not end a command (the
  daemon would run ``a\\nb`` as ``a b``) and a NUL would end it early, so neither may appear
  in one. The daemon gathers a command in a 4096-byte buffer from reads of up to 512
  bytes; a longer command is cut with ``% Command is too long.`` and no status, its rest
  runs as a command of its own, and the replies fall out of step with the requests.
  :func:`encode_command` therefore refuses more than :data:`MAX_COMMAND` bytes.
* reply: the command's output, which never contains NUL, then the four bytes
  ``00 00 00 <status>`` (:class:`Status`). There is no length prefix: :class:`ReplyDecoder`
  reads up to the first NUL and refuses a reply longer than its cap.

One command is sent at a time and its reply awaited before the next: the daemon drops
whatever follows some commands in its read buffer.

:func:`table` reads the ``{"table": [...]}`` shape of nhrpd's ``show ... json`` replies.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

#: Longest command text accepted (bytes, without its NUL): 3.5 KiB with the NUL, one
#: read chunk (512 bytes) below the daemon's 4096-byte command buffer.
MAX_COMMAND = 3583
#: The daemon's parser takes at most this many words per command.
MAX_WORDS = 256
#: Longest reply accepted (bytes): ``show ip nhrp cache json`` of 10,000 peers is ~3 MB.
MAX_REPLY = 32 * 1024 * 1024

_TRAILER = 4


class VtyWireError(ValueError):
    """A command that cannot be sent, or bytes that are not vty replies."""


class Status(enum.IntEnum):
    """A command's result, the last byte of its reply."""

    SUCCESS = 0
    WARNING = 1  # also ``show ... json`` of an empty table (valid JSON all the same)
    ERR_NO_MATCH = 2  # unknown command
    ERR_AMBIGUOUS = 3
    ERR_INCOMPLETE = 4
    ERR_EXCEED_ARGC_MAX = 5
    ERR_NOTHING_TODO = 6
    COMPLETE_FULL_MATCH = 7
    COMPLETE_MATCH = 8
    COMPLETE_LIST_MATCH = 9
    SUCCESS_DAEMON = 10
    ERR_NO_FILE = 11
    SUSPEND = 12
    WARNING_CONFIG_FAILED = 13
    NOT_MY_INSTANCE = 14
    NO_LEVEL_UP = 15
    ERR_NO_DAEMON = 16


#: Results vtysh itself counts as success; the output may still refuse with ``% ...``.
ACCEPTED = frozenset({Status.SUCCESS, Status.WARNING, Status.SUCCESS_DAEMON})


def status_name(status: int) -> str:
    """``CMD_ERR_NO_MATCH`` for 2; the number for an unknown value."""
    try:
        return f"CMD_{Status(status).name}"
    except ValueError:
        return f"status {status}"


@dataclass(frozen=True)
class Reply:
    """One command's output and result."""

    status: int
    text: str

    @property
    def refusals(self) -> list[str]:
        """The daemon's ``% ...`` lines (an unknown command, a refused value ...)."""
        return [line for line in self.text.splitlines() if line.startswith("%")]

    @property
    def ok(self) -> bool:
        return self.status in ACCEPTED and not self.refusals

    def error(self) -> str:
        """Why the command failed, in the daemon's words where it gave any."""
        return "; ".join(self.refusals) or status_name(self.status)


def encode_command(line: str) -> bytes:
    """``line`` as sent: its UTF-8 bytes and a NUL. VtyWireError if it cannot be sent whole."""
    data = line.encode()
    if any(c in data for c in b"\0\r\n"):
        raise VtyWireError(f"a vty command cannot contain NUL, CR or LF: {line[:80]!r}")
    if not data.strip():
        raise VtyWireError("empty vty command")
    if len(data) > MAX_COMMAND:
        raise VtyWireError(
            f"vty command of {len(data)} bytes is longer than {MAX_COMMAND} "
            f"(FRR would cut it): {line[:80]!r}..."
        )
    if len(data.split()) > MAX_WORDS:
        raise VtyWireError(
            f"vty command of {len(data.split())} words has more than {MAX_WORDS}: {line[:80]!r}..."
        )
    return data + b"\0"


class ReplyDecoder:
    """Split a daemon's byte stream into replies. After a VtyWireError the stream is out of
    step with the commands: close the connection."""

    def __init__(self, max_reply: int = MAX_REPLY) -> None:
        self.max_reply = max_reply
        self._buf = bytearray()
        self._scanned = 0  # bytes known to hold no NUL (a large reply is searched once)

    def feed(self, data: bytes) -> list[Reply]:
        """Add received bytes; return every reply now complete, in order."""
        self._buf += data
        out: list[Reply] = []
        while True:
            nul = self._buf.find(0, self._scanned)
            end = len(self._buf) if nul < 0 else nul
            if end > self.max_reply:
                raise VtyWireError(f"vty reply longer than {self.max_reply} bytes")
            if nul < 0 or len(self._buf) < nul + _TRAILER:
                self._scanned = end
                return out
            if self._buf[nul + 1] or self._buf[nul + 2]:
                trailer = bytes(self._buf[nul : nul + _TRAILER])
                raise VtyWireError(f"malformed vty reply trailer {trailer!r}")
            text = bytes(self._buf[:nul]).decode("utf-8", errors="replace")
            out.append(Reply(self._buf[nul + 3], text))
            del self._buf[: nul + _TRAILER]
            self._scanned = 0

    @property
    def pending(self) -> int:
        """Bytes held for a reply not complete yet."""
        return len(self._buf)


def table(data: Any) -> list[dict[str, Any]]:
    """The entries of nhrpd's ``{"table": [...]}`` JSON (none if it has another shape)."""
    table = data.get("table", []) if isinstance(data, dict) else []
    return [e for e in table if isinstance(e, dict)] if isinstance(table, list) else []
