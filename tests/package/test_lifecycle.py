"""Install, upgrade, remove and purge the package in a scratch root, as an operator would
with dpkg, and check what each step leaves (piuparts' checks, on this machine's own root)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.package.scratch import ScratchRoot, scratch_root

pytestmark = [pytest.mark.package, pytest.mark.usefixtures("root_user")]

CONF = "/etc/frrdmvpn/frrdmvpn.conf"
DROPIN = "/etc/strongswan.d/frrdmvpn.conf"
OPERATOR_LINE = "! edited by the operator\n"


def _version(root: ScratchRoot) -> str:
    return root.run(["dpkg-query", "-W", "-f=${Version}", "frrdmvpn"]).stdout


def _group(root: ScratchRoot) -> bool:
    return root.run(["getent", "group", "frrdmvpn"], check=False).returncode == 0


def _charon_socket(root: ScratchRoot) -> str:
    """Where charon puts its VICI socket with the root's strongSwan configuration: start the
    real charon in the root (own network namespace), see which socket appears, stop it."""
    candidates = ("/run/charon.vici", "/run/frrdmvpn-charon.vici")
    for c in candidates:
        root.file(c).unlink(missing_ok=True)
    charon = subprocess.Popen(
        ["unshare", "--net", "chroot", str(root.path), "/usr/lib/ipsec/charon"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = [c for c in candidates if root.file(c).exists()]
            if found:
                return found[0]
            assert charon.poll() is None, "charon exited"
            time.sleep(0.2)
        raise AssertionError("charon created no VICI socket in 60 s")
    finally:
        charon.send_signal(signal.SIGTERM)
        charon.wait(timeout=30)


def test_install_upgrade_remove_purge_leave_nothing_behind(deb: Path, deb_next: Path) -> None:
    with scratch_root() as root:
        assert _charon_socket(root) == "/run/charon.vici"  # stock strongSwan
        assert not root.changes()
        first, second = root.copy_in(deb), root.copy_in(deb_next)

        # install: group, commands on PATH running on Debian's python3, charon's socket moved
        root.run(["dpkg", "-i", first])
        installed = _version(root)
        assert f"_{installed}_" in deb.name
        assert _group(root)
        assert os.readlink(root.file(DROPIN)) == "/usr/share/frrdmvpn/strongswan.d/frrdmvpn.conf"
        for argv in (["frrdmvpnd", "--version"], ["frrdmvpn-shell", "--version"],
                     ["frrdmvpn-proxy", "--version"], ["frrdmvpn-lab", "--version"]):  # fmt: skip
            assert installed in root.run(argv).stdout
        hub = "/usr/share/doc/frrdmvpn/examples/lab-hub.conf"
        assert "valid" in root.run(["frrdmvpnd", "validate", "-c", hub]).stdout
        # the unconfigured node stays off (systemd's ExecCondition) and needs no guard
        assert root.run(["frrdmvpnd", "configured"], check=False).returncode == 1
        assert root.run(["frrdmvpnd", "guard", "check"]).returncode == 0
        assert _charon_socket(root) == "/run/frrdmvpn-charon.vici"

        # upgrade to the rebuilt higher version: the operator's configuration is kept
        root.file(CONF).write_text(root.file(CONF).read_text() + OPERATOR_LINE)
        root.run(["dpkg", "-i", second])
        upgraded = _version(root)
        assert upgraded != installed
        assert f"_{upgraded}_" in deb_next.name
        assert root.file(CONF).read_text().endswith(OPERATOR_LINE)
        assert root.file(DROPIN).is_symlink()

        # remove: programs gone, configuration kept, charon's socket back where it was
        root.run(["dpkg", "-r", "frrdmvpn"])
        assert not root.file("/usr/sbin/frrdmvpnd").exists()
        assert not root.file(DROPIN).is_symlink()
        assert root.file(CONF).read_text().endswith(OPERATOR_LINE)
        assert _charon_socket(root) == "/run/charon.vici"

        # purge: configuration and group gone, nothing left anywhere
        root.run(["dpkg", "-P", "frrdmvpn"])
        assert not root.file("/etc/frrdmvpn").exists()
        assert not _group(root)
        assert root.changes() == {}
