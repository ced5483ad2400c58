"""The error a command's handler raises when it cannot do its work."""

from __future__ import annotations


class ShellError(Exception):
    """A command that cannot be done: its lines are printed, the line counts as failed."""

    def __init__(self, *lines: str) -> None:
        super().__init__(lines[0] if lines else "")
        self.lines = list(lines)
