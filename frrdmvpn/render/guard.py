"""Fail-closed kernel guards for GRE: nftables ruleset and XFRM block policies. No I/O.

Two layers, both independent of charon (reference: frr-strongswan-internals.md §7):

* nftables table ``inet frrdmvpn_guard``: IPv4 GRE leaving a local NBMA address without an
  XFRM bundle (``rt ipsec missing``) or arriving at one without having been decrypted
  (``meta ipsec missing``) is counted, logged to an NFLOG group and dropped.
* XFRM ``block`` policies per local NBMA /32, in and out, at priority 1000000. charon's
  policies (a /32<->/32 GRE SA near 366975, the wildcard trap at 399744) have numerically
  smaller priorities and so win while they exist; our selectors differ from charon's, so
  charon neither overwrites them nor removes them when it shuts down.

The adapter (``frrdmvpn.adapters.guard``) runs what this module renders.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
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
            if addr.is_unspecified or addr.is_multicast or addr == IPv4Address("255.255.255.255"):
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


def nft_ruleset(spec: GuardSpec) -> str:
    """The whole guard table as one atomic ``nft -f -`` transaction.

    The first two lines make sure the table exists and then delete it, so applying the
    script replaces any previous version (other addresses, tampered rules) in the same
    transaction and re-applying it is idempotent.
    """
    elements = ", ".join(str(a) for a in spec.sorted_nbma)
    group = spec.nflog_group
    prio = f"priority filter + {HOOK_PRIORITY_OFFSET}; policy accept;"
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
        "\tchain output {\n"
        f"\t\ttype filter hook output {prio}\n"
        f"\t\tip protocol gre ip saddr @{SET_NAME} rt ipsec missing"
        f' counter name "{COUNTER_OUT}" {LOG_LIMIT} log group {group} prefix "{LOG_PREFIX_OUT}"\n'
        f"\t\tip protocol gre ip saddr @{SET_NAME} rt ipsec missing drop\n"
        "\t}\n"
        "\n"
        "\tchain input {\n"
        f"\t\ttype filter hook input {prio}\n"
        f"\t\tip protocol gre ip daddr @{SET_NAME} meta ipsec missing"
        f' counter name "{COUNTER_IN}" {LOG_LIMIT} log group {group} prefix "{LOG_PREFIX_IN}"\n'
        f"\t\tip protocol gre ip daddr @{SET_NAME} meta ipsec missing drop\n"
        "\t}\n"
        "}\n"
    )


#: Every dropped packet is counted; at most this many a second reach NFLOG (and the daemon),
#: so a flood of forged GRE cannot starve it. The drop rule after it catches the rest.
LOG_LIMIT = "limit rate 50/second burst 100 packets"


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


def nft_guard_matches(spec: GuardSpec, json_text: str) -> bool:
    """Whether ``nft -j list table inet frrdmvpn_guard`` shows the guard rendered for spec.

    Checks the table, both counters, the NBMA set's elements and that each hook chain
    has a dropping rule. Malformed JSON raises ValueError.
    """
    what = "nft table"
    table = False
    counters: set[str] = set()
    elements: set[str] | None = None
    hooks: set[str] = set()
    dropping: set[str] = set()
    for item in _nft_objects(json_text, what):
        if (body := _body(item, "table", what)) is not None:
            table = table or (body.get("family") == TABLE_FAMILY and body.get("name") == TABLE_NAME)
        elif (body := _body(item, "counter", what)) is not None:
            if _ours(body, TABLE_NAME) and isinstance(body.get("name"), str):
                counters.add(str(body["name"]))
        elif (body := _body(item, "set", what)) is not None:
            if _ours(body, TABLE_NAME) and body.get("name") == SET_NAME:
                elem = body.get("elem", [])
                if not isinstance(elem, list):
                    raise NftJsonError(f"{what}: set {SET_NAME!r} has a malformed elem list")
                elements = {e for e in elem if isinstance(e, str)}
                if len(elements) != len(elem):
                    return False  # ranges or prefixes: not what we render
        elif (body := _body(item, "chain", what)) is not None:
            if _ours(body, TABLE_NAME) and body.get("name") == body.get("hook"):
                hooks.add(str(body["hook"]))
        elif (body := _body(item, "rule", what)) is not None:
            expr = body.get("expr")
            if (
                _ours(body, TABLE_NAME)
                and isinstance(expr, list)
                and any(isinstance(e, dict) and "drop" in e for e in expr)
            ):
                dropping.add(str(body.get("chain")))
    wanted = {str(a) for a in spec.nbma}
    return (
        table
        and {COUNTER_OUT, COUNTER_IN} <= counters
        and elements == wanted
        and {"input", "output"} <= hooks
        and {"input", "output"} <= dropping
    )
