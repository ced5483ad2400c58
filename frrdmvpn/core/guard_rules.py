"""Fail-closed kernel guards for GRE: nftables ruleset and XFRM block policies. No I/O.

Two layers, both independent of charon (docs/enforcement.md):

* nftables table ``inet frrdmvpn_guard``: IPv4 GRE leaving a local NBMA address without an
  XFRM bundle (``rt ipsec missing``) or arriving at one without having been decrypted
  (``meta ipsec missing``) is counted, logged to an NFLOG group and dropped.
* XFRM ``block`` policies per local NBMA /32, in and out, at priority 1000000. charon's
  policies (a /32<->/32 GRE SA near 366975, the wildcard trap at 399744) have numerically
  smaller priorities and so win while they exist; our selectors differ from charon's, so
  charon neither overwrites them nor removes them when it shuts down.

What to guard (:func:`frrdmvpn.config.kernel.guard_nbma`) follows the applied configuration
and the addresses of the tunnel source interface (:mod:`frrdmvpn.guards`): the set grows and
shrinks in place (:func:`nft_elements_script`); a missing or altered table is replaced whole.

The adapter (``frrdmvpn.adapters.guard``) runs what this module renders.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Literal

TABLE_FAMILY = "inet"
TABLE_NAME = "frrdmvpn_guard"
SET_NAME = "nbma"
COUNTER_OUT = "gre_out_cleartext"
COUNTER_IN = "gre_in_cleartext"
LOG_PREFIX_OUT = "frrdmvpn-guard-out"
LOG_PREFIX_IN = "frrdmvpn-guard-in"
# Hook priority relative to the standard "filter" priority (0): run after other filters.
HOOK_PRIORITY_OFFSET = 10

IPPROTO_GRE = 47
BLOCK_PRIORITY = 1_000_000
XFRM_PRIORITY_MAX = 0xFFFFFFFF
NFLOG_GROUP_MAX = 65535

Direction = Literal["in", "out"]
_DIRECTIONS: tuple[Direction, ...] = ("in", "out")
_ANY = IPv4Network("0.0.0.0/0")
_POLICY_VERBS = ("add", "update", "delete")


class NftJsonError(ValueError):
    """``nft -j`` output that does not have the expected shape."""


def guardable(addr: IPv4Address) -> bool:
    """Whether ``addr`` can be a local unicast (NBMA) address."""
    return not (addr.is_unspecified or addr.is_multicast or addr == IPv4Address("255.255.255.255"))


@dataclass(frozen=True)
class GuardSpec:
    """What to guard: the node's local NBMA (underlay) addresses and the NFLOG group."""

    nbma: tuple[IPv4Address, ...]
    nflog_group: int = 3

    def __post_init__(self) -> None:
        if not isinstance(self.nbma, tuple):
            raise TypeError(f"nbma must be a tuple of IPv4Address, not {type(self.nbma).__name__}")
        if not self.nbma:
            raise ValueError("guard needs at least one local NBMA address")
        seen: set[IPv4Address] = set()
        for addr in self.nbma:
            if not isinstance(addr, IPv4Address):
                raise TypeError(f"NBMA address {addr!r} is not an IPv4Address")
            if not guardable(addr):
                raise ValueError(f"NBMA address {addr} cannot be a local unicast address")
            if addr in seen:
                raise ValueError(f"NBMA address {addr} is listed twice")
            seen.add(addr)
        group = self.nflog_group
        if isinstance(group, bool) or not isinstance(group, int):
            raise TypeError(f"nflog_group must be an int, not {type(group).__name__}")
        if not 1 <= group <= NFLOG_GROUP_MAX:
            raise ValueError(f"nflog_group {group} is outside 1..{NFLOG_GROUP_MAX}")

    @property
    def sorted_nbma(self) -> tuple[IPv4Address, ...]:
        """The addresses in ascending order, so equal sets render identically."""
        return tuple(sorted(self.nbma))


