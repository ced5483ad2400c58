"""The shell's command tree: one declaration drives parsing, TAB, ``?`` and the reference.

A :class:`Node` is a keyword or a typed argument, with its one-line help, the child nodes
that may follow it, and, where a command is complete, the name of its handler
(``cli.handlers``) and of its ``no`` form's handler. Top-level nodes say in which
:class:`Level` they exist (``host>``, ``host#``, any configuration mode); children inherit.
Nodes whose command prints output accept the output modifiers of :data:`PIPE` (``| include
REGEX``, ``| json`` ...).

Configuration-mode lines other than ``do``/``end``/``exit`` are not in this tree: they are
the configuration language (``frrdmvpn.config.commands``), sent to the daemon as typed.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

# --- levels -------------------------------------------------------------------------------


class Level(enum.Enum):
    """Where a command can be typed: user EXEC (``>``), privileged EXEC (``#``), or any
    configuration mode (``(config...)#``)."""

    USER = "user"
    PRIV = "privileged"
    CONFIG = "config"


USER_AND_PRIV = frozenset({Level.USER, Level.PRIV})
PRIV_ONLY = frozenset({Level.PRIV})
CONFIG_ONLY = frozenset({Level.CONFIG})


# --- argument types -----------------------------------------------------------------------


class ArgType:
    """How an argument token is recognised. ``rank`` orders the alternatives at one node
    like IOS: typed values (1) before keywords matched by abbreviation, any word (2) last."""

    label = "WORD"
    rank = 2
    rest_of_line = False

    def accepts(self, token: str) -> bool:
        return bool(token)

    def value(self, token: str) -> object:
        return token

    def partial(self, text: str) -> bool:
        """Whether ``text`` can begin a value (for the caret and for ``?`` inside a word)."""
        return True


class WordArg(ArgType):
    """Any word."""

    def __init__(self, label: str = "WORD") -> None:
        self.label = label


class LineArg(ArgType):
    """The rest of the line, spacing kept (a regular expression, a description)."""

    label = "LINE"
    rest_of_line = True


class RangeArg(ArgType):
    """A decimal number within ``lo``..``hi``."""

    rank = 1

    def __init__(self, lo: int, hi: int) -> None:
        self.lo, self.hi = lo, hi
        self.label = f"<{lo}-{hi}>"

    def accepts(self, token: str) -> bool:
        return token.isdigit() and len(token) <= 10 and self.lo <= int(token) <= self.hi

    def value(self, token: str) -> object:
        return int(token)

    def partial(self, text: str) -> bool:
        return text == "" or (text.isdigit() and len(text) <= 10 and int(text) <= self.hi)


_IPV4_PARTIAL = re.compile(r"\d{0,3}(\.\d{0,3}){0,3}")


class Ipv4Arg(ArgType):
    """A dotted-quad IPv4 address."""

    label = "A.B.C.D"
    rank = 1

    def accepts(self, token: str) -> bool:
        parts = token.split(".")
        return len(parts) == 4 and all(p.isdigit() and len(p) <= 3 and int(p) <= 255 for p in parts)

    def partial(self, text: str) -> bool:
        if not _IPV4_PARTIAL.fullmatch(text) or ".." in text or text.startswith("."):
            return text == ""
        return all(int(p) <= 255 for p in text.split(".") if p)


_TUNNEL = re.compile(r"(?i)tu(?:n(?:n(?:e(?:l)?)?)?)?(\d{1,10})")


class TunnelArg(ArgType):
    """An mGRE tunnel interface: ``Tunnel0`` (also ``tunnel0``, ``Tu0``)."""

    label = "TunnelN"
    rank = 1

    def accepts(self, token: str) -> bool:
        return _TUNNEL.fullmatch(token) is not None

    def value(self, token: str) -> object:
        m = _TUNNEL.fullmatch(token)
        assert m is not None
        return f"Tunnel{int(m.group(1))}"

    def partial(self, text: str) -> bool:
        head = text.rstrip("0123456789")
        digits = text[len(head) :]
        if not head:
            return not digits
        return "tunnel".startswith(head.lower()) and (not digits or len(head) >= 2)


# --- nodes --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    """A keyword (``word``) or an argument (``arg``, its value stored under ``name``).

    ``handler``: the command is complete here. ``no``: its ``no`` form is complete here.
    ``levels``: where a top-level node exists (children inherit). ``pipes``: output
    modifiers may follow where the command is complete (inherited). ``negate``: the node is
    ``no``: the rest of the line is a command of the same level in its ``no`` form.
    ``redirect``: the rest of the line is a privileged EXEC command (``do``).
    ``incomplete``: what to print instead of ``% Incomplete command.`` when the line stops
    here (``show``).
    """

    word: str | None
    help: str
    arg: ArgType | None = None
    name: str = ""
    children: tuple[Node, ...] = field(default=(), repr=False)
    handler: str | None = None
    no: str | None = None
    levels: frozenset[Level] | None = None
    pipes: bool | None = None
    negate: bool = False
    redirect: bool = False
    incomplete: str | None = None
    key: str = field(default="", compare=False)

    @property
    def label(self) -> str:
        """The keyword, or the argument's label (``A.B.C.D``)."""
        if self.word is not None:
            return self.word
        assert self.arg is not None
        return self.arg.label

    @property
    def is_keyword(self) -> bool:
        return self.word is not None

    def has_no_form(self) -> bool:
        """Whether a ``no`` form ends here or below."""
        return self.no is not None or any(c.has_no_form() for c in self.children)


def kw(
    word: str,
    help: str,
    *children: Node,
    handler: str | None = None,
    no: str | None = None,
    levels: frozenset[Level] | None = None,
    pipes: bool | None = None,
    negate: bool = False,
    redirect: bool = False,
    incomplete: str | None = None,
) -> Node:
    """A keyword node."""
    return Node(
        word, help, None, word, children, handler, no, levels, pipes, negate, redirect, incomplete
    )


def arg(
    kind: ArgType,
    name: str,
    help: str,
    *children: Node,
    handler: str | None = None,
    no: str | None = None,
) -> Node:
    """An argument node; the parsed value is stored under ``name``."""
    return Node(None, help, kind, name, children, handler, no)


# --- output modifiers (after ``|``) -------------------------------------------------------

REGEX = LineArg()

PIPE = kw(
    "|",
    "Output modifiers",
    kw(
        "begin",
        "Begin with the line that matches",
        arg(REGEX, "regex", "Regular Expression", handler="begin"),
    ),
    kw(
        "count",
        "Count number of lines which match regexp",
        arg(REGEX, "regex", "Regular Expression", handler="count"),
    ),
    kw(
        "exclude",
        "Exclude lines that match",
        arg(REGEX, "regex", "Regular Expression", handler="exclude"),
    ),
    kw(
        "include",
        "Include lines that match",
        arg(REGEX, "regex", "Regular Expression", handler="include"),
    ),
    kw("json", "Structured output (JSON of the API's messages)", handler="json"),
    kw(
        "section",
        "Filter a section of output",
        arg(REGEX, "regex", "Regular Expression", handler="section"),
    ),
)
"""The output modifiers: their handler names are the modifier (``cli.pipes``)."""


# --- the tree -----------------------------------------------------------------------------

_ADDR = Ipv4Arg()
_PAGE = RangeArg(0, 512)
_SHOW_INCOMPLETE = '% Type "show ?" for a list of subcommands'

_SHOW = kw(
    "show",
    "Show running system information",
    kw(
        "crypto",
        "Encryption module",
        kw(
            "ikev2",
            "Shows ikev2 information",
            kw("sa", "Shows ikev2 SAs", handler="show_crypto_ikev2_sa"),
        ),
        kw(
            "ipsec",
            "Show IPSEC info",
            kw(
                "sa",
                "IPSEC SA table",
                kw(
                    "peer",
                    "Show IPSEC SA for a given peer",
                    arg(
                        _ADDR,
                        "peer",
                        "IPv4 address of the peer (NBMA)",
                        handler="show_crypto_ipsec_sa",
                    ),
                ),
                handler="show_crypto_ipsec_sa",
            ),
        ),
        kw(
            "session",
            "Show crypto sessions currently established",
            kw("detail", "Show detail information", handler="show_crypto_session"),
            kw(
                "remote",
                "Show crypto session with a remote peer",
                arg(
                    _ADDR,
                    "remote",
                    "IPv4 address of the remote peer (NBMA)",
                    kw("detail", "Show detail information", handler="show_crypto_session"),
                    handler="show_crypto_session",
                ),
            ),
            handler="show_crypto_session",
        ),
    ),
    kw("debugging", "State of each debugging option", handler="show_debugging"),
    kw(
        "dmvpn",
        "DMVPN information",
        kw("detail", "Show detail information", handler="show_dmvpn"),
        handler="show_dmvpn",
    ),
    kw(
        "frrdmvpn",
        "frrdmvpn sidecar information",
        kw(
            "authorization",
            "Binding authorization: policy, counters and recent decisions",
            handler="show_frrdmvpn_authorization",
        ),
        kw(
            "guard", "Cleartext GRE guards: drops and last offenders", handler="show_frrdmvpn_guard"
        ),
    ),
    kw("history", "Display the session command history", handler="show_history"),
    kw(
        "ip",
        "IP information",
        kw(
            "nhrp",
            "NHRP information",
            kw("brief", "Brief display of NHRP cache entries", handler="show_ip_nhrp_brief"),
            kw("detail", "Detailed display of NHRP cache entries", handler="show_ip_nhrp"),
            kw(
                "nhs",
                "Next Hop Server information",
                kw("detail", "Detailed NHS information", handler="show_ip_nhrp_nhs"),
                handler="show_ip_nhrp_nhs",
            ),
            kw("traffic", "NHRP traffic statistics", handler="show_ip_nhrp_traffic"),
            handler="show_ip_nhrp",
        ),
        kw(
            "ospf",
            "OSPF information",
            kw("neighbor", "Neighbor list", handler="show_ip_ospf_neighbor"),
        ),
    ),
    kw(
        "running-config",
        "Current operating configuration",
        kw(
            "interface",
            "Show interface configuration",
            arg(TunnelArg(), "interface", "Tunnel interface", handler="show_running_config"),
        ),
        kw(
            "section",
            "Show the configuration sections that match",
            arg(REGEX, "section", "Regular Expression", handler="show_running_config"),
        ),
        kw("unmasked", "Show the secrets in clear (administrators)", handler="show_running_config"),
        handler="show_running_config",
        levels=PRIV_ONLY,
    ),
    kw(
        "startup-config",
        "Contents of startup configuration",
        kw("unmasked", "Show the secrets in clear (administrators)", handler="show_startup_config"),
        handler="show_startup_config",
        levels=PRIV_ONLY,
    ),
    kw("terminal", "Display terminal configuration parameters", handler="show_terminal"),
    kw("version", "System hardware and software status", handler="show_version"),
    levels=USER_AND_PRIV,
    pipes=True,
    incomplete=_SHOW_INCOMPLETE,
)

_DEBUG_TARGETS = (
    kw("all", "All debugging categories", handler="debug_all", no="undebug_all"),
    kw(
        "dmvpn",
        "DMVPN: peer and crypto session state changes, live",
        handler="debug_dmvpn",
        no="undebug_dmvpn",
    ),
    kw(
        "nhrp",
        "NHRP: cache entries and NHS registrations, live",
        handler="debug_nhrp",
        no="undebug_nhrp",
    ),
)

EXEC_COMMANDS: tuple[Node, ...] = (
    kw(
        "clear",
        "Reset functions",
        kw(
            "crypto",
            "Clear crypto",
            kw(
                "session",
                "Clear crypto sessions (tunnels)",
                kw(
                    "remote",
                    "Remote peer",
                    arg(
                        _ADDR,
                        "remote",
                        "IPv4 address of the remote peer (NBMA)",
                        handler="clear_crypto_session",
                    ),
                ),
                handler="clear_crypto_session",
            ),
        ),
        kw(
            "dmvpn",
            "Clear DMVPN",
            kw(
                "session",
                "Clear DMVPN sessions (NHRP and crypto)",
                kw(
                    "peer",
                    "Clear the sessions of one peer",
                    arg(
                        _ADDR,
                        "peer",
                        "NBMA or tunnel address of the peer",
                        kw(
                            "static",
                            "Also clear static NHRP entries",
                            handler="clear_dmvpn_session",
                        ),
                        handler="clear_dmvpn_session",
                    ),
                ),
                kw("static", "Also clear static NHRP entries", handler="clear_dmvpn_session"),
                handler="clear_dmvpn_session",
            ),
        ),
        kw(
            "frrdmvpn",
            "Clear frrdmvpn",
            kw(
                "counters",
                "Reset peer, guard and authorization counters",
                handler="clear_frrdmvpn_counters",
            ),
        ),
        kw(
            "ip",
            "IP",
            kw(
                "nhrp",
                "Clear dynamic NHRP cache entries",
                arg(
                    _ADDR,
                    "address",
                    "Tunnel (protocol) address of the entries to clear",
                    handler="clear_ip_nhrp",
                ),
                handler="clear_ip_nhrp",
            ),
        ),
        levels=PRIV_ONLY,
    ),
    kw(
        "configure",
        "Enter configuration mode",
        kw("terminal", "Configure from the terminal", handler="configure"),
        handler="configure",
        levels=PRIV_ONLY,
    ),
    kw(
        "copy",
        "Copy from one file to another",
        kw(
            "running-config",
            "Copy from current system configuration",
            kw("startup-config", "Copy to startup configuration", handler="write_memory"),
        ),
        levels=PRIV_ONLY,
    ),
    kw("debug", "Debugging functions (see also 'undebug')", *_DEBUG_TARGETS, levels=PRIV_ONLY),
    kw("disable", "Turn off privileged commands", handler="disable", levels=PRIV_ONLY),
    kw("enable", "Turn on privileged commands", handler="enable", levels=USER_AND_PRIV),
    kw("exit", "Exit from the EXEC", handler="exit", levels=USER_AND_PRIV),
    kw("logout", "Exit from the EXEC", handler="exit", levels=USER_AND_PRIV),
    kw("no", "Disable debugging functions", negate=True, levels=PRIV_ONLY),
    _SHOW,
    kw(
        "terminal",
        "Set terminal line parameters",
        kw(
            "length",
            "Set number of lines on a screen",
            arg(
                _PAGE,
                "lines",
                "Number of lines on screen (0 for no pausing)",
                handler="terminal_length",
            ),
        ),
        kw("monitor", "Copy debug output to the current terminal line", handler="terminal_monitor"),
        kw(
            "width",
            "Set width of the display terminal",
            arg(
                _PAGE, "columns", "Number of characters on a screen line", handler="terminal_width"
            ),
        ),
        levels=USER_AND_PRIV,
    ),
    kw(
        "undebug",
        "Disable debugging functions (see also 'debug')",
        *[kw(n.label, n.help.replace("Enable", "Disable"), handler=n.no) for n in _DEBUG_TARGETS],
        levels=PRIV_ONLY,
    ),
    kw(
        "write",
        "Write running configuration to memory or terminal",
        kw("memory", "Write to NV memory", handler="write_memory"),
        kw("terminal", "Write to terminal", handler="show_running_config", pipes=True),
        handler="write_memory",
        levels=PRIV_ONLY,
    ),
)

CONFIG_COMMANDS: tuple[Node, ...] = (
    kw("do", "To run exec commands in config mode", redirect=True, levels=CONFIG_ONLY),
    kw("end", "Exit from configure mode", handler="end", levels=CONFIG_ONLY),
    kw("exit", "Exit from the current mode", handler="config_exit", levels=CONFIG_ONLY),
)
"""The shell's own commands in every configuration mode (the rest is the language's)."""

ROOT = kw("", "", *EXEC_COMMANDS, *CONFIG_COMMANDS)
"""The whole tree."""


def top_level(level: Level) -> tuple[Node, ...]:
    """The top-level commands that exist at ``level``, sorted like IOS lists them."""
    return tuple(
        sorted((n for n in ROOT.children if n.levels and level in n.levels), key=_sort_key)
    )


def _sort_key(node: Node) -> tuple[int, str]:
    return (0 if node.is_keyword else 1, node.label)


def children(node: Node, *, negated: bool = False, level: Level | None = None) -> tuple[Node, ...]:
    """What may follow ``node`` (keywords sorted, then arguments) at ``level`` (any level
    when ``None``); in a ``no`` form only what leads to one."""
    out = sorted(node.children, key=_sort_key)
    if level is not None:
        out = [c for c in out if c.levels is None or level in c.levels]
    if negated:
        out = [c for c in out if c.has_no_form()]
    return tuple(out)


@dataclass(frozen=True)
class Path:
    """A complete command: the nodes from the top, and whether it is the ``no`` form."""

    nodes: tuple[Node, ...]
    negated: bool
    levels: frozenset[Level]

    @property
    def handler(self) -> str:
        last = self.nodes[-1]
        name = last.no if self.negated else last.handler
        assert name is not None
        return name

    @property
    def syntax(self) -> str:
        words = [n.label for n in self.nodes]
        return " ".join(["no", *words] if self.negated else words)

    @property
    def help(self) -> str:
        """The help of the command's first node that already runs this handler, with the
        last node's when it adds to it (``Show crypto sessions ...: Show detail ...``)."""
        last = self.nodes[-1]
        name = last.no if self.negated else last.handler
        base = next(n for n in self.nodes if (n.no if self.negated else n.handler) == name)
        text = base.help if base is last else f"{base.help}: {last.help}"
        return f"Turn off: {text}" if self.negated else text

    @property
    def pipes(self) -> bool:
        return any(n.pipes for n in self.nodes)


def commands() -> Iterator[Path]:
    """Every complete command of the tree (and ``no`` form), depth first."""
    for top in sorted(ROOT.children, key=_sort_key):
        yield from _paths((top,), top.levels or frozenset())


def _paths(nodes: tuple[Node, ...], levels: frozenset[Level]) -> Iterator[Path]:
    last = nodes[-1]
    if last.levels is not None:
        levels = levels & last.levels
    if last.handler is not None:
        yield Path(nodes, False, levels)
    if last.no is not None:
        yield Path(nodes, True, levels)
    for child in children(last):
        yield from _paths((*nodes, child), levels)


def handler_names() -> set[str]:
    """Every handler the tree names (the modifiers of :data:`PIPE` excluded)."""
    return {p.handler for p in commands()}
