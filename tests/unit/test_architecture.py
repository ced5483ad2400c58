"""The dependency rules between packages (pyproject.toml's ``[tool.importlinter]``,
docs/architecture.md) catch what they forbid: each deliberate violation, added to a copy of
the tree, breaks its contract, while the copy as it is keeps every contract."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).with_name("lint-imports")


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("tree")
    for package in ("frrdmvpn", "cli", "lab", "docgen"):
        shutil.copytree(
            ROOT / package, copy / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", copy)
    return copy


def lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT), "--no-cache"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_the_tree_keeps_every_contract(tree: Path) -> None:
    done = lint(tree)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


VIOLATIONS = [
    (
        "frrdmvpn/core/identity.py",
        "import frrdmvpn.adapters.vtysh",
        "config, core, codecs and the command engine do no I/O",
    ),
    (
        "frrdmvpn/config/model.py",
        "import asyncio",
        "config, core, codecs and the command engine do no I/O",
    ),
    ("frrdmvpn/codec/vici.py", "import frrdmvpn.core.authorize", "the product's layers"),
    (
        "frrdmvpn/command_engine/params.py",
        "import frrdmvpn.config.model",
        "the product's layers",
    ),
    (
        "frrdmvpn/command_engine/tokens.py",
        "import subprocess",
        "config, core, codecs and the command engine do no I/O",
    ),
    ("frrdmvpn/supervision.py", "import frrdmvpn.api.backend", "the product's layers"),
    (
        "cli/pipes.py",
        "import frrdmvpn.adapters.vtysh",
        "the shell reaches the daemon only through the API client",
    ),
    ("frrdmvpn/adapters/vtysh.py", "import frrdmvpn.datastores", "no import cycles in any package"),
    ("frrdmvpn/client.py", "import lab.pki", "the product imports no shell, lab or doc generator"),
]


@pytest.mark.parametrize(("path", "line", "contract"), VIOLATIONS)
def test_a_deliberate_violation_breaks_its_contract(
    tree: Path, path: str, line: str, contract: str
) -> None:
    target = tree / path
    kept = target.read_text()
    target.write_text(f"{kept}\n{line}  # deliberate violation\n")
    try:
        done = lint(tree)
    finally:
        target.write_text(kept)
    assert done.returncode == 1, done.stdout + done.stderr
    broken = [ln for ln in done.stdout.splitlines() if ln.endswith("BROKEN")]
    assert any(contract in ln for ln in broken), done.stdout


def test_no_test_module_imports_another() -> None:
    """Shared fakes and builders live in tests/fakes (and a tier's own helpers module), so
    moving or deleting a test never breaks another."""
    found = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            tests = [n for n in names if n.startswith("tests.")]
            found += [
                f"{path.relative_to(ROOT)}: {n}"
                for n in tests
                if n.rsplit(".", 1)[-1].startswith("test_")
            ]
    assert not found, found
