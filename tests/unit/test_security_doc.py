"""docs/security.md names, for every claim, the tests that attack it: each named test exists
(a renamed or deleted test would leave a claim unattacked without anyone noticing)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
NAMED = re.compile(r"`(tests/[\w/]+\.py)::([\w:]+)`")


def _defined(path: Path) -> set[str]:
    """Every test's node id below the module: ``test_x`` and ``Class::test_x``."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            found.add(node.name)
        elif isinstance(node, ast.ClassDef):
            found |= {
                f"{node.name}::{f.name}"
                for f in node.body
                if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
            }
    return found


def test_every_test_the_security_document_names_exists() -> None:
    text = (ROOT / "docs/security.md").read_text()
    named = NAMED.findall(text)
    assert len(named) > 100  # the pattern still matches how the document names tests
    missing = [
        f"{module}::{name}"
        for module, name in named
        if not (ROOT / module).is_file() or name not in _defined(ROOT / module)
    ]
    assert missing == []
