"""Control, format and line-separator characters in configuration text (issue 14, hole 8).

A ``description`` (any value) carrying a line break for another reader became statements of
its own once rendered (``ip nhrp map ...``), or hid the rest of its block; now every such
character is refused, at its column, in files, in edits (the API's EditConfig, the shell),
in comments, between words.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from frrdmvpn.config.canonical_text import render
from frrdmvpn.config.diagnostics import Diagnostic
from frrdmvpn.config.edit import apply_line
from frrdmvpn.config.modes import ROOT, Context, Mode
from frrdmvpn.config.parse import parse, parse_strict
from frrdmvpn.config.secrets import mask_text
from frrdmvpn.config.text import first_refused, lines, printable
from frrdmvpn.config.validate import check
from frrdmvpn.datastores import Datastores

pytestmark = pytest.mark.unit

HUB = (Path(__file__).resolve().parents[3] / "docs" / "examples" / "lab-hub.conf").read_text()
TUNNEL = Context(Mode.INTERFACE, ("Tunnel0",))
EXPECTED = "printable characters (words separated by spaces or TAB)"
WHY = "(no control, format or line-separator characters in configuration text)"

# Every class refused, with the label a user sees.
REFUSED = {
    "\x00": "U+0000",
    "\n": "U+000A",
    "\r": "U+000D",
    "\x0b": "U+000B",
    "\x0c": "U+000C",
    "\x1b": "U+001B",
    "\x1c": "U+001C",
    "\x7f": "U+007F",
    "\x85": "U+0085",
    "\x9b": "U+009B",
    "\u2028": "U+2028 LINE SEPARATOR",
    "\u2029": "U+2029 PARAGRAPH SEPARATOR",
    "\u202e": "U+202E RIGHT-TO-LEFT OVERRIDE",
    "\u2066": "U+2066 LEFT-TO-RIGHT ISOLATE",
    "\u200f": "U+200F RIGHT-TO-LEFT MARK",
    "\u200b": "U+200B ZERO WIDTH SPACE",
    "\ufeff": "U+FEFF ZERO WIDTH NO-BREAK SPACE",
    "\u00ad": "U+00AD SOFT HYPHEN",
    "\udc80": "U+DC80",
}


def refusal(line: int | None, column: int, char: str) -> Diagnostic:
    return Diagnostic(
        line, column, char, f"character {REFUSED[char]} is not allowed {WHY}", EXPECTED
    )


@pytest.mark.parametrize("char", sorted(REFUSED))
def test_a_description_refuses_each_class_at_its_column(char: str) -> None:
    config = parse_strict(HUB)
    result = apply_line(
        config,
        TUNNEL,
        f"description uplink{char}ip nhrp map 192.0.2.99 198.51.100.99",
        line_number=7,
    )
    assert result.diagnostics == (refusal(7, 19, char),)
    assert result.config == config  # nothing changed


def test_the_edit_that_added_a_statement_is_refused_and_the_block_stays_whole() -> None:
    """The reported attack: U+2028 in a description, then the next edit re-parses it."""
    ds = Datastores()
    ds.candidate = HUB
    report = ds.edit(
        TUNNEL,
        ["description uplink\u2028 ip nhrp map 192.0.2.99 198.51.100.99", "ip nhrp holdtime 60"],
        commit=False,
    )
    assert report.accepted == 0
    assert report.diagnostics == (refusal(None, 19, "\u2028"),)
    assert report.candidate == HUB  # the candidate is untouched
    after = ds.edit(TUNNEL, ["ip nhrp holdtime 61"], commit=False)
    assert after.accepted == 1
    config = parse_strict(after.candidate)
    tunnel = config.interfaces[0]
    assert tunnel.nhrp_holdtime == 61
    assert tunnel.description is None
    assert tunnel.nhrp_maps == parse_strict(HUB).interfaces[0].nhrp_maps


def test_a_file_refuses_them_in_values_between_words_and_in_comments() -> None:
    text = (
        "! an honest comment\n"
        "! a comment that hides\u202e a reversed tail\n"
        "hostname hub\n"
        "interface Tunnel0\n"
        " description uplink\u2028 ip nhrp map 192.0.2.99 198.51.100.99\n"
        " ip nhrp\x0bholdtime 60\n"
        "\x1c\n"
    )
    found = parse(text).diagnostics
    assert found == (
        refusal(2, 23, "\u202e"),
        refusal(5, 20, "\u2028"),
        refusal(6, 9, "\x0b"),
        refusal(7, 1, "\x1c"),
    )
    tunnel = parse(text).config.interfaces[0]
    assert tunnel.description is None
    assert not tunnel.nhrp_maps
    assert tunnel.nhrp_holdtime is None


def test_lines_end_at_newline_only_and_crlf_reads_like_lf() -> None:
    assert lines("a\r\nb\u2028c\x0bd\n\ne\r") == ["a", "b\u2028c\x0bd", "", "e"]
    assert parse(HUB.replace("\n", "\r\n")).config == parse_strict(HUB)
    assert check("hostname h\rx\n")[1] == (refusal(1, 11, "\r"),)


def test_tab_and_the_text_of_any_script_are_accepted_and_round_trip() -> None:
    text = "Zürich büro\t— 東京 ✓ (Ελλάδα) a\u00a0b"
    result = apply_line(parse_strict(HUB), TUNNEL, f"description {text}")
    assert result.ok
    assert result.config.interfaces[0].description == text
    assert parse_strict(render(result.config)) == result.config


def test_an_error_never_echoes_a_control_character() -> None:
    text = "hostname hub\x1b[2J\n"
    (found,) = check(text)[1]
    assert found.format(text) == (
        f"frrdmvpn.conf:1:13: error: character U+001B is not allowed {WHY} ['\\x1b']; valid: "
        f"{EXPECTED}\nhostname hub?[2J\n            ^"
    )
    assert printable("a\u202eb\tc") == "a?b\tc"


def test_the_root_context_and_negations_refuse_them_too() -> None:
    config = parse_strict(HUB)
    assert apply_line(config, ROOT, "no\u2029hostname").diagnostics == (refusal(None, 3, "\u2029"),)
    assert apply_line(config, ROOT, "!\x85").diagnostics == (refusal(None, 2, "\x85"),)


# --- fuzz: no value can add, drop or hide a statement ------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_any_description_is_refused_or_renders_to_the_same_model(value: str) -> None:
    config = parse_strict(HUB)
    result = apply_line(config, TUNNEL, f"description {value}")
    if result.diagnostics:
        assert result.config == config
        return
    rendered = render(result.config)
    assert first_refused(rendered.replace("\n", "")) is None
    assert parse_strict(rendered) == result.config


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=60), st.integers(0, len(HUB)))
def test_text_inserted_anywhere_in_a_file_never_parses_to_a_refused_character(
    inserted: str, at: int
) -> None:
    text = HUB[:at] + inserted + HUB[at:]
    parsed = parse(text)
    if any(first_refused(line) is not None for line in lines(text)):
        assert not parsed.ok
    rendered = render(parsed.config)
    assert first_refused(rendered.replace("\n", "")) is None


def test_masking_splits_lines_as_the_parser_does() -> None:
    """A key followed by U+2028 in an older file: no part of it shows as a line of its own."""
    text = "crypto ikev2 keyring k\n peer p\n  pre-shared-key abc\u2028def\r\n!\n"
    assert mask_text(text) == (
        "crypto ikev2 keyring k\n peer p\n  pre-shared-key <removed>\u2028<removed>\r\n!\n"
    )
