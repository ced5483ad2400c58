"""FRR's vty framing: commands as sent, replies as the daemons write them, every refusal."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from frrdmvpn.codec.vty import (
    MAX_COMMAND,
    MAX_WORDS,
    Reply,
    ReplyDecoder,
    Status,
    VtyWireError,
    encode_command,
    status_name,
)

pytestmark = pytest.mark.unit

# What nhrpd 8.4 wrote for `show ip nhrp cache json` with an empty cache (research notes).
EMPTY_CACHE = b'{\n  "attr":{\n    "entriesCount":0\n  },\n  "table":[\n  ]\n}\n\x00\x00\x00\x01'
UNKNOWN = b"% [NHRP] Unknown command: show interface\n\x00\x00\x00\x02"


def reply_bytes(text: bytes, status: int) -> bytes:
    return text + bytes([0, 0, 0, status])


def test_a_command_is_its_text_and_one_nul() -> None:
    assert encode_command("show ip nhrp cache json") == b"show ip nhrp cache json\x00"
    assert encode_command("description café") == "description café\x00".encode()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("show a\x00b", "cannot contain NUL, CR or LF"),
        ("echo a\nshow version", "cannot contain NUL, CR or LF"),
        ("echo a\r", "cannot contain NUL, CR or LF"),
        ("   ", "empty vty command"),
        ("echo " + "x" * (MAX_COMMAND - 4), f"of {MAX_COMMAND + 1} bytes is longer than 3583"),
        ("echo" + " x" * MAX_WORDS, f"of {MAX_WORDS + 1} words has more than 256"),
    ],
)
def test_commands_that_would_not_arrive_whole_are_refused(line: str, message: str) -> None:
    with pytest.raises(VtyWireError, match=message):
        encode_command(line)


def test_the_longest_command_fits_the_daemons_buffer_with_a_read_to_spare() -> None:
    longest = "echo " + "x" * (MAX_COMMAND - 5)
    assert len(encode_command(longest)) == MAX_COMMAND + 1 <= 4096 - 512


def test_replies_carry_text_and_status() -> None:
    dec = ReplyDecoder()
    (empty, unknown) = dec.feed(EMPTY_CACHE + UNKNOWN)
    assert empty.status == Status.WARNING
    assert empty.ok
    assert empty.refusals == []
    assert '"entriesCount":0' in empty.text
    assert not unknown.ok
    assert unknown.error() == "% [NHRP] Unknown command: show interface"
    assert dec.pending == 0


@pytest.mark.parametrize(
    ("reply", "ok", "error"),
    [
        (Reply(0, ""), True, "CMD_SUCCESS"),
        (Reply(10, "x\n"), True, "CMD_SUCCESS_DAEMON"),
        (Reply(13, ""), False, "CMD_WARNING_CONFIG_FAILED"),
        (Reply(0, "ok\n% Password size limit exceeded\n"), False, "% Password size limit exceeded"),
        (Reply(99, ""), False, "status 99"),
    ],
)
def test_success_is_an_accepted_status_without_a_refusal(
    reply: Reply, ok: bool, error: str
) -> None:
    assert reply.ok is ok
    assert reply.error() == error


def test_status_names() -> None:
    assert status_name(2) == "CMD_ERR_NO_MATCH"
    assert status_name(200) == "status 200"


def test_a_reply_arrives_in_pieces() -> None:
    dec = ReplyDecoder()
    stream = reply_bytes(b"PING\n", 0)
    got = [r for i in range(len(stream)) for r in dec.feed(stream[i : i + 1])]
    assert got == [Reply(0, "PING\n")]


def test_malformed_trailer_is_refused() -> None:
    with pytest.raises(VtyWireError, match="malformed vty reply trailer"):
        ReplyDecoder().feed(b"text\x00\x01\x00\x00")


def test_replies_longer_than_the_cap_are_refused_before_their_end() -> None:
    dec = ReplyDecoder(max_reply=10)
    assert dec.feed(b"x" * 10) == []
    with pytest.raises(VtyWireError, match="longer than 10 bytes"):
        dec.feed(b"x")
    with pytest.raises(VtyWireError, match="longer than 10 bytes"):
        ReplyDecoder(max_reply=10).feed(reply_bytes(b"y" * 11, 0))
    assert ReplyDecoder(max_reply=10).feed(reply_bytes(b"y" * 10, 0)) == [Reply(0, "y" * 10)]


def test_output_that_is_not_utf8_is_kept_readable() -> None:
    assert ReplyDecoder().feed(reply_bytes(b"caf\xe9\n", 0)) == [Reply(0, "caf\ufffd\n")]


_texts = st.binary(max_size=300).map(lambda b: b.replace(b"\x00", b""))


@given(
    st.lists(st.tuples(_texts, st.integers(0, 255)), max_size=6),
    st.lists(st.integers(0, 2000), max_size=10),
)
def test_replies_split_anywhere_come_out_whole_and_in_order(
    replies: list[tuple[bytes, int]], cuts: list[int]
) -> None:
    stream = b"".join(reply_bytes(text, status) for text, status in replies)
    bounds = sorted({0, len(stream), *(min(c, len(stream)) for c in cuts)})
    dec = ReplyDecoder()
    got = [r for a, b in itertools.pairwise(bounds) for r in dec.feed(stream[a:b])]
    assert got == [Reply(s, t.decode(errors="replace")) for t, s in replies]
    assert dec.pending == 0


@given(st.lists(st.binary(max_size=64), max_size=8))
def test_any_bytes_give_replies_or_a_wire_error(chunks: list[bytes]) -> None:
    dec = ReplyDecoder(max_reply=100)
    try:
        for chunk in chunks:
            for reply in dec.feed(chunk):
                assert 0 <= reply.status <= 255
                assert len(reply.text.encode("utf-8", errors="surrogatepass")) <= 400
    except VtyWireError:
        pass
