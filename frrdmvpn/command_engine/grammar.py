"""Command trees and the one way a line is matched against them.

A :class:`Grammar` holds one trie of :class:`Node` per key (a configuration mode, an EXEC
level). A command is inserted as a pattern of keywords (``str``), :class:`Param` and
:class:`Opt` (optional groups); where it is complete a node carries the command's payload
(what runs it), and its ``no`` form's. Keywords match case-insensitively and by unique
prefix; at each place the alternatives are tried like IOS: an exact keyword, a repeated
parameter, a typed value, a keyword by unique prefix, then any word (:func:`advance`).

Matching never raises on input: a line is a :class:`Match` or a :class:`Failure` that
says what kind of failure, at which token, where in the line the ``^`` goes, and what
would have been valid there. The same walk answers ``?`` (:meth:`Walk.entries`,
:meth:`Walk.begun`) and TAB (:meth:`Walk.keywords`).
"""

from __future__ import annotations

import enum
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from frrdmvpn.command_engine.params import ParamType
from frrdmvpn.command_engine.tokens import Token

K = TypeVar("K", bound=Hashable)
P = TypeVar("P")
T = TypeVar("T")

#: The keyword that introduces output modifiers after a complete command.
MODIFIER_KEYWORD = "|"

# --- patterns ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """A named parameter; ``many`` reads one or more values (a list). ``help``: what
    ``?`` says of it (default: the name)."""

    name: str
    type: ParamType
    many: bool = False
    help: str = field(default="", compare=False)


@dataclass(frozen=True, init=False)
class Opt:
    """An optional group of elements."""

    elements: tuple[Element, ...]

    def __init__(self, *elements: Element) -> None:
        object.__setattr__(self, "elements", elements)


Element = str | Param | Opt


def syntax(pattern: Sequence[Element]) -> str:
    """A pattern as documentation: ``ip nhrp holdtime <1-65000>``."""
    parts: list[str] = []
    for element in pattern:
        if isinstance(element, str):
            parts.append(element)
        elif isinstance(element, Param):
            parts.append(element.type.label + (" ..." if element.many else ""))
        else:
            parts.append("[" + syntax(element.elements) + "]")
    return " ".join(parts)


def expand(pattern: Sequence[Element]) -> Iterator[tuple[str | Param, ...]]:
    """Every sequence of keywords and parameters a pattern allows (each ``Opt`` in, out)."""
    if not pattern:
        yield ()
        return
    head, rest = pattern[0], pattern[1:]
    tails = list(expand(rest))
    if isinstance(head, Opt):
        for inner in expand(head.elements):
            for tail in tails:
                yield inner + tail
        yield from tails
    else:
        for tail in tails:
            yield (head, *tail)


# --- the trie ------------------------------------------------------------------------------


@dataclass(eq=False)
class Node(Generic[P]):
    """A place in a command: what may follow, and what runs when the line ends here.

    ``negates``: this keyword (EXEC's ``no``) makes the rest of the line a ``no`` form
    of a command of the same tree; only what leads to one is offered after it.
    ``modifiers``: output modifiers (``| include ...``) may follow the command ending here.
    ``incomplete``: what to say instead of "incomplete command" when the line stops here.
    ``redirect``: the rest of the line is a command of that tree (``do`` in configuration
    mode: a privileged EXEC command).
    """

    keywords: dict[str, Node[P]] = field(default_factory=dict)
    keyword_help: dict[str, str] = field(default_factory=dict)
    params: list[tuple[Param, Node[P]]] = field(default_factory=list)
    repeat: Param | None = None
    command: P | None = None
    no_command: P | None = None
    negates: bool = False
    modifiers: bool = False
    incomplete: str | None = None
    redirect: Node[P] | None = None

    def keyword(self, word: str, help: str) -> Node[P]:
        """The node after ``word`` (created with ``help`` when new)."""
        self.keyword_help.setdefault(word, help)
        return self.keywords.setdefault(word, Node())

    def param(self, param: Param) -> Node[P]:
        """The node after ``param`` (created when new; kept in rank order)."""
        for existing, known in self.params:
            if existing == param:
                return known
        child: Node[P] = Node()
        self.params.append((param, child))
        self.params.sort(key=lambda pc: pc[0].type.rank)
        return child

    def leads_to_no_form(self) -> bool:
        """Whether a ``no`` form ends here or below."""
        return self.no_command is not None or any(
            child.leads_to_no_form() for child in self._children()
        )

    def _children(self) -> Iterator[Node[P]]:
        yield from self.keywords.values()
        yield from (child for param, child in self.params if child is not self)

    def ends(self, negated: bool) -> bool:
        return (self.no_command if negated else self.command) is not None


# --- matching ------------------------------------------------------------------------------


class FailureKind(enum.Enum):
    """Why a line is no command."""

    INVALID = "invalid input"  # nothing at this place takes the word
    REFUSED = "refused"  # a parameter refuses the word and says why
    EXTRA = "unexpected extra input"  # the command was complete before the word
    AMBIGUOUS = "ambiguous"  # the word abbreviates several keywords
    INCOMPLETE = "incomplete command"  # the line stops before the command is complete


@dataclass(frozen=True)
class Failure:
    """A line that is no command: ``index`` of the token at fault (``len(tokens)`` when
    incomplete), ``offset`` in the line where ``^`` goes, the ``message`` and what would
    be valid there (``expected``). ``incomplete``: the tree's own text for an incomplete
    line (``% Type "show ?" ...``)."""

    kind: FailureKind
    index: int
    offset: int
    message: str
    expected: str
    incomplete: str | None = None


@dataclass(frozen=True)
class Match(Generic[P]):
    """A complete command: its payload, the values of its parameters (by name; a list for
    ``many``), the keywords typed (in full), the token index of each parameter, whether
    it is the ``no`` form, whether it came through a ``redirect`` keyword, and the output
    modifier after ``|``."""

    command: P
    values: Mapping[str, object]
    words: frozenset[str]
    positions: Mapping[str, int]
    negated: bool = False
    redirected: bool = False
    modifier: Match[str] | None = None


def advance(
    node: Node[P], text: str, *, lenient: bool = False, negated: bool = False
) -> tuple[Param | None, str | None, Node[P]] | list[str] | None:
    """Where ``text`` leads from ``node``: (the parameter that read it, or the keyword it
    selects, and the next node); the keywords it abbreviates when more than one; ``None``
    when nothing here takes it. ``negated``: after a ``negates`` keyword."""

    def accepts(param: Param) -> bool:
        read = param.type.read_lenient if lenient else param.type.read
        return read(text) is not None

    keywords = _keywords(node, negated)
    low = text.lower()
    exact = keywords.get(low)
    if exact is not None:
        return None, low, exact
    if node.repeat is not None and accepts(node.repeat):
        return node.repeat, None, node
    params = _params(node, negated)
    for param, child in params:
        if param.type.rank <= 1 and accepts(param):
            return param, None, child
    prefixed = sorted(k for k in keywords if k.startswith(low))
    if len(prefixed) == 1:
        return None, prefixed[0], keywords[prefixed[0]]
    for param, child in params:
        if param.type.rank > 1 and accepts(param):
            return param, None, child
    return prefixed or None


def _keywords(node: Node[P], negated: bool) -> dict[str, Node[P]]:
    if not negated:
        return node.keywords
    return {k: c for k, c in node.keywords.items() if not c.negates and c.leads_to_no_form()}


def _params(node: Node[P], negated: bool) -> list[tuple[Param, Node[P]]]:
    if not negated:
        return node.params
    return [(p, c) for p, c in node.params if c.leads_to_no_form()]


def begun_at(node: Node[P], text: str, *, negated: bool = False, also: Iterable[str] = ()) -> int:
    """Where in ``text`` it stops being the beginning of anything ``node`` takes, or of the
    keywords ``also`` (0: at its start, or nowhere). Linear in ``text``: no beginning is
    longer than the longest keyword or bounded parameter."""
    keywords = [*_keywords(node, negated), *also]
    params = [p.type for p, _ in _params(node, negated)]
    if node.repeat is not None:
        params.append(node.repeat.type)
    if any(p.longest is None and p.partial(text) for p in params):
        return 0
    if any(p.longest is None for p in params):
        cap = len(text)
    else:
        cap = max([len(k) for k in keywords] + [p.longest or 0 for p in params], default=0)
    for end in range(min(len(text), cap), 0, -1):
        head = text[:end]
        low = head.lower()
        if any(k.startswith(low) for k in keywords) or any(p.partial(head) for p in params):
            return end if end < len(text) else 0
    return 0


@dataclass
class Walk(Generic[P]):
    """How far a line went: the node reached and what was read on the way; after ``|``,
    the walk through the output modifiers (``modifier``)."""

    node: Node[P]
    root: Node[P] | None = None  # the tree a ``negates`` keyword starts again from
    negated: bool = False
    pruned: bool = False  # negated by a ``negates`` keyword: offer only no forms
    values: dict[str, object] = field(default_factory=dict)
    words: set[str] = field(default_factory=set)
    positions: dict[str, int] = field(default_factory=dict)
    rest_taken: bool = False  # a rest-of-line parameter consumed the line
    redirected: bool = False  # through a ``redirect`` keyword
    modifier: Walk[str] | None = None

    def modifiers_allowed(self) -> bool:
        return self.modifier is None and self.node.modifiers and not self.negated

    def complete(self) -> bool:
        if self.modifier is not None:
            return self.modifier.complete()
        return self.node.ends(self.negated)

    def incomplete(self) -> str | None:
        """The tree's own text for a line that stops here."""
        return self.modifier.node.incomplete if self.modifier is not None else self.node.incomplete

    def entries(self, modifier_help: str) -> list[tuple[str, str]]:
        """``?`` here: keywords sorted, then parameters, ``|``, ``<cr>`` when complete."""
        if self.modifier is not None:
            return self.modifier.entries(modifier_help)
        if self.rest_taken:
            return [("<cr>", "")]
        node = self.node
        keywords = _keywords(node, self.pruned)
        out = [(k, node.keyword_help[k]) for k in sorted(keywords)]
        out += [(p.type.label, p.help or p.name) for p, _ in _params(node, self.pruned)]
        if node.repeat is not None:
            out.append((node.repeat.type.label, node.repeat.help or node.repeat.name))
        if self.modifiers_allowed():
            out.append((MODIFIER_KEYWORD, modifier_help))
        if self.complete():
            out.append(("<cr>", ""))
        return out

    def keywords(self) -> list[str]:
        """The keywords that may come next (what TAB completes)."""
        if self.modifier is not None:
            return self.modifier.keywords()
        if self.rest_taken:
            return []
        out = sorted(_keywords(self.node, self.pruned))
        return [*out, MODIFIER_KEYWORD] if self.modifiers_allowed() else out

    def begun(self, prefix: str) -> list[str]:
        """What ``?`` typed inside the word ``prefix`` lists: the keywords it begins, then
        the labels of the parameters it can begin."""
        if self.modifier is not None:
            return self.modifier.begun(prefix)
        low = prefix.lower()
        out = [k for k in self.keywords() if k.startswith(low)]
        if self.rest_taken:
            return out
        params = [p for p, _ in _params(self.node, self.pruned)]
        params += [self.node.repeat] if self.node.repeat is not None else []
        return out + [p.type.label for p in params if p.type.partial(prefix)]

    def taken(self) -> bool:
        """Whether a rest-of-line parameter consumed the line."""
        return self.modifier.rest_taken if self.modifier is not None else self.rest_taken


class Grammar(Generic[K, P]):
    """The command trees of a language, one per key, and an optional tree of output
    modifiers, each complete there under its name (offered after ``|`` where a node
    allows them)."""

    def __init__(
        self, modifiers: Node[str] | None = None, modifier_help: str = "Output modifiers"
    ) -> None:
        self._roots: dict[K, Node[P]] = {}
        self.modifiers = modifiers
        self.modifier_help = modifier_help

    def root(self, key: K) -> Node[P]:
        """The tree of ``key`` (created empty when new)."""
        return self._roots.setdefault(key, Node())

    def add(
        self,
        key: K,
        pattern: Sequence[Element],
        command: P,
        *,
        help: str,
        no_command: P | None = None,
        no_depth: int | None = None,
        describe: str = "",
    ) -> None:
        """Insert a command; its ``no`` form may stop after ``no_depth`` elements (default:
        the leading keywords). Keywords new to a place take ``help``. ``describe`` names
        the command in a clash (default: its syntax)."""
        depth_needed = len(leading_keywords(pattern)) if no_depth is None else no_depth
        name = describe or syntax(pattern)
        for path in expand(pattern):
            node = self.root(key)
            for depth, element in enumerate(path, start=1):
                if isinstance(element, str):
                    node = node.keyword(element, help)
                else:
                    node = node.param(element)
                    if element.many:
                        node.repeat = element
                if depth >= depth_needed and no_command is not None:
                    if node.no_command is not None and node.no_command != no_command:
                        raise ValueError(f"no-form of {name!r} clashes with another command")
                    node.no_command = no_command
            if node.command is not None and node.command != command:
                raise ValueError(f"{name!r} clashes with another command")
            node.command = command

    # --- walking ---------------------------------------------------------------------------
    def walk(
        self,
        key: K,
        tokens: Sequence[Token],
        line: str,
        *,
        negated: bool = False,
        lenient: bool = False,
    ) -> tuple[Walk[P], Failure | None]:
        """Follow ``tokens`` (of ``line``) from the root of ``key`` as far as they go."""
        root = self.root(key)
        walk: Walk[P] = Walk(root, root, negated=negated)
        for index, token in enumerate(tokens):
            if walk.taken():
                break
            at_modifier = token.text == MODIFIER_KEYWORD and walk.modifiers_allowed()
            if at_modifier and self.modifiers is not None:
                walk.modifier = Walk(self.modifiers)
                continue
            if walk.modifier is not None:
                failure = self._step(walk.modifier, token, index, line, lenient=lenient)
            else:
                failure = self._step(walk, token, index, line, lenient=lenient)
            if failure is not None:
                return walk, failure
        return walk, None

    def _step(
        self,
        walk: Walk[T],
        token: Token,
        index: int,
        line: str,
        *,
        lenient: bool,
    ) -> Failure | None:
        step = advance(walk.node, token.text, lenient=lenient, negated=walk.pruned)
        if isinstance(step, list):
            message = f"ambiguous abbreviation {token.text!r}"
            return Failure(FailureKind.AMBIGUOUS, index, token.start, message, ", ".join(step))
        if step is None:
            return self._refusal(walk, token, index)
        param, word, child = step
        if child.negates and walk.root is not None:
            walk.node, walk.negated, walk.pruned = walk.root, True, True
        elif child.redirect is not None:
            walk.node = walk.root = child.redirect
            walk.redirected = True
        else:
            if param is not None:
                walk.positions.setdefault(param.name, index)
                _read(walk, param, token, line, lenient)
            elif word is not None:
                walk.words.add(word)
            walk.node = child
        return None

    def _refusal(self, walk: Walk[T], token: Token, index: int) -> Failure:
        node = walk.node
        if not node.keywords and not node.params and node.repeat is None:
            return Failure(FailureKind.EXTRA, index, token.start, FailureKind.EXTRA.value, "<cr>")
        expected = ", ".join(label for label, _ in walk.entries(self.modifier_help)) or "<cr>"
        params = [p for p, _ in _params(node, walk.pruned)]
        params += [node.repeat] if node.repeat is not None else []
        reasons = [r for p in params if (r := p.type.reason(token.text)) is not None]
        offset = token.start + begun_at(node, token.text, negated=walk.pruned)
        for param in params:
            if param.type.alternatives(token.text):
                message = param.type.reason(token.text) or FailureKind.AMBIGUOUS.value
                return Failure(FailureKind.AMBIGUOUS, index, token.start, message, expected)
        if reasons:
            return Failure(FailureKind.REFUSED, index, offset, reasons[0], expected)
        return Failure(FailureKind.INVALID, index, offset, FailureKind.INVALID.value, expected)

    def match(
        self,
        key: K,
        tokens: Sequence[Token],
        line: str,
        *,
        negated: bool = False,
        lenient: bool = False,
    ) -> Match[P] | Failure:
        """The command ``tokens`` (of ``line``) make in the tree of ``key``.

        ``negated``: the tokens follow a negation the caller took (``no``/``default`` of
        the configuration language): the ``no`` form must end where they do.
        ``lenient``: let parameters read values a validator should judge.
        """
        walk, failure = self.walk(key, tokens, line, negated=negated, lenient=lenient)
        if failure is not None:
            return failure
        if not walk.complete():
            labels = [label for label, _ in walk.entries(self.modifier_help) if label != "<cr>"]
            return Failure(
                FailureKind.INCOMPLETE,
                len(tokens),
                len(line.rstrip()),
                FailureKind.INCOMPLETE.value,
                ", ".join(labels),
                walk.incomplete(),
            )
        modifier = None if walk.modifier is None else _matched(walk.modifier)
        matched = _matched(walk)
        return Match(
            matched.command,
            matched.values,
            matched.words,
            matched.positions,
            matched.negated,
            matched.redirected,
            modifier,
        )

    def trace(self, key: K, tokens: Sequence[Token]) -> tuple[tuple[Param | None, ...], bool]:
        """How far ``tokens`` go in the tree of ``key``: the parameter (``None``: a
        keyword) that read each token accepted, in order, and whether they make a whole
        command (or ``no`` form). A rest-of-line parameter reads every token left."""
        node = self.root(key)
        steps: list[Param | None] = []
        while len(steps) < len(tokens):
            step = advance(node, tokens[len(steps)].text)
            if step is None or isinstance(step, list):
                return tuple(steps), False
            param, _, node = step
            if param is not None and param.type.rest_of_line:
                steps += [param] * (len(tokens) - len(steps))
                break
            steps.append(param)
        return tuple(steps), node.command is not None or node.no_command is not None

    def entries(
        self, key: K, tokens: Sequence[Token], line: str, *, negated: bool = False
    ) -> list[tuple[str, str]] | Failure:
        """What ``?`` lists after the complete words ``tokens``: (label, help) pairs."""
        walk, failure = self.walk(key, tokens, line, negated=negated)
        return failure if failure is not None else walk.entries(self.modifier_help)


def _matched(walk: Walk[T]) -> Match[T]:
    command = walk.node.no_command if walk.negated else walk.node.command
    assert command is not None
    return Match(
        command,
        dict(walk.values),
        frozenset(walk.words),
        dict(walk.positions),
        walk.negated,
        walk.redirected,
    )


def _read(walk: Walk[T], param: Param, token: Token, line: str, lenient: bool) -> None:
    if param.type.rest_of_line:
        value: object | None = line[token.start :].rstrip()
        walk.rest_taken = True
    elif lenient:
        value = param.type.read_lenient(token.text)
    else:
        value = param.type.read(token.text)
    if param.many:
        existing = walk.values.setdefault(param.name, [])
        assert isinstance(existing, list)
        existing.append(value)
    else:
        walk.values[param.name] = value


def leading_keywords(pattern: Sequence[Element]) -> tuple[str, ...]:
    """The keywords a pattern starts with (``ip nhrp holdtime`` of ``ip nhrp holdtime N``)."""
    out: list[str] = []
    for element in pattern:
        if not isinstance(element, str):
            break
        out.append(element)
    return tuple(out)
