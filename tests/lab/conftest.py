"""Lab fixtures: the lab is brought up once per session (inside the VM when the kernel needs it)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.netns import Lab


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    """The running lab; brought up here if it is not up yet."""
    the_lab = Lab()
    if not the_lab.is_up():
        timings = the_lab.up()
        print(f"\nlab up: {timings}")
    yield the_lab
    dest = os.environ.get("FRRDMVPN_LAB_ARTIFACTS")
    if dest and the_lab.is_up():
        the_lab.collect_logs(Path(dest))


@pytest.fixture
def frrdmvpn_mode(lab: Lab) -> None:
    """For tests of frrdmvpn's own enforcement: skipped on a lab built in stock `trap` mode."""
    if lab.mode != "frrdmvpn":
        pytest.skip(f"the lab runs in {lab.mode!r} mode, without frrdmvpn")
