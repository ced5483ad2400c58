"""A small IOS-style command grammar: typed parameters, a per-mode command tree, a matcher.

Patterns are sequences of keywords (``str``), :class:`Param` and :class:`Opt` (optional
groups). Keywords match case-insensitively and by unique prefix (``ip nh hold 60``), like
IOS. A ``no``/``default`` form may stop after the command's first ``no_depth`` elements
(``no ip nhrp holdtime``). The matcher never raises on input: a failure is a
:class:`Failure` with the token index, a message and what would be valid there.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network

from frrdmvpn.config.model import TUNNEL_NUMBER_MAX, Config
from frrdmvpn.config.modes import Context, Mode

# --- tokens ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    """A whitespace-separated word of a line and its 1-based column."""

    text: str
    column: int


def tokenize(line: str) -> tuple[Token, ...]:
    """Split ``line`` at whitespace, keeping each word's column."""
    return tuple(Token(m.group(), m.start() + 1) for m in re.finditer(r"\S+", line))


# --- parameter types ---------------------------------------------------------------------


class ParamType:
    """How a parameter token is read. ``read`` returns the value or ``None``."""

    label = "WORD"
    #: 0: as specific as a keyword, 1: typed (numbers, addresses), 2: any word.
    rank = 2
    rest_of_line = False

    def read(self, token: str) -> object | None:
        return token

    def reason(self, token: str) -> str | None:
        """Why ``token`` is not accepted, when more can be said than "invalid input"."""
        return None

    def read_lenient(self, token: str) -> object | None:
        """Like :meth:`read`, but accepting values a validator should judge (lenient mode)."""
        return self.read(token)


class Word(ParamType):
    """Any word."""

    def __init__(self, label: str = "WORD") -> None:
        self.label = label


class Secret(ParamType):
    """A secret word (a pre-shared key, an authentication string): read like :class:`Word`,
    but shown and logged only masked (:mod:`frrdmvpn.config.secrets`). ``field`` is the
    model attribute it sets, ``what`` how messages name it."""

    def __init__(self, field: str, what: str) -> None:
        self.field, self.what = field, what


class Line(ParamType):
    """The rest of the line, spacing kept."""

    label = "LINE"
    rest_of_line = True


class IntRange(ParamType):
    """A decimal integer within ``lo``..``hi``."""

    rank = 1

    def __init__(self, lo: int, hi: int) -> None:
        self.lo, self.hi = lo, hi
        self.label = f"<{lo}-{hi}>"

    def read(self, token: str) -> object | None:
        if not token.isdigit() or len(token) > 12:
            return None
        value = int(token)
        return value if self.lo <= value <= self.hi else None

    def reason(self, token: str) -> str | None:
        if token.isdigit():
            return f"{token} is out of range {self.lo}-{self.hi}"
        return None

    def read_lenient(self, token: str) -> object | None:
        return int(token) if token.isdigit() and len(token) <= 12 else None


def _ipv4(token: str) -> IPv4Address | None:
    if token.count(".") != 3:
        return None
    try:
        return IPv4Address(token)
    except ValueError:
        return None


class Ipv4(ParamType):
    """A dotted-quad IPv4 address."""

    label = "A.B.C.D"
    rank = 1

    def read(self, token: str) -> object | None:
        return _ipv4(token)


class Mask(ParamType):
    """A contiguous netmask (``255.255.255.0``); read as the prefix length."""

    label = "M.M.M.M"
    rank = 1

    def read(self, token: str) -> object | None:
        mask = _ipv4(token)
        if mask is None:
            return None
        try:
            return IPv4Network(f"0.0.0.0/{mask}").prefixlen
        except ValueError:
            return None

    def reason(self, token: str) -> str | None:
        return f"{token} is not a contiguous netmask" if _ipv4(token) else None


class Wildcard(ParamType):
    """A contiguous wildcard (inverse) mask (``0.0.0.255``); read as the prefix length."""

    label = "W.W.W.W"
    rank = 1

    def read(self, token: str) -> object | None:
        wildcard = _ipv4(token)
        if wildcard is None:
            return None
        inverse = IPv4Address(int(wildcard) ^ 0xFFFFFFFF)
        try:
            return IPv4Network(f"0.0.0.0/{inverse}").prefixlen
        except ValueError:
            return None

    def reason(self, token: str) -> str | None:
        return f"{token} is not a contiguous wildcard mask" if _ipv4(token) else None


