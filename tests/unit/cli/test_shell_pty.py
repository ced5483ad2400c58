"""The real ``frrdmvpn-shell`` in a pseudo-terminal (pexpect) against a real API server.

The server is tests/fakes/shell_server.py (frrdmvpn.api.server.ApiServer over a Backend with the
lab hub's configuration and three spokes), started once for the module in a subprocess.
Two terminals are driven: an xterm (prompt-toolkit: ``?``, TAB, Ctrl-Z keys) and a vt100 as
Paramiko/Netmiko open it (the terminal's own echo: the transcript must read like IOS).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pexpect  # type: ignore[import-untyped]
import pytest

from frrdmvpn.command_engine.ios_text import INCOMPLETE, INVALID
from tests.fakes.shell_server import running

pytestmark = [pytest.mark.unit, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = Path(sys.executable).parent / "frrdmvpn-shell"
PROMPT = "hub#"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\x1b[=>]")


@pytest.fixture(scope="module")
def target() -> Iterator[str]:
    with running("fsh-") as socket:
        yield f"unix:{socket}"


def command(target: str) -> tuple[str, list[str]]:
    if SCRIPT.exists():
        return str(SCRIPT), ["--target", target]
    return sys.executable, ["-m", "cli.main", "--target", target]


def spawn(target: str, term: str) -> pexpect.spawn:
    program, args = command(target)
    env = dict(os.environ, TERM=term, PYTHONPATH=str(ROOT), LANG="C.UTF-8")
    child = pexpect.spawn(
        program, args, env=env, encoding="utf-8", dimensions=(24, 80), timeout=15, cwd=str(ROOT)
    )
    child.delaybeforesend = None  # the terminal keeps typeahead, as for a fast typist
    child.expect_exact(PROMPT)
    return child


def clean(text: str) -> str:
    return ANSI.sub("", text).replace("\r", "")


def caret_column(output: str) -> int:
    """The column of the caret line just above IOS's invalid-input message."""
    lines = clean(output).split("\n")
    index = next(i for i, line in enumerate(lines) if line == INVALID)
    caret = lines[index - 1]
    assert caret.strip() == "^", caret
    return caret.index("^")


