"""EventDecoder faults: messages completed before a fault survive it; nothing unbounded."""

from __future__ import annotations

import pytest

from frrdmvpn.codec.nhrp_events import (
    MAX_MESSAGE,
    EventDecoder,
    EventStreamError,
    EventWireError,
)

pytestmark = pytest.mark.unit


def _event(eventid: int) -> bytes:
    return b"eventid=%d\nevent=authorize-binding\ninterface=gre1\n\n" % eventid


def _fields(eventid: int) -> dict[str, str]:
    return {"eventid": str(eventid), "event": "authorize-binding", "interface": "gre1"}


def _oversized(eventid: int | None, size: int = MAX_MESSAGE + 1000) -> bytes:
    """A message with one huge field (no terminating blank line): ``size`` bytes."""
    head = b"" if eventid is None else b"eventid=%d\n" % eventid
    head += b"event=authorize-binding\nremote_cert="
    return head + b"ab" * ((size - len(head)) // 2)


def _fault(dec: EventDecoder, data: bytes) -> EventStreamError:
    with pytest.raises(EventStreamError) as info:
        dec.feed(data)
    assert isinstance(info.value, EventWireError)  # callers catching the base still work
    return info.value


def test_complete_messages_before_an_oversized_complete_one_are_returned() -> None:
    dec = EventDecoder()
    exc = _fault(dec, _event(1) + _event(2) + _oversized(3) + b"\n\n" + _event(4))
    assert exc.messages == [_fields(1), _fields(2)]  # never 4: it follows the fault
    assert exc.eventid == 3  # so the caller can deny it at once
    assert f"exceeds {MAX_MESSAGE} bytes" in str(exc)


def test_complete_messages_before_an_oversized_partial_line_are_returned() -> None:
    exc = _fault(EventDecoder(), b"\r\n" + _event(1) + _oversized(2))
    assert exc.messages == [_fields(1)]
    assert exc.eventid == 2


def test_oversized_message_without_a_readable_eventid() -> None:
    exc = _fault(EventDecoder(), _event(1) + _oversized(None))
    assert exc.messages == [_fields(1)]
    assert exc.eventid is None
    bad_id = _oversized(None).replace(b"event=", b"eventid=4294967296\nevent=", 1)
    assert _fault(EventDecoder(), bad_id).eventid is None
    # The id line itself is the oversized line: it was never complete, so never trusted.
    assert _fault(EventDecoder(), b"eventid=1" + b"1" * MAX_MESSAGE).eventid is None


@pytest.mark.parametrize(
    ("line", "match"),
    [
        pytest.param(b"garbage\n", "has no '='", id="no-equals"),
        pytest.param(b"=x\n", "empty key", id="empty-key"),
        pytest.param(b"a=\xff\n", "not UTF-8", id="utf8"),
        pytest.param(b"eventid=9\neventid=9\n", "duplicate field", id="duplicate"),
    ],
)
def test_complete_messages_before_a_malformed_line_are_returned(line: bytes, match: str) -> None:
    exc = _fault(EventDecoder(), _event(1) + _event(2) + line + b"\n" + _event(3))
    assert exc.messages == [_fields(1), _fields(2)]
    assert match in str(exc)


def test_mirror_oversized_split_across_feeds_then_valid_messages() -> None:
    dec = EventDecoder()
    big = _oversized(5)
    half = MAX_MESSAGE // 2
    assert dec.feed(_event(1) + big[:half]) == [_fields(1)]
    assert dec.buffered <= MAX_MESSAGE
    exc = _fault(dec, big[half:] + b"\n\n" + _event(6) + _event(7))
    # The fault lies before 6 and 7: the stream is out of sync, nothing after it is trusted.
    assert exc.messages == []
    assert exc.eventid == 5


def test_oversized_across_many_small_feeds_faults_at_the_first_byte_over() -> None:
    dec = EventDecoder()
    data = b"eventid=8\n" + b"k=" + b"v" * MAX_MESSAGE
    fed = 0
    for i in range(0, len(data), 4096):
        chunk = data[i : i + 4096]
        if fed + len(chunk) > MAX_MESSAGE:
            assert dec.feed(chunk[: MAX_MESSAGE - fed]) == []
            assert dec.buffered == MAX_MESSAGE
            exc = _fault(dec, chunk[MAX_MESSAGE - fed : MAX_MESSAGE - fed + 1])
            assert exc.eventid == 8
            break
        assert dec.feed(chunk) == []
        fed += len(chunk)
        assert dec.buffered == fed
    else:
        pytest.fail("no fault")


def test_after_a_fault_nothing_is_held_and_input_is_refused() -> None:
    dec = EventDecoder()
    _fault(dec, _event(1) + _oversized(2))
    assert dec.buffered == 0
    exc = _fault(dec, _event(3))
    assert exc.messages == []
    assert "already broken" in str(exc)
    assert "exceeds" in str(exc)
    assert dec.buffered == 0


def test_held_bytes_stay_bounded_whatever_the_chunking() -> None:
    """Blank lines and finished messages are not held; one message in progress at most."""
    dec = EventDecoder()
    stream = (b"\r\n" * 5000 + _event(1)) * 20 + b"a=" + b"b" * (MAX_MESSAGE - 4) + b"\r"
    got: list[dict[str, str]] = []
    for i in range(0, len(stream), 7919):
        got += dec.feed(stream[i : i + 7919])
        assert dec.buffered <= MAX_MESSAGE + 1
    assert got == [_fields(1)] * 20
    assert dec.feed(b"\n\n") == [{"a": "b" * (MAX_MESSAGE - 4)}]
    assert dec.buffered == 0
