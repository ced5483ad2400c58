"""No log record, diagnostic, printed message or report carries a secret: statically (every
read of a secret field is in a few known places, and none formats it into text that is not
the configuration itself) and at run time (frrdmvpnd's commands and an apply, with a key in
a rejected line)."""

from __future__ import annotations

import ast
import hashlib
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from frrdmvpn.application import frrdmvpnd
from frrdmvpn.config.frr import FRR_8_4, FrrVersion
from frrdmvpn.config.modes import Context, Mode
from frrdmvpn.config.parse import parse_strict
from frrdmvpn.config.secrets import STATEMENTS, values
from frrdmvpn.datastores import Datastores, digest
from tests.fakes.world import World

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
HUB = (ROOT / "docs" / "examples" / "lab-hub.conf").read_text()
FIELDS = {s.field for s in STATEMENTS}
KEY, AUTH = "Qz-psk-0f-the-hub-9", "Nh4uth"
TEXT = HUB.replace("frrdmvpn-lab-psk-not-for-production", KEY).replace(
    " ip nhrp holdtime 60", f" ip nhrp authentication {AUTH}\n ip nhrp holdtime 60"
)
BAD_KEY = "Bad-k3y-in-a-refused-line"
PEER = Context(Mode.IKEV2_KEYRING_PEER, ("lab", "any"))

# Where a secret field may be read, and what the code does with it.
READERS = {
    ("frrdmvpn/config/canonical_text.py", "_keyring"): "writes the configuration text",
    ("frrdmvpn/config/canonical_text.py", "interface_lines"): "writes the configuration text",
    ("frrdmvpn/config/frr.py", "nhrpd_interface"): "writes nhrpd's configuration (FRR 10.2+)",
    ("frrdmvpn/config/frr.py", "check_supported"): "refuses it where nhrpd lacks it (is it set?)",
    ("frrdmvpn/config/swan.py", "_shared"): "puts the key in charon's load-shared message",
    ("frrdmvpn/config/validate.py", "_Checker.keys"): "checks that a key exists",
    ("frrdmvpn/config/validate.py", "_Checker.limits"): "measures a key against VICI's limit",
    ("frrdmvpn/config/validate.py", "_Checker.nhrp_extras"): "checks the string's length",
    ("frrdmvpn/config/policy.py", "loaded_keys"): "lists the keyrings' peers that have a key",
    ("frrdmvpn/config/policy.py", "psk_identity_problems"): "compares keys to find shared ones",
}
TEXT_WRITERS = {
    ("frrdmvpn/config/canonical_text.py", "_keyring"),
    ("frrdmvpn/config/canonical_text.py", "interface_lines"),
    ("frrdmvpn/config/frr.py", "nhrpd_interface"),
}
LOGGING = {"debug", "info", "warning", "error", "exception", "critical", "log"}


def _sources() -> list[Path]:
    paths = [*(ROOT / "frrdmvpn").rglob("*.py"), *(ROOT / "cli").rglob("*.py")]
    return sorted(p for p in paths if "v1" not in p.relative_to(ROOT).parts)


class _Reads(ast.NodeVisitor):
    """Each read of a secret field: (function, node, the calls and f-strings around it)."""

    def __init__(self) -> None:
        self.scope: list[str] = []
        self.around: list[ast.AST] = []
        self.found: list[tuple[str, int, list[ast.AST]]] = []

    def _scoped(self, node: ast.AST, name: str) -> None:
        self.scope.append(name)
        self.generic_visit(node)
        self.scope.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._scoped(node, node.name)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._scoped(node, node.name)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._scoped(node, node.name)

    def generic_visit(self, node: ast.AST) -> None:
        wraps = isinstance(node, ast.Call | ast.JoinedStr | ast.BinOp | ast.Raise)
        if wraps:
            self.around.append(node)
        if isinstance(node, ast.Attribute) and node.attr in FIELDS:
            self.found.append((".".join(self.scope), node.lineno, list(self.around)))
        super().generic_visit(node)
        if wraps:
            self.around.pop()


def _is_logging(call: ast.AST) -> bool:
    if not isinstance(call, ast.Call):
        return False
    func = call.func
    if isinstance(func, ast.Name):
        return func.id in ("print", "warn")
    return isinstance(func, ast.Attribute) and (func.attr in LOGGING or func.attr == "write")


def test_secret_fields_are_read_only_where_listed_and_never_logged_or_formatted() -> None:
    seen = set()
    for path in _sources():
        visitor = _Reads()
        visitor.visit(ast.parse(path.read_text()))
        name = str(path.relative_to(ROOT))
        for function, line, around in visitor.found:
            where = (name, function)
            assert where in READERS, f"{name}:{line}: {function} reads a secret: list it in READERS"
            seen.add(where)
            for node in around:
                assert not _is_logging(node), f"{name}:{line}: a secret in a log/print call"
                assert not isinstance(node, ast.Raise), f"{name}:{line}: a secret in an error"
                if where not in TEXT_WRITERS:
                    assert not isinstance(node, ast.JoinedStr | ast.BinOp), (
                        f"{name}:{line}: a secret formatted into text"
                    )
    assert seen == set(READERS)  # the list holds nothing stale


