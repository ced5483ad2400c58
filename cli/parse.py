"""Parsing, ``?`` help and TAB completion of shell lines, with IOS's messages.

Pure: a line and a level in, a :class:`~cli.parsed.Parsed` command or a
:class:`~frrdmvpn.command_engine.grammar.Failure` out. EXEC lines are matched by the
command engine against the shell's tree (:data:`cli.tree.EXEC`); keywords match
case-insensitively and by unique prefix at every level (``sh ip nh nhs``, ``conf t``,
``wr``). Failures print exactly like IOS (:func:`~frrdmvpn.command_engine.ios_text.failure_lines`).

Configuration-mode lines other than the shell's own ``do``/``end``/``exit`` are the
configuration language: :func:`config_line_kind` says which, and ``?``/TAB there use the
language's grammar (:data:`frrdmvpn.config.commands.GRAMMAR`), in the same engine.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Sequence

from cli.parsed import Level, Parsed, Pipe
from cli.tree import EXEC
from frrdmvpn.command_engine.grammar import Failure, FailureKind, begun_at
from frrdmvpn.command_engine.ios_text import (
    NEGATIONS,
    UNRECOGNIZED,
    Completion,
    ambiguous,
    complete_among,
    format_entries,
    format_words,
)
from frrdmvpn.command_engine.tokens import tokenize
from frrdmvpn.config.modes import Mode


def parse(line: str, level: Level) -> Parsed | Failure | None:
    """The command ``line`` is at ``level`` (``None`` for a blank line)."""
    tokens = tokenize(line)
    if not tokens:
        return None
    matched = EXEC.match(level, tokens, line)
    if isinstance(matched, Failure):
        return matched
    pipe = None
    if matched.modifier is not None:
        pipe = Pipe(matched.modifier.command, str(matched.modifier.values.get("regex", "")))
    args: dict[str, object] = dict.fromkeys(matched.words, True)
    args.update(matched.values)
    return Parsed(matched.command, args, matched.negated, pipe, matched.redirected)


# --- help and completion ------------------------------------------------------------------


def exec_help(text: str, level: Level, *, width: int = 80) -> list[str]:
    """What ``?`` typed after ``text`` prints (``text`` is the line before the cursor)."""
    tokens = tokenize(text)
    inside = bool(tokens) and not text[-1:].isspace()
    walk, failure = EXEC.walk(level, tokens[:-1] if inside else tokens, text)
    if failure is not None:
        return [ambiguous(text)] if failure.kind is FailureKind.AMBIGUOUS else [UNRECOGNIZED]
    if not inside:
        return format_entries(walk.entries(EXEC.modifier_help))
    if walk.taken():
        return format_entries([("<cr>", "")])
    words = walk.begun(tokens[-1].text)
    return format_words(words, width) if words else [UNRECOGNIZED]


def exec_complete(text: str, level: Level) -> Completion:
    """TAB after ``text``: the unique keyword the last word begins."""
    tokens = tokenize(text)
    if not tokens or text[-1:].isspace():
        walk, failure = EXEC.walk(level, tokens, text)
        entries = [] if failure else walk.entries(EXEC.modifier_help)
        return Completion(0, None, tuple(label for label, _ in entries if label != "<cr>"))
    walk, failure = EXEC.walk(level, tokens[:-1], text)
    if failure is not None or walk.taken():
        return Completion(0, None)
    return complete_among(walk.keywords(), tokens[-1].text)


def exec_words(text: str, level: Level) -> tuple[str, ...]:
    """The keywords that may take the place of the last word of ``text`` (every keyword
    that may follow, when ``text`` ends in a blank), as TAB sees them; argument labels
    (``A.B.C.D``) are left out: nothing to type. For completion outside the shell."""
    tokens = tokenize(text)
    if tokens and not text[-1:].isspace():
        return exec_complete(text, level).candidates
    walk, failure = EXEC.walk(level, tokens, text)
    return () if failure else tuple(walk.keywords())


# --- configuration mode -------------------------------------------------------------------


class LineKind(enum.Enum):
    """Who handles a configuration-mode line."""

    SHELL = "shell"  # do / end / exit
    CONFIG = "config"  # the configuration language (sent to the daemon)
    AMBIGUOUS = "ambiguous"  # the first word abbreviates both


def grammar_help(mode: Mode, words: Sequence[str]) -> list[tuple[str, str]]:
    from frrdmvpn.config.commands import GRAMMAR  # noqa: PLC0415 - only config mode needs it

    return GRAMMAR.help(mode, list(words))


def is_keyword(label: str) -> bool:
    return re.fullmatch(r"[a-z0-9][a-z0-9-]*", label) is not None


def shell_keywords() -> list[str]:
    """The shell's own first words in configuration mode (``do``, ``end``, ``exit``)."""
    return sorted(EXEC.root(Level.CONFIG).keywords)


