"""Bash completion of frrdmvpn-shell: ``--complete LINE`` (the shell's TAB, no daemon) and
debian/completion/frrdmvpn-shell run by a real bash with the venv's frrdmvpn-shell."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cli import main as shell_main
from cli.parse import exec_words
from cli.parsed import Level

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "debian" / "completion" / "frrdmvpn-shell"
BIN = Path(sys.executable).parent
BASH = shutil.which("bash")

# COMP_* as bash sets them for the words typed so far (the last one is being completed)
DRIVER = """\
source "$0" || exit 3
COMP_WORDS=("$@")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
COMP_LINE="${COMP_WORDS[*]}"
COMP_POINT=${#COMP_LINE}
_frrdmvpn_shell
if [ ${#COMPREPLY[@]} -gt 0 ]; then printf '%s\\0' "${COMPREPLY[@]}"; fi
"""


# --- --complete ---------------------------------------------------------------------------


def complete_option(capsys: pytest.CaptureFixture[str], *argv: str) -> list[str]:
    assert shell_main.main(list(argv)) == 0
    return capsys.readouterr().out.splitlines()


def test_complete_answers_like_tab(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_daemon(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("--complete must not connect")

    monkeypatch.setattr(shell_main, "ShellClient", no_daemon)
    assert complete_option(capsys, "--complete", "show dm") == ["dmvpn"]
    assert complete_option(capsys, "--complete", "sh ip nh") == ["nhrp"]
    assert complete_option(capsys, "--complete", "c") == ["clear", "configure", "copy"]
    assert complete_option(capsys, "--complete", "sh run | i") == ["include"]
    assert complete_option(capsys, "--complete", "show dmvpn ") == ["detail", "|"]
    assert complete_option(capsys, "--complete", "xyz a") == []
    top = complete_option(capsys, "--complete", "")
    assert {"show", "configure", "write", "debug"} <= set(top)
    assert complete_option(capsys, "--user-mode", "--complete", "conf") == []  # not in host>


def test_complete_leaves_out_what_is_not_typed_as_it_is() -> None:
    assert exec_words("show crypto ipsec sa peer ", Level.PRIV) == ()  # A.B.C.D
    assert exec_words("terminal length ", Level.PRIV) == ()  # <0-512>
    assert exec_words("show ip nhrp ", Level.PRIV) == ("brief", "detail", "nhs", "traffic", "|")
    assert exec_words("SH", Level.PRIV) == ("show",)


def test_complete_is_hidden(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        shell_main.main(["--help"])
    assert "--complete" not in capsys.readouterr().out


# --- the bash script ----------------------------------------------------------------------


def bash_complete(*words: str) -> list[str]:
    """COMPREPLY after ``words`` (the program's name first)."""
    if BASH is None:
        pytest.skip("bash is not installed")
    assert (BIN / "frrdmvpn-shell").exists(), "install the project: pip install -e ."
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        [BASH, "--norc", "--noprofile", "-c", DRIVER, SCRIPT, *words],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split("\0")[:-1]


def visible_options() -> dict[str, argparse.Action]:
    parser = shell_main.build_parser()
    return {o: a for a in parser._actions if a.help != argparse.SUPPRESS for o in a.option_strings}


def test_options_complete_and_match_the_parser() -> None:
    assert bash_complete("frrdmvpn-shell", "--ver") == ["--version"]
    assert sorted(bash_complete("frrdmvpn-shell", "-")) == sorted(visible_options())
    assert bash_complete("frrdmvpn-shell", "--json", "--us") == ["--user-mode"]


def test_option_values() -> None:
    choices = list(visible_options()["--editor"].choices or ())
    assert bash_complete("frrdmvpn-shell", "--editor", "") == choices
    assert bash_complete("frrdmvpn-shell", "--editor", "=", "f") == ["full"]
    assert bash_complete("frrdmvpn-shell", "--timeout", "") == []
    ca = bash_complete("frrdmvpn-shell", "--tls-ca", str(SCRIPT.parent / "frrdmvpn-s"))
    assert ca == [str(SCRIPT)]


def test_the_command_line_of_c_completes_like_tab() -> None:
    # in a quote: the whole line so far; a unique word twice (1 and 2 spaces after it) so
    # that readline inserts it with a space and keeps the quote open
    assert bash_complete("frrdmvpn-shell", "-c", '"show dm') == ["show dmvpn ", "show dmvpn  "]
    assert bash_complete("frrdmvpn-shell", "-c", "'sh") == ["show ", "show  "]
    assert bash_complete("frrdmvpn-shell", "--command", '"show d') == [
        "show debugging",
        "show dmvpn",
    ]
    assert bash_complete("frrdmvpn-shell", "--command", "=", '"sh ip nhrp ') == [
        f"sh ip nhrp {w}" for w in ("brief", "detail", "nhs", "traffic", "|")
    ]
    assert bash_complete("frrdmvpn-shell", "-c", "c") == ["clear", "configure", "copy"]
    assert bash_complete("frrdmvpn-shell", "--user-mode", "-c", "c") == []  # host>
    assert bash_complete("frrdmvpn-shell", "-c", '"show dmvpn"') == []  # quote closed
    assert bash_complete("frrdmvpn-shell", "-c", '"xyz ') == []


def test_readline_keeps_the_quote_open(tmp_path: Path) -> None:
    """A real interactive bash: TAB after TAB inside ``-c "..."``, then Enter."""
    if BASH is None:
        pytest.skip("bash is not installed")
    import pexpect  # type: ignore[import-untyped]  # noqa: PLC0415

    fake = tmp_path / "frrdmvpn-shell"  # completes with the real one, prints its arguments
    fake.write_text(
        f'#!/bin/sh\n[ "$1" = --complete ] && exec {BIN}/frrdmvpn-shell "$@"\n'
        "printf '<%s>' \"$@\"; echo\n"
    )
    fake.chmod(0o755)
    env = {
        "PATH": f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}",
        "TERM": "dumb",
        "INPUTRC": "/dev/null",
        "PS1": "$ ",
        "HOME": str(tmp_path),
    }
    child = pexpect.spawn(
        BASH, ["--norc", "--noprofile", "-i"], env=env, encoding="utf-8", timeout=20
    )
    try:
        child.expect_exact("$ ")
        child.sendline(f"source {SCRIPT}")
        child.expect_exact("$ ")
        child.send('frrdmvpn-shell --ed\tf\t-c "sh\tdm\tde\t| i\tIPsec"\r')
        child.expect_exact("<--editor><full><-c><show dmvpn detail | include IPsec>")
    finally:
        child.close(force=True)
