"""The command engine on a small tree of its own: the matching rule, ``no`` forms, ``do``,
output modifiers, ``?``, TAB and where the ``^`` goes (the shell's and the language's
trees are tested through their users in tests/unit/cli and tests/unit/config)."""

from __future__ import annotations

import pytest

from frrdmvpn.command_engine.grammar import (
    Failure,
    FailureKind,
    Grammar,
    Match,
    Node,
    Opt,
    Param,
    begun_at,
    syntax,
)
from frrdmvpn.command_engine.params import Choice, IntRange, Ipv4, Line, Word
from frrdmvpn.command_engine.tokens import tokenize

pytestmark = pytest.mark.unit

EXEC, OTHER = "exec", "other"


def grammar() -> Grammar[str, str]:
    """``show version``, ``show ip route [A.B.C.D]``, ``debug all`` with ``no debug all``,
    ``timer <1-60>``, ``name WORD``, ``mode {fast|slow}``, and in another tree ``go``
    (its ``do`` leads back to the first tree); ``| include LINE`` after ``show``."""
    modifiers: Node[str] = Node()
    include = modifiers.keyword("include", "Include lines that match")
    include.param(Param("regex", Line(), help="Regular Expression")).command = "include"
    g: Grammar[str, str] = Grammar(modifiers)
    g.add(EXEC, ("show", "version"), "show-version", help="Show")
    g.add(EXEC, ("show", "ip", "route", Opt(Param("to", Ipv4()))), "show-route", help="Show")
    g.add(EXEC, ("debug", "all"), "debug-all", help="Debug", no_command="undebug-all")
    g.add(EXEC, ("timer", Param("seconds", IntRange(1, 60))), "timer", help="Timer")
    g.add(EXEC, ("name", Param("name", Word())), "name", help="Name")
    g.add(EXEC, ("mode", Param("mode", Choice("fast", "slow"))), "mode", help="Mode")
    root = g.root(EXEC)
    root.keyword("no", "Negate").negates = True
    for word in ("show",):
        _mark_modifiers(root.keywords[word])
    g.add(OTHER, ("go",), "go", help="Go")
    g.root(OTHER).keyword("do", "Run a command of the first tree").redirect = root
    return g


def _mark_modifiers(node: Node[str]) -> None:
    if node.command is not None:
        node.modifiers = True
    for child in node.keywords.values():
        _mark_modifiers(child)
    for _, child in node.params:
        _mark_modifiers(child)


def match(line: str, key: str = EXEC) -> Match[str] | Failure:
    return grammar().match(key, tokenize(line), line)


def matched(line: str, key: str = EXEC) -> Match[str]:
    result = match(line, key)
    assert isinstance(result, Match), result
    return result


def failed(line: str, key: str = EXEC) -> Failure:
    result = match(line, key)
    assert isinstance(result, Failure), result
    return result


def test_keywords_match_by_unique_prefix_in_any_case() -> None:
    assert matched("SH VER").command == "show-version"
    assert matched("sh ip ro 192.0.2.1").values == {"to": ipv4("192.0.2.1")}
    assert matched("show ip route").words == frozenset({"show", "ip", "route"})
    assert failed("n").kind is FailureKind.AMBIGUOUS  # name, no
    assert failed("n").expected == "name, no"
    assert failed("s").kind is FailureKind.INCOMPLETE  # show


def ipv4(text: str) -> object:
    return Ipv4().read(text)


def test_a_typed_value_wins_over_a_prefix_and_any_word_comes_last() -> None:
    g: Grammar[str, str] = Grammar()
    g.add(EXEC, ("set", "10"), "keyword-10", help="")
    g.add(EXEC, ("set", Param("n", IntRange(1, 200))), "number", help="")
    g.add(EXEC, ("set", "name"), "keyword-name", help="")
    g.add(EXEC, ("set", Param("word", Word())), "word", help="")
    at = g.root(EXEC)
    assert at.keywords["set"].params[0][0].name == "n"  # kept in rank order
    for line, command in (
        ("set 10", "keyword-10"),  # an exact keyword first
        ("set 1", "number"),  # a typed value before the prefix of "10"
        ("set na", "keyword-name"),  # a unique prefix before any word
        ("set n", "keyword-name"),
        ("set x", "word"),  # any word last
    ):
        result = g.match(EXEC, tokenize(line), line)
        assert isinstance(result, Match), line
        assert result.command == command, line