@dataclass(frozen=True)
class XfrmPolicy:
    """One XFRM policy owned by frrdmvpn (selector + direction, action and priority)."""

    direction: Direction
    src: IPv4Network
    dst: IPv4Network
    proto: int = IPPROTO_GRE
    priority: int = BLOCK_PRIORITY
    action: Literal["block"] = "block"

    def __post_init__(self) -> None:
        if self.direction not in _DIRECTIONS:
            raise ValueError(f"direction must be 'in' or 'out', not {self.direction!r}")
        for name in ("src", "dst"):
            if not isinstance(getattr(self, name), IPv4Network):
                raise TypeError(f"{name} must be an IPv4Network")
        if not 0 <= self.proto <= 255:
            raise ValueError(f"proto {self.proto} is outside 0..255")
        if not 0 <= self.priority <= XFRM_PRIORITY_MAX:
            raise ValueError(f"priority {self.priority} is outside 0..{XFRM_PRIORITY_MAX}")
        if self.action != "block":
            raise ValueError(f"action must be 'block', not {self.action!r}")

    def selector_args(self) -> list[str]:
        """The selector and direction: what identifies the policy in the kernel."""
        return [
            "src",
            str(self.src),
            "dst",
            str(self.dst),
            "proto",
            str(self.proto),
            "dir",
            self.direction,
        ]

    def ip_args(self, verb: str) -> list[str]:
        """argv for ``ip xfrm policy VERB ...``; ``delete`` takes only selector and dir."""
        if verb not in _POLICY_VERBS:
            raise ValueError(f"verb must be one of {', '.join(_POLICY_VERBS)}, not {verb!r}")
        argv = ["ip", "xfrm", "policy", verb, *self.selector_args()]
        if verb != "delete":
            argv += ["action", self.action, "priority", str(self.priority)]
        return argv


def xfrm_block_policies(spec: GuardSpec) -> list[XfrmPolicy]:
    """Per local NBMA address: block GRE out from it and GRE in to it, lowest precedence."""
    policies: list[XfrmPolicy] = []
    for addr in spec.sorted_nbma:
        host = IPv4Network(addr)
        policies.append(XfrmPolicy("out", src=host, dst=_ANY))
        policies.append(XfrmPolicy("in", src=_ANY, dst=host))
    return policies


def _table() -> str:
    return f"table {TABLE_FAMILY} {TABLE_NAME}"


#: Every dropped packet is counted; at most this many a second reach NFLOG (and the daemon),
#: so a flood of forged GRE cannot starve it. The drop rule after it catches the rest.
LOG_RATE = 50
LOG_BURST = 100
LOG_LIMIT = f"limit rate {LOG_RATE}/second burst {LOG_BURST} packets"


@dataclass(frozen=True)
class _GuardChain:
    """One hook chain: GRE from/to the NBMA set without IPsec is counted, logged, dropped."""

    hook: Literal["output", "input"]
    addr: Literal["saddr", "daddr"]  # the packet's local (NBMA) side
    ipsec: Literal["rt", "meta"]  # rt: no XFRM bundle on the route; meta: no secpath
    counter: str
    prefix: str

    def match(self) -> str:
        return f"ip protocol gre ip {self.addr} @{SET_NAME} {self.ipsec} ipsec missing"

    def rules(self, group: int) -> list[str]:
        """The chain's rules, as rendered."""
        log = f'counter name "{self.counter}" {LOG_LIMIT} log group {group} prefix "{self.prefix}"'
        return [f"{self.match()} {log}", f"{self.match()} drop"]

    def rules_json(self, group: int) -> list[list[dict[str, object]]]:
        """The same rules' expressions as ``nft -j`` lists them (nftables 1.0.6)."""
        match: list[dict[str, object]] = [
            _json_match({"payload": {"protocol": "ip", "field": "protocol"}}, "gre"),
            _json_match({"payload": {"protocol": "ip", "field": self.addr}}, f"@{SET_NAME}"),
            _json_match({self.ipsec: {"key": "ipsec"}}, False),
        ]
        log: list[dict[str, object]] = [
            {"counter": self.counter},
            {"limit": {"rate": LOG_RATE, "burst": LOG_BURST, "per": "second"}},
            {"log": {"prefix": self.prefix, "group": group}},
        ]
        return [match + log, [*match, {"drop": None}]]


def _json_match(left: object, right: object) -> dict[str, object]:
    return {"match": {"op": "==", "left": left, "right": right}}


_CHAINS = (
    _GuardChain("output", "saddr", "rt", COUNTER_OUT, LOG_PREFIX_OUT),
    _GuardChain("input", "daddr", "meta", COUNTER_IN, LOG_PREFIX_IN),
)


