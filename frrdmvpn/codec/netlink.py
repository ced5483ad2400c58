"""Netlink framing shared by the kernel codecs: message headers and attributes. Pure."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4
NLM_F_DUMP = 0x300
NLM_F_DUMP_INTR = 0x10  # on a dump's message: the set changed while it was listed
NLMSG_NOOP = 1
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLMSG_OVERRUN = 4
HEADER = struct.Struct("=IHHII")  # length, type, flags, sequence, port id
_NLA = struct.Struct("=HH")
T = TypeVar("T")


class NetlinkError(ValueError):
    """Bytes that do not frame as netlink messages or attributes."""


@dataclass(frozen=True)
class NlMessage:
    """One netlink message: its type, flags, sequence number and body (after the header)."""

    kind: int
    flags: int
    seq: int
    body: bytes

    @property
    def error(self) -> int:
        """An NLMSG_ERROR's errno (0: an acknowledgement)."""
        return -struct.unpack_from("=i", self.body)[0] if len(self.body) >= 4 else -1


def align(n: int) -> int:
    return (n + 3) & ~3


def attr(kind: int, value: bytes) -> bytes:
    """One attribute, padded to four bytes."""
    length = _NLA.size + len(value)
    return _NLA.pack(length, kind) + value + b"\0" * (align(length) - length)


def message(kind: int, flags: int, seq: int, body: bytes) -> bytes:
    return HEADER.pack(HEADER.size + len(body), kind, flags, seq, 0) + body


def attrs(data: bytes) -> dict[int, bytes]:
    """Attribute type (without its nested/byte-order bits) -> value."""
    out: dict[int, bytes] = {}
    pos = 0
    while pos + _NLA.size <= len(data):
        length, kind = _NLA.unpack_from(data, pos)
        if length < _NLA.size or pos + length > len(data):
            raise NetlinkError(f"attribute at {pos} has bad length {length}")
        out[kind & 0x3FFF] = data[pos + _NLA.size : pos + length]
        pos += align(length)
    return out


def messages(datagram: bytes) -> Iterator[NlMessage]:
    """The messages of one received datagram, in order."""
    pos = 0
    while pos + HEADER.size <= len(datagram):
        length, kind, flags, seq, _port = HEADER.unpack_from(datagram, pos)
        if length < HEADER.size or pos + length > len(datagram):
            raise NetlinkError(f"netlink message at {pos} has bad length {length}")
        yield NlMessage(kind, flags, seq, datagram[pos + HEADER.size : pos + length])
        pos += align(length)


@dataclass
class Received(Generic[T]):
    """What one datagram of a dump or of notifications held: the codec's changes, and its
    control messages."""

    changes: list[T] = field(default_factory=list)
    done: bool = False  # the end of a dump
    errors: list[int] = field(default_factory=list)  # NLMSG_ERROR codes
    overrun: bool = False
    interrupted: bool = False  # NLM_F_DUMP_INTR: the dump is not consistent, list it again

    def control(self, msg: NlMessage) -> bool:
        """Take ``msg`` if it is a control message (end of dump, error, overrun); note a
        dump the kernel marks inconsistent."""
        if msg.flags & NLM_F_DUMP_INTR:
            self.interrupted = True
        if msg.kind == NLMSG_DONE:
            self.done = True
        elif msg.kind == NLMSG_ERROR:
            self.errors.append(msg.error)
        elif msg.kind == NLMSG_OVERRUN:
            self.overrun = True
        else:
            return False
        return True
