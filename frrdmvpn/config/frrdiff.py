"""The vtysh commands that turn a running FRR configuration into a desired one. Pure.

Both configurations are hierarchical text as ``show running-config`` prints it (blocks by
indentation; ``!``, ``exit``, ``end`` and blank lines are layout). The result of
:func:`diff` is ``[]`` when nothing differs, else ``configure terminal``, the commands
and ``end``:

* a *single-valued* statement (``ip nhrp holdtime``, ``tunnel source`` ...) that changed
  is set to its new value (no ``no`` first); one that disappeared gets its ``no`` form;
* *ordered* lists (``ip nhrp nhs``, ``ip nhrp map multicast``: nhrpd keeps and prints
  them in insertion order, appending new ones) keep the longest common leading part; the
  rest is removed and re-added in the desired order;
* any other statement is a set member: removed ones get ``no``, new ones are added;
* removals come first at each level (so ``network X area 0`` -> ``area 1`` works), then
  additions and changes in the desired order; a block is entered with its header and
  left with ``exit``; a vanished block is removed with ``no HEADER``, except interfaces
  (FRR refuses to delete an existing interface), whose statements are removed one by one;
* lines frrdmvpn does not manage (``frr version``, ``log``, ``debug``, ``service``, a
  ``hostname`` the desired text does not set ...) are left alone, and so are empty blocks
  (nhrpd prints ``interface X`` for every interface).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

LAYOUT = ("!", "exit", "exit-vrf", "exit-address-family", "end")


@dataclass(frozen=True)
class DiffRules:
    """What the diff knows of the daemons' grammar. :data:`FRR84` is nhrpd/ospfd on 8.4,
    with the statements frrdmvpn renders for later releases (``ip nhrp authentication``,
    FRR 10.2: single-valued, its ``no`` form takes the value)."""

    #: Top-level statements never touched.
    ignored: tuple[str, ...] = ()
    #: Top-level statements managed only when the desired config has one.
    optional: tuple[str, ...] = ()
    #: Families with one value per block: the new value replaces the old.
    single: tuple[str, ...] = ()
    #: Families kept in insertion order by the daemon.
    ordered: tuple[str, ...] = ()
    #: ``(family, no-command)`` where ``no LINE`` is not accepted with the arguments.
    no_forms: tuple[tuple[str, str], ...] = ()
    #: Block headers that cannot be removed with ``no``: clear their statements instead.
    kept_blocks: tuple[str, ...] = ()
    #: Statements that open a block even when nothing is inside.
    blocks: tuple[str, ...] = ()


FRR84 = DiffRules(
    ignored=(
        "frr version",
        "frr defaults",
        "log",
        "debug",
        "service",
        "line vty",
        "agentx",
        "password",
        "enable password",
        "Building configuration",
        "Current configuration",
    ),
    optional=("hostname",),
    single=(
        "hostname",
        "nhrp event socket",
        "nhrp nflog-group",
        "nhrp multicast-nflog-group",
        "description",
        "tunnel protection",
        "tunnel source",
        "ip nhrp network-id",
        "ip nhrp holdtime",
        "ip nhrp mtu",
        "ip nhrp authentication",
        "ip ospf network",
        "ip ospf hello-interval",
        "ip ospf dead-interval",
        "ip ospf priority",
        "ip ospf cost",
        "ospf router-id",
        "timers throttle spf",
        "timers throttle lsa all",
        "timers lsa min-arrival",
    ),
    ordered=("ip nhrp nhs", "ip nhrp map multicast"),
    no_forms=(
        ("tunnel protection", "no tunnel protection"),
        ("tunnel source", "no tunnel source"),
        ("ip ospf network", "no ip ospf network"),
        ("ip ospf dead-interval", "no ip ospf dead-interval"),
        ("description", "no description"),
    ),
    kept_blocks=("interface",),
    blocks=("interface", "router", "vrf", "address-family", "route-map", "key chain", "line"),
)


@dataclass
class Node:
    """One statement and the statements of its block."""

    line: str
    children: list[Node] = field(default_factory=list)


def parse_tree(text: str) -> list[Node]:
    """The statement tree of a configuration text."""
    roots: list[Node] = []
    stack: list[tuple[int, Node]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("!") or line in LAYOUT:
            continue
        indent = len(raw) - len(raw.lstrip())
        while stack and stack[-1][0] >= indent:
            stack.pop()
        node = Node(" ".join(line.split()))
        (stack[-1][1].children if stack else roots).append(node)
        stack.append((indent, node))
    return roots


def _in(line: str, family: str) -> bool:
    return line == family or line.startswith(family + " ")


def _family(line: str, families: Sequence[str]) -> str | None:
    return next((f for f in families if _in(line, f)), None)


def _ignored(line: str, rules: DiffRules) -> bool:
    # Word boundary: "log" covers "log file ...", "Current configuration" "... :".
    for prefix in rules.ignored:
        rest = line[len(prefix) :] if line.startswith(prefix) else None
        if rest is not None and (not rest or not (rest[0].isalnum() or rest[0] == "-")):
            return True
    return False


def no_form(line: str, rules: DiffRules = FRR84) -> str:
    """The command that removes ``line``."""
    if line.startswith("no "):
        return line[3:]
    for family, command in rules.no_forms:
        if _in(line, family):
            return command
    return f"no {line}"


def _managed(nodes: list[Node], desired: list[Node], rules: DiffRules) -> list[Node]:
    """Top-level statements frrdmvpn manages (unmanaged ones are neither kept nor removed)."""
    wanted = {f for d in desired if (f := _family(d.line, rules.optional))}
    return [
        n
        for n in nodes
        if not _ignored(n.line, rules)
        and (_family(n.line, rules.optional) is None or _family(n.line, rules.optional) in wanted)
    ]


def _level(running: list[Node], desired: list[Node], rules: DiffRules, top: bool) -> list[str]:
    if top:
        running, desired = _managed(running, desired, rules), _managed(desired, desired, rules)

    def is_block(node: Node) -> bool:
        return bool(node.children) or _family(node.line, rules.blocks) is not None

    run_leaves = [n.line for n in running if not is_block(n)]
    want_leaves = [n.line for n in desired if not is_block(n)]
    run_blocks = {n.line: n for n in running if is_block(n)}
    want_blocks = {n.line: n for n in desired if is_block(n)}

    removals, additions = _leaf_changes(run_leaves, want_leaves, rules)
    out = [no_form(line, rules) for line in removals]
    for header, node in run_blocks.items():
        if header in want_blocks:
            continue
        if _family(header, rules.kept_blocks):
            inner = _level(node.children, [], rules, top=False)
            if inner:
                out += [header, *inner, "exit"]
        else:
            out.append(no_form(header, rules))
    for node in desired:
        if not is_block(node):
            if node.line in additions:
                out.append(node.line)
            continue
        before = run_blocks.get(node.line)
        inner = _level([] if before is None else before.children, node.children, rules, False)
        kept = _family(node.line, rules.kept_blocks) is not None
        if inner or (before is None and not kept):
            out += [node.line, *inner, "exit"]
    return out


def _leaf_changes(
    running: list[str], desired: list[str], rules: DiffRules
) -> tuple[list[str], set[str]]:
    """(running lines to remove, desired lines to send)."""
    removals: list[str] = []
    additions: set[str] = set()
    run_single = {f: line for line in running if (f := _family(line, rules.single))}
    want_single = {f: line for line in desired if (f := _family(line, rules.single))}
    for family, line in run_single.items():
        if family not in want_single:
            removals.append(line)
    for family, line in want_single.items():
        if run_single.get(family) != line:
            additions.add(line)
    for family in rules.ordered:
        run = [line for line in running if _in(line, family) and not _family(line, rules.single)]
        want = [line for line in desired if _in(line, family)]
        keep = _kept_prefix(run, want)
        removals += [line for line in run if line not in want[:keep]]
        additions.update(want[keep:])
    grouped = set(rules.single) | set(rules.ordered)
    run_rest = [line for line in running if _family(line, tuple(grouped)) is None]
    want_rest = [line for line in desired if _family(line, tuple(grouped)) is None]
    removals += [line for line in run_rest if line not in want_rest]
    additions.update(line for line in want_rest if line not in run_rest)
    order = {line: i for i, line in enumerate(running)}
    removals.sort(key=lambda line: order[line])
    return removals, additions


def _kept_prefix(running: list[str], desired: list[str]) -> int:
    """The largest k such that ``desired[:k]`` is a subsequence of ``running``."""
    position = 0
    for k, line in enumerate(desired):
        try:
            position = running.index(line, position) + 1
        except ValueError:
            return k
    return len(desired)


def commands(running: str, desired: str, rules: DiffRules = FRR84) -> list[str]:
    """The configuration-mode commands (without ``configure terminal``/``end``)."""
    return _level(parse_tree(running), parse_tree(desired), rules, top=True)


def diff(running: str, desired: str, rules: DiffRules = FRR84) -> list[str]:
    """vtysh input turning ``running`` into ``desired``; ``[]`` if they already agree."""
    body = commands(running, desired, rules)
    return ["configure terminal", *body, "end"] if body else []


def nhrp_enabled_unauthorized(running: str, commands: list[str], desired: str) -> list[str]:
    """The commands that would enable NHRP on an interface (``ip nhrp network-id``) before
    the authorization ``desired`` gives it is in place: nhrpd's ``nhrp event socket``
    (without it nhrpd accepts every binding by itself) and the interface's ``tunnel
    protection``. ``commands`` are sent to a daemon running ``running``; empty: safe.

    A restarted nhrpd has neither, so the event socket must be configured first and each
    interface's protection before its network-id, as :func:`diff` orders them."""
    want_socket = any(_in(n.line, "nhrp event socket") for n in parse_tree(desired))
    want_protected = _protected(parse_tree(desired))
    socket = any(_in(n.line, "nhrp event socket") for n in parse_tree(running))
    protected = _protected(parse_tree(running))
    unsafe: list[str] = []
    interface: str | None = None
    for line in commands:
        if line.startswith("interface "):
            interface = line.split()[1]
        elif line in ("exit", "end"):
            interface = None
        elif interface is None and _in(line, "nhrp event socket"):
            socket = True
        elif interface is None and _in(line, "no nhrp event socket"):
            socket = False
        elif interface is not None and _in(line, "tunnel protection"):
            protected.add(interface)
        elif interface is not None and _in(line, "no tunnel protection"):
            protected.discard(interface)
        elif interface is not None and (
            _in(line, "ip nhrp network-id") or _in(line, "ipv6 nhrp network-id")
        ):
            missing = want_socket and not socket
            missing |= interface in want_protected and interface not in protected
            if missing:
                unsafe.append(f"interface {interface}: {line}")
    return unsafe


def _protected(nodes: list[Node]) -> set[str]:
    """Interfaces whose block has a ``tunnel protection``."""
    return {
        n.line.split()[1]
        for n in nodes
        if _in(n.line, "interface") and any(_in(c.line, "tunnel protection") for c in n.children)
    }
