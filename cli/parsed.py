"""A typed EXEC command once parsed: where it was typed, what runs it, and its arguments."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cli.session import Session


class Level(enum.Enum):
    """Where a command can be typed: user EXEC (``>``), privileged EXEC (``#``), or any
    configuration mode (``(config...)#``)."""

    USER = "user"
    PRIV = "privileged"
    CONFIG = "config"


@dataclass(frozen=True)
class Pipe:
    """An output modifier: ``include``, ``exclude``, ``begin``, ``section``, ``count`` (with
    their regular expression) or ``json``."""

    kind: str
    regex: str = ""


Handler = Callable[["Session", "Parsed"], list[str]]
"""What a command does: the session and the parsed command in, the lines to print out."""


@dataclass(frozen=True)
class Parsed:
    """A complete command: its handler, arguments and output modifier.

    ``args`` holds each argument's value under its name and each keyword typed under the
    keyword (``{"detail": True}``). ``via_do``: typed after ``do`` in configuration mode.
    """

    handler: Handler
    args: dict[str, object] = field(default_factory=dict)
    negated: bool = False
    pipe: Pipe | None = None
    via_do: bool = False

    def flag(self, word: str) -> bool:
        return bool(self.args.get(word))

    def text(self, name: str) -> str | None:
        value = self.args.get(name)
        return None if value is None else str(value)
