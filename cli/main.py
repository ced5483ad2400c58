"""Entry point of ``frrdmvpn-shell``: the operator shell, a client of frrdmvpnd's API.

Three front ends over one :class:`cli.session.Session`:

* ``-c "show dmvpn"`` (repeatable), or commands on standard input when it is not a
  terminal: each command's output on stdout, errors on stderr (after the command, so the
  caret lines up), exit status 1 if any command failed;
* a terminal with a capable ``$TERM``: prompt-toolkit line editing (history, Ctrl-A/E/U/W,
  Ctrl-P/N), ``?`` shows help without entering the line, TAB completes keywords, Ctrl-Z is
  ``end``;
* a terminal of automation (``$TERM`` vt100/dumb, as Paramiko/Netmiko open it, or
  ``--editor plain``): the terminal's own line discipline and echo, so the output is exactly
  prompt, echo, output, like a router's; a line ending in ``?`` shows help.

Output longer than ``terminal length`` (the terminal's height; 0: no paging) is paged
with ``--More--``. ``debug`` lines are printed as they arrive; outside an interactive session
the shell keeps printing them until Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import termios
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TextIO

from cli import pager
from cli.api import ShellClient
from cli.debug import ALL_OFF
from cli.parsed import Level
from cli.session import Output, Session
from frrdmvpn import __version__
from frrdmvpn.client import ADMIN_TARGET, DEFAULT_TARGET, DEFAULT_TIMEOUT, default_target

PLAIN_TERMS = frozenset({"", "dumb", "unknown", "vt100", "vt102"})
CTRL_Z = "\x1a"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="frrdmvpn-shell",
        description="The frrdmvpn operator shell (Cisco IOS-like), a client of frrdmvpnd's API.",
    )
    parser.add_argument("--version", action="version", version=f"frrdmvpn-shell {__version__}")
    parser.add_argument(
        "-c",
        "--command",
        action="append",
        default=[],
        metavar="CMD",
        help="run CMD (repeatable), then exit: 1 if a command failed",
    )
    parser.add_argument(
        "--target",
        default=None,
        help=f"the API: unix:PATH or HOST:PORT (mutual TLS); default "
        f"$FRRDMVPN_API, else {ADMIN_TARGET} when this user may open it "
        f"(administrators), else {DEFAULT_TARGET} (operators)",
    )
    parser.add_argument("--tls-ca", type=Path, help="CA certificate of the daemon (TCP)")
    parser.add_argument("--tls-cert", type=Path, help="client certificate (TCP)")
    parser.add_argument("--tls-key", type=Path, help="client key (TCP)")
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds to wait for each API call"
    )
    parser.add_argument(
        "--user-mode",
        action="store_true",
        help="start in user EXEC mode (host>), not privileged (host#)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="-c or standard input: show commands print JSON (| json)",
    )
    parser.add_argument(
        "--editor",
        choices=("auto", "full", "plain"),
        default="auto",
        help="line editing on a terminal: prompt-toolkit (full) or the "
        "terminal's own (plain); auto picks plain for vt100/dumb",
    )
    parser.add_argument("--complete", metavar="LINE", help=argparse.SUPPRESS)  # bash completion
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = Level.USER if args.user_mode else Level.PRIV
    if args.complete is not None:
        return complete_words(args.complete, level)
    try:
        target = args.target or os.environ.get("FRRDMVPN_API") or default_target()
        api = ShellClient(
            target,
            tls_ca=args.tls_ca,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            timeout=args.timeout,
        )
    except (ValueError, OSError) as exc:
        print(f"% {exc}", file=sys.stderr)
        return 2
    try:
        return _run(api, args, level)
    except KeyboardInterrupt:
        return 130
    finally:
        api.close()


def complete_words(line: str, level: Level) -> int:
    """``--complete LINE``: the words TAB could put in place of LINE's last, one a line (for
    bash's completion of ``-c``; no daemon needed)."""
    from cli.parse import exec_words  # noqa: PLC0415

    for word in exec_words(line, level):
        print(word)
    return 0


def _run(api: ShellClient, args: argparse.Namespace, level: Level) -> int:
    """The front end for how the shell was started."""
    if args.command:
        return run_batch(api, args.command, level=level, json_output=args.json)
    if not sys.stdin.isatty():
        return run_batch(api, _stdin_lines(sys.stdin), level=level, json_output=args.json)
    editor = args.editor
    if editor == "auto":
        term = os.environ.get("TERM", "")
        editor = "plain" if term in PLAIN_TERMS or not sys.stdout.isatty() else "full"
    if editor == "plain":
        return run_plain(api, level=level)
    return run_full(api, level=level)


