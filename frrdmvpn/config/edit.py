"""Apply one configuration line to a model in a mode context: the shell's primitive.

``apply_line(config, context, line)`` understands every statement of the language, its
``no`` form (remove, or switch off a default-on flag) and ``default`` form (back to
frrdmvpn's default), block headers (which enter a sub-mode: the returned context),
``exit`` (to the parent mode) and ``end`` (to global configuration mode), comments
(``!``) and blank lines. It never raises on input: problems come back as diagnostics,
and the model is then unchanged.

An IOS-like shell keeps a candidate model and a context, and calls::

    result = apply_line(candidate, context, typed_line)
    candidate, context = result.config, result.context
    for d in result.diagnostics: print(d)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from frrdmvpn.command_engine.grammar import Failure, FailureKind
from frrdmvpn.command_engine.ios_text import NEGATIONS
from frrdmvpn.command_engine.tokens import Token, tokenize
from frrdmvpn.config import secrets
from frrdmvpn.config.commands import GRAMMAR
from frrdmvpn.config.diagnostics import Diagnostic
from frrdmvpn.config.grammar import END, Args, LineError, Outcome
from frrdmvpn.config.model import Config
from frrdmvpn.config.modes import ROOT, Context, Mode
from frrdmvpn.config.text import EXPECTED, first_refused, message


@dataclass(frozen=True)
class LineResult:
    """The model and context after one line, with what went wrong.

    ``key``: the statement the line set (see :mod:`frrdmvpn.config.source`), recorded by
    the file parser; ``None`` for comments, ``exit``/``end`` and failures. ``secrets``:
    the columns of the line's tokens that hold a secret (the file parser records them
    masked).
    """

    config: Config
    context: Context
    diagnostics: tuple[Diagnostic, ...] = ()
    key: str | None = None
    secrets: frozenset[int] = frozenset()

    @property
    def ok(self) -> bool:
        return not self.diagnostics


class _RejectedError(Exception):
    def __init__(
        self, token: Token, message: str, expected: str | None, *, unknown: bool = False
    ) -> None:
        super().__init__(message)
        self.token, self.message, self.expected = token, message, expected or None
        self.unknown = unknown  # the first word is no command of the mode

    def diagnostic(self, line_number: int | None) -> Diagnostic:
        return Diagnostic(
            line_number, self.token.column, self.token.text, self.message, self.expected
        )


def apply_line(
    config: Config,
    context: Context,
    line: str,
    *,
    line_number: int | None = None,
    fallback: bool = True,
    lenient: bool = False,
    secrets_from: Config | None = None,
) -> LineResult:
    """Apply ``line`` in ``context`` (its indentation means nothing here).

    ``fallback``: like IOS, a command unknown in a sub-mode is tried in the enclosing
    modes, leaving the sub-mode when it is found there (``peer B`` typed in keyring peer
    mode). The file parser turns this off: there, indentation decides.

    A secret given as :data:`~frrdmvpn.config.secrets.MASK` keeps the one configured in
    that place: in ``config``, else in ``secrets_from`` (the running configuration, when
    a whole masked text is applied); where neither has one the line is refused. No
    diagnostic carries a secret: its token is masked like the line
    (:func:`frrdmvpn.config.secrets.mask_line`).
    """
    refused = refused_character(line, line_number)
    if refused is not None:
        return LineResult(config, context, (refused,))
    tokens = tokenize(line)
    if not tokens or tokens[0].text.startswith("!"):
        return LineResult(config, context)
    first = tokens[0].text.lower()
    if len(tokens) == 1 and first in ("exit", "end"):
        return LineResult(config, ROOT if first == "end" else context.parent())
    tried = context
    first_rejection: _RejectedError | None = None
    while True:
        try:
            outcome, key, hidden = _apply(
                config, tried, tokens, line, lenient=lenient, secrets_from=secrets_from
            )
        except _RejectedError as rejected:
            first_rejection = first_rejection or rejected
            if fallback and rejected.unknown and tried.parent() != tried:
                tried = tried.parent()
                continue
            # The mode that knows the command explains best; else the mode typed in.
            shown = first_rejection if rejected.unknown else rejected
            found = shown.diagnostic(line_number)
            if found.column in secrets.masked_columns(line):
                found = dataclasses.replace(found, token=secrets.MASK)
            return LineResult(config, context, (found,))
        return LineResult(outcome.config, outcome.context or tried, (), key, hidden)


def refused_character(line: str, line_number: int | None = None) -> Diagnostic | None:
    """The first character :mod:`frrdmvpn.config.text` refuses in ``line``, anywhere in it
    (between words and in comments too: the tokenizer takes some for spaces, and a line
    break in a value would become statements of their own once rendered)."""
    index = first_refused(line)
    if index is None:
        return None
    char = line[index]
    return Diagnostic(line_number, index + 1, char, message(char), EXPECTED)


def _apply(
    config: Config,
    context: Context,
    tokens: tuple[Token, ...],
    line: str,
    *,
    lenient: bool,
    secrets_from: Config | None,
) -> tuple[Outcome, str, frozenset[int]]:
    first = tokens[0].text.lower()
    negation = first if first in NEGATIONS else None
    body = tokens[1:] if negation else tokens
    if not body:
        raise _RejectedError(
            tokens[0], "incomplete command", f"a command of {context.mode.title} after '{first}'"
        )
    negated = negation is not None
    matched = GRAMMAR.match(context.mode, body, line, negated=negated, lenient=lenient)
    if isinstance(matched, Failure):
        raise _failure(matched, body, context.mode)
    command, args = matched.command, Args(matched.values)
    hidden: set[int] = set()
    for secret in secrets.statements_of(command):
        if secret.param not in matched.positions:
            continue
        token = body[matched.positions[secret.param]]
        hidden.add(token.column)
        if negation is None and args.get(secret.param) == secrets.MASK:
            kept = secrets.configured(config, context, secret) or secrets.configured(
                secrets_from, context, secret
            )
            if kept is None:
                raise _RejectedError(
                    token,
                    f"no {secret.what} is configured here to keep: type the {secret.what} "
                    f"itself ({secrets.MASK} stands for the one configured)",
                    secret.type.label,
                )
            args = args.replaced(secret.param, kept)
    handler = command.handler
    if negation == "default" and command.default_handler is not None:
        handler = command.default_handler
    elif negation is not None and command.no_handler is not None:
        handler = command.no_handler
    try:
        outcome = handler(config, context, args)
    except LineError as error:
        if error.param is None:
            token = body[0]
        elif error.param == END:
            token = body[-1]
        else:
            token = body[matched.positions.get(error.param, 0)]
        raise _RejectedError(token, error.message, error.expected) from None
    return outcome, outcome.key or command.key, frozenset(hidden)


def _failure(failure: Failure, body: tuple[Token, ...], mode: Mode) -> _RejectedError:
    if failure.index >= len(body):
        return _RejectedError(body[-1], failure.message, failure.expected)
    message = failure.message
    unknown = failure.index == 0 and failure.kind is FailureKind.INVALID
    if unknown:
        message = f"unknown command in {mode.title}"
    return _RejectedError(body[failure.index], message, failure.expected, unknown=unknown)


def apply_lines(
    config: Config, lines: list[str] | tuple[str, ...], context: Context = ROOT
) -> LineResult:
    """Apply lines one after another like a shell session (indentation is ignored);
    stops at the first line with a diagnostic."""
    result = LineResult(config, context)
    for number, line in enumerate(lines, start=1):
        step = apply_line(result.config, result.context, line, line_number=number)
        if step.diagnostics:
            return LineResult(result.config, result.context, step.diagnostics)
        result = step
    return result
