"""The shell's EXEC command tree: one declaration drives parsing, TAB, ``?`` and the reference.

A :class:`Spec` is a keyword or a typed argument, with its one-line help, the specs that
may follow it, and, where a command is complete, its handler (``cli.handlers``) and its
``no`` form's handler. Top-level specs say in which :class:`~cli.parsed.Level` they exist
(``host>``, ``host#``, any configuration mode); children inherit. Specs whose command
prints output accept the output modifiers of :data:`PIPE` (``| include REGEX``, ``| json``
...). :data:`EXEC` is the tree compiled into the IOS command engine
(:mod:`frrdmvpn.command_engine.grammar`), one tree per level, which parses the lines.

Configuration-mode lines other than ``do``/``end``/``exit`` are not in this tree: they are
the configuration language (``frrdmvpn.config.commands``), sent to the daemon as typed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from cli import handlers
from cli.parsed import Handler, Level
from frrdmvpn.command_engine.grammar import Grammar, Node, Param
from frrdmvpn.command_engine.params import IntRange, Ipv4, Line, ParamType, Tunnel
from frrdmvpn.config.model import TUNNEL_NUMBER_MAX

T = TypeVar("T")

USER_AND_PRIV = frozenset({Level.USER, Level.PRIV})
PRIV_ONLY = frozenset({Level.PRIV})
CONFIG_ONLY = frozenset({Level.CONFIG})


# --- specs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """A keyword (``word``) or an argument (``arg``, its value stored under ``name``).

    ``handler``: the command is complete here. ``no``: its ``no`` form is complete here.
    ``levels``: where a top-level spec exists (children inherit). ``pipes``: output
    modifiers may follow where the command is complete (inherited). ``negate``: the spec is
    ``no``: the rest of the line is a command of the same level in its ``no`` form.
    ``redirect``: the rest of the line is a privileged EXEC command (``do``).
    ``incomplete``: what to print instead of ``% Incomplete command.`` when the line stops
    here (``show``). ``modifier``: an output modifier is complete here (under ``|``).
    """

    word: str | None
    help: str
    arg: ParamType | None = None
    name: str = ""
    children: tuple[Spec, ...] = field(default=(), repr=False)
    handler: Handler | None = None
    no: Handler | None = None
    levels: frozenset[Level] | None = None
    pipes: bool | None = None
    negate: bool = False
    redirect: bool = False
    incomplete: str | None = None
    modifier: str | None = None

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


def kw(
    word: str,
    help: str,
    *children: Spec,
    handler: Handler | None = None,
    no: Handler | None = None,
    levels: frozenset[Level] | None = None,
    pipes: bool | None = None,
    negate: bool = False,
    redirect: bool = False,
    incomplete: str | None = None,
    modifier: str | None = None,
) -> Spec:
    """A keyword spec."""
    return Spec(
        word,
        help,
        None,
        word,
        children,
        handler,
        no,
        levels,
        pipes,
        negate,
        redirect,
        incomplete,
        modifier,
    )


def arg(
    kind: ParamType,
    name: str,
    help: str,
    *children: Spec,
    handler: Handler | None = None,
    no: Handler | None = None,
    modifier: str | None = None,
) -> Spec:
    """An argument spec; the parsed value is stored under ``name``."""
    return Spec(None, help, kind, name, children, handler, no, modifier=modifier)


# --- output modifiers (after ``|``) -------------------------------------------------------

REGEX = Line()


def _filter(word: str, help: str) -> Spec:
    return kw(word, help, arg(REGEX, "regex", "Regular Expression", modifier=word))


PIPE = kw(
    "|",
    "Output modifiers",
    _filter("begin", "Begin with the line that matches"),
    _filter("count", "Count number of lines which match regexp"),
    _filter("exclude", "Exclude lines that match"),
    _filter("include", "Include lines that match"),
    kw("json", "Structured output (JSON of the API's messages)", modifier="json"),
    _filter("section", "Filter a section of output"),
)
"""The output modifiers: each is complete under its name (``cli.pipes``)."""


# --- the tree -----------------------------------------------------------------------------

_ADDR = Ipv4()
_PAGE = IntRange(0, 512)
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
            kw("sa", "Shows ikev2 SAs", handler=handlers.show_crypto_ikev2_sa),
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
                        handler=handlers.show_crypto_ipsec_sa,
                    ),
                ),
                handler=handlers.show_crypto_ipsec_sa,
            ),
        ),
        kw(
            "session",
            "Show crypto sessions currently established",
            kw("detail", "Show detail information", handler=handlers.show_crypto_session),
            kw(
                "remote",
                "Show crypto session with a remote peer",
                arg(
                    _ADDR,
                    "remote",
                    "IPv4 address of the remote peer (NBMA)",
                    kw("detail", "Show detail information", handler=handlers.show_crypto_session),
                    handler=handlers.show_crypto_session,
                ),
            ),
            handler=handlers.show_crypto_session,
        ),
    ),
    kw("debugging", "State of each debugging option", handler=handlers.show_debugging),
    kw(
        "dmvpn",
        "DMVPN information",
        kw("detail", "Show detail information", handler=handlers.show_dmvpn),
        handler=handlers.show_dmvpn,
    ),
    kw(
        "frrdmvpn",
        "frrdmvpn sidecar information",
        kw(
            "authorization",
            "Binding authorization: policy, counters and recent decisions",
            handler=handlers.show_frrdmvpn_authorization,
        ),
        kw(
            "guard",
            "Cleartext GRE guards: drops and last offenders",
            handler=handlers.show_frrdmvpn_guard,
        ),
    ),
    kw("history", "Display the session command history", handler=handlers.show_history),
    kw(
        "ip",
        "IP information",
        kw(
            "nhrp",
            "NHRP information",
            kw("brief", "Brief display of NHRP cache entries", handler=handlers.show_ip_nhrp_brief),
            kw("detail", "Detailed display of NHRP cache entries", handler=handlers.show_ip_nhrp),
            kw(
                "nhs",
                "Next Hop Server information",
                kw("detail", "Detailed NHS information", handler=handlers.show_ip_nhrp_nhs),
                handler=handlers.show_ip_nhrp_nhs,
            ),
            kw("traffic", "NHRP traffic statistics", handler=handlers.show_ip_nhrp_traffic),
            handler=handlers.show_ip_nhrp,
        ),
        kw(
            "ospf",
            "OSPF information",
            kw("neighbor", "Neighbor list", handler=handlers.show_ip_ospf_neighbor),
        ),
    ),
    kw(
        "running-config",
        "Current operating configuration",
        kw(
            "interface",
            "Show interface configuration",
            arg(
                Tunnel(TUNNEL_NUMBER_MAX),
                "interface",
                "Tunnel interface",
                handler=handlers.show_running_config,
            ),
        ),
        kw(
            "section",
            "Show the configuration sections that match",
            arg(REGEX, "section", "Regular Expression", handler=handlers.show_running_config),
        ),
        kw(
            "unmasked",
            "Show the secrets in clear (administrators)",
            handler=handlers.show_running_config,
        ),
        handler=handlers.show_running_config,
        levels=PRIV_ONLY,
    ),
    kw(
        "startup-config",
        "Contents of startup configuration",
        kw(
            "unmasked",
            "Show the secrets in clear (administrators)",
            handler=handlers.show_startup_config,
        ),
        handler=handlers.show_startup_config,
        levels=PRIV_ONLY,
    ),
    kw("terminal", "Display terminal configuration parameters", handler=handlers.show_terminal),
    kw("version", "System hardware and software status", handler=handlers.show_version),
    levels=USER_AND_PRIV,
    pipes=True,
    incomplete=_SHOW_INCOMPLETE,
)

_DEBUG_TARGETS = (
    kw("all", "All debugging categories", handler=handlers.debug_all, no=handlers.undebug_all),
    kw(
        "dmvpn",
        "DMVPN: peer and crypto session state changes, live",
        handler=handlers.debug_dmvpn,
        no=handlers.undebug_dmvpn,
    ),
    kw(
        "nhrp",
        "NHRP: cache entries and NHS registrations, live",
        handler=handlers.debug_nhrp,
        no=handlers.undebug_nhrp,
    ),
)

EXEC_COMMANDS: tuple[Spec, ...] = (
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
                        handler=handlers.clear_crypto_session,
                    ),
                ),
                handler=handlers.clear_crypto_session,
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
                            handler=handlers.clear_dmvpn_session,
                        ),
                        handler=handlers.clear_dmvpn_session,
                    ),
                ),
                kw(
                    "static", "Also clear static NHRP entries", handler=handlers.clear_dmvpn_session
                ),
                handler=handlers.clear_dmvpn_session,
            ),
        ),
        kw(
            "frrdmvpn",
            "Clear frrdmvpn",
            kw(
                "counters",
                "Reset peer, guard and authorization counters",
                handler=handlers.clear_frrdmvpn_counters,
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
                    handler=handlers.clear_ip_nhrp,
                ),
                handler=handlers.clear_ip_nhrp,
            ),
        ),
        levels=PRIV_ONLY,
    ),
    kw(
        "configure",
        "Enter configuration mode",
        kw("terminal", "Configure from the terminal", handler=handlers.configure),
        handler=handlers.configure,
        levels=PRIV_ONLY,
    ),
    kw(
        "copy",
        "Copy from one file to another",
        kw(
            "running-config",
            "Copy from current system configuration",
            kw("startup-config", "Copy to startup configuration", handler=handlers.write_memory),
        ),
        levels=PRIV_ONLY,
    ),
    kw("debug", "Debugging functions (see also 'undebug')", *_DEBUG_TARGETS, levels=PRIV_ONLY),
    kw("disable", "Turn off privileged commands", handler=handlers.disable, levels=PRIV_ONLY),
    kw("enable", "Turn on privileged commands", handler=handlers.enable, levels=USER_AND_PRIV),
    kw("exit", "Exit from the EXEC", handler=handlers.exit_, levels=USER_AND_PRIV),
    kw("logout", "Exit from the EXEC", handler=handlers.exit_, levels=USER_AND_PRIV),
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
                handler=handlers.terminal_length,
            ),
        ),
        kw(
            "monitor",
            "Copy debug output to the current terminal line",
            handler=handlers.terminal_monitor,
        ),
        kw(
            "width",
            "Set width of the display terminal",
            arg(
                _PAGE,
                "columns",
                "Number of characters on a screen line",
                handler=handlers.terminal_width,
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
        kw("memory", "Write to NV memory", handler=handlers.write_memory),
        kw("terminal", "Write to terminal", handler=handlers.show_running_config, pipes=True),
        handler=handlers.write_memory,
        levels=PRIV_ONLY,
    ),
)

CONFIG_COMMANDS: tuple[Spec, ...] = (
    kw("do", "To run exec commands in config mode", redirect=True, levels=CONFIG_ONLY),
    kw("end", "Exit from configure mode", handler=handlers.end, levels=CONFIG_ONLY),
    kw("exit", "Exit from the current mode", handler=handlers.config_exit, levels=CONFIG_ONLY),
)
"""The shell's own commands in every configuration mode (the rest is the language's)."""

ROOT = kw("", "", *EXEC_COMMANDS, *CONFIG_COMMANDS)
"""The whole tree."""


def top_level(level: Level) -> tuple[Spec, ...]:
    """The top-level commands that exist at ``level``, sorted like IOS lists them."""
    return tuple(
        sorted((n for n in ROOT.children if n.levels and level in n.levels), key=_sort_key)
    )


def _sort_key(spec: Spec) -> tuple[int, str]:
    return (0 if spec.is_keyword else 1, spec.label)


def children(spec: Spec, *, level: Level | None = None) -> tuple[Spec, ...]:
    """What may follow ``spec`` (keywords sorted, then arguments) at ``level`` (any level
    when ``None``)."""
    out = sorted(spec.children, key=_sort_key)
    if level is not None:
        out = [c for c in out if c.levels is None or level in c.levels]
    return tuple(out)


@dataclass(frozen=True)
class Path:
    """A complete command: the specs from the top, and whether it is the ``no`` form."""

    specs: tuple[Spec, ...]
    negated: bool
    levels: frozenset[Level]

    @property
    def handler(self) -> Handler:
        last = self.specs[-1]
        run = last.no if self.negated else last.handler
        assert run is not None
        return run

    @property
    def syntax(self) -> str:
        words = [n.label for n in self.specs]
        return " ".join(["no", *words] if self.negated else words)

    @property
    def help(self) -> str:
        """The help of the command's first spec that already runs this handler, with the
        last spec's when it adds to it (``Show crypto sessions ...: Show detail ...``)."""
        last = self.specs[-1]
        run = last.no if self.negated else last.handler
        base = next(n for n in self.specs if (n.no if self.negated else n.handler) == run)
        text = base.help if base is last else f"{base.help}: {last.help}"
        return f"Turn off: {text}" if self.negated else text

    @property
    def pipes(self) -> bool:
        return any(n.pipes for n in self.specs)


