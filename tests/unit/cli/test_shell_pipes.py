"""Output modifiers and the --More-- pager (pure)."""

from __future__ import annotations

import pytest

from cli import pager, pipes
from cli.parsed import Pipe

pytestmark = pytest.mark.unit

CONFIG = """\
hostname hub
!
crypto ikev2 keyring lab
 peer any
  address 0.0.0.0 0.0.0.0
!
interface Tunnel0
 ip nhrp holdtime 60
 ip nhrp redirect
 tunnel key 42
!
router ospf 1
 network 192.0.2.0 0.0.0.255 area 0
""".splitlines()


def test_include_exclude_begin_count() -> None:
    assert pipes.apply(Pipe("include", "nhrp"), CONFIG) == [
        " ip nhrp holdtime 60",
        " ip nhrp redirect",
    ]
    assert pipes.apply(Pipe("include", "NHRP"), CONFIG) == []  # case-sensitive, like IOS
    assert "!" not in pipes.apply(Pipe("exclude", "^!"), CONFIG)
    assert pipes.apply(Pipe("begin", "^router"), CONFIG) == CONFIG[-2:]
    assert pipes.apply(Pipe("begin", "nothing"), CONFIG) == []
    assert pipes.apply(Pipe("count", "nhrp|key"), CONFIG) == [
        "Number of lines which match regexp = 4"
    ]
    assert pipes.apply(Pipe("json"), CONFIG) == CONFIG


def test_section_keeps_the_lines_under_each_match() -> None:
    assert pipes.apply(Pipe("section", "^interface"), CONFIG) == [
        "interface Tunnel0",
        " ip nhrp holdtime 60",
        " ip nhrp redirect",
        " tunnel key 42",
    ]
    assert pipes.apply(Pipe("section", "crypto"), CONFIG) == CONFIG[2:5]
    assert pipes.apply(Pipe("section", "peer"), CONFIG) == CONFIG[3:5]


def test_a_bad_regex_is_an_error() -> None:
    with pytest.raises(pipes.PipeError, match="Invalid regular expression"):
        pipes.apply(Pipe("include", "("), CONFIG)


def run_pager(lines: list[str], keys: str, length: int, width: int = 0) -> tuple[str, bool]:
    out: list[str] = []
    pending = list(keys)

    def read_key() -> str:
        return pending.pop(0)

    done = pager.page(lines, out.append, read_key, length=length, width=width)
    assert not pending, "keys left unread"
    return "".join(out), done


LINES = [f"line {i}" for i in range(1, 11)]


def test_pager_space_enter_and_q() -> None:
    text, done = run_pager(LINES, " \rq", length=4)
    assert not done
    shown = text.replace(pager.MORE, "<M>").replace(pager.ERASE, "")
    # a screen is 3 lines and --More--; Space: 3 more; Enter: one more; q: stop
    assert shown == "line 1\nline 2\nline 3\n<M>line 4\nline 5\nline 6\n<M>line 7\n<M>"
    text, done = run_pager(LINES, " \r\r\r\r", length=4)
    assert done
    assert text.count(pager.MORE) == 5
    assert text.endswith("line 10\n")
    text, done = run_pager(LINES, "q", length=4)
    assert not done
    assert "line 4" not in text
    assert text.endswith(pager.ERASE)


def test_pager_off_and_wrapped_lines() -> None:
    text, done = run_pager(LINES, "", length=0)
    assert done
    assert text == "".join(f"{line}\n" for line in LINES)
    assert run_pager(LINES[:3], "", length=24)[0].count(pager.MORE) == 0
    long = ["x" * 25, "y", "z"]
    text, _ = run_pager(long, "q", length=3, width=10)  # 25 chars at 10 columns: 3 rows
    assert text.startswith("x" * 25 + "\n" + pager.MORE)
    assert pager.rows("x" * 25, 10) == 3
    assert pager.rows("", 10) == 1


def test_ctrl_c_at_more_stops() -> None:
    out: list[str] = []

    def interrupted() -> str:
        raise KeyboardInterrupt

    assert not pager.page(LINES, out.append, interrupted, length=3)