class Prefix(ParamType):
    """An IPv4 prefix ``A.B.C.D/M`` without host bits."""

    label = "A.B.C.D/M"
    rank = 1

    def read(self, token: str) -> object | None:
        if not re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}/\d{1,2}", token):
            return None
        try:
            return IPv4Network(token)
        except ValueError:
            return None

    def reason(self, token: str) -> str | None:
        if not re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}/\d{1,2}", token):
            return None
        try:
            network = IPv4Network(token, strict=False)
        except ValueError:
            return f"{token} is not an IPv4 prefix"
        return f"{token} has host bits set (did you mean {network}?)"


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
        return _ipv4(token) or token

    def read(self, token: str) -> object | None:
        address = _ipv4(token)
        if address is not None:
            return address
        if re.fullmatch(r"[\d.]+", token):
            return None
        return token if is_ifname(token) else None

    def reason(self, token: str) -> str | None:
        return IfName().reason(token)


_FQDN = re.compile(r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9-]{1,63})*\.?")


def is_fqdn(token: str) -> bool:
    """A host name (letters, digits, hyphens, dots), not a dotted quad."""
    return bool(_FQDN.fullmatch(token)) and not re.fullmatch(r"[\d.]+", token)


class Fqdn(ParamType):
    """A host name."""

    label = "FQDN"

    def read(self, token: str) -> object | None:
        return token if is_fqdn(token) else None


class Host(ParamType):
    """An IPv4 address or an FQDN."""

    label = "A.B.C.D|FQDN"

    def read(self, token: str) -> object | None:
        address = _ipv4(token)
        if address is not None:
            return address
        return token if is_fqdn(token) else None


class Area(ParamType):
    """An OSPF area: decimal 0-4294967295 or dotted quad, kept as written."""

    label = "<0-4294967295>|A.B.C.D"
    rank = 1

    def read(self, token: str) -> object | None:
        if token.isdigit() and len(token) <= 10 and int(token) <= 0xFFFFFFFF:
            return str(int(token))
        address = _ipv4(token)
        return None if address is None else str(address)


class Tunnel(ParamType):
    """``TunnelN`` (also ``tunnelN``, ``TuN``): read as ``N``."""

    label = "TunnelN"
    rank = 1

    def read(self, token: str) -> object | None:
        m = re.fullmatch(r"(?i)tu(?:n(?:n(?:e(?:l)?)?)?)?(\d{1,10})", token)
        if m is None:
            return None
        number = int(m.group(1))
        return number if number <= TUNNEL_NUMBER_MAX else None

    def reason(self, token: str) -> str | None:
        return (
            f"only mGRE tunnels are configured here: {token!r} is not "
            f"Tunnel0-Tunnel{TUNNEL_NUMBER_MAX}"
        )


class Choice(ParamType):
    """One of fixed keywords, captured as a value (by unique prefix, like keywords)."""

    rank = 0

    def __init__(self, *values: str) -> None:
        self.values = values
        self.label = values[0] if len(values) == 1 else "{" + "|".join(values) + "}"

    def read(self, token: str) -> object | None:
        low = token.lower()
        if low in self.values:
            return low
        hits = [v for v in self.values if v.startswith(low)]
        return hits[0] if len(hits) == 1 else None

    def reason(self, token: str) -> str | None:
        hits = [v for v in self.values if v.startswith(token.lower())]
        if len(hits) > 1:
            return f"ambiguous abbreviation {token!r} ({', '.join(hits)})"
        return None


class Whole(Choice):
    """A :class:`Choice` that takes only whole words: where a parameter follows that could
    be any word (``fqdn [domain] NAME``), an abbreviation would take a name (``dom``)."""

    def read(self, token: str) -> object | None:
        low = token.lower()
        return low if low in self.values else None

    def reason(self, token: str) -> str | None:
        return None


# --- patterns ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """A named parameter; ``many`` reads one or more values (a list)."""

    name: str
    type: ParamType
    many: bool = False


@dataclass(frozen=True, init=False)
class Opt:
    """An optional group of elements."""

    elements: tuple[Element, ...]

    def __init__(self, *elements: Element) -> None:
        object.__setattr__(self, "elements", elements)


