"""The shell's engine against a fake API: modes, prompts, configuration mode, handlers,
modifiers, debug streaming and the batch front end."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import grpc
import pytest

from cli import debug
from cli.api import context_from_pb, context_to_pb
from cli.handlers import BANNER
from cli.main import run_batch
from cli.parsed import Level
from cli.session import Session
from frrdmvpn.command_engine.ios_text import INCOMPLETE, INVALID
from frrdmvpn.config.modes import ROOT, Context, Mode
from frrdmvpn.config.parse import parse_strict
from frrdmvpn.v1 import (
    config_pb2,
    nhrp_pb2,
    types_pb2,
)
from frrdmvpn.v1 import watch_service_pb2 as wpb
from tests.fakes.api_node import HUB_TEXT
from tests.fakes.shell import (
    NOW,
    FakeApi,
    FakeCall,
    FakeRender,
    FakeRpcError,
    peer,
    session_of,
)

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]


def run(session: Session, *lines: str) -> list[str]:
    out: list[str] = []
    for line in lines:
        out += session.execute(line).lines
    return out


# --- modes and prompts --------------------------------------------------------------------


def test_modes_and_prompts() -> None:
    s, _, _ = session_of()
    assert s.prompt == "hub#"  # the configuration's host name
    assert run(s, "disable") == []
    assert s.prompt == "hub>"
    assert s.execute("conf t").lines[1:] == [INVALID, ""]
    run(s, "en")
    assert s.prompt == "hub#"
    assert run(s, "conf t") == [BANNER]
    assert BANNER == "Enter configuration commands, one per line.  End with CNTL/Z."
    assert s.prompt == "hub(config)#"
    run(s, "interface Tunnel0")
    assert s.prompt == "hub(config-if)#"
    run(s, "exit")
    assert s.prompt == "hub(config)#"
    run(s, "crypto ikev2 keyring lab", "peer any")
    assert s.prompt == "hub(config-ikev2-keyring-peer)#"
    run(s, "exit")
    assert s.prompt == "hub(config-ikev2-keyring)#"
    assert s.context == Context(Mode.IKEV2_KEYRING, ("lab",))
    run(s, "router ospf 1")  # a global command leaves the sub-mode, like IOS
    assert s.prompt == "hub(config-router)#"
    run(s, "end")
    assert s.prompt == "hub#"
    run(s, "configure terminal", "int tu0")
    assert s.end().lines == []  # Ctrl-Z
    assert s.prompt == "hub#"
    run(s, "conf t", "exit")
    assert s.prompt == "hub#"
    assert not s.finished
    run(s, "exit")
    assert s.finished


def test_the_daemons_host_name_when_the_configuration_has_none() -> None:
    api = FakeApi()
    api.config = parse_strict(HUB_TEXT.replace("hostname hub\n", ""))
    assert session_of(api)[0].prompt == "hub-node#"
    api.down = True
    assert session_of(api)[0].prompt == "frrdmvpn#"
    assert session_of(api, level=Level.USER)[0].prompt == "frrdmvpn>"


def test_a_show_command_asks_nothing_for_a_prompt_it_does_not_show() -> None:
    """``frrdmvpn-shell -c "show dmvpn"`` prints no prompt: the host name is read (the
    whole configuration, validated) only when a prompt first needs it."""
    s, api, _ = session_of()
    run(s, "show dmvpn")
    assert "get_config" not in [c[0] for c in api.calls]
    assert s.prompt == "hub#"
    assert s.prompt == "hub#"
    assert [c[0] for c in api.calls].count("get_config") == 1  # read once


def test_the_shell_run_with_a_show_command_reads_no_configuration() -> None:
    """``frrdmvpn-shell -c "show dmvpn"``: the prompt (and so the configured host name) is
    needed only for an error's echo."""
    api, out, err = FakeApi(), io.StringIO(), io.StringIO()
    assert run_batch(api, ["show dmvpn"], out=out, err=err, render=FakeRender()) == 0
    assert "get_config" not in [c[0] for c in api.calls]
    assert run_batch(api, ["show nonsense"], out=out, err=err, render=FakeRender()) == 1
    assert err.getvalue().startswith("hub#show nonsense\n")


