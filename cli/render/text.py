"""Assembling command output: lines joined, trailing blanks stripped, one final newline."""

from __future__ import annotations

from collections.abc import Iterable


def join(lines: Iterable[str]) -> str:
    """The lines as one text, each without trailing whitespace; empty when there are none.

    IOS pads some lines with trailing spaces (and releases differ in it); no parser we
    target depends on them, so the renderers never emit any.
    """
    out = [line.rstrip() for line in lines]
    return "\n".join(out) + "\n" if out else ""
