"""How the lab runs: its kernel cache (rebuilt when the initramfs init changes) and the lab
tier's pytest arguments."""

from __future__ import annotations

import pytest

from lab import kernel
from lab.cli import lab_pytest_args

pytestmark = pytest.mark.unit


def test_the_stamp_names_the_kernel_and_changes_with_the_init_script(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stamp = kernel._stamp("6.1.0-42-amd64")
    assert stamp.startswith("6.1.0-42-amd64\n")
    monkeypatch.setattr(kernel, "_INIT", kernel._INIT + "# changed\n")
    assert kernel._stamp("6.1.0-42-amd64") != stamp


def test_the_init_mounts_the_root_with_the_cache_mode_the_kernel_line_names() -> None:
    assert "cache=$(arg rootcache)" in kernel._INIT
    assert "ro${cache:+,cache=$cache}" in kernel._INIT


def test_the_lab_tier_collects_only_the_lab_tests_unless_paths_are_named() -> None:
    assert lab_pytest_args(["-v"]) == ["-m", "lab", "-v", "tests/lab"]
    assert lab_pytest_args(["-x", "tests/lab/test_api.py"]) == [
        "-m",
        "lab",
        "-x",
        "tests/lab/test_api.py",
    ]
