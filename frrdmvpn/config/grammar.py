"""The configuration language's commands over the IOS command engine.

A :class:`Command` is a pattern of keywords, :class:`Param` and :class:`Opt` (optional
groups) in one configuration mode, with a pure handler and its ``no``/``default`` forms; a
``no``/``default`` form may stop after the command's first ``no_depth`` elements
(``no ip nhrp holdtime``). :class:`Grammar` puts every mode's commands into the engine's
trees (:mod:`frrdmvpn.command_engine.grammar`), which match lines, answer ``?`` and never
raise on input. The parameter types here are the language's own (interface names, host
names, secrets, OSPF areas); the IOS ones are the engine's
(:mod:`frrdmvpn.command_engine.params`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import TypeVar

from frrdmvpn.command_engine import grammar as engine
from frrdmvpn.command_engine.grammar import Element, Failure, Match, Param, leading_keywords, syntax
from frrdmvpn.command_engine.ios_text import NEGATIONS
from frrdmvpn.command_engine.params import ParamType, ipv4_address
from frrdmvpn.command_engine.tokens import Token, number, tokenize
from frrdmvpn.config.model import Config
from frrdmvpn.config.modes import Context, Mode

# --- the language's parameter types --------------------------------------------------------


class Secret(ParamType):
    """A secret word (a pre-shared key, an authentication string): read like any word,
    but shown and logged only masked (:mod:`frrdmvpn.config.secrets`). ``field`` is the
    model attribute it sets, ``what`` how messages name it."""

    def __init__(self, field: str, what: str) -> None:
        self.field, self.what = field, what


_IFNAME = re.compile(r"[A-Za-z0-9_.@-]{1,15}")


def is_ifname(token: str) -> bool:
    """A valid Linux interface name (1-15 characters, no '/', ':' or spaces)."""
    return bool(_IFNAME.fullmatch(token)) and token not in (".", "..")


class IfName(ParamType):
    """A Linux interface name."""

    label = "IFNAME"

    def read(self, token: str) -> object | None:
        return token if is_ifname(token) else None

    def reason(self, token: str) -> str | None:
        return (
            f"{token!r} is not a Linux interface name (1-15 characters of "
            "letters, digits, '_', '.', '@', '-')"
        )


class Source(ParamType):
    """``tunnel source``: an IPv4 address or a Linux interface name."""

    label = "IFNAME|A.B.C.D"

    def read_lenient(self, token: str) -> object | None:
        return ipv4_address(token) or token

    def read(self, token: str) -> object | None:
        address = ipv4_address(token)
        if address is not None:
            return address
        if re.fullmatch(r"[0-9.]+", token):
            return None
        return token if is_ifname(token) else None

    def reason(self, token: str) -> str | None:
        return IfName().reason(token)


_FQDN = re.compile(r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9-]{1,63})*\.?")


def is_fqdn(token: str) -> bool:
    """A host name (letters, digits, hyphens, dots), not a dotted quad."""
    return bool(_FQDN.fullmatch(token)) and not re.fullmatch(r"[0-9.]+", token)


class Fqdn(ParamType):
    """A host name."""

    label = "FQDN"

    def read(self, token: str) -> object | None:
        return token if is_fqdn(token) else None


class Host(ParamType):
    """An IPv4 address or an FQDN."""

    label = "A.B.C.D|FQDN"

    def read(self, token: str) -> object | None:
        address = ipv4_address(token)
        if address is not None:
            return address
        return token if is_fqdn(token) else None


class Area(ParamType):
    """An OSPF area: decimal 0-4294967295 or dotted quad, kept as written."""

    label = "<0-4294967295>|A.B.C.D"
    rank = 1

    def read(self, token: str) -> object | None:
        value = number(token)
        if value is not None and value <= 0xFFFFFFFF:
            return str(value)
        address = ipv4_address(token)
        return None if address is None else str(address)


#: :class:`LineError` ``param`` naming the line's last token.
END = "<end>"


class LineError(Exception):
    """Raised by a handler: the line is understood but cannot be applied.

    ``param`` names the parameter whose token is at fault (``None``: the first token,
    :data:`END`: the last one).
    """

    def __init__(self, message: str, param: str | None = None, expected: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.expected = expected


_V = TypeVar("_V")


class Args:
    """The values a matched line supplied, with typed accessors."""

    def __init__(self, values: Mapping[str, object]) -> None:
        self._values = dict(values)

    def has(self, name: str) -> bool:
        return name in self._values

    def replaced(self, name: str, value: object) -> Args:
        """These arguments with ``name`` set to ``value``."""
        return Args({**self._values, name: value})

    def get(self, name: str) -> object | None:
        return self._values.get(name)

    def _typed(self, name: str, kind: type[_V]) -> _V:
        value = self._values[name]
        assert isinstance(value, kind)
        return value

    def _optional(self, name: str, kind: type[_V]) -> _V | None:
        return self._typed(name, kind) if name in self._values else None

    def number(self, name: str) -> int:
        return self._typed(name, int)

    def opt_number(self, name: str) -> int | None:
        return self._optional(name, int)

    def text(self, name: str) -> str:
        return self._typed(name, str)

    def opt_text(self, name: str) -> str | None:
        return self._optional(name, str)

    def address(self, name: str) -> IPv4Address:
        return self._typed(name, IPv4Address)

    def opt_address(self, name: str) -> IPv4Address | None:
        return self._optional(name, IPv4Address)

    def items(self, name: str) -> list[object]:
        value = self._values.get(name, [])
        assert isinstance(value, list)
        return value


@dataclass(frozen=True)
class Outcome:
    """A handler's result: the new config, the context entered (a block header), and the
    key under which the line is recorded in the source map (default: the command's)."""

    config: Config
    context: Context | None = None
    key: str | None = None


Handler = Callable[[Config, Context, Args], Outcome]


@dataclass(frozen=True)
class Command:
    """One command of a mode: its pattern, what it does, and its ``no``/``default`` forms.

    ``no_depth``: how many leading pattern elements a ``no`` form needs (``None``: the
    leading keywords). ``default_handler`` falls back to ``no_handler``.
    """

    mode: Mode
    pattern: tuple[Element, ...]
    handler: Handler
    help: str
    no_handler: Handler | None = None
    default_handler: Handler | None = None
    no_depth: int | None = None
    key: str = ""

    @property
    def syntax(self) -> str:
        """The pattern as documentation: ``ip nhrp holdtime <1-65000>``."""
        return syntax(self.pattern)

    def leading_keywords(self) -> tuple[str, ...]:
        return leading_keywords(self.pattern)


class Grammar:
    """The commands of every configuration mode, as the engine's tree per mode."""

    def __init__(self, commands: Sequence[Command]) -> None:
        self.commands = tuple(commands)
        self.trees: engine.Grammar[Mode, Command] = engine.Grammar()
        for mode in Mode:
            self.trees.root(mode)
        for command in commands:
            self.trees.add(
                command.mode,
                command.pattern,
                command,
                help=command.help,
                no_command=command if command.no_handler is not None else None,
                no_depth=command.no_depth,
                describe=command.syntax,
            )

    def modes_commands(self, mode: Mode) -> tuple[Command, ...]:
        return tuple(c for c in self.commands if c.mode is mode)

    def match(
        self,
        mode: Mode,
        tokens: Sequence[Token],
        line: str,
        *,
        negated: bool = False,
        lenient: bool = False,
    ) -> Match[Command] | Failure:
        """Match ``tokens`` (of ``line``) against the commands of ``mode``.

        ``negated``: the tokens follow ``no``/``default``; the match may stop early.
        ``lenient``: accept out-of-range numbers and odd names (see ``read_lenient``).
        """
        return self.trees.match(mode, tokens, line, negated=negated, lenient=lenient)

    def trace(self, mode: Mode, tokens: Sequence[Token]) -> tuple[tuple[Param | None, ...], bool]:
        """How far ``tokens`` go in ``mode`` (:meth:`engine.Grammar.trace`)."""
        return self.trees.trace(mode, tokens)

    def help(self, mode: Mode, words: Sequence[str]) -> list[tuple[str, str]]:
        """``?`` help after the complete ``words`` (a leading ``no``/``default`` is the
        negation): (keyword or parameter, help) pairs; none when the words go nowhere."""
        line = " ".join(words)
        tokens = tokenize(line)
        negated = bool(tokens) and tokens[0].text.lower() in NEGATIONS
        entries = self.trees.entries(mode, tokens[1:] if negated else tokens, line, negated=negated)
        return [] if isinstance(entries, Failure) else entries


def parse_network(address: IPv4Address, prefixlen: int) -> IPv4Network:
    """The network of ``address``/``prefixlen`` (host bits cleared)."""
    return ipaddress.IPv4Network(f"{address}/{prefixlen}", strict=False)
