"""Manual pages generated from the parsers (docgen): complete, valid roff, exact
escaping, reproducible."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cli import tree
from docgen import manpage, roff
from docgen.__main__ import build_date, main
from docgen.manpage import Page, render, subcommands
from docgen.pages import PAGES
from docgen.shell_commands import syntax
from frrdmvpn.adapters import config_store, nhrp_event_server, vici_proxy

pytestmark = pytest.mark.unit

DATE, VERSION = "2024-01-02", "9.9.9"
NAMES = {"frrdmvpnd.8", "frrdmvpn-proxy.8", "frrdmvpn-shell.1", "frrdmvpn-lab.1"}
GROFF = shutil.which("groff")
needs_groff = pytest.mark.skipif(GROFF is None, reason="groff is not installed (groff-base)")


def pages() -> dict[str, tuple[Page, str]]:
    out = {}
    for build in PAGES:
        page = build()
        out[page.filename] = (page, render(page, date=DATE, version=VERSION))
    return out


def parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    return [parser, *(sub for _, _, sub in subcommands(parser))]


def groff(text: str, *options: str) -> subprocess.CompletedProcess[str]:
    assert GROFF is not None
    plain_tty = ("-P-c", "-P-b", "-P-u")  # no escape sequences, no overstriking
    return subprocess.run(
        [GROFF, "-man", "-Tutf8", "-rLL=80n", *plain_tty, *options],
        input=text,
        capture_output=True,
        text=True,
        check=False,
    )


def plain(text: str) -> str:
    """groff's output as plain words."""
    return " ".join(text.split())


# --- content ------------------------------------------------------------------------------


def test_the_four_pages_in_their_sections() -> None:
    built = pages()
    assert set(built) == NAMES
    for name, (page, text) in built.items():
        prog, section = name.rsplit(".", 1)
        th = f'.TH {roff.escape(prog.upper())} {section} {DATE} "frrdmvpn 9.9.9"'
        assert th in text
        assert {"frrdmvpnd": 8, "frrdmvpn-proxy": 8}.get(prog, 1) == page.section
        for title in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "SEE ALSO"):
            assert f".SH {title}\n" in text or f'.SH "{title}"\n' in text, (name, title)
        assert f"{roff.escape(prog)} \\- " in text  # NAME: what lexgrog/whatis read


def test_the_packaged_pages_refer_only_to_pages_a_router_has() -> None:
    # debian/rules installs every page but the lab's (the lab is not in the package)
    rules = (Path(__file__).resolve().parents[3] / "debian/rules").read_text()
    found = re.search(r"^MANPAGES := (.*)$", rules, re.M)
    assert found is not None
    packaged = set(found.group(1).split())
    assert packaged == NAMES - {"frrdmvpn-lab.1"}
    for name, (_, text) in pages().items():
        see_also = text.split('.SH "SEE ALSO"\n', 1)[1]
        refs = re.findall(r"^\.BR \\%(\S+) \((\d)\)", see_also, re.M)
        ours = {
            f"{ref}.{section}".replace("\\-", "-")
            for ref, section in refs
            if ref.startswith("frrdmvpn")
        }
        assert ours == packaged - {name}, name


def documented(parser: argparse.ArgumentParser, text: str) -> int:
    """How many of ``parser``'s options ``text`` documents; fails on a missing or a hidden
    one (-h/--help of a subcommand is the program's)."""
    tags = re.findall(r"^\.TP\n(.*)$", text, flags=re.MULTILINE)
    seen = 0
    for action in parser._actions:
        for option in action.option_strings:
            hidden = action.help == argparse.SUPPRESS
            if not isinstance(action, argparse._HelpAction) or parser.prog.count(" ") == 0:
                assert any(roff.bold(option) in t for t in tags) != hidden, option
                seen += 1
    return seen


def test_every_option_of_every_parser_and_every_subcommand_is_documented() -> None:
    seen = 0
    for name, (page, text) in pages().items():
        main_part = text.split(".SH COMMANDS\n", 1)[0]
        seen += documented(page.parser, main_part.split(".SH OPTIONS\n", 1)[1])
        for sub, _, parser in subcommands(page.parser):
            assert f".SS {roff.escape(sub)}\n" in text, (name, sub)
            part = text.split(f".SS {roff.escape(sub)}\n", 1)[1]
            part = re.split(r"\n\.S[SH] ", part, maxsplit=1)[0]
            assert "\n".join(manpage.synopsis(parser)) in part, (name, sub)
            seen += documented(parser, part)
    assert seen > 60
    shell = pages()["frrdmvpn-shell.1"][1]
    assert roff.escape("--complete") not in shell  # for bash, hidden


