"""Kernel guards: nft ruleset and XFRM block policies (render), and the nft/ip adapter."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network, IPv6Address
from typing import Any

import pytest

from frrdmvpn.adapters.guard import (
    GuardError,
    KernelGuard,
    parse_xfrm_policies,
    parse_xfrm_states,
)
from frrdmvpn.core.guard_rules import (
    BLOCK_PRIORITY,
    GuardSpec,
    NftJsonError,
    XfrmPolicy,
    nft_delete_script,
    nft_guard_matches,
    nft_ruleset,
    parse_nft_counters,
    xfrm_block_policies,
)
from tests.fakes.guard_commands import (
    NFT_ENOENT,
    POLICIES_TEXT,
    FakeRun,
    Reply,
    _installed_answer,
    _table_json,
)

pytestmark = pytest.mark.unit

HUB = IPv4Address("198.51.100.11")
SPOKE = IPv4Address("198.51.100.12")
ANY = IPv4Network("0.0.0.0/0")
# Given out of order on purpose: rendering sorts the addresses.
SPEC = GuardSpec((SPOKE, HUB), nflog_group=5)

GOLDEN_RULESET = """\
# frrdmvpn fail-closed GRE guard (generated; re-applied atomically)
table inet frrdmvpn_guard
delete table inet frrdmvpn_guard
table inet frrdmvpn_guard {
\tset nbma {
\t\ttype ipv4_addr
\t\telements = { 198.51.100.11, 198.51.100.12 }
\t}

\tcounter gre_out_cleartext {
\t}

\tcounter gre_in_cleartext {
\t}

\tchain output {
\t\ttype filter hook output priority filter + 10; policy accept;
\t\tip protocol gre ip saddr @nbma rt ipsec missing \
counter name "gre_out_cleartext" limit rate 50/second burst 100 packets \
log group 5 prefix "frrdmvpn-guard-out"
\t\tip protocol gre ip saddr @nbma rt ipsec missing drop
\t}

\tchain input {
\t\ttype filter hook input priority filter + 10; policy accept;
\t\tip protocol gre ip daddr @nbma meta ipsec missing \
counter name "gre_in_cleartext" limit rate 50/second burst 100 packets \
log group 5 prefix "frrdmvpn-guard-in"
\t\tip protocol gre ip daddr @nbma meta ipsec missing drop
\t}
}
"""

# `nft -j list counters table inet frrdmvpn_guard` (nftables 1.0.6), after some drops.
COUNTERS_JSON = (
    '{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5",'
    ' "json_schema_version": 1}}, {"counter": {"family": "inet", "name": "gre_out_cleartext",'
    ' "table": "frrdmvpn_guard", "handle": 3, "packets": 3, "bytes": 252}}, {"counter":'
    ' {"family": "inet", "name": "gre_in_cleartext", "table": "frrdmvpn_guard", "handle": 4,'
    ' "packets": 0, "bytes": 0}}]}'
)


# `ip xfrm state show`: a larval (acquire) state left from before a charon restart and a
# real ESP SA in the other direction.
STATES_TEXT = """\
src 198.51.100.11 dst 198.51.100.12
\tproto esp spi 0x00000000 reqid 1 mode transport
\treplay-window 0 
\tanti-replay context: seq 0x0, oseq 0x0, bitmap 0x00000000
\tsel src 198.51.100.11/32 dst 198.51.100.12/32 proto gre 
src 198.51.100.12 dst 198.51.100.11
\tproto esp spi 0xc1d2e3f4 reqid 2 mode transport
\treplay-window 0 flag af-unspec
\taead rfc4106(gcm(aes)) 0x00112233445566778899aabbccddeeff0011223344556677 128
\tanti-replay context: seq 0x0, oseq 0x0, bitmap 0x00000000
\tsel src 198.51.100.12/32 dst 198.51.100.11/32 proto gre 
"""  # noqa: W291

# `ip xfrm state allocspi ...` prints the adopted state with its new SPI.
ALLOCSPI_TEXT = """\
src 198.51.100.11 dst 198.51.100.12
\tproto esp spi 0x0d2e3344 reqid 1 mode transport
\treplay-window 0 
\tanti-replay context: seq 0x0, oseq 0x0, bitmap 0x00000000
\tsel src 198.51.100.11/32 dst 198.51.100.12/32 proto gre 
"""  # noqa: W291

IP_ENOENT = "RTNETLINK answers: No such file or directory\n"


def _block(direction: str, src: str, dst: str, verb: str) -> list[str]:
    argv = ["ip", "xfrm", "policy", verb, "src", src, "dst", dst, "proto", "47", "dir", direction]
    return argv if verb == "delete" else [*argv, "action", "block", "priority", "1000000"]


def _all_blocks(verb: str) -> list[list[str]]:
    return [
        _block("out", "198.51.100.11/32", "0.0.0.0/0", verb),
        _block("in", "0.0.0.0/0", "198.51.100.11/32", verb),
        _block("out", "198.51.100.12/32", "0.0.0.0/0", verb),
        _block("in", "0.0.0.0/0", "198.51.100.12/32", verb),
    ]


# --- render: spec, ruleset, policies -------------------------------------------------------


def test_ruleset_golden() -> None:
    assert nft_ruleset(SPEC) == GOLDEN_RULESET


def test_ruleset_does_not_depend_on_address_order() -> None:
    assert nft_ruleset(GuardSpec((HUB, SPOKE), nflog_group=5)) == GOLDEN_RULESET


def test_delete_script_is_idempotent_form() -> None:
    assert nft_delete_script() == "table inet frrdmvpn_guard\ndelete table inet frrdmvpn_guard\n"


def test_block_policies_per_address_in_and_out() -> None:
    hub, spoke = IPv4Network("198.51.100.11/32"), IPv4Network("198.51.100.12/32")
    assert xfrm_block_policies(SPEC) == [
        XfrmPolicy("out", src=hub, dst=ANY),
        XfrmPolicy("in", src=ANY, dst=hub),
        XfrmPolicy("out", src=spoke, dst=ANY),
        XfrmPolicy("in", src=ANY, dst=spoke),
    ]
    for policy in xfrm_block_policies(SPEC):
        assert policy.proto == 47
        assert policy.action == "block"
        # Lower precedence than charon's SA (~366975) and wildcard trap (399744) policies.
        assert policy.priority == BLOCK_PRIORITY == 1_000_000
        assert policy.priority > 399744
        # Never charon's wildcard selector, which charon would overwrite and then delete.
        assert (policy.src, policy.dst) != (ANY, ANY)


def test_policy_ip_args() -> None:
    policy = XfrmPolicy("out", src=IPv4Network("198.51.100.11/32"), dst=ANY)
    assert policy.ip_args("add") == _block("out", "198.51.100.11/32", "0.0.0.0/0", "add")
    assert policy.ip_args("update") == _block("out", "198.51.100.11/32", "0.0.0.0/0", "update")
    assert policy.ip_args("delete") == [
        "ip",
        "xfrm",
        "policy",
        "delete",
        "src",
        "198.51.100.11/32",
        "dst",
        "0.0.0.0/0",
        "proto",
        "47",
        "dir",
        "out",
    ]
    with pytest.raises(ValueError, match="verb must be one of"):
        policy.ip_args("flush")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"direction": "fwd"}, "direction"),
        ({"proto": 256}, "proto"),
        ({"priority": -1}, "priority"),
        ({"priority": 2**32}, "priority"),
        ({"action": "allow"}, "action"),
    ],
)
def test_policy_validation(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"direction": "in", "src": ANY, "dst": ANY, **kwargs}
    with pytest.raises(ValueError, match=message):
        XfrmPolicy(**args)


@pytest.mark.parametrize(
    ("nbma", "group", "error", "message"),
    [
        ((), 3, ValueError, "at least one"),
        ((HUB,), 0, ValueError, r"outside 1\.\.65535"),
        ((HUB,), 65536, ValueError, r"outside 1\.\.65535"),
        ((HUB,), True, TypeError, "nflog_group must be an int"),
        ((HUB, HUB), 3, ValueError, "listed twice"),
        ((IPv4Address("0.0.0.0"),), 3, ValueError, "local unicast"),
        ((IPv4Address("224.0.0.5"),), 3, ValueError, "local unicast"),
        (("198.51.100.11",), 3, TypeError, "not an IPv4Address"),
        ((IPv6Address("2001:db8::1"),), 3, TypeError, "not an IPv4Address"),
        ([HUB], 3, TypeError, "must be a tuple"),
    ],
)
def test_spec_validation(nbma: Any, group: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        GuardSpec(nbma, nflog_group=group)


def test_spec_defaults() -> None:
    spec = GuardSpec((HUB,))
    assert spec.nflog_group == 3
    assert 'log group 3 prefix "frrdmvpn-guard-out"' in nft_ruleset(spec)
    assert GuardSpec((HUB,), nflog_group=65535).nflog_group == 65535


# --- render: parsing nft JSON ---------------------------------------------------------------


def test_parse_counters() -> None:
    assert parse_nft_counters(COUNTERS_JSON) == {
        "gre_out_cleartext": (3, 252),
        "gre_in_cleartext": (0, 0),
    }


def test_parse_counters_ignores_other_tables_and_objects() -> None:
    doc = {
        "nftables": [
            {"metainfo": {"json_schema_version": 1}},
            {"table": {"family": "inet", "name": "frrdmvpn_guard", "handle": 2}},
            {
                "counter": {
                    "family": "inet",
                    "name": "x",
                    "table": "other",
                    "packets": 1,
                    "bytes": 2,
                }
            },
            {
                "counter": {
                    "family": "ip",
                    "name": "y",
                    "table": "frrdmvpn_guard",
                    "packets": 1,
                    "bytes": 2,
                }
            },
        ]
    }
    assert parse_nft_counters(json.dumps(doc)) == {}
    assert parse_nft_counters('{"nftables": []}') == {}


def _counter(**fields: Any) -> str:
    body = {"family": "inet", "name": "c", "table": "frrdmvpn_guard", "packets": 1, "bytes": 2}
    body.update(fields)
    return json.dumps({"nftables": [{"counter": body}]})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "not JSON"),
        ("Error: No such file or directory", "not JSON"),
        ("[]", '"nftables" list'),
        ('{"nftables": {}}', '"nftables" list'),
        ('{"other": []}', '"nftables" list'),
        ('{"nftables": [1]}', r"nftables\[0\] is not an object"),
        ('{"nftables": [{"counter": "c"}]}', "counter entry is not an object"),
        (_counter(packets=None), "no valid 'packets'"),
        (_counter(bytes=-1), "no valid 'bytes'"),
        (_counter(packets="3"), "no valid 'packets'"),
        (_counter(packets=True), "no valid 'packets'"),
        (_counter(name=None), "without a name"),
        (
            json.dumps({"nftables": [json.loads(_counter())["nftables"][0]] * 2}),
            "listed twice",
        ),
    ],
)
def test_parse_counters_malformed(text: str, message: str) -> None:
    with pytest.raises(NftJsonError, match=message) as info:
        parse_nft_counters(text)
    assert isinstance(info.value, ValueError)


def test_guard_matches_rendered_table() -> None:
    assert nft_guard_matches(SPEC, _table_json())
    assert not nft_guard_matches(SPEC, _table_json(["198.51.100.11"]))
    assert not nft_guard_matches(GuardSpec((HUB,)), _table_json())
    doc = json.loads(_table_json())
    without_input = [o for o in doc["nftables"] if o.get("chain", {}).get("name") != "input"]
    assert not nft_guard_matches(SPEC, json.dumps({"nftables": without_input}))
    without_rules = [o for o in doc["nftables"] if "rule" not in o]
    assert not nft_guard_matches(SPEC, json.dumps({"nftables": without_rules}))
    with pytest.raises(ValueError, match="not JSON"):
        nft_guard_matches(SPEC, "nope")


# --- adapter: parsing ip xfrm text ----------------------------------------------------------


def test_parse_policies_text() -> None:
    shown = parse_xfrm_policies(POLICIES_TEXT)
    # Socket policies have no dir and are skipped; template lines don't leak into selectors.
    assert [(p.direction, p.selector["src"], p.action, p.priority) for p in shown] == [
        ("out", "198.51.100.11/32", "allow", 366975),
        ("out", "0.0.0.0/0", "allow", 399744),
        ("in", "0.0.0.0/0", "block", 1_000_000),
        ("out", "198.51.100.11/32", "block", 1_000_000),
        ("in", "0.0.0.0/0", "block", 1_000_000),
        ("out", "198.51.100.12/32", "block", 1_000_000),
    ]
    assert shown[0].selector == {
        "src": "198.51.100.11/32",
        "dst": "198.51.100.12/32",
        "proto": "gre",
    }
    wanted = xfrm_block_policies(SPEC)
    assert all(any(p.matches(w) for p in shown) for w in wanted)
    assert not any(shown[1].matches(w) for w in wanted)  # charon's trap is not ours


def test_parse_policies_marked_or_other_priority_do_not_count() -> None:
    text = (
        "src 198.51.100.11/32 dst 0.0.0.0/0 proto gre \n"
        "\tdir out action block priority 1000000 ptype main \n"
        "\tmark 0x5/0xff \n"
        "src 0.0.0.0/0 dst 198.51.100.11/32 proto 47 \n"
        "\tdir in action block priority 5 ptype main \n"
    )
    out, inbound = xfrm_block_policies(GuardSpec((HUB,)))
    first, second = parse_xfrm_policies(text)
    assert first.mark == "0x5/0xff"
    assert not first.matches(out)
    assert second.selector["proto"] == "47"
    assert not second.matches(inbound)
    assert parse_xfrm_policies("") == []
    assert parse_xfrm_policies("garbage\n\tmore garbage\n") == []


def test_parse_states_text() -> None:
    larval, real = parse_xfrm_states(STATES_TEXT)
    assert (larval.src, larval.dst, larval.proto, larval.spi) == (
        "198.51.100.11",
        "198.51.100.12",
        "esp",
        0,
    )
    assert (larval.reqid, larval.mode, larval.mark, larval.if_id) == (1, "transport", None, None)
    assert (real.src, real.spi, real.reqid) == ("198.51.100.12", 0xC1D2E3F4, 2)


def test_parse_states_skips_what_ip_would_not_take_back() -> None:
    head = "src 198.51.100.11 dst 198.51.100.12\n"
    assert parse_xfrm_states(head + "\tproto esp spi 0x00000000 reqid 1 mode bogus\n") == []
    assert parse_xfrm_states(head + "\tproto route2 spi 0x00000000 reqid 1\n") == []
    assert parse_xfrm_states(head + "\tproto esp spi zz reqid 1\n") == []
    assert parse_xfrm_states(head + "\tproto esp spi 0x0\n\tmark ;rm\n") == []
    assert parse_xfrm_states("src nowhere dst 198.51.100.12\n\tproto esp spi 0x0\n") == []
    stats = head + "\tproto esp spi 0x00000000(0) reqid 8(0x00000008) mode transport\n"
    (state,) = parse_xfrm_states(stats)
    assert (state.spi, state.reqid) == (0, 8)


# --- adapter: commands ----------------------------------------------------------------------


def test_install_argv() -> None:
    run = FakeRun()
    KernelGuard(SPEC, run).install()
    assert run.calls[0] == (("nft", "-f", "-"), GOLDEN_RULESET)
    assert run.argvs[1:] == _all_blocks("update")
    assert all(stdin is None for _, stdin in run.calls[1:])


def test_install_failure_carries_stderr() -> None:
    def answer(argv: tuple[str, ...]) -> Reply:
        return (1, "", "/dev/stdin:18:3-20: Error: Could not process rule: Operation not permitted")

    run = FakeRun(answer)
    with pytest.raises(GuardError, match=r"nft -f - failed \(exit 1\).*Operation not permitted"):
        KernelGuard(SPEC, run).install()
    assert len(run.calls) == 1  # no XFRM policy change after a failed nft transaction


def test_missing_binary_is_a_guard_error() -> None:
    def answer(argv: tuple[str, ...]) -> Reply:
        raise FileNotFoundError(2, "No such file or directory", argv[0])

    with pytest.raises(GuardError, match=r"^nft -f -: .*No such file"):
        KernelGuard(SPEC, FakeRun(answer)).install()


def _shown_block(local: str, direction: str, priority: int = BLOCK_PRIORITY) -> str:
    """A block policy as ``ip xfrm policy show`` prints it."""
    ends = [f"{local}/32", "0.0.0.0/0"] if direction == "out" else ["0.0.0.0/0", f"{local}/32"]
    return (
        f"src {ends[0]} dst {ends[1]} proto gre \n"
        f"\tdir {direction} action block priority {priority} ptype main \n"
    )


# An address guarded since (add), and a policy that is not the guard's.
EXTRA_BLOCKS = (
    _shown_block("198.51.100.13", "out")
    + _shown_block("198.51.100.13", "in")
    + _shown_block("198.51.100.14", "out", priority=5)
)


def test_remove_argv_and_not_found_is_ignored() -> None:
    def answer(argv: tuple[str, ...]) -> Reply:
        if argv == ("ip", "xfrm", "policy", "show"):
            return (0, POLICIES_TEXT + EXTRA_BLOCKS, "")
        return (2, "", IP_ENOENT) if argv[:2] == ("ip", "xfrm") else (0, "", "")

    run = FakeRun(answer)
    KernelGuard(SPEC, run).remove()
    assert run.calls[0] == (("nft", "-f", "-"), nft_delete_script())
    assert run.argvs[1] == ["ip", "xfrm", "policy", "show"]
    assert run.argvs[2:] == [
        *_all_blocks("delete"),
        _block("out", "198.51.100.13/32", "0.0.0.0/0", "delete"),
        _block("in", "0.0.0.0/0", "198.51.100.13/32", "delete"),
    ]


def test_remove_tries_everything_then_reports() -> None:
    def answer(argv: tuple[str, ...]) -> Reply:
        if argv[0] == "nft":
            return (1, "", "netlink: Error: cache initialization failed: Operation not permitted")
        if "198.51.100.12/32" in argv or "show" in argv:
            return (255, "", "RTNETLINK answers: Operation not permitted")
        return (0, "", "")

    run = FakeRun(answer)
    with pytest.raises(GuardError) as info:
        KernelGuard(SPEC, run).remove()
    assert len(run.calls) == 6
    assert str(info.value).count("Operation not permitted") == 4


def test_add_and_discard_change_only_the_set_in_one_transaction() -> None:
    run = FakeRun()
    guard = KernelGuard(SPEC, run)
    guard.add([IPv4Address("198.51.100.13"), HUB])
    assert run.calls[0] == (
        ("nft", "-f", "-"),
        "add element inet frrdmvpn_guard nbma { 198.51.100.11, 198.51.100.13 }\n",
    )
    assert run.argvs[1:] == [
        *_all_blocks("update")[:2],
        _block("out", "198.51.100.13/32", "0.0.0.0/0", "update"),
        _block("in", "0.0.0.0/0", "198.51.100.13/32", "update"),
    ]
    run.calls.clear()
    guard.discard([IPv4Address("198.51.100.13")])
    assert run.calls[0] == (
        ("nft", "-f", "-"),
        # added first: removing an address the set does not hold is no error
        "add element inet frrdmvpn_guard nbma { 198.51.100.13 }\n"
        "delete element inet frrdmvpn_guard nbma { 198.51.100.13 }\n",
    )
    assert run.argvs[1:] == [
        _block("out", "198.51.100.13/32", "0.0.0.0/0", "delete"),
        _block("in", "0.0.0.0/0", "198.51.100.13/32", "delete"),
    ]
    run.calls.clear()
    guard.add([])
    guard.discard([])
    assert run.calls == []


def test_add_without_a_table_fails_and_discard_does_not() -> None:
    def answer(argv: tuple[str, ...]) -> Reply:
        if argv[0] == "nft":
            return (1, "", "Error: No such file or directory; did you mean table 'filter'?")
        return (2, "", IP_ENOENT)

    with pytest.raises(GuardError) as info:
        KernelGuard(SPEC, FakeRun(answer)).add([HUB])
    assert info.value.not_found
    run = FakeRun(answer)
    KernelGuard(SPEC, run).discard([HUB])
    assert len(run.calls) == 3


def test_listed_and_unblocked() -> None:
    run = FakeRun(_installed_answer((0, _table_json(["198.51.100.11", "198.51.100.99"]), "")))
    guard = KernelGuard(SPEC, run)
    listed = guard.listed()
    assert listed is not None
    assert listed.mismatch is None
    assert listed.nbma == {HUB, IPv4Address("198.51.100.99")}
    assert guard.unblocked([HUB, SPOKE, IPv4Address("198.51.100.99")]) == {
        IPv4Address("198.51.100.99")
    }
    assert KernelGuard(SPEC, FakeRun(_installed_answer((1, "", NFT_ENOENT)))).listed() is None
    junk = KernelGuard(SPEC, FakeRun(_installed_answer((0, "junk", "")))).listed()
    assert junk is not None
    assert junk.mismatch is not None
    assert "not JSON" in junk.mismatch


def test_installed_covering_accepts_more_addresses_than_the_spec() -> None:
    both = FakeRun(_installed_answer((0, _table_json(), "")))
    one = KernelGuard(GuardSpec((HUB,), nflog_group=5), both)
    assert not one.installed()
    assert one.installed(covering=True)
    fewer = FakeRun(_installed_answer((0, _table_json(["198.51.100.11"]), "")))
    assert not KernelGuard(SPEC, fewer).installed(covering=True)


def test_installed() -> None:
    run = FakeRun(_installed_answer((0, _table_json(), "")))
    assert KernelGuard(SPEC, run).installed()
    assert run.argvs == [
        ["nft", "-j", "list", "table", "inet", "frrdmvpn_guard"],
        ["ip", "xfrm", "policy", "show"],
    ]


def test_not_installed() -> None:
    absent = FakeRun(_installed_answer((1, "", NFT_ENOENT)))
    assert not KernelGuard(SPEC, absent).installed()
    assert len(absent.calls) == 1
    stale_set = FakeRun(_installed_answer((0, _table_json(["198.51.100.11"]), "")))
    assert not KernelGuard(SPEC, stale_set).installed()
    # One block policy missing (charon overwrote or someone deleted it).
    lines = POLICIES_TEXT.splitlines(keepends=True)
    cut = lines.index("src 198.51.100.12/32 dst 0.0.0.0/0 proto gre \n")
    missing = "".join(lines[:cut] + lines[cut + 2 :])
    no_policy = FakeRun(_installed_answer((0, _table_json(), ""), missing))
    assert not KernelGuard(SPEC, no_policy).installed()
    broken = FakeRun(_installed_answer((1, "", "Error: Operation not permitted")))
    with pytest.raises(GuardError, match="Operation not permitted"):
        KernelGuard(SPEC, broken).installed()


def test_counters() -> None:
    run = FakeRun(lambda argv: (0, COUNTERS_JSON, ""))
    assert KernelGuard(SPEC, run).counters() == {
        "gre_out_cleartext": (3, 252),
        "gre_in_cleartext": (0, 0),
    }
    assert run.argvs == [["nft", "-j", "list", "counters", "table", "inet", "frrdmvpn_guard"]]
    with pytest.raises(GuardError, match="not JSON"):
        KernelGuard(SPEC, FakeRun(lambda argv: (0, "junk", ""))).counters()
    with pytest.raises(GuardError, match="No such file or directory") as info:
        KernelGuard(SPEC, FakeRun(lambda argv: (1, "", NFT_ENOENT))).counters()
    assert info.value.not_found


def _state_answer(states: str, allocspi: str = ALLOCSPI_TEXT) -> Callable[..., Reply]:
    def answer(argv: tuple[str, ...]) -> Reply:
        if argv == ("ip", "xfrm", "state", "show"):
            return (0, states, "")
        if argv[:4] == ("ip", "xfrm", "state", "allocspi"):
            return (0, allocspi, "")
        if argv[:4] == ("ip", "xfrm", "state", "delete"):
            return (0, "", "")
        raise AssertionError(f"unexpected command {argv}")

    return answer


def test_flush_larval_states() -> None:
    run = FakeRun(_state_answer(STATES_TEXT))
    assert KernelGuard(SPEC, run).flush_larval_states() == 1
    ident = ["src", "198.51.100.11", "dst", "198.51.100.12", "proto", "esp"]
    assert run.argvs == [
        ["ip", "xfrm", "state", "show"],
        # Adopt the larval state (the kernel cannot delete by SPI 0), then delete it.
        ["ip", "xfrm", "state", "allocspi", *ident, "mode", "transport", "reqid", "1"],
        ["ip", "xfrm", "state", "delete", *ident, "spi", "0x0d2e3344"],
    ]


def test_flush_larval_states_marks_if_id_and_nothing_to_do() -> None:
    marked = STATES_TEXT.replace(
        "\treplay-window 0 \n", "\treplay-window 0 \n\tmark 0x5/0xff \n", 1
    )
    run = FakeRun(_state_answer(marked))
    assert KernelGuard(SPEC, run).flush_larval_states() == 1
    assert run.argvs[1][-4:] == ["mark", "0x5", "mask", "0xff"]
    assert run.argvs[2][-4:] == ["mark", "0x5", "mask", "0xff"]
    with_if_id = STATES_TEXT.replace("\treplay-window 0 \n", "\tif_id 0x7 \n", 1)
    run = FakeRun(_state_answer(with_if_id))
    assert KernelGuard(SPEC, run).flush_larval_states() == 0
    assert len(run.calls) == 1
    run = FakeRun(_state_answer(""))
    assert KernelGuard(SPEC, run).flush_larval_states() == 0


def test_flush_larval_states_bad_allocspi_output() -> None:
    run = FakeRun(_state_answer(STATES_TEXT, allocspi=""))
    with pytest.raises(GuardError, match="printed no SPI"):
        KernelGuard(SPEC, run).flush_larval_states()


# --- the ruleset against the real nft parser -------------------------------------------------


def _nft_check(script: str) -> subprocess.CompletedProcess[str]:
    """``nft -c -f -`` (check only, nothing applied), in a private netns when possible."""
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    nft = shutil.which("nft", path=path)
    if nft is None:
        pytest.skip("nft (package nftables) is not installed")
    unshare = shutil.which("unshare", path=path)
    tries = [[unshare, "-rn", nft, "-c", "-f", "-"]] if unshare else []
    tries.append([nft, "-c", "-f", "-"])
    proc = None
    for argv in tries:
        proc = subprocess.run(
            argv, input=script, capture_output=True, text=True, check=False, timeout=30
        )
        if "unshare failed" not in proc.stderr:
            break
    assert proc is not None
    if proc.returncode != 0 and "Operation not permitted" in proc.stderr:
        pytest.skip("nft -c needs CAP_NET_ADMIN or unprivileged user namespaces")
    return proc


def test_ruleset_passes_nft_check() -> None:
    proc = _nft_check(nft_ruleset(SPEC))
    assert proc.returncode == 0, proc.stderr
    assert _nft_check(nft_delete_script()).returncode == 0


def test_nft_check_rejects_a_broken_ruleset() -> None:
    proc = _nft_check(nft_ruleset(SPEC).replace("rt ipsec missing", "rt ipsec absent"))
    assert proc.returncode != 0
    assert "Error" in proc.stderr
