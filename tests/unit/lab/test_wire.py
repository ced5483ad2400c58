"""The lab VM's command channel framing."""

from __future__ import annotations

import pytest

from lab.wire import HEADER, MAX_PAYLOAD, Decoder, FrameError, Kind, encode, encode_json

pytestmark = pytest.mark.unit


def test_round_trip_byte_by_byte() -> None:
    stream = encode_json(Kind.OPEN, {"argv": ["ip", "link"]}) + encode(Kind.STDIN, b"x" * 70000)
    stream += encode(Kind.EOF)
    dec = Decoder()
    frames = [f for i in range(len(stream)) for f in dec.feed(stream[i : i + 1])]
    assert [f.kind for f in frames] == [Kind.OPEN, Kind.STDIN, Kind.EOF]
    assert frames[0].json() == {"argv": ["ip", "link"]}
    assert frames[1].payload == b"x" * 70000
    assert frames[2].payload == b""


def test_header_layout_is_type_then_big_endian_length() -> None:
    assert encode(Kind.EXIT, b"{}") == bytes([7, 0, 0, 0, 2]) + b"{}"


def test_unknown_type_is_rejected() -> None:
    with pytest.raises(FrameError, match="unknown frame type 99"):
        Decoder().feed(HEADER.pack(99, 0))


def test_oversized_frames_are_rejected_both_ways() -> None:
    with pytest.raises(FrameError, match="exceeds"):
        encode(Kind.STDOUT, b"\0" * (MAX_PAYLOAD + 1))
    with pytest.raises(FrameError, match="exceeds"):
        Decoder().feed(HEADER.pack(int(Kind.STDOUT), MAX_PAYLOAD + 1))
