"""Fuzz: the configuration language (frrdmvpn/config: decode, parse, grammar, check), fed
what an administrator may type or an editor may leave in /etc/frrdmvpn/frrdmvpn.conf.

Properties: a file's bytes decode to text or raise :class:`ConfigError` at the first byte
that is not UTF-8 (its line and column); ``check`` of any text returns the model and
diagnostics that point into the text and format, never raises; a text that checks without
error renders to a canonical text that checks to the same model; pathological nesting and
long lines cost time in proportion to their size. Generation: the shipped examples mutated
line by line (dropped, repeated, moved, re-indented, words replaced from the grammar's
vocabulary) and byte by byte, plus arbitrary text.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from frrdmvpn.config import commands as cmd
from frrdmvpn.config import diagnostics
from frrdmvpn.config.canonical_text import render
from frrdmvpn.config.diagnostics import ConfigError, Diagnostic, errors
from frrdmvpn.config.parse import decode
from frrdmvpn.config.validate import check
from tests.fuzzing import MARKS, budget, mutations

pytestmark = MARKS

EXAMPLES = sorted((Path(__file__).parents[3] / "docs" / "examples").glob("*.conf"))
TEXTS = [p.read_text() for p in EXAMPLES]
VOCABULARY = sorted(
    {word for c in cmd.COMMANDS for word in c.syntax.replace("[", " ").replace("]", " ").split()}
    | {
        "no",
        "default",
        "exit",
        "end",
        "!",
        "Tunnel0",
        "0",
        "4294967296",
        "192.0.2.1",
        "255.255.255.0",
        "0.0.0.0",
        "198.51.100.300",
        "²",  # isdigit(), but no number: int() raises
        "١٢",  # Arabic-Indic digits: isdigit(), but no number of the language
        "fqdn",
        "<removed>",
        "-",
        "\t",
    }
)
words = st.sampled_from(VOCABULARY) | st.text(max_size=8)


@st.composite
def edited_examples(draw: st.DrawFn) -> str:
    """A shipped example, edited a few times line by line."""
    lines = draw(st.sampled_from(TEXTS)).splitlines()
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, max(len(lines) - 1, 0)))
        kind = draw(st.integers(0, 5))
        if kind == 0 and lines:
            del lines[at]
        elif kind == 1 and lines:
            lines.insert(draw(st.integers(0, len(lines))), lines[at])
        elif kind == 2 and lines:
            lines[at] = " " * draw(st.integers(0, 4)) + lines[at].lstrip()
        elif kind == 3 and lines:
            tokens = lines[at].split(" ")
            tokens[draw(st.integers(0, len(tokens) - 1))] = draw(words)
            lines[at] = " ".join(tokens)
        elif kind == 4:
            line = " " * draw(st.integers(0, 3)) + " ".join(draw(st.lists(words, max_size=6)))
            lines.insert(at, line)
        else:
            lines = lines[: at + 1]
    end = draw(st.sampled_from(["\n", "\r\n", "\n\n"]))
    return end.join(lines) + draw(st.sampled_from(["", end]))


texts = (
    edited_examples()
    | st.sampled_from(TEXTS)
    .map(str.encode)
    .flatmap(mutations)
    .map(lambda b: b.decode(errors="replace"))
    | st.text(max_size=200)
)


def _assert_points_into(text: str, found: tuple[Diagnostic, ...]) -> None:
    count = max(len(text.splitlines()), 1)
    for d in found:
        assert d.line is None or 1 <= d.line <= count, (d, count)
        assert d.column is None or d.column >= 1, d
        assert d.format(text)  # what the daemon logs and the shell prints


@budget(300)
@given(texts)
@example("interface Tunnel0\n description caf\ufffd\n")
def test_any_text_checks_to_diagnostics_that_point_into_it(text: str) -> None:
    config, found = check(text)
    _assert_points_into(text, found)
    if errors(found):
        return
    canonical = render(config)
    again, refound = check(canonical)
    assert not errors(refound), refound
    assert again == config
    assert render(again) == canonical


file_bytes = (
    st.sampled_from(TEXTS).map(str.encode).flatmap(mutations)
    | st.sampled_from(TEXTS).map(lambda t: t.encode("latin-1", errors="replace"))
    | st.binary(max_size=120)
)


@budget(300)
@given(file_bytes)
@example("interface Tunnel0\n description Caf\xe9\n".encode("latin-1"))  # a Latin-1 editor
def test_file_bytes_decode_or_name_the_first_byte_that_is_not_utf8(data: bytes) -> None:
    try:
        text = decode(data)
    except ConfigError as exc:
        (found,) = exc.diagnostics
        try:
            data.decode()
        except UnicodeDecodeError as error:
            bad = error.start
        line_start = data.rfind(b"\n", 0, bad) + 1
        assert found.line == data.count(b"\n", 0, bad) + 1
        assert found.column == len(data[line_start:bad].decode()) + 1
        assert found.message == f"byte 0x{data[bad]:02x} is not UTF-8 (write the file in UTF-8)"
        assert found.format(None, "frrdmvpn.conf").startswith(
            f"frrdmvpn.conf:{found.line}:{found.column}: error: byte 0x"
        )
        return
    assert text.encode() == data
    _assert_points_into(text, check(text)[1])


PATHOLOGICAL = {
    "a long word": "hostname " + "x" * 200_000,
    "a long line of words": "interface Tunnel0\n description " + "x " * 100_000,
    "many words after a command": "interface Tunnel0\n ip address " + "1 " * 100_000,
    "deep indentation": "interface Tunnel0\n" + "".join(" " * i + "x\n" for i in range(1, 1500)),
    "a staircase of valid lines": "interface Tunnel0\n"
    + "".join(" " * i + "description a\n" for i in range(1, 2000)),
    "headers nested by indentation": "".join(
        " " * i + f"interface Tunnel{i}\n" for i in range(2000)
    ),
    "a huge number": "interface Tunnel0\n tunnel key " + "9" * 100_000,
    "many unknown lines": "x y z\n" * 8_000,
}


@pytest.mark.parametrize("text", PATHOLOGICAL.values(), ids=PATHOLOGICAL.keys())
def test_pathological_texts_check_in_bounded_time(text: str) -> None:
    """Each is checked well inside pytest's timeout (linear work; bench/ measures)."""
    _, found = check(text)
    _assert_points_into(text, found)


def test_formatting_every_finding_of_a_text_splits_it_once() -> None:
    """Found with "many unknown lines": each finding split the whole text again to show its
    line, so N findings of an N-line file cost N^2 (bench/config_scaling.py measures)."""
    text = "x y z\n" * 300
    _, found = check(text)
    assert len(found) == 300
    before = diagnostics._lines.cache_info()
    shown = [d.format(text) for d in found]
    after = diagnostics._lines.cache_info()
    assert after.misses - before.misses == 1
    assert shown[299].splitlines()[1:] == ["x <removed> <removed>", "^"]  # masked: unknown