def test_configuration_lines_go_to_the_api_and_apply() -> None:
    s, api, _ = session_of()
    run(s, "conf t", "int Tunnel0")
    out = s.execute(" ip nhrp holdtime 30")
    assert out.ok
    assert out.lines == []
    assert ("edit_line", (Context(Mode.INTERFACE, ("Tunnel0",)), " ip nhrp holdtime 30")) in (
        api.calls
    )
    assert api.config.interfaces[0].nhrp_holdtime == 30
    run(s, "no ip nhrp redirect")
    assert not api.config.interfaces[0].nhrp_redirect
    shown = run(s, "do show running-config interface Tunnel0")
    assert shown[:3] == ["Building configuration...", "", shown[2]]
    assert shown[3:5] == ["!", "interface Tunnel0"]
    assert " ip nhrp holdtime 30" in shown
    assert shown[-1] == "end"
    body = "\n".join(shown[3:]) + "\n"
    assert shown[2] == f"Current configuration : {len(body.encode())} bytes"
    run(s, "exit", "hostname edge")
    assert s.prompt == "edge(config)#"
    run(s, "! a comment", "")
    assert s.prompt == "edge(config)#"


def test_configuration_errors_print_like_ios() -> None:
    s, api, _ = session_of()
    run(s, "conf t", "interface Tunnel0")
    prompt = "hub(config-if)#"
    bad = s.execute(" ip nhrp holdtme 30")
    assert not bad.ok
    assert bad.lines == [" " * (len(prompt) + len(" ip nhrp holdt")) + "^", INVALID, ""]
    assert s.execute("ip nhrp").lines == [INCOMPLETE, ""]
    value = s.execute("ip nhrp holdtime 9999999")
    assert value.lines == [" " * (len(prompt) + 17) + "^", "% 9999999 is out of range 1-65000", ""]
    unknown = s.execute("bogus command")
    assert unknown.lines == [" " * len(prompt) + "^", INVALID, ""]
    # an unknown first word: the caret where it stops beginning any first word of the
    # mode, the shell's (do, end, exit) and the negations (no, default) included
    assert s.execute("def ip mtu 1400").lines == [" " * len(prompt) + "^", INVALID, ""]
    assert s.execute("exclude").lines == [" " * (len(prompt) + 2) + "^", INVALID, ""]
    assert s.execute("ip mtu 1x00").lines[0] == " " * (len(prompt) + 8) + "^"  # under x
    assert s.execute("e").lines == ['% Ambiguous command:  "e"']
    assert s.prompt == prompt  # nothing changed
    api.down = True
    assert s.execute("ip nhrp holdtime 30").lines == [
        "% frrdmvpnd is not reachable at unix:/fake/api.sock: connection refused"
    ]


def test_a_line_that_leaves_the_configuration_invalid_stays_pending() -> None:
    s, api, _ = session_of()
    run(s, "conf t")
    api.reject_apply = True
    out = s.execute("interface Tunnel1")
    assert out.ok
    assert out.lines[0].startswith("% Not applied yet")
    assert "Tunnel1: ip address is required" in out.lines[1]
    assert s.prompt == "hub(config-if)#"
    assert s.end().lines[0].startswith("% Warning: the configuration has changes")


def test_do_runs_exec_commands_but_not_mode_changes() -> None:
    s, _, _ = session_of()
    run(s, "conf t", "int tu0")
    assert run(s, "do sh dm")[0] == "show_dmvpn UP"
    assert s.execute("do conf t").lines == ["% This command cannot be run through 'do'"]
    assert s.execute("do").lines == [INCOMPLETE, ""]
    assert s.prompt == "hub(config-if)#"


# --- show commands ------------------------------------------------------------------------


