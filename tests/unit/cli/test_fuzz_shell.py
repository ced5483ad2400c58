"""Fuzz: the shell's command parser (cli/parse.py), output modifiers (cli/pipes.py) and the
engine that runs them (cli/session.py over tests/unit/cli/test_shell_session.py's fake API),
fed what a user types.

Properties: parsing, ``?`` and TAB return their result for any line at any level; a
modifier's regular expression either filters or raises :class:`PipeError` (a message, not
a traceback); a session answers every line with output and stays usable. Generation: the
command tree's own words and labels, abbreviated, with values and ``|`` modifiers.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from cli import pipes
from cli.parse import (
    config_complete,
    config_help,
    config_line_kind,
    exec_complete,
    exec_help,
    exec_words,
    parse,
)
from cli.parsed import Level, Parsed, Pipe
from cli.session import Output
from cli.tree import commands
from frrdmvpn.command_engine.grammar import Failure
from frrdmvpn.command_engine.ios_text import failure_lines
from frrdmvpn.config import commands as cmd
from frrdmvpn.config.modes import Mode
from tests.fakes.shell import session_of
from tests.fuzzing import MARKS, budget

pytestmark = [*MARKS, pytest.mark.timeout(120)]

TREE_WORDS = sorted({n.label for p in commands() for n in p.specs} | {"no", "|", "do", "?"})
CONFIG_WORDS = sorted(
    {word for c in cmd.COMMANDS for word in c.syntax.replace("[", " ").replace("]", " ").split()}
)
VALUES = [
    "198.51.100.2",
    "²",  # isdigit(), but no number
    "١٢",  # Arabic-Indic digits
    "¹92.0.2.1",
    "192.0.2.300",
    "Tunnel0",
    "tu9999999999",
    "0",
    "512",
    "-1",
    "99999999999999999999",
    "include",
    "exclude",
    "section",
    "begin",
    "count",
    "json",
    "a{4294967296}",
    "(" * 300 + ")" * 300,
    "[",
    "*",
    "\t",
    "\x00",
    "é",
]


def _abbreviated(word: str, cut: int) -> str:
    return word[: max(1, len(word) - cut)] if cut else word


word = st.builds(
    _abbreviated, st.sampled_from(TREE_WORDS + CONFIG_WORDS + VALUES), st.integers(0, 3)
) | st.text(max_size=6)
lines = st.builds(
    lambda lead, ws, trail: lead + " ".join(ws) + trail,
    st.sampled_from(["", " ", "  "]),
    st.lists(word, max_size=8),
    st.sampled_from(["", " ", "?", " ?"]),
)
levels = st.sampled_from(Level)
modes = st.sampled_from(Mode)


@budget(300)
@given(lines, levels, modes)
def test_parse_help_and_completion_answer_any_line(line: str, level: Level, mode: Mode) -> None:
    result = parse(line, level)
    assert result is None or isinstance(result, Parsed | Failure)
    if isinstance(result, Failure):
        assert failure_lines(result, line, 8)
    assert isinstance(exec_help(line, level), list)
    exec_complete(line, level)
    exec_words(line, level)
    config_line_kind(line, mode)
    assert isinstance(config_help(line, mode), list)
    config_complete(line, mode)


regexes = st.sampled_from([*VALUES, r"(a+)+", r"\d{1,3}", r"(?P<x>", r"\1", "a{2,1}"])
regexes |= st.text(max_size=12)


@budget(300)
@given(st.sampled_from([*pipes.FILTERS, "json"]), regexes)
# Found: repetition counts over 2**32-1 raise OverflowError, a few hundred nested groups
# RecursionError; both ended the shell with a traceback.
@example("include", "a{4294967296}")
@example("section", "(" * 1200 + ")" * 1200)
def test_a_modifier_filters_or_says_the_expression_is_invalid(kind: str, regex: str) -> None:
    body = ["interface Tunnel0", " ip address 192.0.2.1 255.255.255.0", "!", "aaaa"]
    try:
        out = pipes.apply(Pipe(kind, regex), body)
    except pipes.PipeError as exc:
        out = [str(exc)]
        assert out[0].startswith("% Invalid regular expression"), out
    assert all(isinstance(line, str) for line in out)


@budget(100)
@given(st.lists(st.tuples(lines, st.booleans()), min_size=1, max_size=6))
@example([("show running-config | include a{4294967296}", False)])
@example([("show running-config section (" + "(" * 1200 + ")" * 1201, False)])
def test_a_session_answers_every_line_and_lives_on(typed: list[tuple[str, bool]]) -> None:
    session, _, _ = session_of()
    try:
        for line, configure in typed:
            if configure and session.level is not Level.CONFIG:
                session.execute("configure terminal")
            out = session.execute(line)
            assert isinstance(out, Output)
            assert all(isinstance(text, str) for text in out.lines)
            session.help(line)
            session.complete(line)
        if not session.finished:
            alive = "do show version" if session.level is Level.CONFIG else "show version"
            assert session.execute(alive).ok
    finally:
        session.debugger.stop()
