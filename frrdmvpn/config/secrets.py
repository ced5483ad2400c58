"""The secrets of the configuration language: which statements carry one, and how a text
that may hold them is shown. Pure: no I/O.

The table is the grammar: a statement carries a secret when a parameter of its pattern is
a :class:`~frrdmvpn.config.grammar.Secret` (:data:`STATEMENTS`: the keyring peer's
``pre-shared-key`` and the tunnel's ``ip nhrp authentication``). Whatever an operator, a
log or a diagnostic sees of a configuration line goes through :func:`mask_line`:

* in a line that some mode's grammar reads, the token a secret parameter reads and every
  token after it become :data:`MASK` (``pre-shared-key local KEY`` is IOS syntax this
  language refuses: ``local`` is read as the key, and ``KEY`` after it is hidden too);
* in a line that no mode reads as a whole command, every token after the first one no mode
  accepts becomes :data:`MASK` (``pre-shard-key KEY``: a mistyped keyword cannot tell
  whether a secret follows it).

:data:`MASK` typed where a secret goes means "the secret configured here": a masked
configuration fed back (``EditConfig``, ``ApplyConfig``, a saved file) keeps the real
secrets, and is refused where there is none to keep (:mod:`frrdmvpn.config.edit`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from frrdmvpn.command_engine.grammar import Param
from frrdmvpn.command_engine.ios_text import NEGATIONS
from frrdmvpn.command_engine.tokens import Token, tokenize
from frrdmvpn.config.commands import GRAMMAR
from frrdmvpn.config.grammar import Command, Secret
from frrdmvpn.config.model import Config, KeyringPeer, TunnelInterface
from frrdmvpn.config.modes import Context, Mode

MASK = "<removed>"
"""What a secret is shown as (IOS's word for what ``show tech-support`` leaves out)."""


@dataclass(frozen=True)
class SecretStatement:
    """A statement that carries a secret: its command and the parameter holding it."""

    command: Command
    param: str
    type: Secret

    @property
    def mode(self) -> Mode:
        return self.command.mode

    @property
    def keywords(self) -> tuple[str, ...]:
        return self.command.leading_keywords()

    @property
    def field(self) -> str:
        """The model attribute the secret sets."""
        return self.type.field

    @property
    def what(self) -> str:
        """How messages name it (``pre-shared key``)."""
        return self.type.what


def _params(command: Command) -> Iterator[Param]:
    stack = list(command.pattern)
    while stack:
        element = stack.pop(0)
        if isinstance(element, Param):
            yield element
        elif not isinstance(element, str):
            stack[:0] = element.elements


STATEMENTS: tuple[SecretStatement, ...] = tuple(
    SecretStatement(c, p.name, p.type)
    for c in GRAMMAR.commands
    for p in _params(c)
    if isinstance(p.type, Secret)
)
"""Every secret-bearing statement of the language, in grammar order."""


def statements_of(command: Command) -> tuple[SecretStatement, ...]:
    """The secrets ``command`` carries (none for most)."""
    return tuple(s for s in STATEMENTS if s.command is command)


# --- where a line holds secrets ----------------------------------------------------------


def _is_secret(param: Param | None) -> bool:
    return param is not None and isinstance(param.type, Secret)


def masked_indices(tokens: tuple[Token, ...]) -> frozenset[int]:
    """Indices of the tokens of a line that are shown as :data:`MASK` (see the module)."""
    if not tokens or tokens[0].text.startswith("!"):
        return frozenset()
    start = 1 if tokens[0].text.lower() in NEGATIONS else 0
    body = tokens[start:]
    if not body or (len(tokens) == 1 and body[0].text.lower() in ("exit", "end")):
        return frozenset()
    hidden: set[int] = set()
    furthest, whole = 0, False
    for mode in Mode:
        steps, complete = GRAMMAR.trace(mode, body)
        whole = whole or complete
        furthest = max(furthest, len(steps))
        first = next((i for i, p in enumerate(steps) if _is_secret(p)), None)
        if first is not None:
            hidden.update(range(start + first, len(tokens)))
    if not whole:
        hidden.update(range(start + furthest + 1, len(tokens)))
    return frozenset(hidden)


def masked_columns(line: str) -> frozenset[int]:
    """The 1-based columns of the tokens of ``line`` shown as :data:`MASK`."""
    tokens = tokenize(line)
    return frozenset(tokens[i].column for i in masked_indices(tokens))


def _rebuild(line: str, hidden: frozenset[int]) -> tuple[str, dict[int, int]]:
    """``line`` with the tokens at columns ``hidden`` replaced, and where each token's
    column moved to."""
    out: list[str] = []
    moved: dict[int, int] = {}
    pos = length = 0  # length: of "".join(out), kept as it grows (linear in the line)
    for token in tokenize(line):
        gap = line[pos : token.column - 1]
        shown = MASK if token.column in hidden else token.text
        out += (gap, shown)
        moved[token.column] = length + len(gap) + 1
        length += len(gap) + len(shown)
        pos = token.column - 1 + len(token.text)
    out.append(line[pos:])
    return "".join(out), moved


def mask_line(line: str) -> str:
    """``line`` as an operator, a log or a diagnostic may show it."""
    hidden = masked_columns(line)
    return _rebuild(line, hidden)[0] if hidden else line


def mask_text(text: str) -> str:
    """Every line of ``text`` masked (line ends kept). Lines end at ``"\n"`` as for the
    parser (:func:`frrdmvpn.config.text.lines`): a U+2028 inside a line of an older file
    splits no secret into an unmasked "line" of its own."""
    out = []
    for line in text.split("\n"):
        body = line.removesuffix("\r")
        out.append(mask_line(body) + line[len(body) :])
    return "\n".join(out)


def display(line: str, column: int | None) -> tuple[str, int | None]:
    """``line`` masked, and ``column`` (of a token of ``line``) moved to the same token in
    it: where a diagnostic's caret goes under the masked line."""
    hidden = masked_columns(line)
    if not hidden:
        return line, column
    masked, moved = _rebuild(line, hidden)
    if column is None:
        return masked, None
    starts = [c for c in moved if c <= column]
    if not starts:
        return masked, column
    start = max(starts)
    inside = column - start if start not in hidden else 0
    return masked, moved[start] + inside


# --- the secrets of a configuration -------------------------------------------------------


Holder = KeyringPeer | TunnelInterface


def _holders(config: Config, mode: Mode) -> Iterator[tuple[tuple[str, ...], Holder]]:
    """The objects a line in ``mode`` edits, with the context keys that select each."""
    if mode is Mode.INTERFACE:
        yield from (((i.name,), i) for i in config.interfaces)
    elif mode is Mode.IKEV2_KEYRING_PEER:
        yield from (((k.name, p.name), p) for k in config.ikev2_keyrings for p in k.peers)
    else:  # a secret statement in another mode must be added here (a unit test checks)
        raise ValueError(f"no secret-bearing objects in {mode.title}")


def configured(config: Config | None, context: Context, statement: SecretStatement) -> str | None:
    """The secret ``statement`` holds in ``context`` of ``config`` (None: none there)."""
    if config is None:
        return None
    for keys, holder in _holders(config, statement.mode):
        if keys == context.keys:
            value = getattr(holder, statement.field)
            return value if isinstance(value, str) and value != MASK else None
    return None


def values(config: Config) -> tuple[str, ...]:
    """Every secret of ``config`` (for the tests that prove where secrets never go)."""
    found = []
    for statement in STATEMENTS:
        for _, holder in _holders(config, statement.mode):
            value = getattr(holder, statement.field)
            if isinstance(value, str):
                found.append(value)
    return tuple(found)