# --- output -------------------------------------------------------------------------------


class Printer:
    """Writes lines to a stream, one writer at a time (debug lines come from a thread)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.lock = threading.Lock()

    def write(self, text: str) -> None:
        with self.lock:
            try:
                self.stream.write(text)
                self.stream.flush()
            except BrokenPipeError:
                pass

    def line(self, text: str) -> None:
        self.write(text + "\n")


def _wait_for_debug(session: Session, printer: Printer) -> None:
    """Outside an interactive session: keep printing debug lines until Ctrl-C."""
    if not session.debugger.active:
        return
    try:
        while session.debugger.active:
            session.debugger.wait(0.5)
    except KeyboardInterrupt:
        pass
    session.debugger.stop()
    printer.line(ALL_OFF)


# --- batch: -c and standard input ---------------------------------------------------------


def _stdin_lines(stream: TextIO) -> Iterable[str]:
    for line in stream:
        yield line.rstrip("\n")


def _with_json(session: Session, line: str) -> str:
    """``line | json`` when that is a command (a show command without a modifier)."""
    from cli.parse import parse  # noqa: PLC0415
    from cli.parsed import Parsed  # noqa: PLC0415

    if "|" in line or session.level is Level.CONFIG:
        return line
    candidate = f"{line} | json"
    return candidate if isinstance(parse(candidate, session.level), Parsed) else line


def run_batch(
    api: Any,
    lines: Iterable[str],
    *,
    level: Level = Level.PRIV,
    json_output: bool = False,
    out: TextIO | None = None,
    err: TextIO | None = None,
    render: Any = None,
) -> int:
    """Run ``lines`` one after another; 1 if any failed."""
    stdout, stderr = Printer(out or sys.stdout), Printer(err or sys.stderr)
    session = Session(api, level=level, length=0, width=0, emit=stdout.line, render=render)
    status = 0
    for raw in lines:
        line = raw.rstrip("\r\n")
        before = (session.level, session.context)  # its prompt is asked for only on error
        if CTRL_Z in line:
            line = line.replace(CTRL_Z, "")
            result = session.execute(line)
            result.lines += session.end().lines
        else:
            result = session.execute(_with_json(session, line) if json_output else line)
        if not result.ok:
            status = 1
            stderr.line(session.prompt_of(*before) + line)
            for text in result.lines:
                stderr.line(text)
        else:
            for text in result.lines:
                stdout.line(text)
        if session.finished:
            break
    _wait_for_debug(session, stdout)
    return status


# --- terminals ----------------------------------------------------------------------------


def _terminal_size() -> tuple[int, int]:
    try:
        size = os.get_terminal_size(sys.stdout.fileno())
    except OSError:
        return pager.DEFAULT_LENGTH, pager.DEFAULT_WIDTH
    return size.lines or pager.DEFAULT_LENGTH, size.columns or pager.DEFAULT_WIDTH


def show(session: Session, result: Output, printer: Printer, read_key: Callable[[], str]) -> None:
    """Print a line's output, paged at ``terminal length``."""
    if result.page and session.length > 0:
        pager.page(
            result.lines, printer.write, read_key, length=session.length, width=session.width
        )
    else:
        for text in result.lines:
            printer.line(text)


def run_line(
    session: Session,
    line: str,
    printer: Printer,
    read_key: Callable[[], str],
    *,
    end: bool = False,
) -> None:
    """Run a typed line (then ``end`` after Ctrl-Z) and show its output; Ctrl-C while it
    runs abandons it."""
    try:
        show(session, session.execute(line), printer, read_key)
        if end:
            show(session, session.end(), printer, read_key)
    except KeyboardInterrupt:
        printer.write("\n")


def _interrupted(session: Session, printer: Printer) -> None:
    """Ctrl-C at the prompt: stops debugging, like ``undebug all``."""
    if session.debugger.active:
        session.debugger.stop()
        printer.line(ALL_OFF)