def commands() -> Iterator[Path]:
    """Every complete command of the tree (and ``no`` form), depth first."""
    for top in sorted(ROOT.children, key=_sort_key):
        yield from _paths((top,), top.levels or frozenset())


def _paths(specs: tuple[Spec, ...], levels: frozenset[Level]) -> Iterator[Path]:
    last = specs[-1]
    if last.levels is not None:
        levels = levels & last.levels
    if last.handler is not None:
        yield Path(specs, False, levels)
    if last.no is not None:
        yield Path(specs, True, levels)
    for child in children(last):
        yield from _paths((*specs, child), levels)


# --- the tree in the command engine --------------------------------------------------------


def _compile() -> Grammar[Level, Handler]:
    modifiers: Node[str] = Node()
    for spec in PIPE.children:
        _insert_modifier(modifiers, spec)
    grammar: Grammar[Level, Handler] = Grammar(modifiers, PIPE.help)
    for level in Level:
        root = grammar.root(level)
        for spec in top_level(level):
            _insert(grammar, root, spec, level, pipes=False)
    return grammar


def _insert(
    grammar: Grammar[Level, Handler],
    parent: Node[Handler],
    spec: Spec,
    level: Level,
    *,
    pipes: bool,
) -> None:
    node = _place(parent, spec)
    pipes = pipes or bool(spec.pipes)
    node.command, node.no_command = spec.handler, spec.no
    node.negates, node.incomplete = spec.negate, spec.incomplete
    node.modifiers = pipes and spec.handler is not None
    node.redirect = grammar.root(Level.PRIV) if spec.redirect else None
    for child in children(spec, level=level):
        _insert(grammar, node, child, level, pipes=pipes)


def _insert_modifier(parent: Node[str], spec: Spec) -> None:
    node = _place(parent, spec)
    node.command = spec.modifier
    for child in spec.children:
        _insert_modifier(node, child)


def _place(parent: Node[T], spec: Spec) -> Node[T]:
    if spec.word is not None:
        return parent.keyword(spec.word, spec.help)
    assert spec.arg is not None
    return parent.param(Param(spec.name, spec.arg, help=spec.help))


EXEC = _compile()
"""The EXEC tree of every level, compiled into the command engine."""
