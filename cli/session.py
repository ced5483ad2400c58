"""The shell's engine: modes, prompts, and what a typed line does.

A :class:`Session` holds the state of one operator session (EXEC level, configuration
context, terminal length and width, history, debugging) and turns a line into
:class:`Output`: it parses the line against the command tree (``cli.parse``), runs the
command's handler (``cli.handlers``) against the API (``cli.api.ShellApi``) and puts the
output through its ``|`` modifier. Configuration-mode lines are sent to the daemon as
typed, in the current mode context (``EditConfig``, applied at once when valid, like IOS).

The session does no terminal I/O: the front ends (``cli.main``) read lines, page the
output and print debug lines as they come.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc

from cli import pipes
from cli.api import ShellApi, context_from_pb, error_text
from cli.debug import Debugger
from cli.errors import ShellError
from cli.handlers import Renderers
from cli.pager import DEFAULT_WIDTH
from cli.parse import (
    LineKind,
    config_complete,
    config_failure,
    config_help,
    config_line_kind,
    exec_complete,
    exec_help,
    parse,
)
from cli.parsed import Level, Parsed
from frrdmvpn.command_engine.grammar import Failure, FailureKind
from frrdmvpn.command_engine.ios_text import (
    INCOMPLETE,
    INVALID,
    NEGATIONS,
    Completion,
    ambiguous,
    caret,
    failure_lines,
)
from frrdmvpn.command_engine.tokens import tokenize
from frrdmvpn.config.modes import ROOT, Context, Mode
from frrdmvpn.config.text import first_refused
from frrdmvpn.v1 import config_pb2


@dataclass
class Output:
    """What a line printed. ``ok`` is false after an error (the exit status of ``-c``);
    ``page``: the lines are command output for the pager."""

    lines: list[str] = field(default_factory=list)
    ok: bool = True
    page: bool = True


def _load_render() -> Renderers:
    loaded: Renderers = importlib.import_module("cli.render")
    return loaded


class Session:
    """One operator session against one daemon."""

    def __init__(
        self,
        api: ShellApi,
        *,
        render: Renderers | None = None,
        level: Level = Level.PRIV,
        hostname: str | None = None,
        length: int = 0,
        width: int = DEFAULT_WIDTH,
        clock: Callable[[], float] = time.time,
        emit: Callable[[str], None] | None = None,
    ) -> None:
        self.api = api
        self._render = render
        self.level = level
        self.exec_level = level if level is not Level.CONFIG else Level.PRIV
        self.context: Context = ROOT
        self.length = length
        self.width = width
        self.clock = clock
        self.history: list[str] = []
        self.finished = False
        self.pending = False  # the candidate holds lines not applied yet
        self.monitor = False
        #: a line ending in ``?`` shows help (front ends without a ``?`` key: -c, plain)
        self.trailing_help = True
        self.debugger = Debugger(
            lambda kinds: api.watch(kinds, snapshot=False), emit or (lambda line: None)
        )
        self._host = hostname  # asked of the daemon when a prompt first needs it

    # --- state --------------------------------------------------------------------------
    @property
    def render(self) -> Renderers:
        """The renderers (``cli.render``), imported when first needed."""
        if self._render is None:
            self._render = _load_render()
        return self._render

    @property
    def prompt(self) -> str:
        return self.prompt_of(self.level, self.context)

    def prompt_of(self, level: Level, context: Context) -> str:
        """The prompt at ``level`` in ``context`` (``host(config-if)#``)."""
        if level is Level.CONFIG:
            return f"{self.hostname}({context.mode.prompt})#"
        return self.hostname + ("#" if level is Level.PRIV else ">")

    def now(self) -> float:
        """The time the renderers compute ages against (seconds since the epoch)."""
        return self.clock()

    @property
    def hostname(self) -> str:
        """The prompt's host name (:meth:`_hostname`, read once: ``-c show dmvpn`` shows
        no prompt and asks nothing for it)."""
        if self._host is None:
            self._host = self._hostname()
        return self._host

    @hostname.setter
    def hostname(self, name: str) -> None:
        self._host = name

    def _hostname(self) -> str:
        """The configured host name, else the daemon's, else ``frrdmvpn``."""
        try:
            text = self.api.get_config("candidate").text
        except grpc.RpcError:
            text = ""
        for line in str(text).splitlines():
            words = line.split()
            if len(words) == 2 and words[0] == "hostname":
                return words[1]
        try:
            return str(self.api.node().hostname) or "frrdmvpn"
        except grpc.RpcError:
            return "frrdmvpn"

    # --- help and completion ------------------------------------------------------------
    def help(self, text: str) -> list[str]:
        """What ``?`` typed after ``text`` prints."""
        width = self.width or DEFAULT_WIDTH
        if self.level is Level.CONFIG:
            return config_help(text, self.context.mode, width=width)
        return exec_help(text, self.level, width=width)

    def complete(self, text: str) -> Completion:
        """TAB after ``text``."""
        if self.level is Level.CONFIG:
            return config_complete(text, self.context.mode)
        return exec_complete(text, self.level)

    # --- running lines ------------------------------------------------------------------
    def execute(self, line: str) -> Output:  # noqa: PLR0911 - one exit per kind of line
        """Run one typed line."""
        line = line.rstrip("\r\n")
        if not line.strip():
            return Output()
        self.history.append(line.strip())
        if self.trailing_help and line.rstrip().endswith("?"):
            return Output(self.help(line.rstrip()[:-1]), page=False)
        if self.level is Level.CONFIG:
            if line.lstrip().startswith("!"):
                return Output()
            kind = config_line_kind(line, self.context.mode)
            if kind is LineKind.AMBIGUOUS:
                return Output([ambiguous(line)], ok=False)
            if kind is LineKind.CONFIG:
                return self._config_line(line)
        parsed = parse(line, self.level)
        if parsed is None:
            return Output()
        if isinstance(parsed, Failure):
            return Output(failure_lines(parsed, line, len(self.prompt)), ok=False)
        return self.run(parsed)

    def run(self, command: Parsed) -> Output:
        """Run a parsed command (its handler, then its ``|`` modifier)."""
        try:
            lines = command.handler(self, command)
            if command.pipe is not None:
                lines = pipes.apply(command.pipe, lines)
        except ShellError as exc:
            return Output(exc.lines, ok=False)
        except pipes.PipeError as exc:
            return Output([str(exc)], ok=False)
        except grpc.RpcError as exc:
            return Output([error_text(exc, self.api.target)], ok=False)
        return Output(lines)

    def end(self) -> Output:
        """``end`` or Ctrl-Z: back to privileged EXEC."""
        if self.level is not Level.CONFIG:
            return Output(page=False)
        self.level, self.context = Level.PRIV, ROOT
        if self.pending:
            return Output(
                [
                    "% Warning: the configuration has changes that are not applied "
                    "yet (it is not valid); see 'show running-config'"
                ],
                page=False,
            )
        return Output(page=False)

    # --- configuration mode -------------------------------------------------------------
    def _config_line(self, line: str) -> Output:
        try:
            response = self.api.edit_line(self.context, line)
        except grpc.RpcError as exc:
            return Output([error_text(exc, self.api.target)], ok=False, page=False)
        if response.diagnostics:
            return Output(self._refused(line, response.diagnostics[0]), ok=False, page=False)
        self.context = context_from_pb(response.context)
        self.pending = bool(response.candidate_pending)
        out: list[str] = []
        ok = True
        if response.HasField("apply"):
            out, ok = _apply_lines(response.apply)
        words = [t.text.lower() for t in tokenize(line)]
        if words and words[0] in NEGATIONS:
            words = words[1:]
        if words and len(words[0]) >= 2 and "hostname".startswith(words[0]):
            self._host = None  # read again for the next prompt
        return Output(out, ok=ok, page=False)

    def _refused(self, line: str, diagnostic: Any) -> list[str]:
        """IOS's message for a configuration line the daemon refused: what the grammar
        says of the line (matched here by the same engine), else the daemon's words under
        the token they are about (a handler's refusal, a refused character)."""
        failure = None if first_refused(line) is not None else config_failure(line, self.mode)
        if failure is not None and failure.kind is FailureKind.INCOMPLETE:
            return [INCOMPLETE, ""]
        if failure is not None and failure.kind is FailureKind.AMBIGUOUS:
            return [ambiguous(line)]
        if failure is not None and failure.kind is not FailureKind.REFUSED:
            return [caret(failure.offset, len(self.prompt)), INVALID, ""]
        if not diagnostic.HasField("column"):
            return [f"% {diagnostic.message}"]
        return [caret(int(diagnostic.column) - 1, len(self.prompt)), f"% {diagnostic.message}", ""]

    @property
    def mode(self) -> Mode:
        """The configuration mode the session is in."""
        return self.context.mode


_APPLY_OUTCOME = config_pb2.ApplyOutcome


def _apply_lines(result: Any) -> tuple[list[str], bool]:
    """What to say after an edit's apply: nothing when it was applied."""
    outcome = result.outcome
    if outcome in (
        _APPLY_OUTCOME.Value("APPLY_OUTCOME_APPLIED"),
        _APPLY_OUTCOME.Value("APPLY_OUTCOME_UNCHANGED"),
        _APPLY_OUTCOME.Value("APPLY_OUTCOME_DRY_RUN"),
    ):
        warnings = [
            f"% Warning: {d.message}"
            for d in result.diagnostics
            if d.severity == config_pb2.DIAGNOSTIC_SEVERITY_WARNING
        ]
        return warnings, True
    errors = [d for d in result.diagnostics if d.severity != config_pb2.DIAGNOSTIC_SEVERITY_WARNING]
    if outcome == _APPLY_OUTCOME.Value("APPLY_OUTCOME_REJECTED"):
        lines = ["% Not applied yet (the configuration is not valid; the change is kept):"]
        lines += [f"%   {d.message}" for d in errors] or [f"%   {result.message}"]
        return lines, True
    return [f"% Apply failed: {result.message}"], False
