"""Diagnostics: what is wrong, where (line, column, token), and what would be valid."""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterable
from dataclasses import dataclass

from frrdmvpn.config.text import lines, printable


class Severity(enum.Enum):
    """An error blocks apply; a warning is reported and applied anyway."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Diagnostic:
    """One finding. ``line``/``column`` are 1-based; ``None`` when no source line is known.

    ``token`` is the offending token as written, ``expected`` what would be valid there,
    ``code`` a stable identifier of the rule (``syntax`` for the parser's findings).
    """

    line: int | None
    column: int | None
    token: str | None
    message: str
    expected: str | None = None
    severity: Severity = Severity.ERROR
    code: str = "syntax"

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def _body(self) -> str:
        token = "" if self.token is None else f" [{self.token!r}]"
        valid = "" if self.expected is None else f"; valid: {self.expected}"
        return f"{self.severity.value}: {self.message}{token}{valid}"

    def __str__(self) -> str:
        where = "" if self.line is None else f"line {self.line}, column {self.column}: "
        return where + self._body()

    def format(self, text: str | None = None, filename: str = "frrdmvpn.conf") -> str:
        """``file:line:col: severity: message``, then (with ``text``) the line and a caret.
        The line is shown masked (:func:`frrdmvpn.config.secrets.mask_line`), its refused
        characters as ``?`` (:func:`frrdmvpn.config.text.printable`): this text goes to
        terminals and logs."""
        head = f"{filename}:{self.line or 0}:{self.column or 0}: {self._body()}"
        if text is None or self.line is None:
            return head
        numbered = _lines(text)
        if not 1 <= self.line <= len(numbered):
            return head
        from frrdmvpn.config.secrets import display  # noqa: PLC0415 - secrets imports the grammar

        shown, column = display(numbered[self.line - 1], self.column)
        caret = " " * max((column or 1) - 1, 0) + "^"
        return f"{head}\n{printable(shown)}\n{caret}"


@functools.lru_cache(maxsize=1)
def _lines(text: str) -> tuple[str, ...]:
    """The lines of the text being reported on: split once, however many findings it has
    (formatting each of a file's N findings must not cost N times the file)."""
    return tuple(lines(text))


def errors(diagnostics: Iterable[Diagnostic]) -> tuple[Diagnostic, ...]:
    """Only the errors (what blocks an apply)."""
    return tuple(d for d in diagnostics if d.is_error)


def sort_key(diagnostic: Diagnostic) -> tuple[int, int, str]:
    """Order by position (unknown positions last), then code."""
    big = 1 << 30
    return (diagnostic.line or big, diagnostic.column or big, diagnostic.code)


class ConfigError(ValueError):
    """A configuration with errors; carries every diagnostic found (errors and warnings)."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics = tuple(diagnostics)
        found = errors(self.diagnostics)
        super().__init__(
            f"{len(found)} error(s) in the configuration:\n"
            + "\n".join(str(d) for d in found or self.diagnostics)
        )
