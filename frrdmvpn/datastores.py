"""The configuration datastores: running, candidate, saved (and its previous copy).

Every change of the running configuration goes through :meth:`Datastores.apply_text`:
validate, then :func:`frrdmvpn.apply.apply` under the apply lock, then record the new running
text (and a revision) and tell the proxy to re-read its policy (an IPsec profile that is
not running yet is announced to it before, :func:`frrdmvpn.adapters.config_store.announce`:
nhrpd may use it as soon as the apply configures it). The candidate is what the
shell's configuration mode edits (IOS applies each line; so does ``EditConfig`` with
commit). Used by ``frrdmvpnd apply|save`` and by the gRPC ConfigService alike.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import hmac
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from frrdmvpn.adapters import config_store
from frrdmvpn.config.canonical_text import render
from frrdmvpn.config.diagnostics import Diagnostic
from frrdmvpn.config.edit import apply_line
from frrdmvpn.config.model import Config
from frrdmvpn.config.modes import ROOT, Context
from frrdmvpn.config.secrets import MASK
from frrdmvpn.config.swan import connection_names
from frrdmvpn.config.validate import FileCheck, check

if TYPE_CHECKING:
    from frrdmvpn.apply import Ports

REVISIONS_KEPT = 50
EMPTY: frozenset[str] = frozenset()


class ApplyOutcome(enum.Enum):
    APPLIED = "applied"
    UNCHANGED = "unchanged"
    DRY_RUN = "dry-run"
    REJECTED = "rejected"  # invalid, or a stale expected digest: nothing was touched
    FAILED_RESTORED = "failed-restored"
    FAILED_NOT_RESTORED = "failed-not-restored"


class ConflictError(RuntimeError):
    """An expected digest does not match (someone else changed the configuration)."""


_DIGEST_KEY = os.urandom(32)  # this process's: a digest says nothing about the secrets


def digest(text: str) -> str:
    """``hmac-sha256:<hex>`` of a configuration's canonical text, keyed with a random key of
    this process: equal texts have equal digests while the daemon runs, and a digest shown
    to an operator cannot be used to test guesses of a pre-shared key offline (a plain hash
    of a text whose only unknown is the key could)."""
    return "hmac-sha256:" + hmac.new(_DIGEST_KEY, text.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Revision:
    """One configuration as it was applied (number > 0) or stored (number 0)."""

    number: int
    text: str
    at: float
    origin: str = ""  # "api", "cli", "startup", "rollback", "sighup"...
    comment: str = ""
    changes: int = 0

    @property
    def digest(self) -> str:
        return digest(self.text)


@dataclass(frozen=True)
class ApplyReport:
    outcome: ApplyOutcome
    message: str
    changes: tuple[str, ...] = ()
    diagnostics: tuple[Diagnostic, ...] = ()
    running: Revision | None = None

    @property
    def ok(self) -> bool:
        return self.outcome in (ApplyOutcome.APPLIED, ApplyOutcome.UNCHANGED, ApplyOutcome.DRY_RUN)


@dataclass(frozen=True)
class EditReport:
    context: Context
    accepted: int
    diagnostics: tuple[Diagnostic, ...]
    candidate: str
    apply: ApplyReport | None = None


@dataclass
class Datastores:
    """The node's configuration files and history; thread-safe (one change at a time)."""

    saved: Path = config_store.SAVED
    running: Path = config_store.RUNNING
    ports: Callable[[], Ports] | None = None
    # Whether a trustpoint's file may be read (frrdmvpn.node_ports.check_trustpoint_file);
    # None: not checked before the apply (which reads them through Ports.read_file).
    check_file: FileCheck | None = None
    on_change: Callable[[str, ApplyReport | None], None] | None = None
    revisions: list[Revision] = field(default_factory=list)
    candidate: str | None = None  # None: equal to running
    last_report: ApplyReport | None = None
    _lock: threading.RLock = field(default_factory=threading.RLock)

    # --- reading ------------------------------------------------------------------------
    def running_text(self) -> str:
        return config_store.read(self.running) or ""

    def saved_text(self) -> str | None:
        return config_store.read(self.saved)

    def saved_previous_text(self) -> str | None:
        return config_store.read(self.saved.with_name(self.saved.name + ".prev"))

    def candidate_text(self) -> str:
        return self.running_text() if self.candidate is None else self.candidate

    def revision(self, number: int) -> Revision | None:
        return next((r for r in self.revisions if r.number == number), None)

    @property
    def running_revision(self) -> Revision:
        text = self.running_text()
        if self.revisions and self.revisions[-1].text == text:
            return self.revisions[-1]
        return Revision(0, text, _mtime(self.running))

    # --- checking -----------------------------------------------------------------------
    def validate(
        self, text: str, *, check_files: bool = True
    ) -> tuple[Config | None, tuple[Diagnostic, ...]]:
        """The configuration if it has no error, and every finding (the certificate and
        key files apply would read included, with :attr:`check_file`, unless not
        ``check_files``). A masked secret (``<removed>``, as the API shows secrets) keeps
        the running configuration's."""
        reference = check(self.running_text())[0] if MASK in text else None
        files = self.check_file if check_files else None
        config, findings = check(text, secrets_from=reference, files=files)
        return (None if any(f.is_error for f in findings) else config), tuple(findings)

    # --- changing -----------------------------------------------------------------------
    def apply_text(
        self,
        text: str,
        *,
        dry_run: bool = False,
        origin: str = "api",
        comment: str = "",
        expected_running: str = "",
    ) -> ApplyReport:
        """Validate ``text`` and make it the running configuration (only what differs).
        ConflictError if ``expected_running`` is given and is not the running digest."""
        config, findings = self.validate(text)
        if config is None:
            errors = sum(f.is_error for f in findings)
            rejected = ApplyReport(
                ApplyOutcome.REJECTED, f"{errors} error(s), nothing applied", diagnostics=findings
            )
            return self._done(rejected, dry_run)
        if self.ports is None:
            raise RuntimeError("no system to apply to (Datastores without ports)")
        with self._lock, config_store.locked(self.running):
            running_text = config_store.read(self.running)
            if expected_running and digest(running_text or "") != expected_running:
                raise ConflictError(
                    f"the running configuration changed meanwhile (it is "
                    f"{digest(running_text or '')}, not {expected_running}); read it again"
                )
            old = None if running_text is None else check(running_text)[0]
            # The proxy lets nhrpd use only the running configuration's IPsec profiles; a
            # new one is announced before nhrpd learns it, withdrawn once it is running.
            new = connection_names(config) - (EMPTY if old is None else connection_names(old))
            if new and not dry_run:
                config_store.announce(self.running, new)
                _reload_proxy(self.running.parent / "proxy.pid")
            try:
                return self._apply(
                    config,
                    old,
                    running_text,
                    findings,
                    dry_run=dry_run,
                    origin=origin,
                    comment=comment,
                )
            finally:
                if new and not dry_run:
                    config_store.announce(self.running, EMPTY)
                    _reload_proxy(self.running.parent / "proxy.pid")

    def _apply(
        self,
        config: Config,
        old: Config | None,
        running_text: str | None,
        findings: tuple[Diagnostic, ...],
        *,
        dry_run: bool,
        origin: str,
        comment: str,
    ) -> ApplyReport:
        assert self.ports is not None
        # `frrdmvpnd validate` and `save` use the datastores but never apply
        from frrdmvpn.apply import ApplyError, apply  # noqa: PLC0415 - only applying needs it

        try:
            plan = apply(config, old, self.ports(), dry_run=dry_run)
        except ApplyError as exc:
            restored = exc.rolled_back
            outcome = ApplyOutcome.FAILED_RESTORED if restored else ApplyOutcome.FAILED_NOT_RESTORED
            state = "restored" if restored else "NOT restored"
            message = f"apply failed: {exc}; previous state {state}"
            report = ApplyReport(outcome, message, tuple(exc.changes), findings)
            return self._done(report, dry_run)
        changes = tuple(plan.changes)
        if dry_run:
            report = ApplyReport(
                ApplyOutcome.DRY_RUN, f"{len(changes)} change(s) planned", changes, findings
            )
            return self._done(report, dry_run)
        canonical = render(config)
        unchanged = not changes and running_text == canonical
        config_store.atomic_write(self.running, canonical)
        revision = self.running_revision
        if not unchanged or not self.revisions:
            revision = Revision(
                self._next_number(), canonical, time.time(), origin, comment, len(changes)
            )
            self.revisions.append(revision)
            del self.revisions[:-REVISIONS_KEPT]
        self.candidate = None
        _reload_proxy(self.running.parent / "proxy.pid")
        outcome = ApplyOutcome.UNCHANGED if unchanged else ApplyOutcome.APPLIED
        report = ApplyReport(outcome, f"{len(changes)} change(s)", changes, findings, revision)
        return self._done(report, dry_run)

    def _next_number(self) -> int:
        return (self.revisions[-1].number if self.revisions else 0) + 1

    def _done(self, report: ApplyReport, dry_run: bool) -> ApplyReport:
        if not dry_run:
            self.last_report = report
            if self.on_change is not None:
                self.on_change("applied" if report.ok else "apply-failed", report)
        return report

    def save(self, expected_running: str = "") -> tuple[Path, Path | None]:
        """``write memory``: the running configuration becomes the saved file."""
        with self._lock:
            text = config_store.read(self.running)
            if text is None:
                raise FileNotFoundError("nothing has been applied yet, so there is nothing to save")
            if expected_running and digest(text) != expected_running:
                raise ConflictError(
                    f"the running configuration is {digest(text)}, not {expected_running}"
                )
            kept = config_store.save(self.saved, text)
        if self.on_change is not None:
            self.on_change("saved", None)
        return self.saved, kept

    def rollback_text(self, target: str | int) -> str:
        """The text of a rollback target: ``saved``, ``saved-previous``,
        ``previous-running`` or a revision number. LookupError if there is none."""
        if target == "saved":
            text = self.saved_text()
        elif target == "saved-previous":
            text = self.saved_previous_text()
        elif target == "previous-running":
            text = self.revisions[-2].text if len(self.revisions) >= 2 else None
        else:
            rev = self.revision(int(target))
            text = None if rev is None else rev.text
        if text is None:
            raise LookupError(f"no configuration to roll back to ({target})")
        return text

    def edit(
        self,
        context: Context,
        lines: list[str],
        *,
        commit: bool,
        dry_run: bool = False,
        origin: str = "api",
        comment: str = "",
    ) -> EditReport:
        """Apply lines to the candidate in ``context``; stop at the first bad line (the
        candidate keeps the lines before it). With ``commit`` the candidate is then applied;
        if that fails, the candidate goes back to what it was before these lines."""
        with self._lock:
            before = self.candidate
            base = self.candidate_text()
            config, _ = check(base)
            accepted = 0
            diagnostics: tuple[Diagnostic, ...] = ()
            for line in lines:
                step = apply_line(config, context, line)
                if step.diagnostics:
                    diagnostics = step.diagnostics
                    break
                config, context = step.config, step.context
                accepted += 1
            text = render(config)
            if dry_run:
                return EditReport(context, accepted, diagnostics, text)
            self.candidate = None if text == self.running_text() else text
            report = None
            if commit and not diagnostics:
                report = self.apply_text(text, origin=origin, comment=comment)
                if not report.ok:
                    self.candidate = before
            if self.on_change is not None and report is None:
                self.on_change("candidate", None)
            return EditReport(context, accepted, diagnostics, self.candidate_text(), report)

    def discard(self) -> None:
        with self._lock:
            self.candidate = None
        if self.on_change is not None:
            self.on_change("candidate", None)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _reload_proxy(pidfile: Path) -> None:
    """Tell frrdmvpn-proxy to re-read the authorization policy of the running config."""
    with contextlib.suppress(OSError, ValueError):  # no proxy yet: it reads it at start
        os.kill(int(pidfile.read_text().strip()), signal.SIGHUP)


ROOT_CONTEXT = ROOT
