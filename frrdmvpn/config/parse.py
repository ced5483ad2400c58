"""Parse ``frrdmvpn.conf`` text into the model, with exact diagnostics.

Sub-modes follow indentation, like IOS ``show running-config``: a line indented deeper
than a block header (``interface Tunnel0``, ``crypto ikev2 keyring K``, `` peer P`` ...)
belongs to that block; the first line at the header's indentation or less closes it.
Lines end at ``"\n"`` only (:func:`frrdmvpn.config.text.lines`); no line may hold a
character :mod:`frrdmvpn.config.text` refuses, not even a comment. Lines starting with
``!`` and blank lines are comments; ``exit`` and ``end`` are
accepted and ignored (indentation decides). Each line is applied with
:func:`frrdmvpn.config.edit.apply_line`, so a file means exactly what typing its lines
in a shell means; a block header given twice edits the same object.

:func:`parse` never raises: every problem is a :class:`Diagnostic` (with line, column,
token and what would be valid) and the offending line is skipped, so one run reports all
problems. :func:`parse_strict` raises one :class:`ConfigError` carrying all of them.
:func:`decode` is how every reader turns a file's bytes into the text parsed here.
"""

from __future__ import annotations

from dataclasses import dataclass

from frrdmvpn.command_engine.ios_text import NEGATIONS
from frrdmvpn.command_engine.tokens import Token, tokenize
from frrdmvpn.config.diagnostics import ConfigError, Diagnostic, errors
from frrdmvpn.config.edit import apply_line, refused_character
from frrdmvpn.config.model import Config
from frrdmvpn.config.modes import ROOT, Context
from frrdmvpn.config.secrets import MASK
from frrdmvpn.config.source import SourceMap, SourceMapBuilder, Span
from frrdmvpn.config.text import lines


@dataclass(frozen=True)
class ParseResult:
    """The model of what parsed, the diagnostics, and where each statement came from."""

    config: Config
    diagnostics: tuple[Diagnostic, ...]
    source: SourceMap

    @property
    def ok(self) -> bool:
        """No errors (warnings do not occur at parse time)."""
        return not errors(self.diagnostics)


def decode(data: bytes) -> str:
    """The text of a configuration file, which is UTF-8; raises :class:`ConfigError` at the
    line and column of the first byte that is not (a file written in Latin-1, say)."""
    try:
        return data.decode()
    except UnicodeDecodeError as exc:
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        column = len(data[line_start : exc.start].decode()) + 1
        message = f"byte 0x{data[exc.start]:02x} is not UTF-8 (write the file in UTF-8)"
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError([Diagnostic(line, column, None, message, code="encoding")]) from None


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def parse(text: str, *, lenient: bool = False, secrets_from: Config | None = None) -> ParseResult:
    """Parse ``text``; never raises on bad input.

    ``lenient`` lets out-of-range numbers through (for :mod:`.validate` to locate them in
    the rendering of a model built in code); never use it for a configuration to apply.
    ``secrets_from``: where a masked secret (``<removed>``) of ``text`` takes its value
    (:func:`frrdmvpn.config.edit.apply_line`). The source map holds secrets masked.
    """
    config = Config()
    diagnostics: list[Diagnostic] = []
    source = SourceMapBuilder()
    # Open blocks: (indentation of the header, context entered; None if the header failed).
    stack: list[tuple[int, Context | None]] = []
    last_block: Context | None = None
    for number, line in enumerate(lines(text), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("!"):
            refused = refused_character(line, number)  # a comment hides nothing either
            diagnostics += [] if refused is None else [refused]
            continue
        indent = _indent(line)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        if stack and stack[-1][1] is None:
            continue  # inside a block whose header was rejected (already reported)
        if indent and not stack:
            token = tokenize(line)[0]
            diagnostics.append(
                refused_character(line, number)
                or Diagnostic(
                    number,
                    token.column,
                    token.text,
                    "indented line outside any block",
                    "a block header above it (interface, crypto ..., router ospf, frrdmvpn ...)",
                )
            )
            continue
        context = stack[-1][1] if stack else ROOT
        assert context is not None
        first = stripped.split()[0].lower()
        result = apply_line(
            config,
            context,
            line,
            line_number=number,
            fallback=False,
            lenient=lenient,
            secrets_from=secrets_from,
        )
        if result.diagnostics:
            diagnostics.extend(_hint(result.diagnostics, config, context, last_block, line))
            if first not in NEGATIONS:
                stack.append((indent, None))
            continue
        config = result.config
        if result.key is not None:
            tokens = tuple(
                Token(MASK, t.start) if t.column in result.secrets else t for t in tokenize(line)
            )
            source.record(context, result.key, Span(number, tokens))
        if result.context != context and first not in ("exit", "end"):
            stack.append((indent, result.context))
            last_block = result.context
    return ParseResult(config, tuple(diagnostics), source.build())


def _hint(
    found: tuple[Diagnostic, ...],
    config: Config,
    context: Context,
    last_block: Context | None,
    line: str,
) -> tuple[Diagnostic, ...]:
    """Say so when a failing line would be valid indented into the last block entered."""
    if last_block is None or last_block in (ROOT, context):
        return found
    if apply_line(config, last_block, line, fallback=False).diagnostics:
        return found
    first = found[0]
    hinted = Diagnostic(
        first.line,
        first.column,
        first.token,
        f"{first.message} (indent the line further to put it in the "
        f"{last_block.mode.title} block above)",
        first.expected,
        first.severity,
        first.code,
    )
    return (hinted, *found[1:])


def parse_strict(text: str, *, secrets_from: Config | None = None) -> Config:
    """The model of ``text``; raises :class:`ConfigError` with all diagnostics on any error."""
    result = parse(text, secrets_from=secrets_from)
    if not result.ok:
        raise ConfigError(result.diagnostics)
    return result.config
