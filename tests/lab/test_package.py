"""The lab's nodes run the installed frrdmvpn Debian package, not this source tree."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from lab import topology as topo
from lab.netns import Lab

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("frrdmvpn_mode")]


def _cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


def test_every_node_runs_the_installed_package_on_debians_python(lab: Lab) -> None:
    deb = os.environ.get("FRRDMVPN_LAB_DEB")
    if not deb:
        pytest.skip("FRRDMVPN_LAB_DEB is not set: this lab runs the source tree")
    version = subprocess.run(
        ["dpkg-deb", "-f", deb, "Version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    installed = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status} ${Version}", "frrdmvpn"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert installed == f"install ok installed {version}"
    assert lab.package == version
    for n in topo.NODES:
        for program in ("/usr/sbin/frrdmvpnd", "/usr/sbin/frrdmvpn-proxy"):
            (pid,) = lab.find(n.name, program)
            argv = _cmdline(pid)
            assert argv[:2] == ["/usr/bin/python3", program], argv
        # The API (generated stubs) runs on Debian's grpcio, as the package declares.
        (pid,) = lab.find(n.name, "/usr/sbin/frrdmvpnd")
        maps = Path(f"/proc/{pid}/maps").read_text()
        assert "/usr/lib/python3/dist-packages/grpc/_cython/cygrpc" in maps
        assert "/.venv/" not in maps
