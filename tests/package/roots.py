"""The root a Debian release's programs run from in the package tier: this machine's own for
Debian 12, the lab's built root for Debian 13 (``frrdmvpn-lab prepare``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lab.release import release_dir, uses_host_root


def missing(why: str) -> None:
    """A test cannot run here: a failure under FRRDMVPN_PACKAGE_REQUIRED=1 (scripts/test), a
    skip elsewhere."""
    if os.environ.get("FRRDMVPN_PACKAGE_REQUIRED") == "1":
        pytest.fail(why)
    pytest.skip(why)


def release_root(release: str, needs: str) -> Path:
    """``release``'s root, which must hold ``needs`` (a path below it)."""
    root = Path("/") if uses_host_root(release) else release_dir(release) / "root"
    if not (root / needs).exists():
        missing(
            f"no {release} root with /{needs}: FRRDMVPN_LAB_RELEASE={release} frrdmvpn-lab prepare"
        )
    return root
