"""The kernel the lab runs on: detect what the host offers, or prepare a guest kernel for QEMU."""

from __future__ import annotations

import gzip
import hashlib
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

    @property
    def vmlinuz(self) -> Path:
        return self.root / "boot" / f"vmlinuz-{self.version}"

    @property
    def modules(self) -> Path:
        return self.root / "lib" / "modules"

    @property
    def initramfs(self) -> Path:
        return self.root / "initramfs.cpio.gz"


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


def module_closure(modules_dep: str, wanted: tuple[str, ...]) -> list[str]:
    """Relative .ko paths needed for ``wanted``, dependencies first (from a modules.dep text)."""
    deps: dict[str, list[str]] = {}
    by_name: dict[str, str] = {}
    for line in modules_dep.splitlines():
        if ":" not in line:
            continue
        path, rest = line.split(":", 1)
        deps[path] = rest.split()
        name = Path(path).name.split(".ko")[0].replace("-", "_")
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
            dest = top / "mods" / Path(rel).name
            shutil.copy2(moddir / rel, dest)
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


def _stamp(version: str) -> str:
    """What ``.ready`` holds: the kernel version and a digest of the initramfs' init."""
    return f"{version}\n{hashlib.sha256(_INIT.encode()).hexdigest()}\n"