def nft_ruleset(spec: GuardSpec) -> str:
    """The whole guard table as one atomic ``nft -f -`` transaction.

    The first two lines make sure the table exists and then delete it, so applying the
    script replaces any previous version (other addresses, tampered rules) in the same
    transaction and re-applying it is idempotent.
    """
    elements = _list(spec.sorted_nbma)
    prio = f"priority filter + {HOOK_PRIORITY_OFFSET}; policy accept;"
    chains = "\n".join(
        f"\tchain {c.hook} {{\n"
        f"\t\ttype filter hook {c.hook} {prio}\n"
        + "".join(f"\t\t{rule}\n" for rule in c.rules(spec.nflog_group))
        + "\t}\n"
        for c in _CHAINS
    )
    return (
        "# frrdmvpn fail-closed GRE guard (generated; re-applied atomically)\n"
        f"{_table()}\n"
        f"delete {_table()}\n"
        f"{_table()} {{\n"
        f"\tset {SET_NAME} {{\n"
        "\t\ttype ipv4_addr\n"
        f"\t\telements = {{ {elements} }}\n"
        "\t}\n"
        "\n"
        f"\tcounter {COUNTER_OUT} {{\n"
        "\t}\n"
        "\n"
        f"\tcounter {COUNTER_IN} {{\n"
        "\t}\n"
        "\n"
        f"{chains}"
        "}\n"
    )


def nft_elements_script(add: Iterable[IPv4Address], remove: Iterable[IPv4Address]) -> str:
    """Change only the NBMA set, in one ``nft -f -`` transaction: add ``add``, then remove
    ``remove``. Each address to remove is added first, so one the set does not hold is no
    error. Fails (no such file or directory) when the table is absent."""
    added, removed = sorted(set(add) | set(remove)), sorted(set(remove))
    verbs = [("add", added)] + ([("delete", removed)] if removed else [])
    target = f"{TABLE_FAMILY} {TABLE_NAME} {SET_NAME}"
    return "".join(f"{verb} element {target} {{ {_list(a)} }}\n" for verb, a in verbs if a)


def _list(addresses: Iterable[IPv4Address]) -> str:
    return ", ".join(str(a) for a in addresses)


def nft_delete_script() -> str:
    """Remove the guard table in one ``nft -f -`` transaction; succeeds if it is absent."""
    return f"{_table()}\ndelete {_table()}\n"


def _nft_objects(json_text: str, what: str) -> Iterator[Mapping[str, object]]:
    """The objects of an ``nft -j`` answer, each a one-key mapping like ``{"counter": {...}}``."""
    try:
        doc = json.loads(json_text)
    except json.JSONDecodeError as exc:
        raise NftJsonError(f"{what}: not JSON ({exc})") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("nftables"), list):
        raise NftJsonError(f'{what}: expected an object with an "nftables" list')
    for index, item in enumerate(doc["nftables"]):
        if not isinstance(item, dict):
            raise NftJsonError(f"{what}: nftables[{index}] is not an object")
        yield item


def _body(item: Mapping[str, object], kind: str, what: str) -> Mapping[str, object] | None:
    body = item.get(kind)
    if body is None:
        return None
    if not isinstance(body, dict):
        raise NftJsonError(f"{what}: {kind} entry is not an object")
    return body


def _ours(body: Mapping[str, object], table: str) -> bool:
    return body.get("family", TABLE_FAMILY) == TABLE_FAMILY and body.get("table", table) == table


def _count(body: Mapping[str, object], key: str, what: str) -> int:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise NftJsonError(f"{what}: counter {body.get('name')!r} has no valid {key!r}")
    return value


def parse_nft_counters(json_text: str, *, table: str = TABLE_NAME) -> dict[str, tuple[int, int]]:
    """Counter name -> (packets, bytes) from ``nft -j list counters table inet <table>``.

    Counters of other tables are ignored; anything malformed raises NftJsonError, a
    ValueError.
    """
    what = "nft counters"
    counters: dict[str, tuple[int, int]] = {}
    for item in _nft_objects(json_text, what):
        body = _body(item, "counter", what)
        if body is None or not _ours(body, table):
            continue
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise NftJsonError(f"{what}: counter without a name")
        if name in counters:
            raise NftJsonError(f"{what}: counter {name!r} listed twice")
        counters[name] = (_count(body, "packets", what), _count(body, "bytes", what))
    return counters


class _Differs(Exception):  # noqa: N818 - internal control flow, never escapes
    """Internal: how the listed table differs from the rendered guard."""


# Keys nft lists for each object of the table; anything else (a table's "dormant" flag, a
# set's timeout, a comment) was not rendered by frrdmvpn.
_KEYS = {
    "table": frozenset({"family", "name", "handle"}),
    "counter": frozenset({"family", "table", "name", "handle", "packets", "bytes"}),
    "set": frozenset({"family", "table", "name", "handle", "type", "elem"}),
    "chain": frozenset({"family", "table", "name", "handle", "type", "hook", "prio", "policy"}),
    "rule": frozenset({"family", "table", "chain", "handle", "expr"}),
}
_GRE_PROTOCOL = {"payload": {"protocol": "ip", "field": "protocol"}}