def test_show_commands_hand_the_api_messages_to_the_renderers() -> None:
    s, api, fake = session_of()
    run(s, "show dmvpn detail")
    name, args, kwargs = fake.calls[-1]
    assert name == "show_dmvpn"
    assert [p.key.remote_nbma for p in args[1]] == ["198.51.100.2", "198.51.100.3", "198.51.100.4"]
    assert args[0].hostname == "hub-node"
    assert kwargs == {"detail": True, "now": NOW}
    assert ("peers", (True, {})) in api.calls
    run(s, "sh ip nh nhs")
    assert fake.calls[-1][0] == "show_ip_nhrp_nhs"
    assert fake.calls[-1][2]["detail"] is False
    run(s, "sh cry ipsec sa peer 198.51.100.3")
    assert fake.calls[-1][2] == {"peer": "198.51.100.3", "now": NOW}
    run(s, "show crypto session remote 198.51.100.3 detail")
    assert [p.key.remote_nbma for p in fake.calls[-1][1][0]] == ["198.51.100.3"]
    assert fake.calls[-1][2]["detail"] is True
    for line, renderer in [
        ("sh ip nhrp", "show_ip_nhrp"),
        ("sh ip nhrp br", "show_ip_nhrp_brief"),
        ("sh ip nhrp traffic", "show_ip_nhrp_traffic"),
        ("sh cry ikev2 sa", "show_crypto_ikev2_sa"),
        ("sh ip ospf nei", "show_ip_ospf_neighbor"),
        ("sh frr guard", "show_frrdmvpn_guard"),
        ("sh frr auth", "show_frrdmvpn_authorization"),
    ]:
        assert run(s, line)[0] == f"{renderer} UP"


def test_output_modifiers_and_json() -> None:
    s, _, _ = session_of()
    assert run(s, "sh dm | i DOWN") == ["  show_dmvpn line DOWN"]
    assert run(s, "sh dm | e DOWN") == ["show_dmvpn UP", "last line UP"]
    assert run(s, "sh dm | b last") == ["last line UP"]
    assert run(s, "sh dm | c UP") == ["Number of lines which match regexp = 2"]
    assert run(s, "sh dm | sec show_dmvpn UP") == ["show_dmvpn UP", "  show_dmvpn line DOWN"]
    assert s.execute("sh dm | i (").lines[0].startswith("% Invalid regular expression")
    data = json.loads("\n".join(run(s, "sh dm | json")))
    assert [p["key"]["remoteNbma"] for p in data] == [
        "198.51.100.2",
        "198.51.100.3",
        "198.51.100.4",
    ]
    both = json.loads("\n".join(run(s, "sh frrdmvpn authorization | json")))
    assert set(both) == {"status", "decisions"}
    config = json.loads("\n".join(run(s, "sh run | json")))
    assert "hostname hub" in config["text"]


def test_running_and_startup_configuration_and_write() -> None:
    s, api, _ = session_of()
    shown = run(s, "show running-config")
    assert shown[:4] == ["Building configuration...", "", shown[2], "!"]
    assert shown[4] == "hostname hub"
    assert shown[-2:] == ["!", "end"]
    assert shown.count("end") == 1
    assert run(s, "sh run | sec ^interface")[0] == "interface Tunnel0"
    assert run(s, "sh run section router")[0] == "router ospf 1"
    assert s.execute("sh run int tu9").lines == ["% Interface Tunnel9 is not configured"]
    assert s.execute("show startup-config").lines == ["startup-config is not present"]
    assert run(s, "wr") == ["Building configuration...", "[OK]"]
    assert run(s, "copy run start") == ["Building configuration...", "[OK]"]
    assert run(s, "write memory") == ["Building configuration...", "[OK]"]
    startup = run(s, "show startup-config")
    assert startup[0].startswith("Using ")
    assert "hostname hub" in startup
    assert run(s, "write terminal")[0] == "Building configuration..."
    api.down = True
    failed = s.execute("wr")
    assert not failed.ok
    assert failed.lines[0] == "Building configuration..."