def config_keywords(mode: Mode) -> list[str]:
    """The first words of the language's commands in ``mode``, ``no`` and ``default``."""
    out = [label for label, _ in grammar_help(mode, []) if is_keyword(label)]
    return sorted({*out, *NEGATIONS})


def config_line_kind(line: str, mode: Mode) -> LineKind:
    """Whether ``line`` (typed in configuration ``mode``) is the shell's or the language's."""
    tokens = tokenize(line)
    if not tokens:
        return LineKind.CONFIG
    low = tokens[0].text.lower()
    shell = shell_keywords()
    if low in shell:
        return LineKind.SHELL
    config = config_keywords(mode)
    if low in config:
        return LineKind.CONFIG
    ours = [w for w in shell if w.startswith(low)]
    theirs = [w for w in config if w.startswith(low)]
    if len(ours) + len(theirs) > 1 and ours:
        return LineKind.AMBIGUOUS
    return LineKind.SHELL if ours else LineKind.CONFIG


def config_help(text: str, mode: Mode, *, width: int = 80) -> list[str]:  # noqa: PLR0911
    """``?`` in configuration ``mode`` after ``text``."""
    tokens = tokenize(text)
    inside = bool(tokens) and not text[-1:].isspace()
    first_word = not tokens or (inside and len(tokens) == 1)
    if first_word:
        shell = EXEC.root(Level.CONFIG)
        entries = [(w, shell.keyword_help[w]) for w in shell.keywords]
        entries += [e for e in grammar_help(mode, []) if e[0] != "<cr>"]
        entries += list(NEGATIONS.items())
        entries = sorted(dict(entries).items())
        if not inside:
            return format_entries(entries)
        low = tokens[0].text.lower()
        words = [label for label, _ in entries if is_keyword(label) and label.startswith(low)]
        return format_words(words, width) if words else [UNRECOGNIZED]
    kind = config_line_kind(text, mode)
    if kind is LineKind.AMBIGUOUS:
        return [ambiguous(text)]
    if kind is LineKind.SHELL:
        return exec_help(text, Level.CONFIG, width=width)
    words = [t.text for t in tokens]
    if inside:
        entries = grammar_help(mode, words[:-1])
        if not entries:
            return [UNRECOGNIZED]
        low = words[-1].lower()
        hits = [label for label, _ in entries if is_keyword(label) and label.startswith(low)]
        return format_words(hits, width) if hits else [UNRECOGNIZED]
    entries = grammar_help(mode, words)
    return format_entries(entries) if entries else [UNRECOGNIZED]


def config_failure(line: str, mode: Mode) -> Failure | None:
    """How the language's grammar refuses ``line`` typed in ``mode``, looked for as the
    daemon does (:func:`frrdmvpn.config.edit.apply_line`): a command unknown in a
    sub-mode is tried in the enclosing modes, and the mode that knows it explains best.
    ``None`` when the grammar takes the line (a refusal is then the handler's)."""
    from frrdmvpn.config.commands import GRAMMAR  # noqa: PLC0415 - only config mode needs it

    tokens = tokenize(line)
    negated = bool(tokens) and tokens[0].text.lower() in NEGATIONS
    body = tokens[1:] if negated else tokens
    if not body:
        end = len(line.rstrip())
        return Failure(FailureKind.INCOMPLETE, len(tokens), end, "incomplete command", "")
    first: Failure | None = None
    tried: Mode | None = mode
    while tried is not None:
        matched = GRAMMAR.match(tried, body, line, negated=negated)
        if not isinstance(matched, Failure):
            return None
        first = first or matched
        if not (matched.index == 0 and matched.kind is FailureKind.INVALID):
            return matched
        tried = tried.parent
    if first is None or negated:
        return first
    # An unknown first word: the caret goes where it stops beginning any first word of the
    # mode, the shell's own (do, end, exit) and the negations included.
    also = [*shell_keywords(), *NEGATIONS]
    offset = body[0].start + begun_at(GRAMMAR.trees.root(mode), body[0].text, also=also)
    return dataclasses.replace(first, offset=offset)


def config_complete(text: str, mode: Mode) -> Completion:
    """TAB in configuration ``mode``."""
    tokens = tokenize(text)
    if not tokens or text[-1:].isspace():
        return Completion(0, None)
    if len(tokens) == 1:
        return complete_among(sorted({*shell_keywords(), *config_keywords(mode)}), tokens[0].text)
    kind = config_line_kind(text, mode)
    if kind is LineKind.SHELL:
        return exec_complete(text, Level.CONFIG)
    if kind is LineKind.AMBIGUOUS:
        return Completion(0, None)
    words = [t.text for t in tokens]
    entries = grammar_help(mode, words[:-1])
    return complete_among([label for label, _ in entries if is_keyword(label)], words[-1])
