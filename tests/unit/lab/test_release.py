"""The lab's Debian release option (issue 16): which release, how its root is built and
identified, how its userland runs charon and FRR, and how the VM boots on it — bookworm's
VM exactly as before the option existed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from lab import release as rel
from lab import topology as topo
from lab.kernel import GuestKernel
from lab.netns import Lab, _frr_config
from lab.vm import LabVm, built_guest, guest_python, run_dir_for

pytestmark = pytest.mark.unit


def test_bookworm_is_the_default_and_unknown_releases_are_refused() -> None:
    assert rel.selected({}) == "bookworm"
    assert rel.selected({"FRRDMVPN_LAB_RELEASE": ""}) == "bookworm"
    assert rel.selected({"FRRDMVPN_LAB_RELEASE": "trixie"}) == "trixie"
    with pytest.raises(rel.ReleaseError, match="bullseye"):
        rel.selected({"FRRDMVPN_LAB_RELEASE": "bullseye"})
    assert rel.uses_host_root("bookworm")
    assert not rel.uses_host_root("trixie")


def test_the_root_digest_follows_the_recipe(monkeypatch: pytest.MonkeyPatch) -> None:
    digest = rel.root_digest("trixie")
    assert digest == rel.root_digest("trixie")
    assert digest != rel.root_digest("forky")
    monkeypatch.setattr(rel, "ROOT_PACKAGES", (*rel.ROOT_PACKAGES, "lintian"))
    assert rel.root_digest("trixie") != digest
    monkeypatch.undo()
    monkeypatch.setattr(rel, "HARNESS_REQUIREMENTS", ("pytest==1.0",))
    assert rel.root_digest("trixie") != digest


def test_the_trixie_root_has_charon_systemd_and_no_strongswan_charon() -> None:
    argv = rel.mmdebstrap_argv("trixie", Path("/x/root.new"), "/etc/ca.crt")
    include = next(a for a in argv if a.startswith("--include="))
    packages = include.removeprefix("--include=").split(",")
    assert "charon-systemd" in packages
    assert "libstrongswan-extra-plugins" in packages  # aes, sha1, sha2, md5, hmac moved there
    assert "strongswan-charon" not in packages  # Conflicts with charon-systemd on Debian 13
    assert argv[argv.index("/x/root.new") - 1] == "trixie"
    assert argv[-3:] == rel.sources("trixie")
    hooks = [a for a in argv if a.startswith("--customize-hook=")]
    assert any(rel.KERNEL_DEB_DIR in h and "linux-image-amd64" in h for h in hooks)
    assert any(f"{rel.GUEST_VENV}/bin/pip install" in h and "env -i" in h for h in hooks)


def test_the_userland_is_read_from_os_release() -> None:
    assert rel.os_codename(
        'PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\nVERSION_CODENAME=trixie\n'
    ) == ("trixie")
    assert rel.os_codename("ID=debian\n") == ""
    assert rel.userland_for("trixie").frr_first == ("mgmtd",)
    assert rel.userland_for("trixie").frr_stdio_file
    # bookworm, and anything unknown, runs FRR as it always did
    for codename in ("bookworm", ""):
        old = rel.userland_for(codename)
        assert old.frr_first == ()
        assert not old.frr_stdio_file


def test_mgmtd_is_started_without_a_configuration_file() -> None:
    assert _frr_config("mgmtd", ("mgmtd",)) == []
    assert _frr_config("zebra", ("mgmtd",)) == ["-f", "/etc/frr/zebra.conf"]
    assert _frr_config("zebra", ()) == ["-f", "/etc/frr/zebra.conf"]


def test_charon_logs_where_its_apparmor_profiles_allow() -> None:
    # usr.sbin.charon-systemd (both releases) allows writing /run/charon.* and no log file
    conf = topo.strongswan_conf(topo.node("hub"))
    assert f"path = {topo.CHARON_LOG}" in conf
    assert topo.CHARON_LOG.startswith("/run/charon.")


def test_a_lab_takes_its_userland_from_the_root_it_runs_on(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr("lab.netns.current_userland", lambda: rel.TRIXIE_USERLAND)
    assert Lab(state_dir=tmp_path).userland is rel.TRIXIE_USERLAND


KERNEL = GuestKernel(version="6.1.0-42-amd64", root=Path("/var/cache/frrdmvpn-lab/k"))


def test_bookworm_boots_the_host_root_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTHONPATH", raising=False)
    run = Path("/var/tmp/frrdmvpn-lab/vm")
    assert run_dir_for(run, "bookworm") == run
    vm = LabVm(run)
    assert vm.release == "bookworm"
    assert vm.python == sys.executable == guest_python("bookworm")
    argv = vm.qemu_argv(KERNEL, 2048, 2)
    append = argv[argv.index("-append") + 1].split()
    assert f"frrdmvpn.python={sys.executable}" in append
    assert "frrdmvpn.pythonpath=" in append
    assert "frrdmvpn.modules=/var/cache/frrdmvpn-lab/k/lib/modules" in append
    assert not [a for a in append if a.startswith("frrdmvpn.checkout=")]
    shares = [argv[i + 1] for i, a in enumerate(argv) if a == "-virtfs"]
    assert shares == [
        "local,path=/,mount_tag=hostroot,security_model=passthrough,readonly=on,multidevs=remap",
        f"local,path={run},mount_tag=labrun,security_model=passthrough",
    ]


def test_trixie_boots_its_root_with_the_checkout_shared_read_only() -> None:
    run = run_dir_for(Path("/var/tmp/frrdmvpn-lab/vm-test"), "trixie")
    assert run == Path("/var/tmp/frrdmvpn-lab/vm-test-trixie")
    vm = LabVm(run, "trixie")
    root = Path("/var/cache/frrdmvpn-lab/trixie/root")
    guest = built_guest("trixie", root)
    kernel = GuestKernel(
        version="6.12.1-amd64",
        root=root,
        initramfs_dir=root.parent,
        guest_modules="/lib/modules",
    )
    argv = vm.qemu_argv(kernel, 2048, 2, guest)
    append = argv[argv.index("-append") + 1].split()
    assert f"frrdmvpn.python={rel.GUEST_VENV}/bin/python" in append
    assert vm.python == f"{rel.GUEST_VENV}/bin/python"
    assert f"frrdmvpn.checkout={guest.checkout}" in append
    assert f"frrdmvpn.pythonpath={guest.checkout}" in append
    assert "frrdmvpn.modules=/lib/modules" in append
    assert argv[argv.index("-initrd") + 1] == "/var/cache/frrdmvpn-lab/trixie/initramfs.cpio.gz"
    shares = [argv[i + 1] for i, a in enumerate(argv) if a == "-virtfs"]
    assert shares[0].startswith(f"local,path={root},mount_tag=hostroot,")
    assert "readonly=on" in shares[0]
    assert shares[2] == (
        f"local,path={guest.checkout},mount_tag=labsrc,security_model=passthrough,"
        "readonly=on,multidevs=remap"
    )