def test_no_forms_offer_only_what_has_one() -> None:
    undo = matched("no debug all")
    assert (undo.command, undo.negated) == ("undebug-all", True)
    assert failed("no show version").kind is FailureKind.INVALID
    g = grammar()
    walk, _ = g.walk(EXEC, tokenize("no "), "no ")
    assert [label for label, _ in walk.entries(g.modifier_help)] == ["debug"]


def test_a_redirect_continues_in_the_other_tree_and_its_no_there() -> None:
    via = matched("do sh ver", OTHER)
    assert (via.command, via.redirected) == ("show-version", True)
    undo = matched("do no deb a", OTHER)
    assert (undo.command, undo.negated, undo.redirected) == ("undebug-all", True, True)
    assert matched("go", OTHER).redirected is False


def test_output_modifiers_follow_only_a_complete_command_that_allows_them() -> None:
    piped = matched("show version | i foo  bar ")
    assert piped.command == "show-version"
    assert piped.modifier is not None
    assert (piped.modifier.command, piped.modifier.values) == ("include", {"regex": "foo  bar"})
    assert failed("show version |").kind is FailureKind.INCOMPLETE
    assert failed("timer 5 | i x").offset == len("timer 5 ")  # no modifiers there


def test_failures_say_what_and_where() -> None:
    extra = failed("show version now")
    assert (extra.kind, extra.index, extra.offset) == (FailureKind.EXTRA, 2, 13)
    out_of_range = failed("timer 61")
    assert out_of_range.kind is FailureKind.REFUSED
    assert out_of_range.message == "61 is out of range 1-60"
    assert out_of_range.offset == len("timer 6")  # "6" still begins a value
    unknown = failed("shop")
    assert (unknown.kind, unknown.offset) == (FailureKind.INVALID, 3)  # under the p
    choice = failed("mode x")
    assert choice.expected == "{fast|slow}"
    incomplete = failed("show ip")
    assert (incomplete.index, incomplete.expected) == (2, "route")


def test_an_ambiguous_choice_is_ambiguous() -> None:
    g: Grammar[str, str] = Grammar()
    g.add(EXEC, ("cipher", Param("c", Choice("aes128", "aes256"))), "cipher", help="")
    result = g.match(EXEC, tokenize("cipher aes"), "cipher aes")
    assert isinstance(result, Failure)
    assert result.kind is FailureKind.AMBIGUOUS
    assert "aes128, aes256" in result.message


def test_help_and_tab_candidates() -> None:
    g = grammar()
    walk, failure = g.walk(EXEC, tokenize("show ip route "), "show ip route ")
    assert failure is None
    assert walk.entries(g.modifier_help) == [
        ("A.B.C.D", "to"),
        ("|", "Output modifiers"),
        ("<cr>", ""),
    ]
    assert walk.begun("19") == ["A.B.C.D"]
    assert walk.begun("|") == ["|"]
    top, _ = g.walk(EXEC, (), "")
    assert top.keywords() == ["debug", "mode", "name", "no", "show", "timer"]


def test_the_caret_search_is_bounded_by_the_longest_beginning() -> None:
    node = grammar().root(EXEC).keywords["timer"]
    assert begun_at(node, "6x") == 1
    assert begun_at(node, "1" * 100_000) == 2  # "11" still begins <1-60>, "111" does not
    assert begun_at(grammar().root(EXEC), "showx" + "y" * 100_000) == 4
    assert begun_at(grammar().root(EXEC), "zz", also=["zzz"]) == 0


def test_a_clash_between_two_commands_is_refused() -> None:
    g: Grammar[str, str] = Grammar()
    g.add(EXEC, ("a", Opt("b")), "one", help="")
    with pytest.raises(ValueError, match="clashes"):
        g.add(EXEC, ("a",), "two", help="")
    assert syntax(("a", Opt("b", Param("n", IntRange(1, 2))), Param("w", Word(), many=True))) == (
        "a [b <1-2>] WORD ..."
    )
