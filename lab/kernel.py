"""The kernel the lab runs on: detect what the host offers, or prepare a guest kernel for QEMU."""

from __future__ import annotations

import gzip
import hashlib
import lzma
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

#: Kernel features the lab cannot do without.
REQUIRED_MODULES = ("ip_gre", "esp4", "xfrm_user")
#: Modules the guest's initramfs loads to reach its root filesystem and the host.
INITRAMFS_MODULES = ("virtio_pci", "virtio_rng", "9pnet_virtio", "9p", "overlay", "virtio_console")

CACHE_DIR = Path(os.environ.get("FRRDMVPN_LAB_CACHE", "/var/cache/frrdmvpn-lab"))


def _module_present(name: str) -> bool:
    if Path("/sys/module", name).exists():
        return True
    probe = subprocess.run(["modprobe", "-q", name], capture_output=True, check=False)
    return probe.returncode == 0 and Path("/sys/module", name).exists()


def native_capable() -> bool:
    """True when this kernel can run the lab directly (mGRE and ESP in network namespaces)."""
    mode = os.environ.get("FRRDMVPN_LAB_MODE", "auto")
    if mode in ("native", "vm"):
        return mode == "native"
    return all(_module_present(m) for m in REQUIRED_MODULES)


@dataclass(frozen=True)
class GuestKernel:
    """An unpacked Debian kernel and the initramfs that boots it on the host's root."""

    version: str
    root: Path  # what `dpkg -x` produced
    #: Where the initramfs is written (default: beside the unpacked kernel).
    initramfs_dir: Path | None = None
    #: The modules directory as the guest sees it (default: the host's path, on the host root).
    guest_modules: str | None = None

    @property
    def vmlinuz(self) -> Path:
        return self.root / "boot" / f"vmlinuz-{self.version}"

    @property
    def modules(self) -> Path:
        """``lib/modules`` (Debian 12's kernel package) or ``usr/lib/modules`` (Debian 13's)."""
        return modules_dir(self.root)

    @property
    def initramfs(self) -> Path:
        return (self.initramfs_dir or self.root) / "initramfs.cpio.gz"

    @property
    def modules_in_guest(self) -> str:
        return self.guest_modules or str(self.modules)


def modules_dir(root: Path) -> Path:
    """The modules directory of an unpacked kernel or root: ``lib/modules`` unless only the
    merged-/usr ``usr/lib/modules`` exists (Debian 13's kernel packages ship that)."""
    legacy = root / "lib" / "modules"
    merged = root / "usr" / "lib" / "modules"
    if not legacy.exists() and merged.exists():
        return merged
    return legacy


def module_file_name(rel: str) -> str:
    """The initramfs name of a module path: compressed modules are stored decompressed
    (busybox's insmod takes only plain ``.ko``)."""
    name = Path(rel).name
    for suffix in (".xz", ".gz"):
        if name.endswith(".ko" + suffix):
            return name.removesuffix(suffix)
    return name


def read_module(path: Path) -> bytes:
    """A module file's ELF bytes (``.ko``, ``.ko.xz`` or ``.ko.gz``)."""
    data = path.read_bytes()
    if path.name.endswith(".ko.xz"):
        return lzma.decompress(data)
    if path.name.endswith(".ko.gz"):
        return gzip.decompress(data)
    return data


def _run(argv: list[str], cwd: Path | None = None) -> str:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def kernel_package() -> str:
    """The versioned image package Debian's ``linux-image-amd64`` currently points to."""
    out = _run(["apt-cache", "depends", "linux-image-amd64"])
    for raw in out.splitlines():
        line = raw.strip()
        if line.startswith("Depends:") and "linux-image-" in line:
            return line.split(":", 1)[1].strip()
    raise RuntimeError("apt-cache found no linux-image for linux-image-amd64 (run apt-get update)")


def module_name(path: str) -> str:
    """A module's name from its path (``kernel/fs/9p/9p.ko.xz`` -> ``9p``; ``-`` as ``_``)."""
    return Path(path).name.split(".ko")[0].replace("-", "_")


def module_closure(modules_dep: str, wanted: tuple[str, ...]) -> list[str]:
    """Relative .ko paths needed for ``wanted``, dependencies first (from a modules.dep text)."""
    deps: dict[str, list[str]] = {}
    by_name: dict[str, str] = {}
    for line in modules_dep.splitlines():
        if ":" not in line:
            continue
        path, rest = line.split(":", 1)
        deps[path] = rest.split()
        name = module_name(path)
        by_name[name] = path
    order: list[str] = []

    def visit(path: str) -> None:
        if path in order:
            return
        for dep in deps.get(path, []):
            visit(dep)
        order.append(path)

    for name in wanted:
        found = by_name.get(name.replace("-", "_"))
        if found is not None:  # absent from modules.dep: built into the kernel
            visit(found)
    return order


