"""Is the installed nft table the guard frrdmvpn renders? Checked against real nft output.

The fixtures under fixtures/guard/ are what ``nft -j list table inet frrdmvpn_guard``
(nftables 1.0.6, Debian 12) printed after the rendered table, or a tampered variant of it,
was loaded with ``nft -f`` into a fresh network namespace; capture.sh regenerates them.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest

from frrdmvpn.adapters.guard import KernelGuard
from frrdmvpn.core.guard_rules import (
    GuardSpec,
    NftJsonError,
    nft_guard_matches,
    nft_guard_mismatch,
    nft_listed_guard,
    xfrm_block_policies,
)
from tests.fakes.guard_commands import FakeRun, _installed_answer

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).parent / "fixtures"
# The rendered-two fixture: the SPEC of test_guard.py.
TWO = GuardSpec((IPv4Address("198.51.100.12"), IPv4Address("198.51.100.11")), nflog_group=5)
# The rendered-one-after-traffic fixture: one address, the default NFLOG group.
ONE = GuardSpec((IPv4Address("198.51.100.1"),))

Doc = dict[str, Any]


def fixture(name: str) -> str:
    return (FIXTURES / f"{name}.json").read_text()


def golden() -> Doc:
    doc: Doc = json.loads(fixture("rendered-two"))
    return doc


def objects(doc: Doc, kind: str) -> list[dict[str, Any]]:
    return [o[kind] for o in doc["nftables"] if kind in o]


def rules(doc: Doc, chain: str) -> list[dict[str, Any]]:
    return [r for r in objects(doc, "rule") if r["chain"] == chain]


def exprs(doc: Doc, chain: str, index: int) -> list[Any]:
    expr: list[Any] = rules(doc, chain)[index]["expr"]
    return expr


def check(doc: Doc, spec: GuardSpec = TWO) -> str | None:
    return nft_guard_mismatch(spec, json.dumps(doc))


# --- real nft output ------------------------------------------------------------------------


def test_real_listing_of_the_rendered_table_matches() -> None:
    assert nft_guard_mismatch(TWO, fixture("rendered-two")) is None
    assert nft_guard_matches(TWO, fixture("rendered-two"))
    # Re-applied (other handles) and after drops (non-zero counters).
    assert nft_guard_matches(ONE, fixture("rendered-one-after-traffic"))


def test_real_listing_for_another_node_or_group_is_rejected() -> None:
    assert not nft_guard_matches(ONE, fixture("rendered-two"))
    assert not nft_guard_matches(TWO, fixture("rendered-one-after-traffic"))
    one_of_two = GuardSpec((IPv4Address("198.51.100.11"),), nflog_group=5)
    assert not nft_guard_matches(one_of_two, fixture("rendered-two"))
    assert not nft_guard_matches(GuardSpec(TWO.nbma, nflog_group=3), fixture("rendered-two"))


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("drop-replaced-by-accept", r"chain output: rule 2 is not `ip protocol gre .* drop`"),
        ("accept-before-drop", r"chain input: rule 2 is not `ip protocol gre ip daddr"),
        ("nbma-changed", r"set nbma holds 198\.51\.100\.11, 198\.51\.100\.99"),
        ("ipsec-match-removed", r"chain output: rule 2 is not .*rt ipsec missing drop`"),
        ("ipsec-exists", r"chain input: rule 2 is not .*meta ipsec missing drop`"),
        ("rules-swapped", r"chain output: rule 1 is not .* log group 5"),
        ("log-group-changed", r"chain input: rule 1 is not .*log group 5"),
        ("limit-raised", r"chain output: rule 1 is not .*limit rate 50/second"),
        ("priority-changed", r"chain input is .*'prio': -10"),
        ("extra-chain", r"unexpected chain 'sneaky'"),
    ],
)
def test_real_listing_of_a_tampered_table_is_rejected(name: str, reason: str) -> None:
    text = fixture(f"tampered-{name}")
    assert not nft_guard_matches(TWO, text)
    mismatch = nft_guard_mismatch(TWO, text)
    assert mismatch is not None
    assert re.search(reason, mismatch), mismatch


def test_real_listing_of_a_dormant_table_is_not_even_json() -> None:
    """nft 1.0.6 prints a dormant table's flags as garbage (here: nothing, then EOF)."""
    with pytest.raises(NftJsonError, match="not JSON"):
        nft_guard_matches(TWO, fixture("tampered-table-dormant"))


# --- what nft may print differently: tolerated ---------------------------------------------


