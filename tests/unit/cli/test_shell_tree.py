"""The command tree is the one source: handlers, levels, pipes and the generated reference."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli import tree
from cli.parse import parse
from cli.parsed import Level, Parsed
from cli.pipes import FILTERS
from cli.tree import PIPE, commands
from docgen import shell_reference
from frrdmvpn.command_engine.params import IntRange, Ipv4, Tunnel

pytestmark = pytest.mark.unit

DOCS = Path(__file__).resolve().parents[3] / "docs" / "shell.md"


def test_every_modifier_the_tree_names_is_one_the_shell_applies() -> None:
    named = {s.modifier for s in tree.children(PIPE)} | {
        c.modifier for s in tree.children(PIPE) for c in s.children
    }
    assert named - {None} == {*FILTERS, "json"}


def test_every_command_parses_back_to_its_handler_at_each_of_its_levels() -> None:
    samples = {"A.B.C.D": "192.0.2.11", "TunnelN": "Tunnel0", "LINE": "x y", "<0-512>": "24"}
    seen = 0
    for path in commands():
        words = [samples.get(n.label, n.label) for n in path.specs]
        line = " ".join(["no", *words] if path.negated else words)
        for level in path.levels:
            result = parse(line, level)
            assert isinstance(result, Parsed), (line, level, result)
            assert result.handler == path.handler
            seen += 1
    assert seen > 60


def test_top_level_nodes_say_where_they_exist() -> None:
    for node in tree.ROOT.children:
        assert node.levels, node.word
    assert [n.label for n in tree.top_level(Level.CONFIG)] == ["do", "end", "exit"]
    assert "configure" not in [n.label for n in tree.top_level(Level.USER)]


def test_argument_types() -> None:
    ip, num, tun = Ipv4(), IntRange(1, 65535), Tunnel(99)
    assert ip.read("192.0.2.1") is not None
    assert ip.read("192.0.2") is None
    assert ip.read("192.0.2.256") is None
    assert ip.read("\uff1192.0.2.1") is None  # a fullwidth 1: only ASCII digits are digits
    assert ip.partial("192.0.")
    assert not ip.partial("192.x")
    assert num.read("65535") == 65535
    assert num.read("0") is None
    assert num.read("²") is None
    assert num.read("42") == 42
    assert num.partial("6553")
    assert not num.partial("70000")
    assert tun.read("tu7") == 7
    assert tun.read("Tunnel100") is None
    assert tun.read("tu٣") is None
    assert tun.partial("Tun")
    assert not tun.partial("Ethernet")


def test_the_reference_lists_every_command_and_docs_are_current() -> None:
    text = shell_reference.reference()
    for path in commands():
        assert f"`{path.syntax.replace('|', chr(92) + '|')}`" in text, path.syntax
    for word in ("ip nhrp holdtime <1-65000>", "(config-if)#", "Number of lines which match"):
        assert word in text
    assert DOCS.read_text() == text, "regenerate: python -m docgen.shell_reference > docs/shell.md"