Element = str | Param | Opt


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

    def number(self, name: str) -> int:
        value = self._values[name]
        assert isinstance(value, int)
        return value

    def opt_number(self, name: str) -> int | None:
        return self.number(name) if name in self._values else None

    def text(self, name: str) -> str:
        value = self._values[name]
        assert isinstance(value, str)
        return value

    def opt_text(self, name: str) -> str | None:
        return self.text(name) if name in self._values else None

    def address(self, name: str) -> IPv4Address:
        value = self._values[name]
        assert isinstance(value, IPv4Address)
        return value

    def opt_address(self, name: str) -> IPv4Address | None:
        return self.address(name) if name in self._values else None

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
        return _syntax(self.pattern)

    def leading_keywords(self) -> tuple[str, ...]:
        out: list[str] = []
        for element in self.pattern:
            if not isinstance(element, str):
                break
            out.append(element)
        return tuple(out)


def _syntax(pattern: Sequence[Element]) -> str:
    parts: list[str] = []
    for element in pattern:
        if isinstance(element, str):
            parts.append(element)
        elif isinstance(element, Param):
            parts.append(element.type.label + (" ..." if element.many else ""))
        else:
            parts.append("[" + _syntax(element.elements) + "]")
    return " ".join(parts)


def _expand(pattern: Sequence[Element]) -> Iterator[tuple[str | Param, ...]]:
    if not pattern:
        yield ()
        return
    head, rest = pattern[0], pattern[1:]
    tails = list(_expand(rest))
    if isinstance(head, Opt):
        for inner in _expand(head.elements):
            for tail in tails:
                yield inner + tail
        yield from tails
    else:
        for tail in tails:
            yield (head, *tail)


# --- the command tree --------------------------------------------------------------------


@dataclass
class _Node:
    keywords: dict[str, _Node] = field(default_factory=dict)
    keyword_help: dict[str, str] = field(default_factory=dict)
    params: list[tuple[Param, _Node]] = field(default_factory=list)
    repeat: Param | None = None
    command: Command | None = None
    no_command: Command | None = None

    def param_child(self, param: Param) -> _Node:
        for existing, child in self.params:
            if existing == param:
                return child
        child = _Node()
        self.params.append((param, child))
        self.params.sort(key=lambda pc: pc[0].type.rank)
        return child

    def labels(self, allow_end: bool) -> list[str]:
        out = sorted(self.keywords)
        out += [p.type.label for p, _ in self.params]
        if self.repeat is not None:
            out.append(self.repeat.type.label)
        if allow_end:
            out.append("<cr>")
        return out


@dataclass(frozen=True)
class Matched:
    """A successful match: the command, its arguments and each argument's token index."""

    command: Command
    args: Args
    positions: Mapping[str, int]


@dataclass(frozen=True)
class Failure:
    """A failed match at token ``index`` (``len(tokens)`` when incomplete)."""

    index: int
    message: str
    expected: str


