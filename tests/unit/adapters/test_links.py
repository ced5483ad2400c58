"""The kernel adapter's pure parts: sysctl writes (only what differs, IPv6 may be absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from frrdmvpn.adapters.links import set_sysctls

pytestmark = pytest.mark.unit


def test_sysctls_are_written_only_when_they_differ(tmp_path: Path) -> None:
    (tmp_path / "net/ipv4").mkdir(parents=True)
    (tmp_path / "net/ipv4/ip_forward").write_text("0\n")
    pairs = [("net.ipv4.ip_forward", "1"), ("net.ipv6.conf.dmvpn0.disable_ipv6", "1")]
    assert set_sysctls(pairs, root=tmp_path) == ["sysctl net.ipv4.ip_forward = 1 (was 0)"]
    assert (tmp_path / "net/ipv4/ip_forward").read_text() == "1\n"
    assert set_sysctls(pairs, root=tmp_path) == []  # IPv6 absent: skipped, not an error