def test_files_are_the_programs_defaults() -> None:
    built = pages()
    daemon, proxy = built["frrdmvpnd.8"][1], built["frrdmvpn-proxy.8"][1]
    for text, paths in (
        (daemon, [config_store.SAVED, config_store.RUNNING, "/run/frrdmvpn/frrdmvpn.sock"]),
        (
            proxy,
            [
                vici_proxy.DEFAULT_LISTEN,
                vici_proxy.DEFAULT_UPSTREAM,
                nhrp_event_server.DEFAULT_PATH,
            ],
        ),
    ):
        files = text.split(".SH FILES\n", 1)[1].split(".SH", 1)[0]
        for path in paths:
            assert f".TP\n{roff.tag(roff.italic(str(path)))}\n" in files, path
    assert str(vici_proxy.DEFAULT_LISTEN) == "/run/charon.vici"
    assert str(vici_proxy.DEFAULT_UPSTREAM) == "/run/charon.frrdmvpn.vici"


def test_the_shell_page_lists_the_command_tree() -> None:
    text = pages()["frrdmvpn-shell.1"][1]
    commands = text.split(".SH COMMANDS\n", 1)[1].split("\n.SH ", 1)[0]
    paths = list(tree.commands())
    assert len(paths) > 50
    for path in paths:
        assert f"\n{roff.tag(syntax(path.syntax))}\n" in commands, path.syntax
    for node in tree.children(tree.PIPE):
        assert roff.bold(node.word or "") in commands
    for title in ("EXEC commands", "Output modifiers", "Configuration mode"):
        assert f'.SS "{title}"' in commands
    assert '.SS "(config\\-if)# interface mode"' in commands  # the configuration language
    assert roff.bold("holdtime") in commands


def test_the_commands_syntax_bold_keywords_italic_values() -> None:
    assert syntax("ip nhrp nhs A.B.C.D|dynamic [priority <0-255>]") == (
        r"\fBip\fR \fBnhrp\fR \fBnhs\fR \fIA.B.C.D\fR | \fBdynamic\fR "
        r"[\fBpriority\fR \fI<0\-255>\fR]"
    )
    assert syntax("show running-config interface TunnelN") == (
        r"\fBshow\fR \fBrunning\-config\fR \fBinterface\fR \fITunnelN\fR"
    )


# --- valid roff ---------------------------------------------------------------------------


@needs_groff
def test_groff_finds_nothing_to_warn_about() -> None:
    for name, (_, text) in pages().items():
        result = groff(text, "-ww", "-z")
        assert result.returncode == 0, name
        assert result.stdout + result.stderr == "", name