def _same(a: object, b: object) -> bool:
    """JSON equality that tells ``false`` from ``0`` and ``47`` from ``47.0``."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _normal_expr(expr: object) -> object:
    """One rule expression with nft's equivalent spellings reduced to the rendered one."""
    if not isinstance(expr, dict) or len(expr) != 1:
        return expr
    ((kind, body),) = expr.items()
    if not isinstance(body, dict):
        return expr
    body = dict(body)
    if kind == "match":
        right = body.get("right")
        if _same(body.get("left"), _GRE_PROTOCOL) and type(right) is int and right == IPPROTO_GRE:
            body["right"] = "gre"  # nft -n, or no /etc/protocols
        if _same(body.get("left"), {"meta": {"key": "secpath"}}):
            body["left"] = {"meta": {"key": "ipsec"}}  # the older name
    elif kind == "limit":
        for key, default in (("rate_unit", "packets"), ("burst_unit", "packets"), ("inv", False)):
            if key in body and _same(body[key], default):
                del body[key]
    return {kind: body}


def _owned_body(item: Mapping[str, object], what: str) -> tuple[str, Mapping[str, object]] | None:
    """(kind, body) of an object of the guard table; None for metainfo or other tables."""
    if "metainfo" in item:
        return None
    if len(item) != 1:
        raise _Differs(f"unexpected entry with keys {sorted(item)}")
    ((kind, body),) = item.items()
    if not isinstance(body, dict):
        raise NftJsonError(f"{what}: {kind} entry is not an object")
    table = body.get("name") if kind == "table" else body.get("table")
    if body.get("family") != TABLE_FAMILY or table != TABLE_NAME:
        if isinstance(body.get("family"), str) and isinstance(table, str):
            return None  # another table's object (not in a `list table` answer anyway)
        raise _Differs(f"{kind} without family and table: {dict(body)}")
    if kind not in _KEYS:
        raise _Differs(f"unexpected {kind} {body.get('name')!r} in the table")
    if extra := sorted(set(body) - _KEYS[kind]):
        label = f"in chain {body.get('chain')}" if kind == "rule" else body.get("name")
        raise _Differs(f"{kind} {label} has unexpected {extra}: {dict(body)}")
    return kind, body


def _check_chain(body: Mapping[str, object]) -> None:
    name = body.get("name")
    want = {"type": "filter", "hook": name, "prio": HOOK_PRIORITY_OFFSET, "policy": "accept"}
    got = {key: body.get(key) for key in want}
    if not _same(got, want):
        raise _Differs(f"chain {name} is {got}, the guard has {want}")


def _set_elements(body: Mapping[str, object]) -> list[str]:
    """The NBMA set's elements, if it is a set of plain IPv4 unicast addresses (anything
    else, e.g. a multicast address added by hand, is a table to install again: no guard
    spec can hold it)."""
    if body.get("type") != "ipv4_addr":
        raise _Differs(f"set {SET_NAME} has type {body.get('type')!r}, not ipv4_addr")
    elem = body.get("elem", [])
    if not isinstance(elem, list) or not all(_guardable_text(e) for e in elem):
        raise _Differs(f"set {SET_NAME} holds more than plain addresses: {elem!r}")
    return elem


def _guardable_text(text: object) -> bool:
    """Whether ``text`` is an IPv4 address the guards can hold (:func:`guardable`)."""
    if not isinstance(text, str):
        return False
    try:
        return guardable(IPv4Address(text))
    except ValueError:
        return False


def _check_rules(group: int, chain: _GuardChain, listed: list[object]) -> None:
    texts = chain.rules(group)
    for index, (text, want, got) in enumerate(
        zip(texts, chain.rules_json(group), listed, strict=False), start=1
    ):
        normal = [_normal_expr(e) for e in got] if isinstance(got, list) else got
        if not _same(normal, want):
            raise _Differs(f"chain {chain.hook}: rule {index} is not `{text}`: {got}")
    if len(listed) != len(texts):
        raise _Differs(f"chain {chain.hook} has {len(listed)} rules, the guard has {len(texts)}")