def _renumbered(doc: Doc) -> None:
    for kind in ("table", "counter", "set", "chain", "rule"):
        for i, body in enumerate(objects(doc, kind)):
            body["handle"] = 100 + i


def _counted(doc: Doc) -> None:
    for counter in objects(doc, "counter"):
        counter.update(packets=12345, bytes=987654)


def _shuffled(doc: Doc) -> None:
    """Objects in another order; each chain's rules keep theirs."""
    doc["nftables"] = list(reversed([o for o in doc["nftables"] if "rule" not in o])) + [
        o for o in doc["nftables"] if "rule" in o
    ]


def _newer_metainfo(doc: Doc) -> None:
    doc["nftables"][0]["metainfo"] = {"version": "1.1.1", "json_schema_version": 1}


def _numeric_protocol(doc: Doc) -> None:
    """Without /etc/protocols (or with ``nft -n``) nft prints ``ip protocol 47``."""
    for chain in ("input", "output"):
        for rule in rules(doc, chain):
            rule["expr"][0]["match"]["right"] = 47


def _secpath_spelling(doc: Doc) -> None:
    """``meta secpath`` is the older name of ``meta ipsec``."""
    for rule in rules(doc, "input"):
        rule["expr"][2]["match"]["left"] = {"meta": {"key": "secpath"}}


def _explicit_limit_defaults(doc: Doc) -> None:
    for chain in ("input", "output"):
        exprs(doc, chain, 0)[4]["limit"].update(rate_unit="packets", inv=False)


@pytest.mark.parametrize(
    "change",
    [
        _renumbered,
        _counted,
        _shuffled,
        _newer_metainfo,
        _numeric_protocol,
        _secpath_spelling,
        _explicit_limit_defaults,
    ],
)
def test_what_nft_adds_or_spells_differently_is_tolerated(change: Callable[[Doc], None]) -> None:
    doc = golden()
    change(doc)
    assert check(doc) is None


def test_objects_of_other_tables_are_ignored() -> None:
    doc = golden()
    other = {
        "family": "ip",
        "table": "filter",
        "name": "output",
        "handle": 1,
        "type": "filter",
        "hook": "output",
        "prio": 0,
        "policy": "drop",
    }
    doc["nftables"].append({"chain": other})
    doc["nftables"].append({"rule": {**other, "chain": "output", "expr": [{"accept": None}]}})
    assert check(doc) is None


# --- tampering: rejected ---------------------------------------------------------------------


def _set_expr(chain: str, index: int, pos: int, value: Any) -> Callable[[Doc], None]:
    def change(doc: Doc) -> None:
        exprs(doc, chain, index)[pos] = value

    return change


def _edit(kind: str, name: str, **fields: Any) -> Callable[[Doc], None]:
    def change(doc: Doc) -> None:
        for body in objects(doc, kind):
            if body.get("name", body.get("chain")) == name:
                body.update(fields)

    return change


def _drop_object(kind: str, name: str) -> Callable[[Doc], None]:
    def change(doc: Doc) -> None:
        doc["nftables"] = [
            o for o in doc["nftables"] if not (kind in o and o[kind]["name"] == name)
        ]

    return change


def _drop_rule(chain: str, index: int) -> Callable[[Doc], None]:
    def change(doc: Doc) -> None:
        doc["nftables"].remove({"rule": rules(doc, chain)[index]})

    return change


def _append_rule(chain: str, expr: list[Any]) -> Callable[[Doc], None]:
    def change(doc: Doc) -> None:
        rule = {"family": "inet", "table": "frrdmvpn_guard", "chain": chain, "handle": 99}
        doc["nftables"].append({"rule": {**rule, "expr": expr}})

    return change


def _duplicate(kind: str) -> Callable[[Doc], None]:
    def change(doc: Doc) -> None:
        doc["nftables"].append({kind: dict(objects(doc, kind)[0])})

    return change


def _match(left: Any, right: Any, op: str = "==") -> dict[str, Any]:
    return {"match": {"op": op, "left": left, "right": right}}


