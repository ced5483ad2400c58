"""Where each configured statement came from: the line and its tokens, for diagnostics.

Keys are ``(context, key)``: the context the line was applied in and the statement's key
(``"ip nhrp holdtime"`` for a setting, the canonical line for a list item such as
``"ip nhrp nhs dynamic nbma 198.51.100.1"``, ``"interface Tunnel0"`` for a block header
in the global context). The last line that set a statement wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from frrdmvpn.command_engine.tokens import Token
from frrdmvpn.config.modes import Context


@dataclass(frozen=True)
class Span:
    """One source line: its number and tokens."""

    line: int
    tokens: tuple[Token, ...]

    def token(self, index: int = 0) -> Token:
        """Token ``index`` (negative counts from the end), clamped to the line."""
        if not self.tokens:
            return Token("", 0)
        index = max(-len(self.tokens), min(index, len(self.tokens) - 1))
        return self.tokens[index]

    def find(self, text: str) -> Token:
        """The first token equal to ``text`` (case-insensitive), else the first token."""
        low = text.lower()
        return next((t for t in self.tokens if t.text.lower() == low), self.token(0))


def _empty() -> Mapping[tuple[Context, str], Span]:
    return MappingProxyType({})


@dataclass(frozen=True)
class SourceMap:
    """Spans by (context, statement key)."""

    spans: Mapping[tuple[Context, str], Span] = field(default_factory=_empty)

    def find(self, context: Context, key: str) -> Span | None:
        return self.spans.get((context, key))


class SourceMapBuilder:
    """Collects spans while parsing."""

    def __init__(self) -> None:
        self._spans: dict[tuple[Context, str], Span] = {}

    def record(self, context: Context, key: str, span: Span) -> None:
        self._spans[(context, key)] = span

    def build(self) -> SourceMap:
        return SourceMap(MappingProxyType(dict(self._spans)))