def test_terminal_history_version_and_api_errors() -> None:
    s, api, _ = session_of(length=24)
    run(s, "terminal length 0", "terminal width 511", "terminal monitor")
    assert (s.length, s.width, s.monitor) == (0, 511, True)
    assert run(s, "show terminal")[0] == "Length: 0 lines, Width: 511 columns"
    assert run(s, "show history")[:2] == ["  terminal length 0", "  terminal width 511"]
    version = run(s, "show version")
    assert version[0] == "frrdmvpn Software (frrdmvpnd), Version 0.1.0"
    assert "hub-node uptime is 3 hours, 2 minutes" in version
    api.down = True
    assert s.execute("show dmvpn").lines == [
        "% frrdmvpnd is not reachable at unix:/fake/api.sock: connection refused"
    ]
    api.down = False
    api.saved = None
    missing = s.execute("show ip nhrp nhs | json")
    assert missing.ok


def test_question_mark_at_the_end_of_a_line_is_help() -> None:
    s, _, _ = session_of()
    out = s.execute("show ip nhrp ?")
    assert out.ok
    assert out.lines[-2:] == ["  <cr>", ""]
    assert s.execute("sh?").lines == ["show", ""]
    run(s, "conf t")
    assert s.execute("int?").lines == ["interface", ""]


# --- clear --------------------------------------------------------------------------------


def test_clear_commands() -> None:
    s, api, _ = session_of()
    assert run(s, "clear crypto session remote 198.51.100.3") == []
    assert api.calls[-1] == ("clear", {"remote_nbma": "198.51.100.3", "scope": "ipsec"})
    run(s, "clear crypto session")
    assert api.calls[-1] == ("clear", {"remote_nbma": "", "scope": "ipsec"})
    run(s, "clear ip nhrp")
    assert api.calls[-1] == ("clear", {"tunnel_address": "", "scope": "nhrp"})
    run(s, "clear dmvpn session peer 198.51.100.3 static")
    assert api.calls[-1] == (
        "clear",
        {"remote_nbma": "198.51.100.3", "scope": "nhrp+ipsec", "include_static": True},
    )
    run(s, "clear frrdmvpn counters")
    assert api.calls[-1] == ("clear_counters", "all")  # type: ignore[comparison-overlap]
    api.clear_done = False
    failed = s.execute("clear ip nhrp 192.0.2.11")
    assert not failed.ok
    assert failed.lines == ["% 198.51.100.2: nothing to clear"]


def test_clear_dmvpn_session_peer_falls_back_to_the_tunnel_address() -> None:
    s, api, _ = session_of()
    real = api.clear

    def clear(**kw: Any) -> list[Any]:
        if kw.get("remote_nbma"):
            raise FakeRpcError(grpc.StatusCode.NOT_FOUND, "no peer")
        return real(**kw)

    api.clear = clear  # type: ignore[method-assign]
    assert s.execute("clear dmvpn session peer 192.0.2.11").ok
    assert api.calls[-1][1]["tunnel_address"] == "192.0.2.11"


# --- debug --------------------------------------------------------------------------------


def transition_event() -> wpb.WatchResponse:
    event = wpb.WatchResponse(sequence=7)
    event.time.FromSeconds(int(NOW))
    event.peer.change = wpb.CHANGE_TYPE_UPDATED
    event.peer.peer.CopyFrom(peer(1, types_pb2.PEER_STATE_DOWN))
    event.peer.transition.from_state = types_pb2.PEER_STATE_UP
    event.peer.transition.to_state = types_pb2.PEER_STATE_DOWN
    event.peer.transition.reason = "no IKE_SA"
    return event


