"""Netmiko's ``cisco_ios`` driver against the real ``frrdmvpn-shell``, an SSH login shell.

A private sshd (tests/fakes/sshd.py) on 127.0.0.1 serves the shell as every login's command
(``ForceCommand``) against the API server of tests/fakes/shell_server.py (three spokes UP).
Netmiko logs in as root with a key and does what automation does to an IOS router: find
the prompt, disable paging, run show commands, enter configuration mode, send configuration
lines, leave it and save. Needs root (sshd switches users), /usr/sbin/sshd and netmiko.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.shell_server import running
from tests.fakes.sshd import SSHD, LoopbackSshd

pytestmark = [
    pytest.mark.unit,
    pytest.mark.timeout(180),
    pytest.mark.skipif(not SSHD.exists(), reason=f"{SSHD} is missing (Debian: openssh-server)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="sshd must run as root to serve a login"),
]

netmiko = pytest.importorskip("netmiko", reason="netmiko is not installed (the dev extra)")

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = Path(sys.executable).parent / "frrdmvpn-shell"
PROMPT = "hub#"


@pytest.fixture(scope="module")
def api_socket() -> Iterator[Path]:
    with running("fsn-") as socket:
        yield socket


def shell_argv(socket: Path) -> list[str]:
    """The shell with absolute paths: sshd starts it in root's home with a bare PATH."""
    target = ["--target", f"unix:{socket}"]
    if SCRIPT.exists():
        return [str(SCRIPT), *target]
    return [sys.executable, "-m", "cli.main", *target]


@pytest.fixture
def sshd(tmp_path: Path, api_socket: Path) -> Iterator[LoopbackSshd]:
    env = {"PYTHONPATH": str(ROOT), "LANG": "C.UTF-8"}
    server = LoopbackSshd(tmp_path / "sshd", shell_argv(api_socket), env)
    server.directory.mkdir()
    with server:
        yield server
    print(server.log_text())  # shown by pytest when the test failed


def test_netmiko_cisco_ios_shows_configures_and_saves(sshd: LoopbackSshd, tmp_path: Path) -> None:
    session_log = tmp_path / "netmiko.log"
    conn = netmiko.ConnectHandler(
        device_type="cisco_ios",
        host="127.0.0.1",
        port=sshd.port,
        username="root",
        use_keys=True,
        key_file=str(sshd.client_key),
        allow_agent=False,
        ssh_config_file=None,
        conn_timeout=20,
        auth_timeout=20,
        banner_timeout=20,
        session_log=str(session_log),
    )
    try:
        # session_preparation ran terminal width 511, terminal length 0 and found the prompt
        assert conn.base_prompt == "hub"
        prompt = conn.find_prompt()
        assert prompt in ("hub#", "hub>")
        if prompt == "hub>":
            conn.enable()
        assert conn.check_enable_mode()
        assert conn.find_prompt() == PROMPT
        assert not conn.check_config_mode()
        assert conn.send_command("show terminal").splitlines()[0] == (
            "Length: 0 lines, Width: 511 columns"
        )

        dmvpn = conn.send_command("show dmvpn")
        assert "Interface: Tunnel0, IPv4 NHRP Details" in dmvpn
        peers = re.findall(r"^\s*1\s+(\S+)\s+(\S+)\s+UP\s", dmvpn, re.MULTILINE)
        assert len(peers) == 3, dmvpn
        assert ("198.51.100.3", "192.0.2.11") in peers
        assert PROMPT not in dmvpn  # the prompt was stripped: Netmiko found the end

        brief = conn.send_command("show ip nhrp brief")
        assert "Target" in brief
        for tunnel in ("192.0.2.10", "192.0.2.11", "192.0.2.12"):
            assert tunnel in brief, brief

        # paging: a length that pages the running configuration, then Netmiko's own
        # disable_paging; a page prompt now would hang send_command until its timeout
        assert "%" not in conn.send_command("terminal length 10")
        assert "%" not in conn.disable_paging()
        running = conn.send_command("show running-config", read_timeout=30)
        assert "--More--" not in running
        assert len(running.splitlines()) > 10
        assert running.rstrip().endswith("end")

        output = conn.send_config_set(["interface Tunnel0", "ip nhrp holdtime 90"])
        assert "Enter configuration commands" in output
        assert "hub(config-if)#ip nhrp holdtime 90" in output.replace("\r", "")
        assert "%" not in output, output
        assert not conn.check_config_mode()  # send_config_set left configuration mode
        holdtime = conn.send_command("show running-config | include holdtime")
        assert " ip nhrp holdtime 90" in holdtime.splitlines()

        conn.config_mode()
        assert conn.check_config_mode()
        assert conn.find_prompt() == "hub(config)#"
        conn.exit_config_mode()
        assert not conn.check_config_mode()
        assert conn.find_prompt() == PROMPT

        saved = conn.save_config()
        assert "Building configuration..." in saved
        assert "[OK]" in saved
    finally:
        conn.disconnect()
        print(session_log.read_text(errors="replace") if session_log.exists() else "")
    transcript = session_log.read_text().replace("\r", "")
    assert "terminal width 511\n" in transcript  # session_preparation's commands
    assert "terminal length 0\n" in transcript
    assert "\x1b" not in transcript  # plain line mode: no escape sequences
    assert "Invalid input" not in transcript
