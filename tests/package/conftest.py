"""The package tier: the .deb that scripts/build-deb built, checked as Debian would.

FRRDMVPN_DEB names the package (default: build/deb/frrdmvpn_*_all.deb) and FRRDMVPN_DEB_NEXT
the same tree rebuilt as a higher version (default: build/deb-next/), for the upgrade. With
FRRDMVPN_PACKAGE_REQUIRED=1 (scripts/test) a missing package fails instead of skipping.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.package.roots import missing

ROOT = Path(__file__).resolve().parents[2]


def _find(variable: str, directory: str) -> Path:
    named = os.environ.get(variable)
    found = [Path(named)] if named else sorted((ROOT / directory).glob("frrdmvpn_*_all.deb"))
    if len(found) != 1 or not found[0].is_file():
        why = f"no single frrdmvpn .deb in {directory} (run scripts/build-deb): {found}"
        missing(why)
    return found[0].resolve()


@pytest.fixture(scope="session")
def deb() -> Path:
    """The package under test."""
    return _find("FRRDMVPN_DEB", "build/deb")


@pytest.fixture(scope="session")
def deb_next() -> Path:
    """The same source rebuilt as a higher version (``FRRDMVPN_DEB_VERSION``)."""
    return _find("FRRDMVPN_DEB_NEXT", "build/deb-next")


@pytest.fixture(scope="session")
def root_user() -> None:
    if os.geteuid() != 0:
        pytest.skip("installs into a scratch root: needs root")
