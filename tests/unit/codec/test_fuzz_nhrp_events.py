"""Fuzz: nhrpd's event socket (frrdmvpn/codec/nhrp_events.py), fed what a process in group frr
that reaches the socket could write.

Properties: the decoder returns messages or raises :class:`EventStreamError`, holding at
most one message (:data:`MAX_MESSAGE`) between feeds; however the stream is cut, the same
messages come out before the same fault, with the same broken event id; every message
types to an event or raises :class:`EventWireError`, and any event id read can be answered.
Generation: nhrpd's authorize-binding with fields dropped, duplicated, replaced and mutated.
"""

from __future__ import annotations

from functools import partial

from hypothesis import event as note
from hypothesis import example, given
from hypothesis import strategies as st

from frrdmvpn.codec.nhrp_events import (
    MAX_MESSAGE,
    AuthorizeBinding,
    EventDecoder,
    EventStreamError,
    EventWireError,
    UnknownEvent,
    encode_reply,
    parse_event,
)
from tests.fuzzing import MARKS, assert_bounded, budget, mutations, pieces

pytestmark = MARKS

FIELDS = {
    "eventid": ["7", "0", "4294967295", "4294967296", "-1", "0007", "1" * 40, ""],
    "event": ["authorize-binding", "other", ""],
    "type": ["dynamic", "invalid", "nhs", "bogus"],
    "old_type": ["invalid", "cached", ""],
    "num_nhs": ["0", "3", "x", "99999999999"],
    "interface": ["gre1", "", "dmvpn0"],
    "local_addr": ["192.0.2.1", "(unspec)", "", "2001:db8::1", "192.0.2.300"],
    "vc_initiated": ["yes", "no", "maybe"],
    "local_nbma": ["198.51.100.1", ""],
    "local_cert": ["", "3003020107", "300", "zz"],
    "remote_addr": ["192.0.2.11", "fe80::1%gre1"],
    "remote_nbma": ["198.51.100.11", "(unspec)"],
    "remote_cert": ["3003020107", "", "30" * 600],
}


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    """nhrpd's authorize-binding (every field as it writes it), then a few fields dropped,
    replaced (by a value that is wrong in its own way, or any text) or repeated."""
    fields = {name: values[0] for name, values in FIELDS.items()}
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from(sorted(FIELDS)))
        how = draw(st.integers(0, 2))
        if how == 0:
            fields.pop(name, None)
        else:
            fields[name] = draw(st.sampled_from(FIELDS[name]) if how == 1 else st.text(max_size=6))
    lines = [f"{name}={value}" for name, value in fields.items()]
    if draw(st.integers(0, 4)) == 0 and lines:
        lines.append(draw(st.sampled_from(lines)))  # a field given twice
    end = draw(st.sampled_from(["\n", "\r\n"]))
    return (end.join(lines) + end + end).encode()


streams = st.lists(messages(), max_size=4).map(b"".join)
inputs = streams | streams.flatmap(mutations) | st.binary(max_size=80)


def _feed_all(chunks: list[bytes]) -> tuple[list[dict[str, str]], EventStreamError | None]:
    dec = EventDecoder()
    got: list[dict[str, str]] = []
    for chunk in chunks:
        try:
            got += dec.feed(chunk)
        except EventStreamError as exc:
            return got + exc.messages, exc
        assert dec.buffered <= MAX_MESSAGE + 1  # one message, and a "\r" that may end it
    return got, None


@budget(250)
@given(inputs, st.lists(st.integers(0, 1 << 16), max_size=6))
@example(b"eventid=5\n" + b"x" * MAX_MESSAGE, [10])  # one message too long, id known
def test_the_stream_splits_alike_wherever_it_is_cut(stream: bytes, cuts: list[int]) -> None:
    whole, error = _feed_all([stream])
    split, split_error = _feed_all(pieces(stream, cuts))
    assert split == whole
    assert (error is None) == (split_error is None)
    if error is not None and split_error is not None:
        assert error.eventid == split_error.eventid


@budget(250)
@given(streams | streams.flatmap(mutations))
def test_every_message_types_or_raises_wire_error_with_an_answerable_id(stream: bytes) -> None:
    decoded = assert_bounded(lambda: EventDecoder().feed(stream), len(stream))
    if isinstance(decoded, EventStreamError):
        decoded = decoded.messages
    assert not isinstance(decoded, BaseException), repr(decoded)
    for fields in decoded:
        event = assert_bounded(partial(parse_event, fields), len(stream), factor=256)
        note(type(event).__name__)  # --hypothesis-show-statistics: how deep the examples go
        if isinstance(event, EventWireError):
            if event.eventid is not None:
                assert encode_reply(event.eventid, False).endswith(b"result=deny\n\n")
            continue
        assert isinstance(event, AuthorizeBinding | UnknownEvent), repr(event)
        if event.eventid is not None:
            reply = encode_reply(event.eventid, True)
            assert EventDecoder().feed(reply) == [
                {"eventid": str(event.eventid), "result": "accept"}
            ]
