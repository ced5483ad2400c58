"""The lab kernel cache rebuilds its initramfs when the init script changes (9p cache option)."""

from __future__ import annotations

import pytest

from frrdmvpn.lab import kernel

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
