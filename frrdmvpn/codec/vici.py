"""strongSwan VICI wire codec: transport framing, packets and messages. No I/O.

Layers of strongSwan's VICI protocol:

* transport: each segment is a 32-bit big-endian length and that many bytes
  (at most ``MAX_SEGMENT``); :class:`StreamDecoder` and :func:`frame`.
* packet: a type byte, for named types a 1-byte-length name, then for message
  types a message; :class:`Packet`, :func:`encode_packet`, :func:`decode_packet`.
* message: a tree of sections, key/values and lists; :func:`encode_message`,
  :func:`decode_message`.

Model: a message is a ``dict`` (insertion order is wire order) whose values are
``bytes`` (key/value), ``list[bytes]`` (list) or a nested ``dict`` (section).
Names are ASCII per the spec; UTF-8 is accepted as a superset. The spec requires
unique names within a section, so a duplicate name is a :class:`ViciWireError`
when decoding (never silently last-wins). Sections nest at most :data:`MAX_DEPTH` deep
(charon's messages nest a few levels), so no reader of a decoded tree recurses without
bound.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeAlias

Value: TypeAlias = "bytes | list[bytes] | Message"
Message: TypeAlias = dict[str, Value]

MAX_SEGMENT = 512 * 1024
MAX_NAME = 0xFF
MAX_VALUE = 0xFFFF
MAX_DEPTH = 32

_LEN32 = struct.Struct(">I")
_LEN16 = struct.Struct(">H")


class ViciWireError(ValueError):
    """Bytes or a model that do not form valid VICI."""


class ViciStreamError(ViciWireError):
    """The stream broke the framing; ``payloads`` are the segments completed before the
    fault in the same :meth:`StreamDecoder.feed`, in order (however the bytes were split,
    the same segments come out before the error)."""

    def __init__(self, message: str, payloads: list[bytes]) -> None:
        super().__init__(message)
        self.payloads = payloads


class PacketType(enum.IntEnum):
    """VICI packet types."""

    CMD_REQUEST = 0
    CMD_RESPONSE = 1
    CMD_UNKNOWN = 2
    EVENT_REGISTER = 3
    EVENT_UNREGISTER = 4
    EVENT_CONFIRM = 5
    EVENT_UNKNOWN = 6
    EVENT = 7


class Element(enum.IntEnum):
    """VICI message element types."""

    SECTION_START = 1
    SECTION_END = 2
    KEY_VALUE = 3
    LIST_START = 4
    LIST_ITEM = 5
    LIST_END = 6


NAMED_TYPES = frozenset(
    {
        PacketType.CMD_REQUEST,
        PacketType.EVENT_REGISTER,
        PacketType.EVENT_UNREGISTER,
        PacketType.EVENT,
    }
)
MESSAGE_TYPES = frozenset({PacketType.CMD_REQUEST, PacketType.CMD_RESPONSE, PacketType.EVENT})


# --- messages ----------------------------------------------------------------------------


def _name(name: str) -> bytes:
    raw = name.encode()
    if len(raw) > MAX_NAME:
        raise ViciWireError(f"name {name[:32]!r}... is {len(raw)} bytes, limit {MAX_NAME}")
    return bytes([len(raw)]) + raw


def _blob(value: bytes, key: str) -> bytes:
    if len(value) > MAX_VALUE:
        raise ViciWireError(f"value of {key!r} is {len(value)} bytes, limit {MAX_VALUE}")
    return _LEN16.pack(len(value)) + value


def _too_deep(path: list[str]) -> ViciWireError:
    return ViciWireError(f"section {_path(path)[:64]!r} nests deeper than {MAX_DEPTH}")


def _encode_into(out: bytearray, msg: Message, path: list[str] | None = None) -> None:
    path = [] if path is None else path
    if len(path) > MAX_DEPTH:
        raise _too_deep(path)
    for key, value in msg.items():
        if isinstance(value, bytes):
            out += bytes([Element.KEY_VALUE]) + _name(key) + _blob(value, key)
        elif isinstance(value, list):
            out += bytes([Element.LIST_START]) + _name(key)
            for item in value:
                if not isinstance(item, bytes):
                    raise ViciWireError(f"list {key!r} holds {type(item).__name__}, not bytes")
                out += bytes([Element.LIST_ITEM]) + _blob(item, key)
            out.append(Element.LIST_END)
        elif isinstance(value, dict):
            out += bytes([Element.SECTION_START]) + _name(key)
            _encode_into(out, value, [*path, key])
            out.append(Element.SECTION_END)
        else:
            raise ViciWireError(f"{key!r} is {type(value).__name__}, not bytes, list or dict")


def encode_message(msg: Message) -> bytes:
    """Encode a message tree to its element sequence."""
    out = bytearray()
    _encode_into(out, msg)
    return bytes(out)


class _Reader:
    """Bounds-checked cursor over a byte string."""

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def take(self, n: int, what: str) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise ViciWireError(
                f"truncated {what} at offset {self.pos}: need {n} bytes, "
                f"have {len(self.data) - self.pos}"
            )
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def byte(self, what: str) -> int:
        return self.take(1, what)[0]

    def name(self, what: str) -> str:
        raw = self.take(self.byte(f"{what} length"), what)
        try:
            return raw.decode()
        except UnicodeDecodeError as exc:
            raise ViciWireError(f"{what} {raw!r} is not ASCII/UTF-8") from exc

    def blob(self, what: str) -> bytes:
        (n,) = _LEN16.unpack(self.take(2, f"{what} length"))
        return self.take(n, what)


def _path(names: list[str]) -> str:
    return "/".join(names) or "<root>"


def _insert(section: Message, key: str, value: Value, names: list[str]) -> None:
    if key in section:
        raise ViciWireError(f"duplicate name {key!r} in section {_path(names)}")
    section[key] = value


def _decode_from(reader: _Reader) -> Message:
    root: Message = {}
    stack: list[Message] = [root]
    names: list[str] = []
    current_list: list[bytes] | None = None
    list_name = ""
    while not reader.at_end():
        offset = reader.pos
        kind = reader.byte("element type")
        if current_list is not None and kind not in (Element.LIST_ITEM, Element.LIST_END):
            raise ViciWireError(
                f"element type {kind} at offset {offset} inside list {list_name!r}: "
                "only list items may appear in a list"
            )
        if kind == Element.SECTION_START:
            key = reader.name("section name")
            if len(names) == MAX_DEPTH:
                raise _too_deep([*names, key])
            section: Message = {}
            _insert(stack[-1], key, section, names)
            stack.append(section)
            names.append(key)
        elif kind == Element.SECTION_END:
            if len(stack) == 1:
                raise ViciWireError(f"section end at offset {offset} without an open section")
            stack.pop()
            names.pop()
        elif kind == Element.KEY_VALUE:
            key = reader.name("key")
            _insert(stack[-1], key, reader.blob(f"value of {key!r}"), names)
        elif kind == Element.LIST_START:
            list_name = reader.name("list name")
            current_list = []
            _insert(stack[-1], list_name, current_list, names)
        elif kind == Element.LIST_ITEM:
            if current_list is None:
                raise ViciWireError(f"list item at offset {offset} outside a list")
            current_list.append(reader.blob(f"item of list {list_name!r}"))
        elif kind == Element.LIST_END:
            if current_list is None:
                raise ViciWireError(f"list end at offset {offset} without an open list")
            current_list = None
        else:
            raise ViciWireError(f"unknown element type {kind} at offset {offset}")
    if current_list is not None:
        raise ViciWireError(f"message ends inside list {list_name!r}")
    if len(stack) > 1:
        raise ViciWireError(f"message ends inside section {_path(names)}")
    return root


def decode_message(data: bytes) -> Message:
    """Decode a whole element sequence; every byte must belong to the message."""
    return _decode_from(_Reader(data))


# --- packets -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Packet:
    """One VICI packet; ``name`` is set exactly for named types, ``message`` for message types."""

    type: PacketType
    name: str | None = None
    message: Message | None = None

    def __post_init__(self) -> None:
        named = self.type in NAMED_TYPES
        if named != (self.name is not None):
            need = "needs a name" if named else "takes no name"
            raise ViciWireError(f"{self.type.name} {need}")
        carries = self.type in MESSAGE_TYPES
        if carries != (self.message is not None):
            need = "needs a message" if carries else "takes no message"
            raise ViciWireError(f"{self.type.name} {need}")


def encode_packet(packet: Packet) -> bytes:
    """Encode a packet (without the transport length prefix)."""
    out = bytearray([packet.type])
    if packet.name is not None:
        out += _name(packet.name)
    if packet.message is not None:
        _encode_into(out, packet.message)
    return bytes(out)


def decode_packet(data: bytes) -> Packet:
    """Decode one transport segment into a packet."""
    reader = _Reader(data)
    raw_type = reader.byte("packet type")
    try:
        ptype = PacketType(raw_type)
    except ValueError:
        raise ViciWireError(f"unknown packet type {raw_type}") from None
    name = reader.name("packet name") if ptype in NAMED_TYPES else None
    if ptype in MESSAGE_TYPES:
        return Packet(ptype, name, _decode_from(reader))
    if not reader.at_end():
        extra = len(data) - reader.pos
        raise ViciWireError(f"{ptype.name} packet has {extra} trailing bytes")
    return Packet(ptype, name, None)


# --- transport ---------------------------------------------------------------------------


def frame(payload: bytes) -> bytes:
    """Prefix a packet with its transport length."""
    if len(payload) > MAX_SEGMENT:
        raise ViciWireError(f"segment of {len(payload)} bytes exceeds {MAX_SEGMENT}")
    return _LEN32.pack(len(payload)) + payload


class StreamDecoder:
    """Split a VICI byte stream into packet payloads.

    After a :class:`ViciStreamError` the stream is out of sync: handle its ``payloads``,
    then close the connection.
    """

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return every payload now complete, in order."""
        self._buf += data
        out: list[bytes] = []
        pos = 0
        while len(self._buf) - pos >= _LEN32.size:
            (length,) = _LEN32.unpack_from(self._buf, pos)
            if length > MAX_SEGMENT:
                del self._buf[:]
                raise ViciStreamError(f"segment of {length} bytes exceeds {MAX_SEGMENT}", out)
            end = pos + _LEN32.size + length
            if end > len(self._buf):
                break
            out.append(bytes(self._buf[pos + _LEN32.size : end]))
            pos = end
        del self._buf[:pos]
        return out

    @property
    def pending(self) -> int:
        """Bytes held for an incomplete segment."""
        return len(self._buf)


