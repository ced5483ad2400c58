"""What IOS prints for a line that is no command, for ``?`` and for TAB."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from frrdmvpn.command_engine.grammar import Failure, FailureKind

INVALID = "% Invalid input detected at '^' marker."
INCOMPLETE = "% Incomplete command."
UNRECOGNIZED = "% Unrecognized command"

#: The configuration language's negations, with what ``?`` says of them.
NEGATIONS = {
    "default": "Set a command to its defaults",
    "no": "Negate a command or set its defaults",
}


def ambiguous(line: str) -> str:
    return f'% Ambiguous command:  "{line.strip()}"'


def caret(offset: int, prompt_length: int) -> str:
    """The ``^`` under character ``offset`` of a line typed after a prompt."""
    return " " * (prompt_length + offset) + "^"


def failure_lines(failure: Failure, line: str, prompt_length: int) -> list[str]:
    """The lines IOS prints for ``failure`` of ``line`` typed after a prompt."""
    if failure.kind is FailureKind.INCOMPLETE:
        return [failure.incomplete or INCOMPLETE, ""]
    if failure.kind is FailureKind.AMBIGUOUS:
        return [ambiguous(line)]
    return [caret(failure.offset, prompt_length), INVALID, ""]


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


@dataclass(frozen=True)
class Completion:
    """TAB's result: replace the last ``replace`` characters by ``text`` (a keyword and a
    space), or ``candidates`` when it is not unique."""

    replace: int
    text: str | None
    candidates: tuple[str, ...] = ()


def complete_among(words: Sequence[str], prefix: str) -> Completion:
    """TAB on ``prefix`` where ``words`` may stand: the one it begins, else the choices."""
    low = prefix.lower()
    if low in words:
        return Completion(len(prefix), low + " ", (low,))
    hits = tuple(w for w in words if w.startswith(low))
    if len(hits) == 1:
        return Completion(len(prefix), hits[0] + " ", hits)
    return Completion(0, None, hits)
