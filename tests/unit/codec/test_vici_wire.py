"""The VICI wire codec: golden packets, round trips and every rejection."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from frrdmvpn.codec.vici import (
    MAX_NAME,
    MAX_SEGMENT,
    MAX_VALUE,
    Message,
    Packet,
    PacketType,
    StreamDecoder,
    Value,
    ViciWireError,
    decode_message,
    decode_packet,
    encode_message,
    encode_packet,
    frame,
    message_from,
    text,
    texts,
)

pytestmark = pytest.mark.unit

# --- golden fixtures, built by hand from the README's layout ------------------------------

VERSION_REQUEST = b"\x00" + b"\x07version"

REGISTER_CHILD_UPDOWN = b"\x03" + b"\x0cchild-updown"

INITIATE_REQUEST = (
    b"\x00"
    + b"\x08initiate"
    + b"\x03"
    + b"\x05child"
    + b"\x00\x05dmvpn"
    + b"\x03"
    + b"\x07timeout"
    + b"\x00\x02-1"
    + b"\x03"
    + b"\x07my-host"
    + b"\x00\x0c198.51.100.1"
    + b"\x03"
    + b"\x0aother-host"
    + b"\x00\x0d198.51.100.11"
)
INITIATE_MODEL: Message = {
    "child": b"dmvpn",
    "timeout": b"-1",
    "my-host": b"198.51.100.1",
    "other-host": b"198.51.100.11",
}

LIST_SA_EVENT = (
    b"\x07"
    + b"\x07list-sa"
    + b"\x01"
    + b"\x05dmvpn"
    + b"\x03"
    + b"\x08uniqueid"
    + b"\x00\x013"
    + b"\x03"
    + b"\x05state"
    + b"\x00\x0bESTABLISHED"
    + b"\x01"
    + b"\x09child-sas"
    + b"\x01"
    + b"\x07dmvpn-7"
    + b"\x03"
    + b"\x04mode"
    + b"\x00\x09TRANSPORT"
    + b"\x04"
    + b"\x08local-ts"
    + b"\x05"
    + b"\x00\x14198.51.100.1/32[gre]"
    + b"\x06"
    + b"\x04"
    + b"\x09remote-ts"
    + b"\x05"
    + b"\x00\x15198.51.100.11/32[gre]"
    + b"\x05"
    + b"\x00\x00"
    + b"\x06"
    + b"\x04"
    + b"\x05empty"
    + b"\x06"
    + b"\x02"
    + b"\x02"
    + b"\x02"
)
LIST_SA_MODEL: Message = {
    "dmvpn": {
        "uniqueid": b"3",
        "state": b"ESTABLISHED",
        "child-sas": {
            "dmvpn-7": {
                "mode": b"TRANSPORT",
                "local-ts": [b"198.51.100.1/32[gre]"],
                "remote-ts": [b"198.51.100.11/32[gre]", b""],
                "empty": [],
            }
        },
    }
}

# The README's own encoding example (key1, section1 { sub-section { key2 }, list1 }).
README_EXAMPLE = (
    b"\x03\x04key1\x00\x06value1"
    b"\x01\x08section1"
    b"\x01\x0bsub-section"
    b"\x03\x04key2\x00\x06value2"
    b"\x02"
    b"\x04\x05list1"
    b"\x05\x00\x05item1"
    b"\x05\x00\x05item2"
    b"\x06"
    b"\x02"
)
README_MODEL: Message = {
    "key1": b"value1",
    "section1": {"sub-section": {"key2": b"value2"}, "list1": [b"item1", b"item2"]},
}

GOLDEN_PACKETS = [
    pytest.param(Packet(PacketType.CMD_REQUEST, "version", {}), VERSION_REQUEST, id="version"),
    pytest.param(
        Packet(PacketType.EVENT_REGISTER, "child-updown"), REGISTER_CHILD_UPDOWN, id="register"
    ),
    pytest.param(
        Packet(PacketType.CMD_REQUEST, "initiate", INITIATE_MODEL), INITIATE_REQUEST, id="initiate"
    ),
    pytest.param(Packet(PacketType.EVENT, "list-sa", LIST_SA_MODEL), LIST_SA_EVENT, id="list-sa"),
    pytest.param(Packet(PacketType.CMD_RESPONSE, None, {}), b"\x01", id="empty-response"),
    pytest.param(Packet(PacketType.CMD_UNKNOWN), b"\x02", id="cmd-unknown"),
    pytest.param(Packet(PacketType.EVENT_UNREGISTER, "log"), b"\x04\x03log", id="unregister"),
    pytest.param(Packet(PacketType.EVENT_CONFIRM), b"\x05", id="confirm"),
    pytest.param(Packet(PacketType.EVENT_UNKNOWN), b"\x06", id="event-unknown"),
]


@pytest.mark.parametrize(("packet", "golden"), GOLDEN_PACKETS)
def test_golden_packets(packet: Packet, golden: bytes) -> None:
    assert encode_packet(packet) == golden
    assert decode_packet(golden) == packet


def test_readme_example_message() -> None:
    assert encode_message(README_MODEL) == README_EXAMPLE
    assert decode_message(README_EXAMPLE) == README_MODEL


def test_golden_framing() -> None:
    assert frame(VERSION_REQUEST) == b"\x00\x00\x00\x09" + VERSION_REQUEST
    assert frame(b"") == b"\x00\x00\x00\x00"


def test_element_order_is_preserved() -> None:
    decoded = decode_message(INITIATE_REQUEST[len(b"\x00\x08initiate") :])
    assert list(decoded) == ["child", "timeout", "my-host", "other-host"]


def test_text_helpers() -> None:
    assert text(b"yes") == "yes"
    assert text(None, "") == ""
    assert texts([b"a", b"b"]) == ["a", "b"]
    assert texts(None) == []
    with pytest.raises(ViciWireError, match="missing"):
        text(None)
    with pytest.raises(ViciWireError, match="expected a key/value"):
        text([b"a"])
    with pytest.raises(ViciWireError, match="not UTF-8"):
        text(b"\xff")
    with pytest.raises(ViciWireError, match="expected a list"):
        texts(b"a")


# --- properties ------------------------------------------------------------------------------

_names = st.text(max_size=12)
_blobs = st.binary(max_size=40)


def _sections(children: st.SearchStrategy[Value]) -> st.SearchStrategy[Value]:
    return st.dictionaries(_names, children, max_size=4)


_values: st.SearchStrategy[Value] = st.recursive(
    st.one_of(_blobs, st.lists(_blobs, max_size=4)), _sections, max_leaves=16
)
_messages: st.SearchStrategy[Message] = st.dictionaries(_names, _values, max_size=5)


@given(_messages)
def test_message_round_trip(msg: Message) -> None:
    assert decode_message(encode_message(msg)) == msg


@given(st.sampled_from(PacketType), _names, _messages)
def test_packet_round_trip(ptype: PacketType, name: str, msg: Message) -> None:
    packet = Packet(
        ptype,
        name if ptype in {0, 3, 4, 7} else None,
        msg if ptype in {0, 1, 7} else None,
    )
    assert decode_packet(encode_packet(packet)) == packet


@given(st.lists(_blobs, max_size=5), st.lists(st.integers(0, 300), max_size=8))
def test_stream_splits_anywhere(payloads: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(frame(p) for p in payloads)
    bounds = sorted({0, len(stream), *(min(c, len(stream)) for c in cuts)})
    dec = StreamDecoder()
    got = [p for a, b in itertools.pairwise(bounds) for p in dec.feed(stream[a:b])]
    assert got == payloads
    assert dec.pending == 0


def test_stream_keeps_incomplete_segment() -> None:
    dec = StreamDecoder()
    data = frame(VERSION_REQUEST) + frame(REGISTER_CHILD_UPDOWN)
    assert dec.feed(data[:-1]) == [VERSION_REQUEST]
    assert dec.pending == len(frame(REGISTER_CHILD_UPDOWN)) - 1
    assert dec.feed(data[-1:]) == [REGISTER_CHILD_UPDOWN]


# --- limits ----------------------------------------------------------------------------------


def test_longest_name_and_value_are_accepted() -> None:
    msg: Message = {"k" * MAX_NAME: b"v" * MAX_VALUE, "l": [b"i" * MAX_VALUE]}
    assert decode_message(encode_message(msg)) == msg
    packet = Packet(PacketType.EVENT_REGISTER, "n" * MAX_NAME)
    assert decode_packet(encode_packet(packet)) == packet


@pytest.mark.parametrize(
    "msg",
    [
        pytest.param({"k" * (MAX_NAME + 1): b""}, id="key"),
        pytest.param({"é" * 128: b""}, id="key-utf8-bytes"),
        pytest.param({"s" * (MAX_NAME + 1): {}}, id="section"),
        pytest.param({"l" * (MAX_NAME + 1): []}, id="list"),
    ],
)
def test_encode_rejects_long_names(msg: Message) -> None:
    with pytest.raises(ViciWireError, match="limit 255"):
        encode_message(msg)


def test_encode_rejects_long_packet_name() -> None:
    with pytest.raises(ViciWireError, match="limit 255"):
        encode_packet(Packet(PacketType.EVENT_REGISTER, "n" * (MAX_NAME + 1)))


@pytest.mark.parametrize(
    "msg",
    [
        pytest.param({"k": b"v" * (MAX_VALUE + 1)}, id="value"),
        pytest.param({"l": [b"i" * (MAX_VALUE + 1)]}, id="item"),
    ],
)
def test_encode_rejects_long_values(msg: Message) -> None:
    with pytest.raises(ViciWireError, match="limit 65535"):
        encode_message(msg)


@pytest.mark.parametrize(
    ("msg", "match"),
    [
        pytest.param({"k": "str"}, "'k' is str", id="str-value"),
        pytest.param({"k": 1}, "'k' is int", id="int-value"),
        pytest.param({"l": ["str"]}, "list 'l' holds str", id="str-item"),
    ],
)
def test_encode_rejects_non_bytes(msg: object, match: str) -> None:
    with pytest.raises(ViciWireError, match=match):
        encode_message(msg)  # type: ignore[arg-type]


def test_frame_rejects_oversize_and_accepts_max() -> None:
    assert len(frame(b"\0" * MAX_SEGMENT)) == MAX_SEGMENT + 4
    with pytest.raises(ViciWireError, match="exceeds"):
        frame(b"\0" * (MAX_SEGMENT + 1))


def test_stream_rejects_oversize_length() -> None:
    assert StreamDecoder().feed(MAX_SEGMENT.to_bytes(4, "big")) == []
    with pytest.raises(ViciWireError, match=f"segment of {MAX_SEGMENT + 1} bytes exceeds"):
        StreamDecoder().feed((MAX_SEGMENT + 1).to_bytes(4, "big"))


# --- malformed messages -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "match"),
    [
        pytest.param(b"\x03", "truncated key length at offset 1", id="key-length"),
        pytest.param(b"\x03\x05ab", "truncated key at offset 2", id="key"),
        pytest.param(b"\x03\x01k\x00", "truncated value of 'k' length", id="value-length"),
        pytest.param(b"\x03\x01k\x00\x05ab", "truncated value of 'k' at", id="value"),
        pytest.param(b"\x01", "truncated section name length", id="section-name-length"),
        pytest.param(b"\x01\x04se", "truncated section name at", id="section-name"),
        pytest.param(b"\x04\x09li", "truncated list name at", id="list-name"),
        pytest.param(b"\x04\x01l\x05\x00", "truncated item of list 'l' length", id="item-len"),
        pytest.param(b"\x04\x01l\x05\x00\x03ab", "truncated item of list 'l' at", id="item"),
    ],
)
def test_decode_rejects_truncation(data: bytes, match: str) -> None:
    with pytest.raises(ViciWireError, match=match):
        decode_message(data)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        pytest.param(b"\x00", "unknown element type 0 at offset 0", id="type-0"),
        pytest.param(b"\x03\x01k\x00\x00\x07", "unknown element type 7 at offset 5", id="type-7"),
        pytest.param(b"\xff", "unknown element type 255", id="type-255"),
        pytest.param(b"\x05\x00\x01x", "list item at offset 0 outside a list", id="stray-item"),
        pytest.param(b"\x06", "list end at offset 0 without an open list", id="stray-list-end"),
        pytest.param(b"\x02", "section end at offset 0 without an open section", id="stray-end"),
        pytest.param(b"\x01\x01s\x02\x02", "section end at offset 4", id="extra-end"),
        pytest.param(b"\x01\x01s", "message ends inside section s", id="open-section"),
        pytest.param(b"\x01\x01a\x01\x01b\x02", "inside section a$", id="open-outer"),
        pytest.param(b"\x04\x01l\x05\x00\x00", "message ends inside list 'l'", id="open-list"),
        pytest.param(
            b"\x04\x01l\x03\x01k\x00\x00\x06", "element type 3 at offset 3 inside list", id="kv"
        ),
        pytest.param(b"\x04\x01l\x01\x01s\x02\x06", "element type 1 .* inside list", id="sec"),
        pytest.param(b"\x01\x01s\x04\x01l\x02\x06\x02", "element type 2 .* inside list", id="end"),
        pytest.param(b"\x04\x01l\x04\x01m\x06\x06", "element type 4 .* inside list", id="nested"),
        pytest.param(b"\x03\x01\xff\x00\x00", "key b'\\\\xff' is not ASCII/UTF-8", id="utf8"),
    ],
)
def test_decode_rejects_malformed_structure(data: bytes, match: str) -> None:
    with pytest.raises(ViciWireError, match=match):
        decode_message(data)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        pytest.param(b"\x03\x01k\x00\x00\x03\x01k\x00\x01x", "'k' in section <root>", id="kv"),
        pytest.param(b"\x03\x01k\x00\x00\x04\x01k\x06", "'k' in section <root>", id="kv-list"),
        pytest.param(
            b"\x01\x01a\x01\x01b\x02\x01\x01b\x02\x02", "'b' in section a$", id="sections"
        ),
        pytest.param(
            b"\x01\x01a\x01\x01b\x04\x01l\x06\x03\x01l\x00\x00\x02\x02",
            "'l' in section a/b$",
            id="nested",
        ),
    ],
)
def test_decode_rejects_duplicate_names(data: bytes, match: str) -> None:
    with pytest.raises(ViciWireError, match=f"duplicate name {match}"):
        decode_message(data)


def test_same_name_in_different_sections_is_fine() -> None:
    data = b"\x03\x01k\x00\x00\x01\x01s\x03\x01k\x00\x00\x02"
    assert decode_message(data) == {"k": b"", "s": {"k": b""}}


# --- malformed packets ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "match"),
    [
        pytest.param(b"", "truncated packet type", id="empty"),
        pytest.param(b"\x08", "unknown packet type 8", id="type-8"),
        pytest.param(b"\x00", "truncated packet name length", id="no-name"),
        pytest.param(b"\x07\x05ab", "truncated packet name at offset 2", id="short-name"),
        pytest.param(b"\x00\x01\xfe", "packet name b'\\\\xfe' is not", id="name-utf8"),
        pytest.param(b"\x02\x00", "CMD_UNKNOWN packet has 1 trailing bytes", id="cmd-unknown"),
        pytest.param(b"\x05\x03\x01k", "EVENT_CONFIRM packet has 3 trailing", id="confirm"),
        pytest.param(b"\x06x", "EVENT_UNKNOWN packet has 1 trailing", id="event-unknown"),
        pytest.param(b"\x03\x03logx", "EVENT_REGISTER packet has 1 trailing", id="register"),
        pytest.param(b"\x04\x03log\x00", "EVENT_UNREGISTER packet has 1 trail", id="unregister"),
        pytest.param(b"\x01\x09", "unknown element type 9 at offset 1", id="bad-message"),
        pytest.param(b"\x07\x01e\x02", "section end at offset 3", id="bad-event-message"),
    ],
)
def test_decode_packet_rejects(data: bytes, match: str) -> None:
    with pytest.raises(ViciWireError, match=match):
        decode_packet(data)


@pytest.mark.parametrize(
    ("ptype", "name", "msg", "match"),
    [
        pytest.param(PacketType.CMD_REQUEST, None, {}, "CMD_REQUEST needs a name", id="no-name"),
        pytest.param(PacketType.EVENT, "e", None, "EVENT needs a message", id="no-msg"),
        pytest.param(PacketType.CMD_RESPONSE, "r", {}, "takes no name", id="named-response"),
        pytest.param(PacketType.EVENT_CONFIRM, None, {}, "takes no message", id="confirm-msg"),
        pytest.param(PacketType.EVENT_REGISTER, "e", {}, "takes no message", id="register-msg"),
    ],
)
def test_packet_shape_is_enforced(
    ptype: PacketType, name: str | None, msg: Message | None, match: str
) -> None:
    with pytest.raises(ViciWireError, match=match):
        Packet(ptype, name, msg)


def test_message_from_python_values() -> None:
    values = {
        "version": "2",
        "reqid": 1,
        "mobike": False,
        "data": b"\x00\xff",
        "proposals": ("aes128gcm16", "default"),
        "local": {"id": "spöke1", "auth": "psk"},
    }
    msg = message_from(values)
    assert msg == {
        "version": b"2",
        "reqid": b"1",
        "mobike": b"no",
        "data": b"\x00\xff",
        "proposals": [b"aes128gcm16", b"default"],
        "local": {"id": "spöke1".encode(), "auth": b"psk"},
    }
    assert decode_message(encode_message(msg)) == msg
    with pytest.raises(ViciWireError, match=r"^'lifetime': a float is no VICI value$"):
        message_from({"lifetime": 1.5})
    with pytest.raises(ViciWireError, match=r"^'ts': a NoneType is no VICI value$"):
        message_from({"ts": [None]})