class Grammar:
    """The commands of every mode, as one tree per mode."""

    def __init__(self, commands: Sequence[Command]) -> None:
        self.commands = tuple(commands)
        self._roots: dict[Mode, _Node] = {mode: _Node() for mode in Mode}
        for command in commands:
            self._insert(command)

    def _insert(self, command: Command) -> None:
        no_depth = command.no_depth
        if no_depth is None:
            no_depth = len(command.leading_keywords())
        for path in _expand(command.pattern):
            node = self._roots[command.mode]
            for depth, element in enumerate(path, start=1):
                if isinstance(element, str):
                    node.keyword_help.setdefault(element, command.help)
                    node = node.keywords.setdefault(element, _Node())
                else:
                    node = node.param_child(element)
                    if element.many:
                        node.repeat = element
                if depth >= no_depth and command.no_handler is not None:
                    self._mark_no(node, command)
            if node.command is not None and node.command is not command:
                raise ValueError(f"{command.syntax!r} clashes with {node.command.syntax!r}")
            node.command = command

    @staticmethod
    def _mark_no(node: _Node, command: Command) -> None:
        if node.no_command is not None and node.no_command is not command:
            raise ValueError(
                f"no-form of {command.syntax!r} clashes with {node.no_command.syntax!r}"
            )
        node.no_command = command

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
    ) -> Matched | Failure:
        """Match ``tokens`` (of ``line``) against the commands of ``mode``.

        ``negated``: the tokens follow ``no``/``default``; the match may stop early.
        ``lenient``: accept out-of-range numbers and odd names (see ``read_lenient``).
        """
        node = self._roots[mode]
        values: dict[str, object] = {}
        positions: dict[str, int] = {}
        index = 0
        while index < len(tokens):
            token = tokens[index]
            step = self._step(node, token.text, index, lenient)
            if isinstance(step, Failure):
                return step
            param, child = step
            if param is not None:
                positions.setdefault(param.name, index)
                if param.type.rest_of_line:
                    value: object | None = line[token.column - 1 :].rstrip()
                    index = len(tokens) - 1
                elif lenient:
                    value = param.type.read_lenient(token.text)
                else:
                    value = param.type.read(token.text)
                if param.many:
                    existing = values.setdefault(param.name, [])
                    assert isinstance(existing, list)
                    existing.append(value)
                else:
                    values[param.name] = value
            node = child
            index += 1
        command = node.no_command if negated else node.command
        if command is None:
            return Failure(
                len(tokens),
                "incomplete command",
                ", ".join(node.labels(allow_end=False)),
            )
        return Matched(command, Args(values), positions)

    @staticmethod
    def _advance(
        node: _Node, text: str, lenient: bool = False
    ) -> tuple[Param | None, _Node] | None:
        """Where ``text`` leads from ``node`` (the parameter that read it, if any); None
        when nothing there accepts it."""

        def accepts(param: Param) -> bool:
            read = param.type.read_lenient if lenient else param.type.read
            return read(text) is not None

        low = text.lower()
        exact = node.keywords.get(low)
        if exact is not None:
            return None, exact
        if node.repeat is not None and accepts(node.repeat):
            return node.repeat, node
        for param, child in node.params:
            if param.type.rank <= 1 and accepts(param):
                return param, child
        prefixed = [k for k in node.keywords if k.startswith(low)]
        if len(prefixed) == 1:
            return None, node.keywords[prefixed[0]]
        for param, child in node.params:
            if param.type.rank > 1 and accepts(param):
                return param, child
        return None

    def trace(self, mode: Mode, tokens: Sequence[Token]) -> tuple[tuple[Param | None, ...], bool]:
        """How far ``tokens`` go in ``mode``: the parameter (None: a keyword) that read each
        token accepted, in order, and whether they make a whole command (or ``no`` form).
        A rest-of-line parameter reads every token left. Never raises."""
        node = self._roots[mode]
        steps: list[Param | None] = []
        while len(steps) < len(tokens):
            step = self._advance(node, tokens[len(steps)].text)
            if step is None:
                return tuple(steps), False
            param, node = step
            if param is not None and param.type.rest_of_line:
                steps += [param] * (len(tokens) - len(steps))
                break
            steps.append(param)
        return tuple(steps), node.command is not None or node.no_command is not None

    def _step(
        self, node: _Node, text: str, index: int, lenient: bool = False
    ) -> tuple[Param | None, _Node] | Failure:
        found = self._advance(node, text, lenient)
        if found is not None:
            return found
        low = text.lower()
        prefixed = sorted(k for k in node.keywords if k.startswith(low))
        expected = ", ".join(node.labels(allow_end=node.command is not None))
        if len(prefixed) > 1:
            return Failure(index, f"ambiguous abbreviation {text!r}", ", ".join(prefixed))
        reasons = [r for p, _ in node.params if (r := p.type.reason(text)) is not None]
        if node.repeat is not None and (r := node.repeat.type.reason(text)) is not None:
            reasons.append(r)
        if not node.keywords and not node.params and node.repeat is None:
            return Failure(index, "unexpected extra input", "<cr>")
        return Failure(index, reasons[0] if reasons else "invalid input", expected or "<cr>")

    def help(self, mode: Mode, words: Sequence[str]) -> list[tuple[str, str]]:
        """``?`` help after the complete ``words``: (keyword or parameter, help) pairs."""
        node: _Node | None = self._roots[mode]
        negated = bool(words) and words[0].lower() in ("no", "default")
        for word in words[1:] if negated else words:
            if node is None:
                break
            step = self._step(node, word, 0)
            node = None if isinstance(step, Failure) else step[1]
        if node is None:
            return []
        out = [(k, node.keyword_help[k]) for k in sorted(node.keywords)]
        out += [(p.type.label, p.name) for p, _ in node.params]
        if node.repeat is not None:
            out.append((node.repeat.type.label, node.repeat.name))
        if (node.no_command if negated else node.command) is not None:
            out.append(("<cr>", ""))
        return out


def parse_network(address: IPv4Address, prefixlen: int) -> IPv4Network:
    """The network of ``address``/``prefixlen`` (host bits cleared)."""
    return ipaddress.IPv4Network(f"{address}/{prefixlen}", strict=False)
