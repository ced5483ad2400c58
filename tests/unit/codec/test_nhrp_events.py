"""nhrpd's event socket codec: framing, typing of authorize-binding, replies."""

from __future__ import annotations

import ipaddress

import pytest

from frrdmvpn.codec.nhrp_events import (
    MAX_MESSAGE,
    AuthorizeBinding,
    EventDecoder,
    EventWireError,
    UnknownEvent,
    encode_reply,
    parse_event,
)
from tests.fakes.nhrp_events import authorize_binding

pytestmark = pytest.mark.unit

# The shape nhrpd 8.4.4 writes (nhrp_event.c evmgr_notify), with a small DER-like cert.
AUTHORIZE = (
    b"eventid=7\n"
    b"event=authorize-binding\n"
    b"type=dynamic\n"
    b"old_type=invalid\n"
    b"num_nhs=0\n"
    b"interface=gre1\n"
    b"local_addr=192.0.2.1\n"
    b"vc_initiated=no\n"
    b"local_nbma=198.51.100.1\n"
    b"local_cert=\n"
    b"remote_addr=192.0.2.11\n"
    b"remote_nbma=198.51.100.11\n"
    b"remote_cert=3003020107\n"
    b"\n"
)
AUTHORIZE_FIELDS = {
    "eventid": "7",
    "event": "authorize-binding",
    "type": "dynamic",
    "old_type": "invalid",
    "num_nhs": "0",
    "interface": "gre1",
    "local_addr": "192.0.2.1",
    "vc_initiated": "no",
    "local_nbma": "198.51.100.1",
    "local_cert": "",
    "remote_addr": "192.0.2.11",
    "remote_nbma": "198.51.100.11",
    "remote_cert": "3003020107",
}
AUTHORIZE_MODEL = authorize_binding(remote_cert=b"\x30\x03\x02\x01\x07")


def _with(**changes: str | None) -> dict[str, str]:
    """AUTHORIZE_FIELDS with fields replaced, or dropped where the value is None."""
    fields = dict(AUTHORIZE_FIELDS)
    for key, value in changes.items():
        if value is None:
            fields.pop(key, None)
        else:
            fields[key] = value
    return fields


# --- framing ---------------------------------------------------------------------------------


def test_realistic_authorize_binding() -> None:
    (fields,) = EventDecoder().feed(AUTHORIZE)
    assert fields == AUTHORIZE_FIELDS
    assert list(fields) == list(AUTHORIZE_FIELDS)
    assert parse_event(fields) == AUTHORIZE_MODEL


def test_two_messages_in_one_feed() -> None:
    second = AUTHORIZE.replace(b"eventid=7", b"eventid=8")
    got = EventDecoder().feed(AUTHORIZE + second)
    assert [m["eventid"] for m in got] == ["7", "8"]


def test_message_split_across_feeds_byte_by_byte() -> None:
    dec = EventDecoder()
    got = [m for i in range(len(AUTHORIZE)) for m in dec.feed(AUTHORIZE[i : i + 1])]
    assert got == [AUTHORIZE_FIELDS]


def test_incomplete_message_is_held() -> None:
    dec = EventDecoder()
    assert dec.feed(AUTHORIZE[:-1]) == []
    assert dec.feed(b"\n") == [AUTHORIZE_FIELDS]


def test_crlf_line_ends() -> None:
    dec = EventDecoder()
    crlf = AUTHORIZE.replace(b"\n", b"\r\n")
    assert dec.feed(crlf[:-1]) == []
    assert dec.feed(crlf[-1:]) == [AUTHORIZE_FIELDS]


def test_blank_lines_between_messages_are_ignored() -> None:
    got = EventDecoder().feed(b"\n\r\n" + AUTHORIZE + b"\n\n" + AUTHORIZE)
    assert got == [AUTHORIZE_FIELDS, AUTHORIZE_FIELDS]


def test_value_may_contain_equals_sign() -> None:
    assert EventDecoder().feed(b"a=b=c\n\n") == [{"a": "b=c"}]


def _message_of_size(size: int) -> bytes:
    """A message whose field lines (with their newlines) are exactly ``size`` bytes.

    Lines are ``kNNNNN=vvv...`` of 1000 bytes; the first absorbs the remainder.
    """
    count, rest = divmod(size, 1000)
    lengths = [1000 + rest] + [1000] * (count - 1)
    return b"".join(b"k%05d=" % i + b"v" * (n - 8) + b"\n" for i, n in enumerate(lengths))


