"""Install, upgrade, remove and purge the package in a scratch root, as an operator would
with dpkg, and check what each step leaves (piuparts' checks, on this machine's own root),
with the real charon, swanctl and frrdmvpn-proxy running in it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.package.scratch import ENV, ScratchRoot, scratch_root

pytestmark = [pytest.mark.package, pytest.mark.usefixtures("root_user")]

ROOT = Path(__file__).resolve().parents[2]
CONF = "/etc/frrdmvpn/frrdmvpn.conf"
EXAMPLE = "/usr/share/frrdmvpn/frrdmvpn.conf"
DROPIN = "/etc/strongswan.d/frrdmvpn.conf"
OLD_LINK = "/usr/share/frrdmvpn/strongswan.d/frrdmvpn.conf"  # 0.2.0's relocation
PROXY = "/run/charon.vici"  # charon's own socket on an unconfigured node
RELOCATED = "/run/charon.frrdmvpn.vici"
OPERATOR_LINE = "! edited by the operator\n"


def _version(root: ScratchRoot) -> str:
    return root.run(["dpkg-query", "-W", "-f=${Version}", "frrdmvpn"]).stdout


GROUPS = ("frrdmvpn", "frrdmvpn-admin")  # operators, administrators (docs/api.md#roles)


def _groups(root: ScratchRoot) -> set[str]:
    """Which of :data:`GROUPS` exist in ``root``."""
    return {g for g in GROUPS if root.run(["getent", "group", g], check=False).returncode == 0}


def _wait_for(what: str, ready: Path, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert proc.poll() is None, f"{what} exited"
        assert time.monotonic() < deadline, f"{what}: no {ready} in 60 s"
        time.sleep(0.1)


def _start(root: ScratchRoot, argv: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["unshare", "--net", "chroot", str(root.path), *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=ENV,
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)


@contextlib.contextmanager
def _charon(root: ScratchRoot) -> Iterator[str]:
    """The real charon, started in the root (own network namespace) with the root's
    strongSwan configuration; yields where it put its VICI socket."""
    candidates = (PROXY, RELOCATED)
    for c in candidates:
        root.file(c).unlink(missing_ok=True)
    charon = _start(root, ["/usr/lib/ipsec/charon"])
    try:
        deadline = time.monotonic() + 60
        while not (found := [c for c in candidates if root.file(c).exists()]):
            assert charon.poll() is None, "charon exited"
            assert time.monotonic() < deadline, "charon created no VICI socket in 60 s"
            time.sleep(0.2)
        yield found[0]
    finally:
        _stop(charon)


def _charon_socket(root: ScratchRoot) -> str:
    with _charon(root) as where:
        return where


def _swanctl(root: ScratchRoot) -> subprocess.CompletedProcess[str]:
    """``swanctl --list-sas`` as an operator runs it (its default socket)."""
    return root.run(["swanctl", "--list-sas"], check=False)


def _spoke(root: ScratchRoot) -> None:
    """The operator configures a tunnel (its source an address: no interface needed)."""
    text = (ROOT / "docs/examples/lab-spoke1.conf").read_text()
    root.file(CONF).write_text(
        text.replace(" tunnel source eth0\n", " tunnel source 198.51.100.11\n")
    )


def _mode(root: ScratchRoot, path: str) -> tuple[int, int, int]:
    st = root.file(path).stat()
    return stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid


def test_install_upgrade_remove_purge_leave_nothing_behind(deb: Path, deb_next: Path) -> None:
    with scratch_root() as root:
        assert _charon_socket(root) == PROXY  # stock strongSwan
        assert not root.changes()
        first, second = root.copy_in(deb), root.copy_in(deb_next)

        # install: groups, commands on PATH running on Debian's python3, the example copied
        assert not _groups(root)
        root.run(["dpkg", "-i", first])
        installed = _version(root)
        assert f"_{installed}_" in deb.name
        assert _groups(root) == set(GROUPS)
        for argv in (
            ["frrdmvpnd", "--version"],
            ["frrdmvpn-shell", "--version"],
            ["frrdmvpn-proxy", "--version"],
        ):
            assert installed in root.run(argv).stdout
        hub = "/usr/share/doc/frrdmvpn/examples/lab-hub.conf"
        assert "valid" in root.run(["frrdmvpnd", "validate", "-c", hub]).stdout
        # the configuration is the operator's file: the commented example, keys root only
        assert root.file(CONF).read_text() == root.file(EXAMPLE).read_text()
        assert _mode(root, CONF) == (0o600, 0, 0)

        # the upgrade keeps the operator's configuration and its previous version (both
        # hold keys), tightened to 0600 at most, as frrdmvpnd does when it starts
        root.file(CONF).write_text(root.file(CONF).read_text() + OPERATOR_LINE)
        os.chmod(root.file(CONF), 0o664)
        root.file(CONF + ".prev").write_text(OPERATOR_LINE)
        os.chmod(root.file(CONF + ".prev"), 0o644)
        root.run(["dpkg", "-i", second])
        upgraded = _version(root)
        assert upgraded != installed
        assert f"_{upgraded}_" in deb_next.name
        assert root.file(CONF).read_text().endswith(OPERATOR_LINE)
        assert _mode(root, CONF) == (0o600, 0, 0)
        assert _mode(root, CONF + ".prev") == (0o600, 0, 0)
        assert _groups(root) == set(GROUPS)

        # remove: programs gone, configuration kept
        root.run(["dpkg", "-r", "frrdmvpn"])
        assert not root.file("/usr/sbin/frrdmvpnd").exists()
        assert root.file(CONF).read_text().endswith(OPERATOR_LINE)

        # purge: configuration and groups gone, nothing left anywhere
        root.run(["dpkg", "-P", "frrdmvpn"])
        assert not root.file("/etc/frrdmvpn").exists()
        assert not _groups(root)
        assert root.changes() == {}


def test_an_unconfigured_node_keeps_charon_and_swanctl_as_they_were(deb: Path) -> None:
    with scratch_root() as root:
        root.run(["dpkg", "-i", root.copy_in(deb)])
        # the units stay off (ExecCondition "skip") and charon and FRR may start
        assert root.run(["frrdmvpnd", "configured"], check=False).returncode == 1
        assert root.run(["frrdmvpnd", "guard", "check"]).returncode == 0
        sync = ["frrdmvpnd", "configured", "--sync-charon-socket"]  # frrdmvpn-guard's
        assert root.run(sync, check=False).returncode == 1
        assert not root.file(DROPIN).exists()
        with _charon(root) as where:
            assert where == PROXY
            listed = _swanctl(root)
            assert listed.returncode == 0, listed.stdout + listed.stderr
        root.run(["dpkg", "-P", "frrdmvpn"])
        assert root.changes() == {}


def test_a_configured_node_relocates_charon_behind_the_proxy_and_removal_undoes_it(
    deb: Path,
) -> None:
    with scratch_root() as root:
        root.run(["dpkg", "-i", root.copy_in(deb)])
        _spoke(root)
        sync = ["frrdmvpnd", "configured", "--sync-charon-socket"]
        assert root.run(sync).returncode == 0
        assert root.file(DROPIN).read_text().startswith("# Generated by frrdmvpnd")
        with _charon(root) as where:
            assert where == RELOCATED
            # frrdmvpn-proxy.service: charon for everyone on the usual path, even with no
            # policy applied yet (it denies bindings and still relays swanctl)
            proxy = _start(root, ["frrdmvpn-proxy", "--config", "/run/frrdmvpn/running.conf"])
            try:
                _wait_for("frrdmvpn-proxy", root.file(PROXY), proxy)
                listed = _swanctl(root)
                assert listed.returncode == 0, listed.stdout + listed.stderr
            finally:
                _stop(proxy)

        # a typo or a deleted file: charon and FRR still start, frrdmvpn's units fail, and
        # charon's socket stays where it is
        text = root.file(CONF).read_text()
        for broken in (text.replace(" tunnel key 42\n", " tunnel key forty-two\n"), None):
            if broken is None:
                root.file(CONF).unlink()
            else:
                root.file(CONF).write_text(broken)
            check = root.run(["frrdmvpnd", "guard", "check"], check=False)
            assert check.returncode == 0, check.stderr
            assert "frrdmvpnd: warning: guards not checked" in check.stderr
            configured = root.run(sync, check=False)
            assert configured.returncode == 255
            assert CONF in configured.stderr
            assert root.file(DROPIN).exists()
        root.file(CONF).write_text(text)

        # removal takes charon's relocation with it
        root.run(["dpkg", "-r", "frrdmvpn"])
        assert not root.file(DROPIN).exists()
        assert _charon_socket(root) == PROXY
        root.run(["dpkg", "-P", "frrdmvpn"])
        assert root.changes() == {}


def test_the_upgrade_from_0_2_drops_its_link_that_relocated_every_node(
    deb: Path, deb_next: Path
) -> None:
    with scratch_root() as root:
        root.run(["dpkg", "-i", root.copy_in(deb)])
        os.symlink(OLD_LINK, root.file(DROPIN))
        # a charon started with the link listens on 0.2.0's path until it restarts
        with socket.socket(socket.AF_UNIX) as old_charon:
            old_charon.bind(str(root.file("/run/frrdmvpn-charon.vici")))
            root.run(["dpkg", "-i", root.copy_in(deb_next)])
        assert not root.file(DROPIN).is_symlink()
        assert not root.file(DROPIN).exists()
        # frrdmvpnd and the proxy reach it on the new path until then
        assert os.readlink(root.file(RELOCATED)) == "/run/frrdmvpn-charon.vici"
        assert _charon_socket(root) == PROXY
        root.run(["dpkg", "-P", "frrdmvpn"])
        assert root.changes() == {}
