"""The words of a command line, where each stands, and how numbers are read."""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Digits a number may have: more is no number of any command (and bounds ``int()``).
NUMBER_DIGITS_MAX = 12


@dataclass(frozen=True)
class Token:
    """A whitespace-separated word and its 0-based offset in the line."""

    text: str
    start: int

    @property
    def column(self) -> int:
        """The 1-based column of the word (what diagnostics print)."""
        return self.start + 1


def tokenize(line: str) -> tuple[Token, ...]:
    """Split ``line`` at whitespace, keeping each word's offset."""
    return tuple(Token(m.group(), m.start()) for m in re.finditer(r"\S+", line))


def is_decimal(text: str) -> bool:
    """Whether ``text`` is ASCII digits only (``"²".isdigit()`` is true, but no number)."""
    return text.isascii() and text.isdigit()


def number(text: str) -> int | None:
    """``text`` as a decimal number of at most :data:`NUMBER_DIGITS_MAX` digits."""
    if not is_decimal(text) or len(text) > NUMBER_DIGITS_MAX:
        return None
    return int(text)