def finish(child: pexpect.spawn) -> None:
    child.sendline("exit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


# --- prompt-toolkit terminal ---------------------------------------------------------------


def test_question_mark_and_tab_on_a_terminal(target: str) -> None:
    child = spawn(target, "xterm")
    child.send("sh\t")  # TAB: show
    child.send("ip nh\t")  # TAB: nhrp
    child.send("?")  # help after a word: the line is not changed
    child.expect_exact("hub#show ip nhrp ?")
    child.expect_exact("<cr>")
    help_text = clean(child.before + child.after)
    for entry in (
        "  brief    Brief display of NHRP cache entries",
        "  nhs      Next Hop Server",
        "  |        Output modifiers",
        "  <cr>",
    ):
        assert entry in help_text
    child.send("br")
    child.send("?")  # help inside a word
    child.expect_exact("hub#show ip nhrp br?")
    child.expect_exact("brief")
    child.send("\r")  # the line is "show ip nhrp br": the ? went into no line
    child.expect_exact("Target")
    child.expect_exact(PROMPT)
    assert "192.0.2.11" in clean(child.before)
    child.send("\x15sh ip nh ?")  # Ctrl-U erased the line first
    child.expect_exact("hub#sh ip nh ?")
    child.expect_exact(PROMPT)
    child.send("\x15")
    finish(child)


def test_abbreviations_and_errors_with_the_caret(target: str) -> None:
    child = spawn(target, "xterm")
    child.sendline("sh dm")
    child.expect_exact("Interface: Tunnel0, IPv4 NHRP Details")
    child.expect_exact(PROMPT)
    assert re.search(r"198\.51\.100\.3 +192\.0\.2\.11 +UP", clean(child.before))
    child.sendline("sh dmvpx")
    child.expect_exact(INVALID)
    assert caret_column(child.before + child.after) == len("hub#sh dmvp")  # under the x
    child.expect_exact(PROMPT)
    child.sendline("show ip interfacee brief")
    child.expect_exact(INVALID)
    assert caret_column(child.before + child.after) == len("hub#show ip ")
    child.sendline("sh ip")
    child.expect_exact(INCOMPLETE)
    child.sendline("c")
    child.expect_exact('% Ambiguous command:  "c"')
    child.sendline("show")
    child.expect_exact('% Type "show ?" for a list of subcommands')
    child.sendline("sh ip nh nhs")
    child.expect_exact("Legend: E=Expecting replies")
    child.expect_exact(PROMPT)
    finish(child)


def test_paging_with_more(target: str) -> None:
    child = spawn(target, "xterm")
    child.sendline("terminal length 10")
    child.expect_exact(PROMPT)
    child.sendline("show running-config")
    child.expect_exact("--More--")
    first = clean(child.before)
    assert "Building configuration..." in first
    assert "crypto ikev2 keyring" not in first  # 9 lines only
    child.send(" ")  # the next screen
    child.expect_exact("--More--")
    assert len([line for line in clean(child.before).split("\n") if line.strip()]) >= 8
    child.send("\r")  # one more line
    child.expect_exact("--More--")
    child.send("q")  # stop
    child.expect_exact(PROMPT)
    assert "\nend\n" not in clean(child.before)
    child.sendline("terminal length 0")
    child.expect_exact(PROMPT)
    child.sendline("show running-config")
    child.expect(r"\nend\r\n")
    assert "--More--" not in child.before
    child.expect_exact(PROMPT)
    finish(child)


def test_configuration_mode_do_and_ctrl_z(target: str) -> None:
    child = spawn(target, "xterm")
    child.sendline("conf t")
    child.expect_exact("Enter configuration commands, one per line.  End with CNTL/Z.")
    child.expect_exact("hub(config)#")
    child.sendline("int tu0")
    child.expect_exact("hub(config-if)#")
    child.sendline(" ip nhrp holdtme 30")
    child.expect_exact(INVALID)
    assert caret_column(child.before + child.after) == len("hub(config-if)# ip nhrp holdt")
    child.expect_exact("hub(config-if)#")
    child.sendline(" ip nhrp holdtime 45")
    child.expect_exact("hub(config-if)#")
    child.sendline("do show running-config | include holdtime")
    child.expect_exact(" ip nhrp holdtime 45")
    child.expect_exact("hub(config-if)#")
    child.sendline("do sh run | c nhrp")
    child.expect(r"Number of lines which match regexp = (\d+)")
    assert int(child.match.group(1)) >= 4
    child.expect_exact("hub(config-if)#")
    child.sendcontrol("z")
    child.expect_exact("^Z")
    child.expect_exact(PROMPT)
    child.sendline("sh dm | b Interface")
    child.expect_exact("Interface: Tunnel0")
    child.expect_exact(PROMPT)
    assert "Legend" not in clean(child.before)
    finish(child)


# --- a vt100, as Netmiko opens it ---------------------------------------------------------


def test_an_automation_session_reads_like_ios(target: str) -> None:
    """Netmiko's cisco_ios: find the prompt, disable paging, show, configure, save."""
    child = spawn(target, "vt100")
    transcript = [PROMPT]
    for line in (
        "",
        "terminal width 511",
        "terminal length 0",
        "show ip nhrp brief",
        "configure terminal",
        "interface Tunnel0",
        "ip nhrp holdtime 60",
        "bogus",
        "end",
        "write mem",
    ):
        child.sendline(line)
        child.expect(r"\nhub(\([a-z-]+\))?[>#]")  # Netmiko's prompt pattern, at a line start
        transcript.append(child.before + child.after)
    text = "".join(transcript).replace("\r", "")
    assert "\x1b" not in text  # no escape sequences: exactly what a router prints
    assert "hub#terminal width 511\nhub#terminal length 0\nhub#show ip nhrp brief\n" in text
    assert "hub#configure terminal\nEnter configuration commands" in text
    assert "hub(config)#interface Tunnel0\nhub(config-if)#ip nhrp holdtime 60\n" in text
    assert f"hub(config-if)#bogus\n{' ' * len('hub(config-if)#')}^\n{INVALID}\n" in text
    assert "hub(config-if)#end\nhub#write mem\nBuilding configuration...\n[OK]\n" in text
    child.sendline("sh ip nhrp ?")
    child.expect_exact("  <cr>")
    child.expect_exact(PROMPT)
    child.sendline("conf t")
    child.expect_exact(")#")
    child.sendline("int tu0\x1a")  # Ctrl-Z reaches the shell: the line, then end
    child.expect(r"\nhub#")
    finish(child)


def test_debug_dmvpn_shows_a_cleared_session_go_down_and_up(target: str) -> None:
    child = spawn(target, "vt100")
    child.sendline("debug dmvpn")
    child.expect_exact("DMVPN debugging is on")
    child.expect_exact(PROMPT)
    time.sleep(0.5)  # the stream is registered
    child.sendline("clear crypto session remote 198.51.100.3")
    child.expect(r"peer 192\.0\.2\.11 \(NBMA 198\.51\.100\.3\) UP -> DOWN")
    child.expect(r"peer 192\.0\.2\.11 \(NBMA 198\.51\.100\.3\) DOWN -> UP")
    child.sendline("undebug all")
    child.expect_exact("All possible debugging has been turned off")
    child.expect_exact(PROMPT)
    finish(child)


# --- scripts --------------------------------------------------------------------------------


def run_shell(target: str, *argv: str, stdin: str | None = None) -> Any:
    program, args = command(target)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [program, *args, *argv],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def test_commands_from_options_and_standard_input(target: str) -> None:
    ok = run_shell(target, "-c", "sh dm", "-c", "show ip nhrp | count 192")
    assert ok.returncode == 0, ok.stderr
    assert "Interface: Tunnel0" in ok.stdout
    assert "Number of lines which match regexp = 3" in ok.stdout
    bad = run_shell(target, "-c", "sh dmvpx")
    assert bad.returncode == 1
    assert bad.stderr.splitlines() == ["hub#sh dmvpx", " " * 11 + "^", INVALID, ""]
    script = "conf t\ninterface Tunnel0\n ip nhrp holdtime 60\nend\nshow dmvpn | json\n"
    piped = run_shell(target, stdin=script)
    assert piped.returncode == 0, piped.stderr
    assert '"remote_nbma": "198.51.100.3"' in piped.stdout


def test_a_control_character_in_a_configuration_line_is_refused_at_its_column(
    target: str,
) -> None:
    """Issue 14 hole 8 through the shell: its line goes to EditConfig, whose grammar refuses
    the character; the description and the statement behind it are not configured."""
    attack = " description uplink\u2028 ip nhrp map 192.0.2.99 198.51.100.99"
    script = f"conf t\ninterface Tunnel0\n{attack}\nend\nshow running-config\n"
    out = run_shell(target, stdin=script)
    assert out.returncode == 1
    prompt = "hub(config-if)#"
    assert out.stderr.split("\n") == [  # not splitlines(): it breaks at U+2028 too
        prompt + attack,
        " " * (len(prompt) + len(" description uplink")) + "^",
        "% character U+2028 LINE SEPARATOR is not allowed (no control, format or "
        "line-separator characters in configuration text)",
        "",
        "",
    ]
    assert "192.0.2.99" not in out.stdout
    assert "description" not in out.stdout


def test_an_operator_shows_and_clears_but_may_not_configure(target: str) -> None:
    """The real daemon API on its operators' socket: IOS's refusal, masked secrets."""
    operator = target.replace("admin.sock", "api.sock")
    shown = run_shell(operator, "-c", "show running-config", "-c", "show dmvpn")
    assert shown.returncode == 0, shown.stderr
    assert "  pre-shared-key <removed>" in shown.stdout.splitlines()
    assert "frrdmvpn-lab-psk" not in shown.stdout
    refused = run_shell(
        operator,
        "-c",
        "configure terminal",
        "-c",
        "write memory",
        "-c",
        "show running-config unmasked",
    )
    assert refused.returncode == 1
    assert refused.stderr.splitlines() == [
        "hub#configure terminal",
        "Command authorization failed.",
        "hub#write memory",
        "Command authorization failed.",
        "hub#show running-config unmasked",
        "Command authorization failed.",
    ]
    admin = run_shell(target, "-c", "show running-config unmasked")
    assert admin.returncode == 0, admin.stderr
    assert "  pre-shared-key frrdmvpn-lab-psk-not-for-production" in admin.stdout.splitlines()