def _compare(group: int, json_text: str) -> list[str]:
    """The NBMA set's elements; _Differs at the first other difference from the guard
    rendered for NFLOG ``group``."""
    what = "nft table"
    seen: dict[tuple[str, str], Mapping[str, object]] = {}
    listed: dict[str, list[object]] = {c.hook: [] for c in _CHAINS}
    for item in _nft_objects(json_text, what):
        owned = _owned_body(item, what)
        if owned is None:
            continue
        kind, body = owned
        if kind == "rule":
            chain = body.get("chain")
            if not isinstance(chain, str) or chain not in listed:
                raise _Differs(f"rule in unexpected chain {chain!r}")
            listed[chain].append(body.get("expr"))
            continue
        name = str(body.get("name"))
        if (kind, name) in seen:
            raise _Differs(f"{kind} {name!r} listed twice")
        seen[kind, name] = body
    if ("table", TABLE_NAME) not in seen:
        raise _Differs(f"no table {TABLE_FAMILY} {TABLE_NAME}")
    counters = sorted(name for kind, name in seen if kind == "counter")
    if counters != sorted((COUNTER_OUT, COUNTER_IN)):
        raise _Differs(f"counters {counters}, the guard has {COUNTER_OUT} and {COUNTER_IN}")
    sets = sorted(name for kind, name in seen if kind == "set")
    if sets != [SET_NAME]:
        raise _Differs(f"sets {sets}: no set {SET_NAME} or unexpected ones")
    elements = _set_elements(seen["set", SET_NAME])
    for chain in _CHAINS:
        if ("chain", chain.hook) not in seen:
            raise _Differs(f"no chain {chain.hook}")
        _check_chain(seen["chain", chain.hook])
        _check_rules(group, chain, listed[chain.hook])
    if extra := sorted(n for k, n in seen if k == "chain" and n not in listed):
        raise _Differs(f"unexpected chain {extra[0]!r}")
    return elements


@dataclass(frozen=True)
class ListedGuard:
    """The guard table as ``nft -j list table inet frrdmvpn_guard`` shows it."""

    nbma: frozenset[IPv4Address]  # the addresses its NBMA set holds, if it holds addresses
    mismatch: str | None  # how the rest differs from the rendered guard; None: it is the guard


def nft_listed_guard(json_text: str, nflog_group: int) -> ListedGuard:
    """What the listed table guards, and whether everything but the set's addresses is the
    guard rendered for ``nflog_group`` (see :func:`nft_guard_mismatch`). Malformed JSON
    raises NftJsonError, a ValueError."""
    try:
        return ListedGuard(frozenset(map(IPv4Address, _compare(nflog_group, json_text))), None)
    except _Differs as differs:
        return ListedGuard(_held(json_text), str(differs))


def _held(json_text: str) -> frozenset[IPv4Address]:
    """The plain addresses in the guard table's NBMA set, whatever else it holds."""
    for item in _nft_objects(json_text, "nft table"):
        body = item.get("set")
        if isinstance(body, dict) and _ours(body, TABLE_NAME) and body.get("name") == SET_NAME:
            elem = body.get("elem", [])
            found = elem if isinstance(elem, list) else []
            return frozenset(IPv4Address(e) for e in found if _guardable_text(e))
    return frozenset()


def nft_guard_mismatch(spec: GuardSpec, json_text: str, *, covering: bool = False) -> str | None:
    """How ``nft -j list table inet frrdmvpn_guard`` differs from the guard rendered for
    spec, or None if it is that guard (``covering``: whose set holds at least spec's
    addresses).

    Compared: the table (no flags), both named counters, the NBMA set (type, exactly the
    spec's addresses), the two chains (type, hook, priority, policy) and each chain's rules,
    expression by expression and in order. Tolerated: handles, counter values, object order,
    metainfo, and the spellings nft may choose (``ip protocol 47``, ``meta secpath``,
    default limit units). Malformed JSON raises NftJsonError, a ValueError.
    """
    listed = nft_listed_guard(json_text, spec.nflog_group)
    if listed.mismatch is not None:
        return listed.mismatch
    want = frozenset(spec.nbma)
    if listed.nbma == want or (covering and listed.nbma >= want):
        return None
    held = ", ".join(str(a) for a in sorted(listed.nbma)) or "nothing"
    return f"set {SET_NAME} holds {held}, the guard has {', '.join(map(str, spec.sorted_nbma))}"


def nft_guard_matches(spec: GuardSpec, json_text: str) -> bool:
    """Whether ``nft -j list table inet frrdmvpn_guard`` shows exactly the guard rendered
    for spec (see :func:`nft_guard_mismatch`). Malformed JSON raises ValueError."""
    return nft_guard_mismatch(spec, json_text) is None
