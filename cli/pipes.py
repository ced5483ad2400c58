"""Output modifiers: ``| include|exclude|begin|section|count REGEX`` (pure).

``| json`` is not a filter: the show handlers produce structured output for it.
Regular expressions are Python's (close to the POSIX extended ones IOS uses) and
case-sensitive, like IOS.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from cli.parsed import Pipe

FILTERS = ("begin", "count", "exclude", "include", "section")


class PipeError(ValueError):
    """A regular expression that does not compile (the message is what the user sees)."""


def compile_regex(regex: str) -> re.Pattern[str]:
    """``regex`` compiled, or :class:`PipeError` saying why not (a syntax error, a count
    over 2**32-1, nesting deeper than the compiler's recursion goes)."""
    try:
        return re.compile(regex)
    except re.error as exc:
        raise PipeError(f"% Invalid regular expression {regex!r}: {exc}") from None
    except OverflowError as exc:
        raise PipeError(f"% Invalid regular expression {regex!r}: {exc}") from None
    except RecursionError:
        raise PipeError(f"% Invalid regular expression {regex!r}: nested too deeply") from None


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def section(lines: Sequence[str], pattern: re.Pattern[str]) -> list[str]:
    """Each line that matches, with the lines indented under it."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not pattern.search(line):
            i += 1
            continue
        out.append(line)
        depth = _indent(line)
        i += 1
        while i < len(lines) and lines[i].strip() and _indent(lines[i]) > depth:
            out.append(lines[i])
            i += 1
    return out


def apply(pipe: Pipe, lines: Sequence[str]) -> list[str]:  # noqa: PLR0911 - one per modifier
    """``lines`` through the modifier (``json`` passes them unchanged)."""
    if pipe.kind not in FILTERS:
        return list(lines)
    pattern = compile_regex(pipe.regex)
    if pipe.kind == "include":
        return [line for line in lines if pattern.search(line)]
    if pipe.kind == "exclude":
        return [line for line in lines if not pattern.search(line)]
    if pipe.kind == "begin":
        for i, line in enumerate(lines):
            if pattern.search(line):
                return list(lines[i:])
        return []
    if pipe.kind == "count":
        matched = sum(1 for line in lines if pattern.search(line))
        return [f"Number of lines which match regexp = {matched}"]
    return section(lines, pattern)