def test_debug_streams_the_watch_api_until_undebug() -> None:
    lines: list[str] = []
    got = threading.Event()

    def emit(line: str) -> None:
        lines.append(line)
        got.set()

    api = FakeApi()
    api.events = [transition_event()]
    s, _, _ = session_of(api, emit=emit)
    assert run(s, "debug dmvpn") == ["DMVPN debugging is on"]
    assert api.calls[-1] == ("watch", (["ipsec_sa", "peer"], False))
    assert got.wait(5)
    assert lines[0].endswith(
        "DMVPN: Tunnel0: peer 192.0.2.11 (NBMA 198.51.100.3) UP -> DOWN: no IKE_SA"
    )
    assert run(s, "show debugging") == ["DMVPN:", "  DMVPN debugging is on"]
    assert run(s, "debug nhrp") == ["NHRP protocol debugging is on"]
    assert api.calls[-1] == ("watch", (["ipsec_sa", "nhrp_cache", "nhs", "peer"], False))
    assert api.watches[0].cancelled.is_set()  # one stream at a time
    assert run(s, "no debug dmvpn") == ["DMVPN debugging is off"]
    assert run(s, "undebug all") == ["All possible debugging has been turned off"]
    assert all(w.cancelled.is_set() for w in api.watches)
    assert not s.debugger.active
    assert run(s, "show debugging") == []


def test_debug_lines_for_each_event_kind() -> None:
    event = transition_event()
    assert debug.event_lines(event, ["nhrp"]) == []
    assert "UP -> DOWN" in debug.event_lines(event, ["dmvpn"])[0]
    assert debug.stamp(event).startswith("*")
    sa = wpb.WatchResponse()
    sa.ipsec_sa.change = wpb.CHANGE_TYPE_REMOVED
    sa.ipsec_sa.peer.remote_nbma = "198.51.100.3"
    sa.ipsec_sa.ike_sa.unique_id = 12
    sa.ipsec_sa.ike_sa.local_host = "198.51.100.1"
    sa.ipsec_sa.ike_sa.remote_host = "198.51.100.3"
    assert (
        "%DMVPN-5-CRYPTO_SS: IKE_SA #12 local 198.51.100.1 remote 198.51.100.3 "
        in (debug.event_lines(sa, ["dmvpn"])[0])
    )
    assert "is DOWN" in debug.event_lines(sa, ["dmvpn"])[0]
    cache = wpb.WatchResponse()
    cache.nhrp_cache.change = wpb.CHANGE_TYPE_ADDED
    entry = cache.nhrp_cache.entry
    entry.interface, entry.protocol_address, entry.prefix_length = "Tunnel0", "192.0.2.11", 32
    entry.via, entry.nbma_address = "192.0.2.11", "198.51.100.3"
    entry.type = nhrp_pb2.NHRP_CACHE_TYPE_DYNAMIC
    assert debug.event_lines(cache, ["nhrp"])[0].endswith(
        "NHRP: Tunnel0: cache entry 192.0.2.11/32 via 192.0.2.11 NBMA 198.51.100.3 (dynamic) added"
    )
    nhs = wpb.WatchResponse()
    nhs.nhs.change = wpb.CHANGE_TYPE_UPDATED
    nhs.nhs.nhs.CopyFrom(
        nhrp_pb2.Nhs(
            interface="Tunnel0",
            protocol_address="192.0.2.1",
            nbma_address="198.51.100.1",
            state=nhrp_pb2.NHS_STATE_RESPONDING,
        )
    )
    assert debug.event_lines(nhs, ["nhrp"])[0].endswith(
        "NHRP: Tunnel0: NHS 192.0.2.1 (NBMA 198.51.100.1) updated: RE (responding)"
    )
    overflow = wpb.WatchResponse()
    overflow.overflow.lost_events = 3
    assert "3 event(s) lost" in debug.event_lines(overflow, ["nhrp"])[0]


# --- the batch front end ------------------------------------------------------------------


def test_batch_output_errors_and_exit_status() -> None:
    out, err = io.StringIO(), io.StringIO()
    status = run_batch(
        FakeApi(),
        ["sh dm | i DOWN", "sh dmvpx", "conf t", "int tu0", " ip nhrp holdtime 30\x1a", "wr"],
        out=out,
        err=err,
        render=FakeRender(),
    )
    assert status == 1
    assert out.getvalue().splitlines() == [
        "  show_dmvpn line DOWN",
        BANNER,
        "Building configuration...",
        "[OK]",
    ]
    assert err.getvalue().splitlines() == ["hub#sh dmvpx", "           ^", INVALID, ""]
    assert (
        run_batch(FakeApi(), ["show dmvpn", "show ip nhrp"], out=io.StringIO(), render=FakeRender())
        == 0
    )