def test_frrdmvpnd_validate_and_configured_print_no_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "frrdmvpn.conf"
    path.write_text(TEXT.replace(f"pre-shared-key {KEY}", f"pre-shared-key local {BAD_KEY}"))
    running = tmp_path / "running.conf"
    assert frrdmvpnd.main(["validate", "-c", str(path), "--running", str(running)]) == 1
    assert frrdmvpnd.main(["configured", "-c", str(path)]) == frrdmvpnd.UNUSABLE
    out, err = capsys.readouterr()
    assert "pre-shared-key <removed> <removed>" in err
    for secret in (BAD_KEY, KEY, AUTH, "local"):
        assert secret not in out + err
    path.write_text(
        TEXT.replace(
            f" ip nhrp authentication {AUTH}", " ip nhrp authentication 123456789-too-long"
        )
    )
    assert frrdmvpnd.main(["validate", "-c", str(path), "--running", str(running)]) == 1
    out, err = capsys.readouterr()
    assert "ip nhrp authentication <removed>" in err
    assert "123456789" not in out + err


def test_an_apply_logs_and_reports_no_secret(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """nhrpd (FRR 10.3) is sent the NHRP authentication string: the changes show it masked."""
    config = parse_strict(TEXT)
    assert set(values(config)) == {KEY, AUTH}
    world = World()
    world.version = FrrVersion(10, 3)
    world.known.append(config)
    stores = Datastores(
        saved=tmp_path / "saved.conf",
        running=tmp_path / "running.conf",
        ports=lambda: world.ports(config),
    )
    bad = TEXT.replace(f"pre-shared-key {KEY}", f"pre-shared-key local {BAD_KEY}")
    with caplog.at_level(logging.DEBUG):
        applied = stores.apply_text(TEXT)
        world.fail_on = "load-shared"  # a failure after changes: undone and reported
        failed = stores.apply_text(TEXT.replace(KEY, KEY + "2"))
        world.fail_on = None
        rejected = stores.apply_text(bad)
        edited = stores.edit(PEER, [f"pre-shared-key 7 {BAD_KEY}"], commit=True)
    assert applied.ok, applied.message
    assert not failed.ok
    assert not rejected.ok
    assert edited.accepted == 0
    findings = [*rejected.diagnostics, *edited.diagnostics]
    assert len(findings) == 2
    shown = [r.getMessage() for r in caplog.records]
    shown += [r.message for r in (applied, failed, rejected)] + [*failed.changes]
    shown += [str(d) for d in findings] + [findings[0].format(bad)]
    assert any("load-shared" in line for line in shown)
    assert f" ip nhrp authentication {AUTH}" in world.frr["nhrpd"].splitlines()
    assert "nhrpd: ip nhrp authentication <removed>" in applied.changes
    for secret in (KEY, KEY + "2", AUTH, BAD_KEY):
        assert not [line for line in shown if secret in line]


def test_a_refusal_on_frr_8_4_names_no_secret(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """nhrpd of FRR 8.4 lacks NHRP authentication: the apply is refused, the string unnamed."""
    config = parse_strict(TEXT)
    world = World()
    world.known.append(config)
    stores = Datastores(
        saved=tmp_path / "saved.conf",
        running=tmp_path / "running.conf",
        ports=lambda: world.ports(config),
    )
    with caplog.at_level(logging.DEBUG):
        refused = stores.apply_text(TEXT)
    assert world.version == FRR_8_4
    assert not refused.ok
    assert "ip nhrp authentication needs nhrpd from FRR 10.2" in refused.message
    assert "previous state restored" in refused.message
    shown = [r.getMessage() for r in caplog.records] + [refused.message, *refused.changes]
    assert not [line for line in shown if AUTH in line or KEY in line]
    assert not (tmp_path / "running.conf").exists()


def test_a_digest_cannot_be_recomputed_from_a_text_outside_the_daemon() -> None:
    """An operator sees masked text and the digest: with a plain hash, a guessed key could
    be checked offline. The digest is keyed with this process's random key."""
    assert digest(TEXT) == digest(TEXT) != digest(TEXT + "!")
    assert digest(TEXT).startswith("hmac-sha256:")
    assert hashlib.sha256(TEXT.encode()).hexdigest() not in digest(TEXT)
    code = "import sys; from frrdmvpn.datastores import digest; print(digest(sys.stdin.read()))"
    other = subprocess.run(
        [sys.executable, "-c", code],
        input=TEXT,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout.strip()
    assert other.startswith("hmac-sha256:")
    assert other != digest(TEXT)