def run_plain(api: Any, *, level: Level = Level.PRIV) -> int:
    """The terminal's own line editing (cooked mode, its echo); Ctrl-Z then Enter = end."""
    printer = Printer(sys.stdout)
    length, width = _terminal_size()
    session = Session(api, level=level, length=length, width=width, emit=printer.line)
    fd = sys.stdin.fileno()
    read_key = pager.tty_key_reader(fd)
    saved = _no_suspend_char(fd)
    try:
        while not session.finished:
            printer.write(session.prompt)
            try:
                raw = sys.stdin.readline()
            except KeyboardInterrupt:
                printer.write("\n")
                _interrupted(session, printer)
                continue
            if not raw:
                break
            line = raw.rstrip("\r\n")
            if CTRL_Z in line:
                run_line(session, line.replace(CTRL_Z, ""), printer, read_key, end=True)
            else:
                run_line(session, line, printer, read_key)
    finally:
        session.debugger.stop()
        if saved is not None:
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)
    return 0


def _no_suspend_char(fd: int) -> list[Any] | None:
    """Let Ctrl-Z reach the shell as a character (IOS's ``end``) instead of stopping it."""
    try:
        saved = termios.tcgetattr(fd)
    except termios.error:
        return None
    changed = termios.tcgetattr(fd)
    changed[6][termios.VSUSP] = b"\x00"
    termios.tcsetattr(fd, termios.TCSADRAIN, changed)
    _no_suspend()
    return saved


def _no_suspend() -> None:
    """A login shell must not be stopped (Ctrl-Z while output pages, for one)."""
    signal.signal(signal.SIGTSTP, signal.SIG_IGN)


def run_full(api: Any, *, level: Level = Level.PRIV) -> int:
    """prompt-toolkit line editing with IOS's ``?``, TAB and Ctrl-Z."""
    os.environ.setdefault("PROMPT_TOOLKIT_NO_CPR", "1")
    from prompt_toolkit import PromptSession  # noqa: PLC0415 - only interactive use needs it
    from prompt_toolkit.history import InMemoryHistory  # noqa: PLC0415
    from prompt_toolkit.patch_stdout import patch_stdout  # noqa: PLC0415

    printer = Printer(sys.stdout)

    def emit(text: str) -> None:
        print(text, flush=True)  # sys.stdout is prompt-toolkit's proxy while prompting

    length, width = _terminal_size()
    session = Session(api, level=level, length=length, width=width, emit=emit)
    session.trailing_help = False  # ? is a key here; Ctrl-V ? types a question mark
    _no_suspend()
    prompts: PromptSession[str] = PromptSession(
        history=InMemoryHistory(), key_bindings=key_bindings(session)
    )
    read_key = pager.tty_key_reader(sys.stdin.fileno())
    try:
        while not session.finished:
            try:
                with patch_stdout(raw=True):
                    line = prompts.prompt(session.prompt)
            except KeyboardInterrupt:
                _interrupted(session, printer)
                continue
            except EOFError:
                break
            if line.endswith(CTRL_Z):
                run_line(session, line[:-1], printer, read_key, end=True)
            else:
                run_line(session, line, printer, read_key)
    finally:
        session.debugger.stop()
    return 0


def key_bindings(session: Session) -> Any:
    """IOS's keys: ``?`` prints help (the line stays as it is), Ctrl-V ``?`` types a ``?``
    (in a regular expression), TAB completes the keyword, Ctrl-Z runs the line and ends
    configuration mode. The rest are prompt-toolkit's Emacs
    bindings (Ctrl-A/E/U/W, Ctrl-P/N and the arrows for history)."""
    from prompt_toolkit.application import run_in_terminal  # noqa: PLC0415
    from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent  # noqa: PLC0415

    bindings = KeyBindings()

    @bindings.add("?")
    def _help(event: KeyPressEvent) -> None:
        text = event.current_buffer.document.text_before_cursor
        lines = session.help(text)
        prompt = session.prompt

        def show_help() -> None:
            print(prompt + text + "?")
            for line in lines:
                print(line)

        run_in_terminal(show_help)

    @bindings.add("c-v", "?")
    def _literal(event: KeyPressEvent) -> None:
        event.current_buffer.insert_text("?")

    @bindings.add("tab")
    def _complete(event: KeyPressEvent) -> None:
        buffer = event.current_buffer
        completion = session.complete(buffer.document.text_before_cursor)
        if completion.text is None:
            event.app.output.bell()
            return
        buffer.delete_before_cursor(completion.replace)
        buffer.insert_text(completion.text)

    @bindings.add("c-z")
    def _end(event: KeyPressEvent) -> None:
        buffer = event.current_buffer
        text = buffer.text
        buffer.insert_text("^Z")
        event.app.exit(result=text + CTRL_Z)

    return bindings


if __name__ == "__main__":
    sys.exit(main())