def test_batch_json_option() -> None:
    out = io.StringIO()
    assert (
        run_batch(
            FakeApi(),
            ["show dmvpn", "terminal length 0"],
            json_output=True,
            out=out,
            render=FakeRender(),
        )
        == 0
    )
    assert json.loads(out.getvalue())[0]["key"]["remoteNbma"] == "198.51.100.2"


def test_contexts_round_trip_through_the_api_messages() -> None:
    for context in (
        ROOT,
        Context(Mode.INTERFACE, ("Tunnel0",)),
        Context(Mode.IKEV2_KEYRING_PEER, ("lab", "any")),
    ):
        assert context_from_pb(context_to_pb(context)) == context
    assert context_from_pb(config_pb2.ConfigContext()) == ROOT


class EndingCall(FakeCall):
    """A Watch stream the daemon ends (it is shutting down), once ``ready()`` is true."""

    def __init__(self, events: Iterable[Any], ready: Any) -> None:
        super().__init__(events)
        self.ready = ready

    def __iter__(self) -> Iterator[Any]:
        for _ in range(500):
            if self.ready():
                break
            time.sleep(0.01)
        yield from self.events
        raise FakeRpcError(grpc.StatusCode.UNAVAILABLE, "the daemon is shutting down")


def test_a_debug_stream_the_daemon_ends_turns_debugging_off() -> None:
    api = FakeApi()
    out = io.StringIO()

    def watch(kinds: Iterable[str] = (), snapshot: bool = True, timeout: Any = None) -> Any:
        return EndingCall([transition_event()], lambda: "on" in out.getvalue())

    api.watch = watch  # type: ignore[method-assign]
    assert run_batch(api, ["debug dmvpn"], out=out, render=FakeRender()) == 0  # returns
    lines = out.getvalue().splitlines()
    assert lines[0] == "DMVPN debugging is on"
    assert "UP -> DOWN" in lines[1]
    assert lines[2:] == [
        "% debug stream ended: UNAVAILABLE: the daemon is shutting down",
        "All possible debugging has been turned off",
    ]


# --- roles ------------------------------------------------------------------------------------


def test_an_operator_is_refused_what_ios_command_authorization_refuses() -> None:
    api = FakeApi()
    api.operator = True
    s, _, _ = session_of(api)
    refused = (
        "configure terminal",
        "conf t",
        "write memory",
        "copy running-config startup-config",
        "show running-config unmasked",
        "show startup-config unm",
    )
    for line in refused:
        out = s.execute(line)
        assert (out.lines, out.ok) == (["Command authorization failed."], False), line
        assert s.prompt == "hub#"
    shown = s.execute("show running-config")
    assert shown.ok
    assert "  pre-shared-key <removed>" in shown.lines
    assert not any("frrdmvpn-lab-psk" in line for line in shown.lines)
    assert ("edit_line", (ROOT, "hostname x")) not in api.calls


def test_an_administrator_configures_and_sees_secrets_only_when_asked() -> None:
    s, _, _ = session_of()
    assert "  pre-shared-key <removed>" in s.execute("show running-config").lines
    unmasked = s.execute("show running-config unmasked").lines
    assert "  pre-shared-key frrdmvpn-lab-psk-not-for-production" in unmasked
    assert s.execute("conf t").lines == [BANNER]
    assert s.execute("hostname spoke").ok
    assert s.prompt == "spoke(config)#"


def test_a_refused_configuration_line_is_command_authorization_failed() -> None:
    """The role changed under a session in configuration mode: the daemon refuses the line."""
    s, api, _ = session_of()
    assert s.execute("conf t").ok
    api.operator = True
    out = s.execute("hostname x")
    assert (out.lines, out.ok) == (["Command authorization failed."], False)
    assert s.prompt == "hub(config)#"