RT_IPSEC = {"rt": {"key": "ipsec"}}
META_IPSEC = {"meta": {"key": "ipsec"}}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        # The table itself.
        pytest.param(_edit("table", "frrdmvpn_guard", flags=["dormant"]), "table", id="dormant"),
        pytest.param(_drop_object("table", "frrdmvpn_guard"), "no table", id="no-table"),
        pytest.param(_duplicate("table"), "twice", id="table-twice"),
        # Chains: hook, type, priority, policy, presence.
        pytest.param(_edit("chain", "input", hook="prerouting"), "chain input", id="hook"),
        pytest.param(_edit("chain", "output", type="route"), "chain output", id="type"),
        pytest.param(_edit("chain", "output", prio=0), "chain output", id="prio"),
        pytest.param(_edit("chain", "input", policy="drop"), "chain input", id="policy"),
        pytest.param(_edit("chain", "input", comment="x"), "chain input", id="chain-extra-key"),
        pytest.param(_drop_object("chain", "input"), "no chain input", id="no-chain"),
        pytest.param(_duplicate("chain"), "twice", id="chain-twice"),
        # Rules: missing, extra, weakened.
        pytest.param(_drop_rule("output", 1), "chain output has 1 rule", id="no-drop-rule"),
        pytest.param(_drop_rule("input", 0), "chain input: rule 1", id="no-log-rule"),
        pytest.param(_append_rule("output", [{"accept": None}]), "3 rules", id="extra-after"),
        pytest.param(_set_expr("input", 1, 3, {"accept": None}), "rule 2", id="drop-to-accept"),
        pytest.param(_set_expr("input", 1, 3, {"continue": None}), "rule 2", id="continue"),
        pytest.param(_set_expr("output", 1, 2, _match(RT_IPSEC, False, "!=")), "rule 2", id="op"),
        pytest.param(_set_expr("output", 1, 2, _match(RT_IPSEC, True)), "rule 2", id="exists"),
        pytest.param(_set_expr("output", 1, 2, _match(RT_IPSEC, 0)), "rule 2", id="int-not-bool"),
        pytest.param(_set_expr("input", 1, 2, _match(RT_IPSEC, False)), "rule 2", id="rt-in"),
        pytest.param(
            _set_expr(
                "output", 1, 1, _match({"payload": {"protocol": "ip", "field": "daddr"}}, "@nbma")
            ),
            "rule 2",
            id="saddr-to-daddr",
        ),
        pytest.param(
            _set_expr(
                "output",
                1,
                1,
                _match({"payload": {"protocol": "ip", "field": "saddr"}}, "198.51.100.11"),
            ),
            "rule 2",
            id="one-address-inline",
        ),
        pytest.param(
            _set_expr(
                "input", 1, 0, _match({"payload": {"protocol": "ip", "field": "protocol"}}, "udp")
            ),
            "rule 2",
            id="udp",
        ),
        pytest.param(_set_expr("output", 0, 3, {"counter": None}), "rule 1", id="anon-counter"),
        pytest.param(
            _set_expr("output", 0, 3, {"counter": "gre_in_cleartext"}), "rule 1", id="counter-swap"
        ),
        pytest.param(
            _set_expr("input", 0, 4, {"limit": {"rate": 50, "burst": 100, "per": "minute"}}),
            "rule 1",
            id="limit-per-minute",
        ),
        pytest.param(
            _set_expr(
                "input", 0, 4, {"limit": {"rate": 50, "burst": 100, "per": "second", "inv": True}}
            ),
            "rule 1",
            id="limit-over",
        ),
        pytest.param(
            _set_expr("input", 0, 5, {"log": {"prefix": "frrdmvpn-guard-in"}}),
            "rule 1",
            id="log-without-group",
        ),
        pytest.param(
            _set_expr("input", 0, 5, {"log": {"prefix": "x", "group": 5}}), "rule 1", id="prefix"
        ),
        pytest.param(
            lambda doc: exprs(doc, "output", 1).insert(3, {"notrack": None}),
            "rule 2",
            id="extra-statement",
        ),
        pytest.param(
            lambda doc: rules(doc, "input")[1].update(comment="x"),
            "rule in chain input",
            id="rule-extra-key",
        ),
        # Counters and the NBMA set.
        pytest.param(_drop_object("counter", "gre_in_cleartext"), "counters", id="no-counter"),
        pytest.param(_duplicate("counter"), "twice", id="counter-twice"),
        pytest.param(_edit("set", "nbma", type="ipv6_addr"), "set nbma", id="set-type"),
        pytest.param(_edit("set", "nbma", flags=["timeout"], timeout=1), "set nbma", id="flags"),
        pytest.param(_edit("set", "nbma", elem=["198.51.100.11"]), "set nbma holds", id="elem"),
        pytest.param(_edit("set", "nbma", elem=[]), "holds nothing", id="elem-empty"),
        pytest.param(
            _edit(
                "set",
                "nbma",
                elem=["198.51.100.11", {"elem": {"val": "198.51.100.12", "timeout": 1}}],
            ),
            "set nbma",
            id="elem-timeout",
        ),
        pytest.param(_drop_object("set", "nbma"), "no set nbma", id="no-set"),
        pytest.param(
            lambda doc: doc["nftables"].append(
                {"quota": {"family": "inet", "table": "frrdmvpn_guard", "name": "q"}}
            ),
            "unexpected quota",
            id="extra-object",
        ),
        pytest.param(
            lambda doc: doc["nftables"].append({"rule": {"family": "inet", "chain": "input"}}),
            "rule",
            id="rule-without-table",
        ),
    ],
)
def test_tampering_is_rejected(change: Callable[[Doc], None], reason: str) -> None:
    doc = golden()
    change(doc)
    mismatch = check(doc)
    assert mismatch is not None
    assert reason in mismatch
    assert not nft_guard_matches(TWO, json.dumps(doc))