@needs_groff
def test_man_and_lexgrog_as_lintian_runs_them(tmp_path: Path) -> None:
    man, lexgrog = shutil.which("man"), shutil.which("lexgrog")
    if man is None or lexgrog is None:
        pytest.skip("man-db is not installed")
    env = {"PATH": os.environ["PATH"], "LC_ALL": "C.UTF-8", "MANROFFSEQ": "", "MANWIDTH": "80"}
    for name, (_, text) in pages().items():
        path = tmp_path / name
        path.write_text(text)
        result = subprocess.run(
            [man, "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z", path],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        assert result.returncode == 0, name
        assert result.stderr == "", name
        whatis = subprocess.run(
            [lexgrog, path], capture_output=True, text=True, env=env, check=False
        )
        prog = name.rsplit(".", 1)[0]
        assert whatis.returncode == 0, whatis.stderr
        assert f': "{prog} - ' in whatis.stdout


def test_mandoc_lint(tmp_path: Path) -> None:
    mandoc = shutil.which("mandoc")
    if mandoc is None:
        pytest.skip("mandoc is not installed (a second opinion on the roff, optional)")
    for name, (_, text) in pages().items():
        (tmp_path / name).write_text(text)
        result = subprocess.run(
            [mandoc, "-T", "lint", "-W", "style", tmp_path / name],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.stdout + result.stderr == "", name


@needs_groff
def test_the_rendered_shell_page_reads_as_the_tree() -> None:
    result = groff(pages()["frrdmvpn-shell.1"][1])
    text = plain(result.stdout)
    for path in tree.commands():
        assert re.sub(r"\s*\|\s*", " | ", path.syntax) in text, path.syntax
    assert "--editor {auto | full | plain}" in text


# --- escaping -----------------------------------------------------------------------------

TRICKY = ".starts with a dot \\back\\slash 'single' \"double\" --opt -x a-b … tab\tend"


def test_escape() -> None:
    assert roff.escape("a\\b") == r"a\eb"
    assert roff.escape("--nbma") == r"\-\-nbma"
    assert roff.escape('say "hi" don\'t `x`') == r"say \(dqhi\(dq don\(aqt \(gax\(ga"
    assert roff.escape("(config…)#") == r"(config\[u2026])#"
    assert roff.escape("a\n  b\tc") == "a b c"
    assert roff.escape("bell\x07") == "bell"
    assert "\\f" not in roff.escape("\\fB")  # no font change sneaks in


def test_lines_never_become_requests_nor_breaks() -> None:
    assert roff.line(".TH x") == r"\&.TH x"
    assert roff.line("'x") == r"\&'x"
    assert roff.line(roff.escape("'quoted'")) == r"\%\(aqquoted\(aq"
    assert roff.line("   indented") == "indented"
    assert roff.line(roff.escape("...")) == r"\&..."
    assert roff.line(r"\fB/etc/frrdmvpn\fR path") == r"\%\fB/etc/frrdmvpn\fR path"


def test_long_text_lines_wrap_at_blanks() -> None:
    lines = roff.line(" ".join(["word"] * 16 + [".dot", "end"])).splitlines()
    assert lines == [" ".join(["word"] * 16), r"\&.dot end"]  # never a request
    assert "\n" not in roff.tag("word " * 40)  # .TP takes the next input line only


def test_markup_and_macros() -> None:
    assert roff.markup("run ``frrdmvpnd guard`` or `x-y` now") == (
        r"run \fBfrrdmvpnd guard\fR or \fBx\-y\fR now"
    )
    assert roff.macro("SS", "two words") == '.SS "two words"'
    assert roff.macro("TP") == ".TP"
    assert roff.macro("IP", "", "2") == '.IP "" 2'
    assert roff.prose("One\nparagraph.\n\nList:\n* first\n  more\n- second") == [
        ".PP",
        "One paragraph.",
        ".PP",
        "List:",
        ".IP \\(bu 2",
        "first more",
        ".IP \\(bu 2",
        "second",
    ]


@needs_groff
def test_tricky_text_prints_exactly_as_written() -> None:
    parser = argparse.ArgumentParser(prog="tricky", description=TRICKY)
    parser.add_argument("--opt", help=TRICKY)
    text = render(Page(parser, 1, TRICKY), date=DATE, version=VERSION)
    result = groff(text, "-ww")
    assert result.stderr == ""
    expected = " ".join(TRICKY.split())
    assert plain(result.stdout).count(expected) == 3  # NAME, DESCRIPTION, OPTIONS


def test_defaults_choices_and_nargs() -> None:
    parser = argparse.ArgumentParser(prog="demo")
    parser.add_argument("--mode", choices=("a", "b"), default="a", help="the mode")
    parser.add_argument("--said", default="x", help="something (default x)")
    parser.add_argument("--path", type=Path, default=Path("/run/demo.sock"))
    parser.add_argument("--pct", type=int, default=5, help="share, %(default)s%% by default")
    parser.add_argument("--flag", action="store_true", help="a flag")
    parser.add_argument("--required", required=True, metavar="R")
    parser.add_argument("--hidden", help=argparse.SUPPRESS)
    parser.add_argument("files", nargs="*", help="inputs")
    parser.add_argument("rest", nargs=argparse.REMAINDER)
    text = render(Page(parser, 1, "a demo"), date=DATE, version=VERSION)
    assert r"\fB\-\-mode\fR {\fBa\fR | \fBb\fR}" in text
    assert r"the mode (default: \fBa\fR)" in text
    assert "something (default x)\n" in text  # not said twice
    assert r"Default: \%\fB/run/demo.sock\fR." in text
    assert "share, 5% by default\n" in text
    assert r"\%[\fB\-\-flag\fR]" in text
    assert r"\%\fB\-\-required\fR\~\fIR\fR" + "\n" in text  # required: no brackets
    assert "hidden" not in text
    assert r"[\fIfiles\fR\~...]" in text
    assert r"[\fIrest\fR\~...]" in text


# --- the command --------------------------------------------------------------------------


def test_build_date_from_source_date_epoch() -> None:
    assert build_date("0") == "1970-01-01"
    assert build_date("1700000000") == "2023-11-14"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", build_date(None))


def test_the_command_writes_reproducible_pages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert main([str(tmp_path / "a")]) == 0
    assert {p.name for p in (tmp_path / "a").iterdir()} == NAMES
    assert " 2023-11-14 " in (tmp_path / "a" / "frrdmvpnd.8").read_text()
    # nothing of the build's environment gets in (parsers read some defaults from it)
    for variable in ("FRRDMVPN_API", "FRRDMVPN_LAB_PROTECT", "FRRDMVPN_LAB_DEB"):
        monkeypatch.setenv(variable, "/env/leak")
    assert main([str(tmp_path / "b")]) == 0
    for name in NAMES:
        first = (tmp_path / "a" / name).read_bytes()
        assert first == (tmp_path / "b" / name).read_bytes(), name
        assert b"leak" not in first


def test_python_m_docgen(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[3]
    env = {**os.environ, "SOURCE_DATE_EPOCH": "0", "PYTHONPATH": str(root)}
    result = subprocess.run(
        [sys.executable, "-m", "docgen", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert {Path(p).name for p in result.stdout.split()} == NAMES
    assert " 1970-01-01 " in (tmp_path / "frrdmvpn-lab.1").read_text()
