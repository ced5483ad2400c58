"""Lab fixtures: the lab is brought up once per session (inside the VM when the kernel needs it)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import topology as topo
from lab.netns import Lab, wait_for
from tests.lab.helpers import nhrp_cache


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
def restore_configs(lab: Lab) -> Iterator[None]:
    """Every node's frrdmvpn.conf as before the test, applied again after it; then both
    spokes registered at the hub again, as the next test expects."""
    saved = {n.name: lab.config_path(n).read_text() for n in topo.NODES}
    try:
        yield
    finally:
        for name, text in saved.items():
            lab.config_path(topo.node(name)).write_text(text)
            lab.apply(name)
        lab.run("spoke1", ["ip", "link", "del", "lan1"], check=False)  # test_config's
        spokes = {str(n.nbma.ip) for n in topo.NODES if not n.is_hub}
        wait_for(
            "both spokes registered at the hub again",
            lambda: spokes <= {e["nbma"] for e in nhrp_cache(lab, "hub") if e["type"] == "dynamic"},
            60,
        )


@pytest.fixture
def frrdmvpn_mode(lab: Lab) -> None:
    """For tests of frrdmvpn's own enforcement: skipped on a lab built in stock `trap` mode."""
    if lab.mode != "frrdmvpn":
        pytest.skip(f"the lab runs in {lab.mode!r} mode, without frrdmvpn")