def test_a_listing_says_what_the_set_holds_even_when_the_rest_was_tampered_with() -> None:
    """A tampered table is installed again with the addresses it held (issue 14, hole 4:
    they may be an apply's, under way in another process)."""
    listed = nft_listed_guard(fixture("tampered-drop-replaced-by-accept"), 5)
    assert listed.mismatch is not None
    assert listed.nbma == set(TWO.nbma)
    good = nft_listed_guard(fixture("rendered-two"), 5)
    assert (good.nbma, good.mismatch) == (frozenset(TWO.nbma), None)
    doc = golden()
    for item in doc["nftables"]:
        if "set" in item:
            item["set"]["elem"] = ["198.51.100.11", {"prefix": {"addr": "10.0.0.0", "len": 8}}]
    odd = nft_listed_guard(json.dumps(doc), 5)
    assert odd.mismatch is not None
    assert "more than plain addresses" in odd.mismatch
    assert odd.nbma == {IPv4Address("198.51.100.11")}
    assert nft_guard_mismatch(ONE, fixture("rendered-two"), covering=True) is not None
    assert nft_guard_mismatch(GuardSpec(ONE.nbma, 5), fixture("rendered-two"), covering=True) == (
        "set nbma holds 198.51.100.11, 198.51.100.12, the guard has 198.51.100.1"
    )
    one_of_two = GuardSpec((IPv4Address("198.51.100.12"),), nflog_group=5)
    assert nft_guard_mismatch(one_of_two, fixture("rendered-two"), covering=True) is None


def test_an_address_no_guard_can_hold_is_a_table_to_install_again() -> None:
    """A multicast or unspecified address put in the set by hand: the table differs and the
    address is not one it held (a GuardSpec refuses it: every widen and the daemon's checks
    failed with ValueError while it was there)."""
    doc = golden()
    for item in doc["nftables"]:
        if "set" in item:
            item["set"]["elem"] = ["198.51.100.11", "224.0.0.5", "0.0.0.0", "255.255.255.255"]
    listed = nft_listed_guard(json.dumps(doc), 5)
    assert listed.mismatch is not None
    assert "more than plain addresses" in listed.mismatch
    assert listed.nbma == {IPv4Address("198.51.100.11")}


def test_malformed_json_raises() -> None:
    with pytest.raises(NftJsonError, match="not JSON"):
        nft_guard_mismatch(TWO, "nope")
    with pytest.raises(NftJsonError, match="table entry is not an object"):
        nft_guard_mismatch(TWO, '{"nftables": [{"table": 1}]}')


# --- the adapter: KernelGuard.installed() decides whether to reinstall ------------------------


def _kernel(table_json: str) -> KernelGuard:
    """A KernelGuard whose nft lists table_json and whose block policies are all present."""
    policies = "".join(
        f"src {p.src} dst {p.dst} proto gre \n\tdir {p.direction} action block "
        f"priority {p.priority} ptype main \n"
        for p in xfrm_block_policies(TWO)
    )

    return KernelGuard(TWO, FakeRun(_installed_answer((0, table_json, ""), policies)))


def test_installed_accepts_the_real_listing_of_the_rendered_table() -> None:
    assert _kernel(fixture("rendered-two")).installed()


@pytest.mark.parametrize(
    "name", sorted(p.stem for p in FIXTURES.glob("tampered-*.json")), ids=lambda n: n[9:]
)
def test_installed_is_false_for_a_tampered_table_so_it_gets_reinstalled(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A dormant table's listing is not even JSON (nft 1.0.6): altered, not an error.
    with caplog.at_level(logging.WARNING, logger="frrdmvpn.adapters.guard"):
        assert not _kernel(fixture(name)).installed()
    assert "nft table inet frrdmvpn_guard is not the guard" in caplog.text
