"""The kernel's addresses from one rtnetlink dump (``frrdmvpnd guard``'s, without pyroute2):
the same as pyroute2 reads them, in the kernel's order, also when the dump takes several
datagrams."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from frrdmvpn.adapters.address_dump import read_addresses
from frrdmvpn.adapters.links import Links

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]


def pyroute2_addresses() -> dict[str, tuple[object, ...]]:
    links = Links()
    try:
        return dict(links.addresses())
    finally:
        links.close()


def test_this_machines_addresses_are_pyroute2s() -> None:
    found = read_addresses()
    assert found == pyroute2_addresses()
    assert "lo" in found  # every namespace has it, with 127.0.0.1 once it is up


# In a network namespace of its own: lo with many addresses (a dump of several datagrams).
IN_NETNS = """
import json, subprocess
from frrdmvpn.adapters.address_dump import read_addresses
from frrdmvpn.adapters.links import Links
lines = [f"address add 10.{i}.{j}.1/32 dev lo" for i in range(1, 4) for j in range(1, 201)]
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
subprocess.run(["ip", "-batch", "-"], input="\\n".join(lines), text=True, check=True)
found = read_addresses()
links = Links()
print(json.dumps({"same": found == links.addresses(), "lo": [str(a) for a in found["lo"]]}))
"""


@pytest.mark.timeout(60)
@pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(c) for c in ("unshare", "ip")),
    reason="needs root, unshare and ip",
)
def test_a_dump_of_several_datagrams_is_read_whole_and_in_order() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    argv = ["unshare", "--net", "--", sys.executable, "-c", IN_NETNS]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False, timeout=50)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["same"]
    expected = ["127.0.0.1"] + [f"10.{i}.{j}.1" for i in range(1, 4) for j in range(1, 201)]
    assert result["lo"] == expected