def test_message_of_exactly_the_limit_is_accepted() -> None:
    data = _message_of_size(MAX_MESSAGE)
    assert len(data) == MAX_MESSAGE
    dec = EventDecoder()
    assert dec.feed(data[:-1]) == []
    assert dec.feed(data[-1:] + b"\r") == []
    (fields,) = dec.feed(b"\n")
    assert len(fields) == MAX_MESSAGE // 1000


def test_oversize_complete_message_is_rejected() -> None:
    with pytest.raises(EventWireError, match=f"exceeds {MAX_MESSAGE} bytes"):
        EventDecoder().feed(_message_of_size(MAX_MESSAGE + 1) + b"\n")


def test_oversize_partial_line_is_rejected() -> None:
    dec = EventDecoder()
    assert dec.feed(b"a=" + b"x" * (MAX_MESSAGE - 2)) == []
    with pytest.raises(EventWireError, match="exceeds"):
        dec.feed(b"x")


def test_size_counts_only_the_current_message() -> None:
    dec = EventDecoder()
    half = _message_of_size(MAX_MESSAGE // 2)
    for _ in range(4):
        assert len(dec.feed(half + b"\n")) == 1


@pytest.mark.parametrize(
    ("data", "match"),
    [
        pytest.param(b"eventid=7\ngarbage\n\n", "'garbage' has no '='", id="no-equals"),
        pytest.param(b"=7\n\n", "empty key", id="empty-key"),
        pytest.param(b"a=1\na=2\n\n", "duplicate field 'a'", id="duplicate"),
        pytest.param(b"a=\xff\n\n", "not UTF-8", id="utf8"),
    ],
)
def test_malformed_lines_are_rejected(data: bytes, match: str) -> None:
    with pytest.raises(EventWireError, match=match):
        EventDecoder().feed(data)


# --- parse_event -----------------------------------------------------------------------------


def test_ipv6_addresses_and_initiated_vc() -> None:
    ev = parse_event(
        _with(
            local_addr="2001:db8::1",
            remote_addr="2001:db8::b",
            local_nbma="2001:db8:1::1",
            remote_nbma="2001:db8:1::b",
            vc_initiated="yes",
            type="nhs",
            old_type="nhs",
            num_nhs="2",
        )
    )
    assert isinstance(ev, AuthorizeBinding)
    assert ev.remote_addr == ipaddress.IPv6Address("2001:db8::b")
    assert ev.local_nbma == ipaddress.IPv6Address("2001:db8:1::1")
    assert ev.vc_initiated is True
    assert (ev.type, ev.old_type, ev.num_nhs) == ("nhs", "nhs", 2)


def test_binding_without_peer_fields() -> None:
    ev = parse_event(
        _with(
            local_addr="(unspec)",
            vc_initiated=None,
            local_nbma=None,
            local_cert=None,
            remote_addr=None,
            remote_nbma=None,
            remote_cert=None,
        )
    )
    assert isinstance(ev, AuthorizeBinding)
    assert ev.local_addr is None
    assert ev.vc_initiated is None
    assert (ev.local_nbma, ev.remote_addr, ev.remote_nbma) == (None, None, None)
    assert (ev.local_cert, ev.remote_cert) == (b"", b"")


def test_empty_address_is_none_and_uppercase_hex_is_accepted() -> None:
    ev = parse_event(_with(remote_nbma="", local_cert="0A0b"))
    assert isinstance(ev, AuthorizeBinding)
    assert ev.remote_nbma is None
    assert ev.local_cert == b"\x0a\x0b"


def test_unknown_fields_are_ignored() -> None:
    assert parse_event(_with(future="x")) == AUTHORIZE_MODEL


def test_largest_eventid() -> None:
    ev = parse_event(_with(eventid="4294967295"))
    assert isinstance(ev, AuthorizeBinding)
    assert ev.eventid == 4294967295


def test_unknown_event_keeps_id_and_name() -> None:
    ev = parse_event({"eventid": "9", "event": "peer-up", "x": "1"})
    assert ev == UnknownEvent(9, "peer-up", {"eventid": "9", "event": "peer-up", "x": "1"})
    assert parse_event({"event": "notice"}) == UnknownEvent(None, "notice", {"event": "notice"})


@pytest.mark.parametrize(
    ("changes", "match", "eventid"),
    [
        pytest.param({"eventid": None}, "authorize-binding has no eventid", None, id="no-id"),
        pytest.param({"eventid": "7a"}, "eventid='7a' is not", None, id="id-alnum"),
        pytest.param({"eventid": ""}, "eventid='' is not", None, id="id-empty"),
        pytest.param({"eventid": "-1"}, "eventid='-1'", None, id="id-negative"),
        pytest.param({"eventid": "+7"}, "eventid='\\+7'", None, id="id-plus"),
        pytest.param({"eventid": " 7"}, "eventid=' 7'", None, id="id-space"),
        pytest.param({"eventid": "1_0"}, "eventid='1_0'", None, id="id-underscore"),
        pytest.param({"eventid": "\u0667"}, "eventid='\u0667'", None, id="id-arabic-digit"),
        pytest.param({"eventid": "4294967296"}, "eventid='4294967296'", None, id="id-u32"),
        # Beyond Python's int() digit limit: still a wire error, not a bare ValueError.
        pytest.param({"eventid": "1" * 5000}, "eventid='1111", None, id="id-5000-digits"),
        pytest.param({"num_nhs": "9" * 5000}, "num_nhs='9999", 7, id="num-nhs-5000-digits"),
        pytest.param({"event": None}, "no event field", 7, id="no-event"),
        pytest.param({"type": None}, "event 7 lacks type", 7, id="no-type"),
        pytest.param({"type": "up"}, "type='up' is no cache type", 7, id="bad-type"),
        pytest.param({"old_type": None}, "lacks old_type", 7, id="no-old-type"),
        pytest.param({"old_type": "Dynamic"}, "old_type='Dynamic' is no", 7, id="bad-old"),
        pytest.param({"num_nhs": None}, "lacks num_nhs", 7, id="no-num-nhs"),
        pytest.param({"num_nhs": "x"}, "num_nhs='x' is not", 7, id="bad-num-nhs"),
        pytest.param({"interface": None}, "lacks interface", 7, id="no-interface"),
        pytest.param({"interface": ""}, "empty interface", 7, id="empty-interface"),
        pytest.param({"local_addr": "gre1"}, "local_addr='gre1' is not an IP", 7, id="addr"),
        pytest.param({"remote_addr": "192.0.2.256"}, "remote_addr=", 7, id="remote-addr"),
        pytest.param({"local_nbma": "(af 17)"}, "local_nbma=", 7, id="af-unknown"),
        pytest.param({"remote_nbma": "198.51.100.011"}, "remote_nbma=", 7, id="octal"),
        pytest.param({"remote_cert": "300"}, "remote_cert is not even-length hex", 7, id="odd"),
        pytest.param({"local_cert": "zz"}, "local_cert is not", 7, id="non-hex"),
        pytest.param({"remote_cert": "30 03"}, "remote_cert is not", 7, id="hex-space"),
        pytest.param({"vc_initiated": "true"}, "vc_initiated='true' is not yes/no", 7, id="vc"),
    ],
)
def test_malformed_events_are_rejected(
    changes: dict[str, str | None], match: str, eventid: int | None
) -> None:
    with pytest.raises(EventWireError, match=match) as info:
        parse_event(_with(**changes))
    assert info.value.eventid == eventid


def test_leading_zeros_do_not_count_against_the_u32_range() -> None:
    assert parse_event(_with(eventid="0" * 20 + "4294967295")).eventid == 4294967295


def test_unknown_event_with_bad_eventid_is_rejected() -> None:
    with pytest.raises(EventWireError, match="eventid='x'"):
        parse_event({"eventid": "x", "event": "other"})


# --- replies ---------------------------------------------------------------------------------


def test_reply_accept_and_deny() -> None:
    assert encode_reply(7, accept=True) == b"eventid=7\nresult=accept\n\n"
    assert encode_reply(7, accept=False) == b"eventid=7\nresult=deny\n\n"


def test_reply_lines_fit_nhrpd_buffer_and_round_trip() -> None:
    reply = encode_reply(4294967295, accept=True)
    assert all(len(line) < 255 for line in reply.split(b"\n"))
    assert reply.endswith(b"\n\n")
    assert b"\r" not in reply
    assert EventDecoder().feed(reply) == [{"eventid": "4294967295", "result": "accept"}]
    assert encode_reply(0, accept=False) == b"eventid=0\nresult=deny\n\n"


@pytest.mark.parametrize("eventid", [-1, 4294967296])
def test_reply_rejects_out_of_range_eventid(eventid: int) -> None:
    with pytest.raises(EventWireError, match="not an unsigned 32-bit"):
        encode_reply(eventid, accept=True)
