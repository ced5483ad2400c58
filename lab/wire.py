"""Framing of the lab's host<->guest command channel (a virtio-serial port).

A frame is one type byte, a 4-byte big-endian length and the payload. The host opens a
session with OPEN (JSON: argv, tty, rows, cols), then streams STDIN/EOF/WINCH; the guest
answers with STDOUT/STDERR and finally EXIT (JSON: rc). No I/O here.
"""

from __future__ import annotations

import enum
import json
import struct
from dataclasses import dataclass
from typing import Any

HEADER = struct.Struct(">BI")
MAX_PAYLOAD = 1 << 20


class Kind(enum.IntEnum):
    """Frame types."""

    OPEN = 1
    STDIN = 2
    EOF = 3
    WINCH = 4
    STDOUT = 5
    STDERR = 6
    EXIT = 7


@dataclass(frozen=True)
class Frame:
    """One decoded frame."""

    kind: Kind
    payload: bytes

    def json(self) -> Any:
        return json.loads(self.payload.decode())


class FrameError(ValueError):
    """The byte stream is not a valid frame sequence."""


def encode(kind: Kind, payload: bytes = b"") -> bytes:
    """Encode one frame."""
    if len(payload) > MAX_PAYLOAD:
        raise FrameError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    return HEADER.pack(int(kind), len(payload)) + payload


def encode_json(kind: Kind, obj: object) -> bytes:
    """Encode a frame whose payload is JSON."""
    return encode(kind, json.dumps(obj).encode())


class Decoder:
    """Incremental decoder: feed bytes, take complete frames."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        frames: list[Frame] = []
        while len(self._buf) >= HEADER.size:
            kind, length = HEADER.unpack_from(self._buf)
            if length > MAX_PAYLOAD:
                raise FrameError(f"frame length {length} exceeds {MAX_PAYLOAD}")
            try:
                k = Kind(kind)
            except ValueError as exc:
                raise FrameError(f"unknown frame type {kind}") from exc
            end = HEADER.size + length
            if len(self._buf) < end:
                break
            frames.append(Frame(k, bytes(self._buf[HEADER.size : end])))
            del self._buf[:end]
        return frames