_INIT = """#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /modules.order); do insmod "/$m" || echo "initramfs: insmod $m failed"; done
arg() { tr ' ' '\\n' < /proc/cmdline | sed -n "s/^frrdmvpn.$1=//p"; }
mkdir -p /lower /upper /newroot
cache=$(arg rootcache)
mount -t 9p -o "trans=virtio,version=9p2000.L,msize=262144,ro${cache:+,cache=$cache}" hostroot \
    /lower || exec sh
mount -t tmpfs -o mode=0755 tmpfs /upper
mkdir -p /upper/data /upper/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/upper/data,workdir=/upper/work /newroot \\
    || exec sh
src=$(arg checkout)
if [ -n "$src" ]; then
    mkdir -p /srclower /upper/src/data /upper/src/work "/newroot$src"
    mount -t 9p -o "trans=virtio,version=9p2000.L,msize=262144,ro${cache:+,cache=$cache}" \\
        labsrc /srclower || exec sh
    mount -t overlay overlay \\
        -o lowerdir=/srclower,upperdir=/upper/src/data,workdir=/upper/src/work "/newroot$src" \\
        || exec sh
fi
stage2=$(arg stage2)
mount --move /dev /newroot/dev
mount --move /proc /newroot/proc
mount --move /sys /newroot/sys
exec switch_root /newroot "$stage2"
"""


def build_initramfs(kernel: GuestKernel) -> None:
    """Write a busybox initramfs that mounts the host root (9p, read-only) under a tmpfs overlay."""
    moddir = kernel.modules / kernel.version
    closure = module_closure((moddir / "modules.dep").read_text(), INITRAMFS_MODULES)
    busybox = shutil.which("busybox") or "/bin/busybox"
    with tempfile.TemporaryDirectory() as tmp:
        top = Path(tmp)
        for sub in ("bin", "proc", "sys", "dev", "mods"):
            (top / sub).mkdir()
        shutil.copy2(busybox, top / "bin" / "busybox")
        order = []
        for rel in closure:
            dest = top / "mods" / module_file_name(rel)
            dest.write_bytes(read_module(moddir / rel))
            order.append(f"mods/{dest.name}")
        (top / "modules.order").write_text("\n".join(order) + "\n")
        (top / "init").write_text(_INIT)
        (top / "init").chmod(0o755)
        names = sorted(str(p.relative_to(top)) for p in top.rglob("*"))
        cpio = subprocess.run(
            ["cpio", "-o", "-H", "newc", "--quiet"],
            cwd=top,
            input="\n".join(names).encode(),
            capture_output=True,
            check=True,
        )
    tmp_out = kernel.initramfs.with_suffix(".tmp")
    tmp_out.write_bytes(gzip.compress(cpio.stdout, compresslevel=1))
    tmp_out.replace(kernel.initramfs)


def prepare_guest_kernel(cache: Path = CACHE_DIR) -> GuestKernel:
    """Download and unpack Debian's current kernel (once) and build its initramfs."""
    try:
        package = kernel_package()
    except RuntimeError:  # package lists missing or stale (packages installed long ago)
        _run(["apt-get", "update", "-q"])
        package = kernel_package()
    version = package.removeprefix("linux-image-").removesuffix("-unsigned")
    root = cache / package
    kernel = GuestKernel(version=version, root=root)
    ready = root / ".ready"
    if ready.exists() and kernel.initramfs.exists():
        if ready.read_text() != _stamp(version):  # an older init script: rebuild only that
            build_initramfs(kernel)
            ready.write_text(_stamp(version))
        return kernel
    if root.exists():
        shutil.rmtree(root)
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        _run(["apt-get", "download", "-q", package], cwd=Path(tmp))
        debs = list(Path(tmp).glob("*.deb"))
        if len(debs) != 1:
            raise RuntimeError(f"apt-get download {package} produced {debs}")
        _run(["dpkg-deb", "-x", str(debs[0]), str(root)])
    _run(["depmod", "-b", str(root), version])
    build_initramfs(kernel)
    ready.write_text(_stamp(version))
    return kernel


def prepare_root_kernel(root: Path, deb_dir: str, initramfs_dir: Path) -> GuestKernel:
    """The kernel of a built root (``lab.release``): the package its build left in
    ``deb_dir`` (relative to it) is unpacked into the root itself (so the guest finds its modules at
    /lib/modules natively), depmod'ed, and an initramfs written to ``initramfs_dir``."""
    debs = sorted((root / deb_dir).glob("linux-image-*.deb"))
    if len(debs) != 1:
        raise RuntimeError(f"expected one kernel package in {root / deb_dir}, found {debs}")
    package = _run(["dpkg-deb", "-f", str(debs[0]), "Package"]).strip()
    version = package.removeprefix("linux-image-").removesuffix("-unsigned")
    kernel = GuestKernel(
        version=version, root=root, initramfs_dir=initramfs_dir, guest_modules="/lib/modules"
    )
    ready = initramfs_dir / "kernel.ready"
    unpacked = kernel.vmlinuz.exists() and (kernel.modules / version / "modules.dep").exists()
    if (
        unpacked
        and ready.exists()
        and ready.read_text() == _stamp(version)
        and kernel.initramfs.exists()
    ):
        return kernel
    if not unpacked:  # a fresh root (rebuilt when its recipe changed)
        _run(["dpkg-deb", "-x", str(debs[0]), str(root)])
        _run(["depmod", "-b", str(root), version])
    initramfs_dir.mkdir(parents=True, exist_ok=True)
    build_initramfs(kernel)
    ready.write_text(_stamp(version))
    return kernel


def _stamp(version: str) -> str:
    """What ``.ready`` holds: the kernel version and a digest of the initramfs' init."""
    return f"{version}\n{hashlib.sha256(_INIT.encode()).hexdigest()}\n"