# --- helpers -----------------------------------------------------------------------------


def text(value: Value | None, default: str | None = None) -> str:
    """A key/value as ``str`` (UTF-8); ``default`` if absent, else an error."""
    if value is None:
        if default is None:
            raise ViciWireError("value is missing")
        return default
    if not isinstance(value, bytes):
        raise ViciWireError(f"expected a key/value, got {type(value).__name__}")
    try:
        return value.decode()
    except UnicodeDecodeError as exc:
        raise ViciWireError(f"value {value[:32]!r} is not UTF-8") from exc


def texts(value: Value | None) -> list[str]:
    """A list as ``list[str]`` (UTF-8); an absent list is empty."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ViciWireError(f"expected a list, got {type(value).__name__}")
    return [text(item) for item in value]


def message_from(values: Mapping[str, object]) -> Message:
    """The message for a tree of Python values: ``str`` (UTF-8), ``bytes``, ``int`` and
    ``bool`` (``yes``/``no``) become key/values, lists and tuples lists, mappings sections
    (as charon parses its configuration commands' values from strings)."""
    out: Message = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            out[key] = message_from(value)
        elif isinstance(value, list | tuple):
            out[key] = [_item(item, key) for item in value]
        else:
            out[key] = _item(value, key)
    return out


def _item(value: object, key: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bool):
        return b"yes" if value else b"no"
    if isinstance(value, int):
        return str(value).encode()
    raise ViciWireError(f"{key!r}: a {type(value).__name__} is no VICI value")
