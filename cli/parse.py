"""Parsing, ``?`` help and TAB completion over the command tree, with IOS's messages.

Pure: a line and a level in, a :class:`Parsed` command or a :class:`Failure` out. Keywords
match case-insensitively and by unique prefix at every level (``sh ip nh nhs``, ``conf t``,
``wr``). Failures print exactly like IOS (:func:`failure_lines`): the caret under the first
bad character (its column is the prompt's length plus the offset in the line), ``%
Incomplete command.``, ``% Ambiguous command:  "<line>"``.

Configuration-mode lines other than the shell's own ``do``/``end``/``exit`` are the
configuration language: :func:`config_line_kind` says which, and ``?``/TAB there use the
language's grammar (:data:`frrdmvpn.config.commands.GRAMMAR`) locally.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from cli.tree import PIPE, Level, Node, children, top_level
from frrdmvpn.config.modes import Mode

INVALID = "% Invalid input detected at '^' marker."
INCOMPLETE = "% Incomplete command."
UNRECOGNIZED = "% Unrecognized command"

# --- tokens -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    """A whitespace-separated word and its 0-based offset in the line."""

    text: str
    start: int


def tokenize(line: str) -> tuple[Token, ...]:
    return tuple(Token(m.group(), m.start()) for m in re.finditer(r"\S+", line))


# --- results ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pipe:
    """An output modifier: ``include``, ``exclude``, ``begin``, ``section``, ``count`` (with
    their regular expression) or ``json``."""

    kind: str
    regex: str = ""


@dataclass(frozen=True)
class Parsed:
    """A complete command: its tree nodes, handler, arguments and output modifier.

    ``args`` holds each argument's value under its name and each keyword typed under the
    keyword (``{"detail": True}``). ``via_do``: typed after ``do`` in configuration mode.
    """

    nodes: tuple[Node, ...]
    handler: str
    args: dict[str, object] = field(default_factory=dict)
    negated: bool = False
    pipe: Pipe | None = None
    via_do: bool = False

    def flag(self, word: str) -> bool:
        return bool(self.args.get(word))

    def text(self, name: str) -> str | None:
        value = self.args.get(name)
        return None if value is None else str(value)


FailureKind = Literal["invalid", "incomplete", "ambiguous"]


@dataclass(frozen=True)
class Failure:
    """Why a line is no command: ``invalid`` at ``offset``, ``incomplete`` (``message``
    replaces IOS's default), or ``ambiguous``."""

    kind: FailureKind
    offset: int = 0
    message: str | None = None


def failure_lines(failure: Failure, line: str, prompt_length: int) -> list[str]:
    """The lines IOS prints for ``failure`` of ``line`` typed after a prompt."""
    if failure.kind == "invalid":
        return [" " * (prompt_length + failure.offset) + "^", INVALID, ""]
    if failure.kind == "incomplete":
        return [failure.message or INCOMPLETE, ""]
    return [f'% Ambiguous command:  "{line.strip()}"']


# --- matching -----------------------------------------------------------------------------


def _match(candidates: Sequence[Node], text: str) -> Node | list[Node] | None:
    """The node ``text`` selects: an exact keyword, a typed value, a keyword by unique
    prefix, then any word; a list when the prefix is ambiguous; ``None`` when nothing."""
    low = text.lower()
    keywords = [c for c in candidates if c.word is not None]
    for c in keywords:
        if c.word == low:
            return c
    for c in candidates:
        if c.arg is not None and c.arg.rank <= 1 and c.arg.accepts(text):
            return c
    prefixed = [c for c in keywords if c.word and c.word.startswith(low)]
    if len(prefixed) == 1:
        return prefixed[0]
    for c in candidates:
        if c.arg is not None and c.arg.rank > 1 and c.arg.accepts(text):
            return c
    return prefixed or None


def _bad_index(candidates: Sequence[Node], text: str) -> int:
    """Where ``text`` stops being the beginning of anything valid (0: at its start)."""
    for end in range(len(text), 0, -1):
        head = text[:end]
        for c in candidates:
            if c.word is not None and c.word.startswith(head.lower()):
                return end if end < len(text) else 0
            if c.arg is not None and c.arg.partial(head):
                return end if end < len(text) else 0
    return 0


@dataclass
class _Walk:
    """The state of walking the tree along a line's tokens."""

    level: Level
    node: Node | None = None  # None: at the top
    nodes: list[Node] = field(default_factory=list)
    args: dict[str, object] = field(default_factory=dict)
    negated: bool = False
    via_do: bool = False
    pipe: list[Node] | None = None  # the nodes after "|"
    pipe_args: dict[str, object] = field(default_factory=dict)
    rest_taken: bool = False  # a rest-of-line argument consumed the line

    def pipes_allowed(self) -> bool:
        node = self.node
        return (
            node is not None
            and not self.negated
            and node.handler is not None
            and any(n.pipes for n in self.nodes)
        )

    def candidates(self) -> list[Node]:
        if self.rest_taken:
            return []
        if self.pipe is not None:
            return list(children(self.pipe[-1]))
        if self.node is None:
            tops = top_level(self.level)
            if self.negated:
                return [t for t in tops if not t.negate and t.has_no_form()]
            return list(tops)
        out = list(children(self.node, negated=self.negated, level=self.level))
        if self.pipes_allowed():
            out.append(PIPE)
        return out

    def complete(self) -> bool:
        """Whether the line so far is a command (``<cr>`` is valid)."""
        if self.pipe is not None:
            return self.pipe[-1].handler is not None
        if self.node is None:
            return False
        return (self.node.no if self.negated else self.node.handler) is not None

    def take(self, node: Node, token: Token, line: str) -> None:
        if node is PIPE:
            self.pipe = [PIPE]
            return
        value: object = True
        if node.arg is not None:
            if node.arg.rest_of_line:
                value = line[token.start :].rstrip()
                self.rest_taken = True
            else:
                value = node.arg.value(token.text)
        if self.pipe is not None:
            self.pipe.append(node)
            self.pipe_args[node.name] = value
            return
        if node.negate:
            self.negated = True
            return
        if node.redirect:
            self.via_do = True
            self.level = Level.PRIV
            self.node, self.nodes = None, []
            return
        self.node = node
        self.nodes.append(node)
        self.args[node.name] = value


def _walk(tokens: Sequence[Token], line: str, level: Level) -> tuple[_Walk, Failure | None]:
    walk = _Walk(level)
    for token in tokens:
        if walk.rest_taken:
            break
        candidates = walk.candidates()
        hit = _match(candidates, token.text)
        if hit is None:
            return walk, Failure("invalid", token.start + _bad_index(candidates, token.text))
        if isinstance(hit, list):
            return walk, Failure("ambiguous", token.start)
        walk.take(hit, token, line)
    return walk, None


def parse(line: str, level: Level) -> Parsed | Failure | None:
    """The command ``line`` is at ``level`` (``None`` for a blank line)."""
    tokens = tokenize(line)
    if not tokens:
        return None
    walk, failure = _walk(tokens, line, level)
    if failure is not None:
        return failure
    if not walk.complete():
        last = walk.pipe[-1] if walk.pipe else walk.node
        return Failure("incomplete", message=None if last is None else last.incomplete)
    pipe = None
    if walk.pipe is not None:
        kind = walk.pipe[-1].handler
        assert kind is not None
        pipe = Pipe(kind, str(walk.pipe_args.get("regex", "")))
    node = walk.node
    assert node is not None
    handler = node.no if walk.negated else node.handler
    assert handler is not None
    return Parsed(tuple(walk.nodes), handler, walk.args, walk.negated, pipe, walk.via_do)


# --- help and completion ------------------------------------------------------------------


def format_entries(entries: Sequence[tuple[str, str]]) -> list[str]:
    """``?`` after a word: one line per choice, help aligned; then a blank line."""
    width = max((len(label) for label, _ in entries), default=0)
    lines = [f"  {label.ljust(width)}  {text}".rstrip() for label, text in entries]
    return [*lines, ""]


def format_words(words: Sequence[str], width: int = 80) -> list[str]:
    """``?`` inside a word: the matching keywords on lines of at most ``width``; then a
    blank line."""
    lines: list[str] = []
    current = ""
    for word in words:
        candidate = f"{current}  {word}" if current else word
        if current and width and len(candidate) > width:
            lines.append(current)
            current = word
        else:
            current = candidate
    if current:
        lines.append(current)
    return [*lines, ""]


def _entries(walk: _Walk) -> list[tuple[str, str]]:
    out = [(c.label, c.help) for c in walk.candidates()]
    if walk.complete():
        out.append(("<cr>", ""))
    return out


def exec_help(text: str, level: Level, *, width: int = 80) -> list[str]:
    """What ``?`` typed after ``text`` prints (``text`` is the line before the cursor)."""
    tokens = tokenize(text)
    inside = bool(tokens) and not text[-1:].isspace()
    done = tokens[:-1] if inside else tokens
    walk, failure = _walk(done, text, level)
    if failure is not None:
        if failure.kind == "ambiguous":
            return [f'% Ambiguous command:  "{text.strip()}"']
        return [UNRECOGNIZED]
    if not inside:
        return format_entries(_entries(walk))
    prefix = tokens[-1].text
    if walk.rest_taken:
        return format_entries([("<cr>", "")])
    words = _prefixed(walk.candidates(), prefix)
    return format_words(words, width) if words else [UNRECOGNIZED]


def _prefixed(candidates: Sequence[Node], prefix: str) -> list[str]:
    low = prefix.lower()
    words = [c.label for c in candidates if c.word is not None and c.word.startswith(low)]
    words += [c.label for c in candidates if c.arg is not None and c.arg.partial(prefix)]
    return words


@dataclass(frozen=True)
class Completion:
    """TAB's result: replace the last ``replace`` characters by ``text`` (a keyword and a
    space), or ``candidates`` when it is not unique."""

    replace: int
    text: str | None
    candidates: tuple[str, ...] = ()


def exec_complete(text: str, level: Level) -> Completion:
    """TAB after ``text``: the unique keyword the last word begins."""
    tokens = tokenize(text)
    if not tokens or text[-1:].isspace():
        walk, failure = _walk(tokens, text, level)
        shown = () if failure else tuple(c.label for c in walk.candidates())
        return Completion(0, None, shown)
    walk, failure = _walk(tokens[:-1], text, level)
    if failure is not None or walk.rest_taken:
        return Completion(0, None)
    prefix = tokens[-1].text
    return _complete_among([c.word for c in walk.candidates() if c.word is not None], prefix)


def exec_words(text: str, level: Level) -> tuple[str, ...]:
    """The keywords that may take the place of the last word of ``text`` (every keyword
    that may follow, when ``text`` ends in a blank), as TAB sees them; argument labels
    (``A.B.C.D``) are left out: nothing to type. For completion outside the shell."""
    tokens = tokenize(text)
    if tokens and not text[-1:].isspace():
        return exec_complete(text, level).candidates
    walk, failure = _walk(tokens, text, level)
    return () if failure else tuple(c.label for c in walk.candidates() if c.is_keyword)


def _complete_among(words: Sequence[str], prefix: str) -> Completion:
    low = prefix.lower()
    if low in words:
        return Completion(len(prefix), low + " ", (low,))
    hits = tuple(w for w in words if w.startswith(low))
    if len(hits) == 1:
        return Completion(len(prefix), hits[0] + " ", hits)
    return Completion(0, None, hits)


# --- configuration mode -------------------------------------------------------------------

NEGATION_HELP = (
    ("default", "Set a command to its defaults"),
    ("no", "Negate a command or set its defaults"),
)


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


def config_keywords(mode: Mode) -> list[str]:
    """The first words of the language's commands in ``mode``, ``no`` and ``default``."""
    out = [label for label, _ in grammar_help(mode, []) if is_keyword(label)]
    return sorted({*out, "no", "default"})


def config_line_kind(line: str, mode: Mode) -> LineKind:
    """Whether ``line`` (typed in configuration ``mode``) is the shell's or the language's."""
    tokens = tokenize(line)
    if not tokens:
        return LineKind.CONFIG
    low = tokens[0].text.lower()
    shell = [n.word for n in top_level(Level.CONFIG) if n.word is not None]
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
        entries = [(n.label, n.help) for n in top_level(Level.CONFIG)]
        entries += [e for e in grammar_help(mode, []) if e[0] != "<cr>"]
        entries += list(NEGATION_HELP)
        entries = sorted(dict(entries).items())
        if not inside:
            return format_entries(entries)
        low = tokens[0].text.lower()
        words = [label for label, _ in entries if is_keyword(label) and label.startswith(low)]
        return format_words(words, width) if words else [UNRECOGNIZED]
    kind = config_line_kind(text, mode)
    if kind is LineKind.AMBIGUOUS:
        return [f'% Ambiguous command:  "{text.strip()}"']
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


def config_complete(text: str, mode: Mode) -> Completion:
    """TAB in configuration ``mode``."""
    tokens = tokenize(text)
    if not tokens or text[-1:].isspace():
        return Completion(0, None)
    if len(tokens) == 1:
        shell = [n.word for n in top_level(Level.CONFIG) if n.word is not None]
        return _complete_among(sorted({*shell, *config_keywords(mode)}), tokens[0].text)
    kind = config_line_kind(text, mode)
    if kind is LineKind.SHELL:
        return exec_complete(text, Level.CONFIG)
    if kind is LineKind.AMBIGUOUS:
        return Completion(0, None)
    words = [t.text for t in tokens]
    entries = grammar_help(mode, words[:-1])
    return _complete_among([label for label, _ in entries if is_keyword(label)], words[-1])
