"""Guest kernel preparation: module dependency closure for the initramfs."""

from __future__ import annotations

import gzip
import lzma
import shutil
from pathlib import Path

import pytest

from lab import kernel
from lab.kernel import (
    INITRAMFS_MODULES,
    GuestKernel,
    module_closure,
    module_file_name,
    module_name,
    modules_dir,
    read_module,
)

pytestmark = pytest.mark.unit

MODULES_DEP = """\
kernel/fs/overlayfs/overlay.ko:
kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko kernel/fs/fscache/fscache.ko kernel/fs/netfs/netfs.ko
kernel/fs/fscache/fscache.ko: kernel/fs/netfs/netfs.ko
kernel/fs/netfs/netfs.ko:
kernel/net/9p/9pnet.ko:
kernel/net/9p/9pnet_virtio.ko: kernel/net/9p/9pnet.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_ring.ko:
"""


def test_dependencies_come_first_and_once() -> None:
    order = module_closure(MODULES_DEP, ("9pnet_virtio", "9p", "overlay"))
    assert order.index("kernel/net/9p/9pnet.ko") < order.index("kernel/fs/9p/9p.ko")
    assert order.index("kernel/fs/netfs/netfs.ko") < order.index("kernel/fs/fscache/fscache.ko")
    assert order.index("kernel/drivers/virtio/virtio_ring.ko") < order.index(
        "kernel/net/9p/9pnet_virtio.ko"
    )
    assert len(order) == len(set(order)) == 7


def test_builtin_modules_are_skipped() -> None:
    assert module_closure(MODULES_DEP, ("virtio_pci",)) == []


# Debian 13's kernel (6.12): merged-/usr module paths, xz-compressed modules, 9p needs netfs.
MODULES_DEP_612 = """\
kernel/fs/overlayfs/overlay.ko.xz:
kernel/fs/netfs/netfs.ko.xz:
kernel/fs/9p/9p.ko.xz: kernel/net/9p/9pnet.ko.xz kernel/fs/netfs/netfs.ko.xz
kernel/net/9p/9pnet.ko.xz:
kernel/net/9p/9pnet_virtio.ko.xz: kernel/net/9p/9pnet.ko.xz
kernel/drivers/char/hw_random/virtio-rng.ko.xz:
"""


def test_the_612_closure_brings_netfs_before_9p_and_skips_builtins() -> None:
    order = module_closure(MODULES_DEP_612, INITRAMFS_MODULES)
    assert order.index("kernel/fs/netfs/netfs.ko.xz") < order.index("kernel/fs/9p/9p.ko.xz")
    assert order.index("kernel/net/9p/9pnet.ko.xz") < order.index("kernel/fs/9p/9p.ko.xz")
    assert "kernel/drivers/char/hw_random/virtio-rng.ko.xz" in order  # virtio_rng, by its "-"
    assert len(order) == len(set(order)) == 6  # virtio_pci, virtio_console: built in


def test_compressed_modules_are_stored_plain(tmp_path: Path) -> None:
    assert module_name("kernel/fs/9p/9p.ko.xz") == "9p"
    assert module_file_name("kernel/fs/9p/9p.ko.xz") == "9p.ko"
    assert module_file_name("kernel/fs/9p/9p.ko.gz") == "9p.ko"
    assert module_file_name("kernel/fs/9p/9p.ko") == "9p.ko"
    elf = b"\x7fELF" + bytes(range(256)) * 4
    (tmp_path / "a.ko.xz").write_bytes(lzma.compress(elf, format=lzma.FORMAT_XZ))
    (tmp_path / "b.ko.gz").write_bytes(gzip.compress(elf))
    (tmp_path / "c.ko").write_bytes(elf)
    for name in ("a.ko.xz", "b.ko.gz", "c.ko"):
        assert read_module(tmp_path / name) == elf


def test_modules_are_found_in_either_layout(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    (old / "lib/modules").mkdir(parents=True)
    (new / "usr/lib/modules").mkdir(parents=True)
    assert modules_dir(old) == old / "lib/modules"
    assert modules_dir(new) == new / "usr/lib/modules"
    assert GuestKernel("6.12.1-amd64", new).modules == new / "usr/lib/modules"
    # a merged-/usr root (lib -> usr/lib): its lib/modules is the same directory
    merged = tmp_path / "merged"
    (merged / "usr/lib/modules").mkdir(parents=True)
    (merged / "lib").symlink_to("usr/lib")
    assert modules_dir(merged).resolve() == (merged / "usr/lib/modules").resolve()


def test_the_initramfs_init_mounts_a_shared_checkout_only_when_named() -> None:
    assert "src=$(arg checkout)" in kernel._INIT
    assert 'if [ -n "$src" ]; then' in kernel._INIT
    assert "labsrc /srclower" in kernel._INIT


def test_a_rebuilt_root_gets_its_kernel_unpacked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The initramfs stamp lives beside the root: a fresh root (rebuilt when its recipe
    changed) still needs the kernel unpacked into it."""
    root, cache = tmp_path / "root", tmp_path / "cache"
    (root / "debs").mkdir(parents=True)
    (root / "debs" / "linux-image-6.12.1-amd64_1_amd64.deb").write_bytes(b"")
    calls: list[str] = []

    def run(argv: list[str], cwd: Path | None = None) -> str:
        calls.append(argv[1])
        if argv[:2] == ["dpkg-deb", "-x"]:
            (root / "boot").mkdir(exist_ok=True)
            (root / "boot" / "vmlinuz-6.12.1-amd64").write_bytes(b"")
            (root / "usr/lib/modules/6.12.1-amd64").mkdir(parents=True, exist_ok=True)
            (root / "usr/lib/modules/6.12.1-amd64/modules.dep").write_text("")
        return "linux-image-6.12.1-amd64\n"

    monkeypatch.setattr(kernel, "_run", run)
    monkeypatch.setattr(kernel, "build_initramfs", lambda k: k.initramfs.write_bytes(b""))
    k = kernel.prepare_root_kernel(root, "debs", cache)
    assert (k.version, k.modules_in_guest) == ("6.12.1-amd64", "/lib/modules")
    assert calls == ["-f", "-x", "-b"]
    calls.clear()
    kernel.prepare_root_kernel(root, "debs", cache)
    assert calls == ["-f"]  # cached
    shutil.rmtree(root / "boot")
    shutil.rmtree(root / "usr")
    calls.clear()
    kernel.prepare_root_kernel(root, "debs", cache)
    assert calls == ["-f", "-x", "-b"]
