"""Codec for FRR nhrpd's event socket (``nhrp event socket PATH``). No I/O.

nhrpd sends text messages: one ``key=value`` line each field, a blank line ends a
message. The only event FRR emits is ``authorize-binding``; it blocks until the
listener replies ``eventid=N`` / ``result=accept`` (anything else rejects, as does
silence for 10 s). nhrpd parses replies split on ``\\n\\n`` and skips lines of 255
bytes or more, so :func:`encode_reply` emits plain ``\\n`` and short lines.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_MESSAGE = 64 * 1024
MAX_EVENTID = 0xFFFFFFFF
AUTHORIZE_BINDING = "authorize-binding"
CACHE_TYPES = frozenset(
    {"invalid", "incomplete", "negative", "cached", "dynamic", "nhs", "static", "local"}
)
# FRR's sockunion2str() prints this for an address of family AF_UNSPEC.
UNSPEC_ADDRESS = "(unspec)"

_DIGITS = re.compile(r"[0-9]+")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")


class EventWireError(ValueError):
    """Malformed event stream or message.

    ``eventid`` is set when the message's id was readable, so the caller can still
    answer it with a rejection instead of leaving nhrpd to time out.
    """

    def __init__(self, message: str, eventid: int | None = None) -> None:
        super().__init__(message)
        self.eventid = eventid


@dataclass(frozen=True)
class AuthorizeBinding:
    """nhrpd asks whether a new NHRP cache binding may be installed."""

    eventid: int
    type: str
    old_type: str
    num_nhs: int
    interface: str
    local_addr: IPAddress | None
    vc_initiated: bool | None
    local_nbma: IPAddress | None
    local_cert: bytes
    remote_addr: IPAddress | None
    remote_nbma: IPAddress | None
    remote_cert: bytes


@dataclass(frozen=True)
class UnknownEvent:
    """An event this codec does not model; reply to ``eventid`` (if any) anyway."""

    eventid: int | None
    event: str
    fields: Mapping[str, str]


class EventStreamError(EventWireError):
    """The byte stream broke the framing: an oversized message or a line that is no field.

    ``messages`` are the messages completed before the fault, in order: answer them, then
    close the connection. ``eventid`` is the broken message's id if it was already read.
    """

    def __init__(
        self, message: str, messages: list[dict[str, str]] | None = None, eventid: int | None = None
    ) -> None:
        super().__init__(message, eventid)
        self.messages = messages or []


class _FramingError(Exception):
    """Internal: where the stream broke (becomes an :class:`EventStreamError`)."""


class EventDecoder:
    """Split nhrpd's byte stream into messages (``dict`` of fields, in wire order).

    Accepts ``\\r\\n`` line ends and ignores blank lines between messages. Between feeds
    at most one partial message (:data:`MAX_MESSAGE` bytes, plus a pending ``\\r``) is
    held. After an :class:`EventStreamError` the stream is out of sync: the decoder drops
    what it holds and refuses further input; close the connection.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._fields: dict[str, str] = {}
        self._size = 0
        self._fault: str | None = None

    @property
    def buffered(self) -> int:
        """Bytes held for the message in progress (parsed lines and the partial line)."""
        return self._size + len(self._buf)

    def feed(self, data: bytes) -> list[dict[str, str]]:
        """Add received bytes; return every message now complete, in order.

        On a fault raises :class:`EventStreamError` carrying the messages completed before
        the fault point (never those after it).
        """
        if self._fault is not None:
            raise EventStreamError(f"event stream already broken: {self._fault}")
        out: list[dict[str, str]] = []
        try:
            self._split(data, out)
        except _FramingError as fault:
            self._fault = str(fault)
            eventid = self._broken_eventid()
            self._buf.clear()
            self._fields = {}
            self._size = 0
            raise EventStreamError(self._fault, out, eventid) from fault.__cause__
        return out

    def _split(self, data: bytes, out: list[dict[str, str]]) -> None:
        self._buf += data
        start = 0
        while (newline := self._buf.find(b"\n", start)) >= 0:
            raw = bytes(self._buf[start : newline + 1])
            start = newline + 1
            line = raw.removesuffix(b"\n").removesuffix(b"\r")
            if line:
                self._size += len(raw)
                self._check_size(self._size)
                self._add(line)
            elif self._fields:
                out.append(self._fields)
                self._fields = {}
                self._size = 0
        del self._buf[:start]
        # A trailing "\r" may start the blank line that ends the message; it is not counted.
        self._check_size(self._size + len(self._buf.removesuffix(b"\r")))

    def _broken_eventid(self) -> int | None:
        return _as_uint32(self._fields.get("eventid", ""))

    @staticmethod
    def _check_size(size: int) -> None:
        if size > MAX_MESSAGE:
            raise _FramingError(f"event message exceeds {MAX_MESSAGE} bytes without a blank line")

    def _add(self, line: bytes) -> None:
        try:
            decoded = line.decode()
        except UnicodeDecodeError as exc:
            raise _FramingError(f"line {line[:64]!r} is not UTF-8") from exc
        key, sep, value = decoded.partition("=")
        if not sep:
            raise _FramingError(f"line {decoded[:64]!r} has no '='")
        if not key:
            raise _FramingError(f"line {decoded[:64]!r} has an empty key")
        if key in self._fields:
            raise _FramingError(f"duplicate field {key!r} in one event")
        self._fields[key] = value


