"""The shell's parser, ``?`` help and TAB completion over the command tree (pure)."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from cli import handlers
from cli.parse import (
    LineKind,
    config_complete,
    config_help,
    config_line_kind,
    exec_complete,
    exec_help,
    parse,
)
from cli.parsed import Level, Parsed, Pipe
from frrdmvpn.command_engine.grammar import Failure, FailureKind
from frrdmvpn.command_engine.ios_text import INCOMPLETE, INVALID, UNRECOGNIZED, failure_lines
from frrdmvpn.config.modes import Mode

pytestmark = pytest.mark.unit

PRIV, USER, CONFIG = Level.PRIV, Level.USER, Level.CONFIG


def parsed(line: str, level: Level = PRIV) -> Parsed:
    result = parse(line, level)
    assert isinstance(result, Parsed), result
    return result


def failed(line: str, level: Level = PRIV) -> Failure:
    result = parse(line, level)
    assert isinstance(result, Failure), result
    return result


PEER = IPv4Address("198.51.100.2")

#: The failures IOS prints as a caret under the first bad character.
CARET = (FailureKind.INVALID, FailureKind.REFUSED, FailureKind.EXTRA)


def caret(line: str, level: Level = PRIV) -> int:
    """Where the ``^`` goes for ``line`` (its offset in the line)."""
    failure = failed(line, level)
    assert failure.kind in CARET, failure
    return failure.offset


@pytest.mark.parametrize(
    ("line", "handler", "args"),
    [
        ("sh dm", "show_dmvpn", {}),
        ("show dmvpn detail", "show_dmvpn", {"detail": True}),
        ("sh dm det", "show_dmvpn", {"detail": True}),
        ("SHOW DMVPN", "show_dmvpn", {}),
        ("conf t", "configure", {"terminal": True}),
        ("sh ip nh nhs", "show_ip_nhrp_nhs", {}),
        ("sh ip nh nhs d", "show_ip_nhrp_nhs", {"detail": True}),
        ("sh ip nhrp br", "show_ip_nhrp_brief", {}),
        ("sh ip nhrp tr", "show_ip_nhrp_traffic", {}),
        ("sh ip ospf nei", "show_ip_ospf_neighbor", {}),
        ("wr", "write_memory", {}),
        ("wr mem", "write_memory", {"memory": True}),
        ("copy run start", "write_memory", {}),
        ("sh cry sess det", "show_crypto_session", {"detail": True}),
        (
            "sh cry se rem 198.51.100.2",
            "show_crypto_session",
            {"remote": IPv4Address("198.51.100.2")},
        ),
        (
            "sh cry ips sa peer 198.51.100.2",
            "show_crypto_ipsec_sa",
            {"peer": IPv4Address("198.51.100.2")},
        ),
        ("sh cry ikev2 sa", "show_crypto_ikev2_sa", {}),
        ("sh frr guard", "show_frrdmvpn_guard", {}),
        ("sh frr auth", "show_frrdmvpn_authorization", {}),
        ("sh run int tu0", "show_running_config", {"interface": 0}),
        ("sh run int Tunnel12", "show_running_config", {"interface": 12}),
        ("clear ip nhrp", "clear_ip_nhrp", {}),
        ("clear ip nhrp 192.0.2.11", "clear_ip_nhrp", {"address": IPv4Address("192.0.2.11")}),
        (
            "clear crypto session remote 198.51.100.3",
            "clear_crypto_session",
            {"remote": IPv4Address("198.51.100.3")},
        ),
        (
            "clear dmvpn session peer 198.51.100.3 static",
            "clear_dmvpn_session",
            {"peer": IPv4Address("198.51.100.3"), "static": True},
        ),
        ("terminal length 0", "terminal_length", {"lines": 0}),
        ("term width 511", "terminal_width", {"columns": 511}),
        ("debug dmvpn", "debug_dmvpn", {}),
        ("undebug all", "undebug_all", {}),
        ("u all", "undebug_all", {}),
    ],
)
def test_abbreviations_at_every_level(line: str, handler: str, args: dict[str, object]) -> None:
    command = parsed(line)
    assert command.handler is getattr(handlers, handler)
    for name, value in args.items():
        assert command.args[name] == value


def test_no_forms_and_do() -> None:
    no = parsed("no debug dmvpn")
    assert (no.handler, no.negated) == (handlers.undebug_dmvpn, True)
    assert parsed("no deb all").handler is handlers.undebug_all
    assert failed("no show dmvpn").kind in CARET  # show has no `no` form
    assert failed("no").kind is FailureKind.INCOMPLETE
    do = parsed("do sh dm", CONFIG)
    assert (do.handler, do.via_do) == (handlers.show_dmvpn, True)
    assert parsed("do wr", CONFIG).handler is handlers.write_memory
    assert failed("do", CONFIG).kind is FailureKind.INCOMPLETE
    undo = parsed("do no debug all", CONFIG)  # no: of the privileged commands do reaches
    assert (undo.handler, undo.negated, undo.via_do) == (handlers.undebug_all, True, True)
    assert parsed("d no deb a", CONFIG).handler is handlers.undebug_all
    assert exec_help("do no ", CONFIG)[0].startswith("  debug ")
    assert exec_complete("do no d", CONFIG).text == "debug "
    assert failed("show dmvpn", CONFIG).kind in CARET  # only through do


def test_levels() -> None:
    assert parsed("sh dm", USER).handler is handlers.show_dmvpn
    assert parsed("enable", USER).handler is handlers.enable
    assert caret("conf t", USER) == 0
    assert caret("show running-config", USER) == 5
    assert failed("clear ip nhrp", USER).kind in CARET
    assert parse("   ", PRIV) is None


def test_pipes() -> None:
    command = parsed("sh ip nhrp nhs detail | i foo  bar ")
    assert command.pipe == Pipe("include", "foo  bar")
    assert command.args["detail"] is True
    assert parsed("show dmvpn | json").pipe == Pipe("json")
    assert parsed("sh run | sec crypto ikev2").pipe == Pipe("section", "crypto ikev2")
    assert parsed("sh dm | c UP").pipe == Pipe("count", "UP")
    assert parsed("sh dm | e ^ ").pipe == Pipe("exclude", "^")
    assert failed("show dmvpn |").kind is FailureKind.INCOMPLETE
    assert failed("show dmvpn | include").kind is FailureKind.INCOMPLETE
    assert failed("show dmvpn | co").kind is FailureKind.INCOMPLETE
    assert (
        failed("show dmvpn | e").kind is FailureKind.INCOMPLETE
    )  # e: exclude, which needs a regex
    assert failed("show dmvpn | x").kind in CARET
    assert caret("sh dm | json x") == 13
    assert caret("terminal length 0 | i x") == 18  # no output: no pipe


def test_the_caret_goes_under_the_first_bad_character() -> None:
    assert caret("sh dmvpx") == 7
    assert caret("show ip interfacee") == 8
    assert caret("show dmvpn detail extra") == 18
    assert caret("show ip nhrp nhss") == 16
    assert caret("clear crypto session remote 10.0.0.300") == 37
    assert caret("clear crypto session remote 10.x") == 31
    assert caret("terminal length 600") == 18
    assert caret("  xyz") == 2
    # Digits of other scripts are no number ("²".isdigit() is true, int("²") raises).
    assert caret("terminal length ²") == 16
    assert caret("terminal width ١٢") == 15
    assert caret("show crypto ipsec sa peer 198.51.100.²") == 37
    assert caret("sh run int tu٣") == 13
    lines = failure_lines(failed("sh dmvpx"), "sh dmvpx", len("hub#"))
    assert lines == ["           ^", INVALID, ""]
    assert lines[0].index("^") == len("hub#sh dmv") + 1  # under the x


def test_incomplete_and_ambiguous_messages() -> None:
    assert failure_lines(failed("sh ip"), "sh ip", 4) == [INCOMPLETE, ""]
    assert INCOMPLETE == "% Incomplete command."
    assert failure_lines(failed("show"), "show", 4) == [
        '% Type "show ?" for a list of subcommands',
        "",
    ]
    ambiguous = failed("c")
    assert ambiguous.kind is FailureKind.AMBIGUOUS
    assert failure_lines(ambiguous, " c ", 4) == ['% Ambiguous command:  "c"']
    assert failure_lines(failed("sh d"), "sh d", 4) == ['% Ambiguous command:  "sh d"']
    assert INVALID == "% Invalid input detected at '^' marker."


def test_help_after_a_word_lists_next_keywords_with_cr() -> None:
    lines = exec_help("show ip nhrp ", PRIV)
    assert lines == [
        "  brief    Brief display of NHRP cache entries",
        "  detail   Detailed display of NHRP cache entries",
        "  nhs      Next Hop Server information",
        "  traffic  NHRP traffic statistics",
        "  |        Output modifiers",
        "  <cr>",
        "",
    ]
    assert "  <cr>" not in exec_help("show ip ", PRIV)
    top = exec_help("", PRIV)
    assert any(line.startswith("  show ") for line in top)
    assert not any(line.startswith("  show ") for line in exec_help("", CONFIG))
    user = [line.split()[0] for line in exec_help("", USER) if line]
    assert user == ["enable", "exit", "logout", "show", "terminal"]
    assert exec_help("sh dm | ", PRIV)[0].startswith("  begin")
    assert exec_help("sh dm | i UP ", PRIV) == ["  <cr>", ""]
    assert exec_help("clear crypto session remote ", PRIV)[0].startswith("  A.B.C.D")
    assert exec_help("sh foo ", PRIV) == [UNRECOGNIZED]
    assert exec_help("sh d ", PRIV) == ['% Ambiguous command:  "sh d"']


def test_help_inside_a_word_lists_matching_keywords() -> None:
    assert exec_help("sh", PRIV) == ["show", ""]
    assert exec_help("c", PRIV) == ["clear  configure  copy", ""]
    assert exec_help("show d", PRIV) == ["debugging  dmvpn", ""]
    assert exec_help("show x", PRIV) == [UNRECOGNIZED]
    assert exec_help("show d", PRIV, width=12) == ["debugging", "dmvpn", ""]  # wrapped
    assert exec_help("sh dm | ", PRIV, width=12)[0].startswith("  begin")  # entries: not


def test_tab_completes_unique_keywords() -> None:
    one = exec_complete("sh", PRIV)
    assert (one.replace, one.text) == (2, "show ")
    assert exec_complete("sh ip nh", PRIV).text == "nhrp "
    assert exec_complete("show dmvpn | in", PRIV).text == "include "
    assert exec_complete("show ip", PRIV).text == "ip "
    many = exec_complete("c", PRIV)
    assert many.text is None
    assert many.candidates == ("clear", "configure", "copy")
    assert exec_complete("xyz ab", PRIV).text is None
    assert exec_complete("conf", USER).text is None


def test_configuration_lines_are_the_language_unless_do_end_exit() -> None:
    assert config_line_kind("interface Tunnel0", Mode.CONFIG) is LineKind.CONFIG
    assert config_line_kind("no ip nhrp redirect", Mode.INTERFACE) is LineKind.CONFIG
    assert config_line_kind("do show dmvpn", Mode.INTERFACE) is LineKind.SHELL
    assert config_line_kind("ex", Mode.CONFIG) is LineKind.SHELL
    assert config_line_kind("end", Mode.IKEV2_PROPOSAL) is LineKind.SHELL
    assert config_line_kind("e", Mode.CONFIG) is LineKind.AMBIGUOUS  # end, exit
    assert config_line_kind("en", Mode.IKEV2_PROPOSAL) is LineKind.AMBIGUOUS  # encryption
    assert config_line_kind("bogus", Mode.CONFIG) is LineKind.CONFIG  # the daemon says why


def test_configuration_help_and_completion_use_the_grammar() -> None:
    top = config_help("", Mode.CONFIG)
    words = [line.split()[0] for line in top if line]
    assert words == sorted(words)
    assert {"do", "end", "exit", "no", "default", "interface", "hostname", "crypto"} <= set(words)
    assert config_help("int", Mode.CONFIG) == ["interface", ""]
    assert config_help("interface ", Mode.CONFIG)[0].startswith("  TunnelN")
    nhrp = config_help("ip nhrp ", Mode.INTERFACE)
    assert any(line.startswith("  holdtime ") for line in nhrp)
    assert config_help("ip nhrp ho", Mode.INTERFACE) == ["holdtime", ""]
    assert config_help("ip nhrp holdtime 60 ", Mode.INTERFACE) == ["  <cr>", ""]
    assert config_help("bogus ", Mode.INTERFACE) == [UNRECOGNIZED]
    assert any(line.startswith("  dmvpn ") for line in config_help("do show ", Mode.INTERFACE))
    assert config_complete("int", Mode.CONFIG).text == "interface "
    assert config_complete("ip nh", Mode.INTERFACE).text == "nhrp "
    assert config_complete("ip nhrp hol", Mode.INTERFACE).text == "holdtime "
    assert config_complete("do sh", Mode.INTERFACE).text == "show "
    assert config_complete("ex", Mode.INTERFACE).text == "exit "
    assert config_complete("e", Mode.CONFIG).text is None
