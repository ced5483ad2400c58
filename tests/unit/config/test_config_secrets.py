"""Secrets of the language: one table, masked in every line shown, kept when fed back masked,
never in a diagnostic or a repr."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from frrdmvpn.command_engine.params import Choice
from frrdmvpn.config import secrets
from frrdmvpn.config.canonical_text import render
from frrdmvpn.config.commands import GRAMMAR
from frrdmvpn.config.diagnostics import Diagnostic
from frrdmvpn.config.edit import apply_line
from frrdmvpn.config.grammar import Secret
from frrdmvpn.config.modes import ROOT, Context, Mode
from frrdmvpn.config.parse import parse, parse_strict
from frrdmvpn.config.secrets import MASK, STATEMENTS, mask_line, mask_text
from tests.fuzzing import budget

pytestmark = pytest.mark.unit

EXAMPLES = Path(__file__).resolve().parents[3] / "docs" / "examples"
HUB = (EXAMPLES / "lab-hub.conf").read_text()
HUB_CONFIG = parse_strict(HUB)
KEY = "Xq7-s3cret-Kz"  # appears nowhere else in any text here
PEER = Context(Mode.IKEV2_KEYRING_PEER, ("lab", "any"))
IF0 = Context(Mode.INTERFACE, ("Tunnel0",))

# Statements whose words suggest a secret but that carry none, and why.
NOT_SECRET = {
    ("crypto ikev2 keyring", "name"): "the keyring's name",
    ("keyring local", "name"): "the name of the keyring the profile uses",
    ("tunnel key", "key"): "the GRE key travels in clear in every GRE header (IOS shows it)",
    ("private-key", "path"): "a file name; the key's contents never enter the configuration",
}
SUSPECT = re.compile(r"key|secret|password|passphrase|auth")


def test_the_table_is_every_secret_parameter_of_the_grammar() -> None:
    found = {(s.mode, " ".join(s.keywords), s.param, s.field) for s in STATEMENTS}
    assert found == {
        (Mode.IKEV2_KEYRING_PEER, "pre-shared-key", "key", "pre_shared_key"),
        (Mode.INTERFACE, "ip nhrp authentication", "secret", "nhrp_authentication"),
    }
    config = parse_strict(
        HUB.replace(" ip nhrp holdtime", " ip nhrp authentication a\n ip nhrp holdtime")
    )
    for statement in STATEMENTS:  # each table entry reaches its objects
        assert secrets.configured(config, PEER if statement.param == "key" else IF0, statement)


def test_every_parameter_that_looks_secret_is_secret_or_explained() -> None:
    for command in GRAMMAR.commands:
        words = " ".join(command.leading_keywords())
        for param in secrets._params(command):
            if isinstance(param.type, Secret | Choice):
                continue
            if SUSPECT.search(param.name) or SUSPECT.search(words):
                assert (words, param.name) in NOT_SECRET, (
                    f"{command.syntax!r}: is {param.name!r} a secret? Make it a Secret "
                    "parameter or say why not in NOT_SECRET"
                )


# --- masking ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("line", "shown"),
    [
        (f"  pre-shared-key {KEY}", "  pre-shared-key <removed>"),
        (f"pre-sh {KEY}", "pre-sh <removed>"),
        (f"no pre-shared-key {KEY}", "no pre-shared-key <removed>"),
        (f"pre-shared-key local {KEY}", "pre-shared-key <removed> <removed>"),  # IOS syntax
        (f"pre-shared-key 6 {KEY}", "pre-shared-key <removed> <removed>"),
        (f"pre-shared-key {KEY} and more", "pre-shared-key <removed> <removed> <removed>"),
        (f"pre-shard-key {KEY}", "pre-shard-key <removed>"),  # a mistyped keyword
        (f" ip nhrp authentication {KEY}", " ip nhrp authentication <removed>"),
        (f"ip nh auth {KEY}", "ip nh auth <removed>"),
        (f"default ip nhrp authentication {KEY}", "default ip nhrp authentication <removed>"),
        (f"ip nhrp authentcation {KEY}", "ip nhrp authentcation <removed>"),
        ("pre-shared-key", "pre-shared-key"),
        ("no ip nhrp authentication", "no ip nhrp authentication"),
        (" description pre-shared-key is set", " description pre-shared-key is set"),
        ("interface Tunnel0", "interface Tunnel0"),
        ("  address 0.0.0.0 0.0.0.0", "  address 0.0.0.0 0.0.0.0"),
        ("exit", "exit"),
        ("! pre-shared-key comment", "! pre-shared-key comment"),
    ],
)
def test_lines_are_shown_masked(line: str, shown: str) -> None:
    assert mask_line(line) == shown


def test_a_whole_configuration_is_masked_and_nothing_else_changes() -> None:
    text = HUB.replace(" ip nhrp holdtime", f" ip nhrp authentication {KEY[:8]}\n ip nhrp holdtime")
    config = parse_strict(text)
    masked = mask_text(text)
    for value in secrets.values(config):
        assert value not in masked
    assert masked.count(MASK) == len(secrets.values(config)) == 2
    assert [a for a in text.splitlines() if MASK not in mask_line(a)] == [
        b for b in masked.splitlines() if MASK not in b
    ]
    assert mask_text(render(config)) == render(parse_strict(masked, secrets_from=config)).replace(
        f"pre-shared-key {config.ikev2_keyrings[0].peers[0].pre_shared_key}",
        f"pre-shared-key {MASK}",
    ).replace(f"authentication {KEY[:8]}", f"authentication {MASK}")


def test_a_model_never_shows_its_secrets_in_a_repr() -> None:
    config = parse_strict(
        HUB.replace(" ip nhrp holdtime", f" ip nhrp authentication {KEY[:8]}\n ip nhrp holdtime")
    )
    for value in secrets.values(config):
        assert value not in repr(config)
        assert value not in str(config)


# --- diagnostics -----------------------------------------------------------------------------
def test_a_refused_secret_line_is_diagnosed_without_the_secret() -> None:
    text = HUB.replace("pre-shared-key ", "pre-shared-key local ", 1)
    key = parse_strict(HUB).ikev2_keyrings[0].peers[0].pre_shared_key
    assert key is not None
    (d,) = parse(text).diagnostics
    assert (d.message, d.token, d.expected) == ("unexpected extra input", MASK, "<cr>")
    shown = d.format(text)
    assert key not in shown
    number = d.line
    assert shown.splitlines()[1:] == [
        "  pre-shared-key <removed> <removed>",
        " " * (len("  pre-shared-key <removed> ")) + "^",
    ], shown
    head = f"frrdmvpn.conf:{number}:{d.column}: error: unexpected extra input [{MASK!r}]"
    assert shown.splitlines()[0] == head + "; valid: <cr>"


def test_a_statement_in_the_wrong_mode_keeps_its_secret_hidden() -> None:
    result = apply_line(parse_strict(HUB), ROOT, f"pre-shared-key {KEY}", fallback=False)
    (d,) = result.diagnostics
    assert d.token == "pre-shared-key"
    assert KEY not in d.format(f"pre-shared-key {KEY}")


LINES = [
    f"pre-shared-key {KEY}",
    f"ip nhrp authentication {KEY}",
    f"pre-shared-key local {KEY}",
    f"pre-shared-key 0 {KEY}",
    f"ip nhrp authentication {KEY} 7",
    f"pre-shrd-key {KEY}",
    f"no pre-shared-key {KEY} x",
]


@pytest.mark.parametrize("line", LINES)
@pytest.mark.parametrize("mode", list(Mode))
def test_no_diagnostic_in_any_mode_carries_the_secret(line: str, mode: Mode) -> None:
    config = HUB_CONFIG
    context = {Mode.IKEV2_KEYRING_PEER: PEER, Mode.INTERFACE: IF0}.get(mode)
    if context is None:
        keys = {
            Mode.IKEV2_KEYRING: ("dmvpn",),
            Mode.IKEV2_PROFILE: ("dmvpn",),
            Mode.IPSEC_PROFILE: ("dmvpn",),
            Mode.TRANSFORM_SET: ("dmvpn",),
        }
        context = Context(mode, keys.get(mode, ()))
    for fallback in (True, False):
        result = apply_line(config, context, line, line_number=1, fallback=fallback)
        for d in result.diagnostics:
            assert KEY not in f"{d.token} {d.message} {d.expected}", d
            assert KEY not in d.format(line), d.format(line)


_WORDS = [
    "pre-shared-key",
    "pre-sh",
    "ip",
    "nhrp",
    "nh",
    "authentication",
    "auth",
    "local",
    "remote",
    "0",
    "6",
    "7",
    "no",
    "default",
    "peer",
    "address",
    "identity",
    "x",
]


def _mutate(word: str, where: int) -> str:
    i = where % len(word)
    return word[:i] + ("q" if word[i] != "q" else "z") + word[i + 1 :]


@st.composite
def secret_lines(draw: st.DrawFn) -> str:
    """A secret statement typed with mistakes: abbreviations, a mistyped keyword, words
    before the secret (IOS's ``local``/``0``), words after it."""
    statement = draw(st.sampled_from(STATEMENTS))
    words = list(statement.keywords)
    for i, word in enumerate(words):
        cut = draw(st.integers(0, 3))
        if cut == 1:
            words[i] = _mutate(word, draw(st.integers(0, 20)))
    before = draw(st.lists(st.sampled_from(["local", "remote", "0", "6", "7"]), max_size=2))
    after = draw(st.lists(st.sampled_from(_WORDS), max_size=3))
    negation = draw(st.sampled_from(["", "no ", "default "]))
    spacing = draw(st.sampled_from([" ", "  ", "\t"]))
    return negation + spacing.join([*words, *before, KEY, *after])


@pytest.mark.fuzz
@budget(150)
@given(secret_lines(), st.sampled_from(list(Mode)))
def test_a_secret_typed_badly_never_shows(line: str, mode: Mode) -> None:
    assert KEY not in mask_line(line)
    context = {Mode.IKEV2_KEYRING_PEER: PEER, Mode.INTERFACE: IF0}.get(mode, Context(mode, ("x",)))
    if mode is Mode.CONFIG:
        context = ROOT
    result = apply_line(HUB_CONFIG, context, line, line_number=1)
    for d in result.diagnostics:
        assert KEY not in f"{d.token} {d.message} {d.expected} {d.format(line)}"


# --- masked secrets fed back -----------------------------------------------------------------
def test_a_masked_secret_typed_in_keeps_the_configured_one() -> None:
    config = parse_strict(HUB)
    key = config.ikev2_keyrings[0].peers[0].pre_shared_key
    result = apply_line(config, PEER, f"pre-shared-key {MASK}")
    assert result.diagnostics == ()
    assert result.config == config
    assert result.config.ikev2_keyrings[0].peers[0].pre_shared_key == key
    removed = apply_line(config, PEER, f"no pre-shared-key {MASK}")
    assert removed.config.ikev2_keyrings[0].peers[0].pre_shared_key is None


def test_a_masked_secret_where_none_is_configured_is_refused() -> None:
    config = parse_strict(HUB)
    (d,) = apply_line(config, IF0, f"ip nhrp authentication {MASK}").diagnostics
    assert d.message == (
        "no NHRP authentication string is configured here to keep: type the NHRP "
        "authentication string itself (<removed> stands for the one configured)"
    )
    assert (d.column, d.token) == (24, MASK)
    peer = apply_line(config, Context(Mode.IKEV2_KEYRING, ("lab",)), "peer new")
    (d,) = apply_line(peer.config, peer.context, f"pre-shared-key {MASK}").diagnostics
    assert d.message.startswith("no pre-shared key is configured here to keep")


def test_a_masked_text_applied_whole_keeps_the_secrets_of_the_reference() -> None:
    running = parse_strict(HUB)
    masked = mask_text(HUB)
    assert MASK in masked
    assert parse_strict(masked, secrets_from=running) == running
    refused = parse(masked)
    (d,) = refused.diagnostics
    assert d.message.startswith("no pre-shared key is configured here to keep")
    assert "pre-shared-key <removed>" in Diagnostic.format(d, masked)
    moved = masked.replace("peer any", "peer other")
    assert (
        parse(moved, secrets_from=running)
        .diagnostics[0]
        .message.startswith("no pre-shared key is configured here to keep")
    )


_PIECES = st.sampled_from([*_WORDS, KEY, MASK, " ", "\t", "\n", "!", "x"])


@pytest.mark.fuzz
@budget(200)
@given(st.lists(_PIECES, max_size=30).map("".join) | st.text(max_size=200))
def test_masking_any_text_never_fails_and_is_stable(text: str) -> None:
    masked = mask_text(text)
    assert mask_text(masked) == masked
    assert len(masked.splitlines()) == len(text.splitlines())