def _as_uint32(raw: str) -> int | None:
    """raw as an unsigned 32-bit number, else None (without int() on thousands of digits)."""
    if not _DIGITS.fullmatch(raw) or len(raw.lstrip("0")) > len(str(MAX_EVENTID)):
        return None
    value = int(raw)
    return value if value <= MAX_EVENTID else None


def _uint32(name: str, raw: str, eventid: int | None) -> int:
    value = _as_uint32(raw)
    if value is None:
        raise EventWireError(f"{name}={raw[:64]!r} is not an unsigned 32-bit number", eventid)
    return value


def _required(fields: Mapping[str, str], name: str, eventid: int) -> str:
    value = fields.get(name)
    if value is None:
        raise EventWireError(f"event {eventid} lacks {name}", eventid)
    return value


def _cache_type(fields: Mapping[str, str], name: str, eventid: int) -> str:
    value = _required(fields, name, eventid)
    if value not in CACHE_TYPES:
        raise EventWireError(f"event {eventid}: {name}={value[:64]!r} is no cache type", eventid)
    return value


def _address(fields: Mapping[str, str], name: str, eventid: int) -> IPAddress | None:
    value = fields.get(name, "")
    if value in ("", UNSPEC_ADDRESS):
        return None
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        raise EventWireError(
            f"event {eventid}: {name}={value[:64]!r} is not an IP address", eventid
        ) from None


def _cert(fields: Mapping[str, str], name: str, eventid: int) -> bytes:
    value = fields.get(name, "")
    if not _HEX.fullmatch(value):
        raise EventWireError(f"event {eventid}: {name} is not even-length hex", eventid)
    return bytes.fromhex(value)


def _flag(fields: Mapping[str, str], name: str, eventid: int) -> bool | None:
    value = fields.get(name)
    if value is None:
        return None
    if value not in ("yes", "no"):
        raise EventWireError(f"event {eventid}: {name}={value[:64]!r} is not yes/no", eventid)
    return value == "yes"


def parse_event(fields: Mapping[str, str]) -> AuthorizeBinding | UnknownEvent:
    """Type one decoded message. Fields this codec does not know are ignored.

    An empty or ``(unspec)`` address, absent for bindings without a peer, is ``None``.
    """
    raw_id = fields.get("eventid")
    eventid = None if raw_id is None else _uint32("eventid", raw_id, None)
    event = fields.get("event")
    if event is None:
        raise EventWireError("message has no event field", eventid)
    if event != AUTHORIZE_BINDING:
        return UnknownEvent(eventid, event, dict(fields))
    if eventid is None:
        raise EventWireError(f"{AUTHORIZE_BINDING} has no eventid")
    interface = _required(fields, "interface", eventid)
    if not interface:
        raise EventWireError(f"event {eventid}: empty interface", eventid)
    return AuthorizeBinding(
        eventid=eventid,
        type=_cache_type(fields, "type", eventid),
        old_type=_cache_type(fields, "old_type", eventid),
        num_nhs=_uint32("num_nhs", _required(fields, "num_nhs", eventid), eventid),
        interface=interface,
        local_addr=_address(fields, "local_addr", eventid),
        vc_initiated=_flag(fields, "vc_initiated", eventid),
        local_nbma=_address(fields, "local_nbma", eventid),
        local_cert=_cert(fields, "local_cert", eventid),
        remote_addr=_address(fields, "remote_addr", eventid),
        remote_nbma=_address(fields, "remote_nbma", eventid),
        remote_cert=_cert(fields, "remote_cert", eventid),
    )


def encode_reply(eventid: int, accept: bool) -> bytes:
    """The reply nhrpd expects: ``eventid=N``, ``result=accept|deny``, blank line."""
    if not 0 <= eventid <= MAX_EVENTID:
        raise EventWireError(f"eventid {eventid} is not an unsigned 32-bit number")
    result = "accept" if accept else "deny"
    return f"eventid={eventid}\nresult={result}\n\n".encode()
