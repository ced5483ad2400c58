"""A throw-away root: this machine's / under an overlay with a tmpfs on top, entered with
chroot. What the package does there (files, groups, links) vanishes with it; /run and /tmp
start empty, so no systemd is seen and package scripts start no service."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

#: Where a package may leave something behind (compared with this machine's / after purge).
WATCHED_TOP = ("etc", "usr", "lib", "var", "opt", "srv", "root")
#: State that dpkg, apt and the user tools keep by design (piuparts ignores the same).
IGNORED = (
    "var/lib/dpkg",
    "var/lib/apt",
    "var/log",
    "var/cache/debconf",
    "var/cache/man",
    "etc/group-",
    "etc/gshadow-",
    "etc/passwd-",
    "etc/shadow-",
    "etc/ld.so.cache",
)
ENV = {
    "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
    "LC_ALL": "C.UTF-8",
    "HOME": "/root",
    "DEBIAN_FRONTEND": "noninteractive",
}


class ScratchRoot:
    """An overlay of / at :attr:`path` (see the module docstring)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.path = base / "root"
        self._mounts: list[Path] = []

    def _mount(self, *args: str, target: Path) -> None:
        target.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", *args, str(target)], check=True)
        self._mounts.append(target)

    def __enter__(self) -> ScratchRoot:
        try:
            self._mount("-t", "tmpfs", "tmpfs", target=self.base / "rw")
            (self.base / "rw/upper").mkdir()
            (self.base / "rw/work").mkdir()
            opts = f"lowerdir=/,upperdir={self.base}/rw/upper,workdir={self.base}/rw/work"
            self._mount("-t", "overlay", "overlay", "-o", opts, target=self.path)
            self._mount("-t", "proc", "proc", target=self.path / "proc")
            self._mount("--bind", "/dev", target=self.path / "dev")
            for empty in ("run", "tmp"):
                self._mount("-t", "tmpfs", "tmpfs", target=self.path / empty)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        for target in reversed(self._mounts):
            subprocess.run(["umount", "-l", str(target)], check=False)
        self._mounts.clear()

    def run(
        self, argv: Sequence[str], check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside the root (no terminal, no input)."""
        done = subprocess.run(
            ["chroot", str(self.path), *argv],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            env=ENV,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
            )
        return done

    def copy_in(self, src: Path) -> str:
        """Copy ``src`` to the root's /tmp; returns its path inside the root."""
        shutil.copy(src, self.path / "tmp" / src.name)
        return f"/tmp/{src.name}"

    def file(self, inside: str) -> Path:
        """Host path of ``inside`` (an absolute path in the root)."""
        return self.path / inside.lstrip("/")

    def changes(self) -> dict[str, str]:
        """What differs from this machine's / : each path the root added, changed or
        deleted (overlayfs keeps exactly those in its upper layer), except dpkg's and the
        user tools' own bookkeeping (:data:`IGNORED`)."""
        upper = self.base / "rw/upper"
        found: dict[str, str] = {}
        for dirpath, dirnames, filenames in os.walk(upper):
            here = Path(dirpath)
            for name in dirnames + filenames:
                entry = here / name
                rel = str(entry.relative_to(upper))
                if rel.startswith(IGNORED) or rel.split("/", maxsplit=1)[0] not in WATCHED_TOP:
                    continue
                now, before = _describe(entry), _describe(Path("/") / rel)
                if now != before:
                    found[rel] = f"{before} -> {now}"
        return found


def _describe(p: Path) -> str:
    try:
        st = p.lstat()
    except FileNotFoundError:
        return "absent"
    if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
        return "absent"  # an overlayfs whiteout: deleted in the root
    meta = f"{st.st_mode:o} {st.st_uid}:{st.st_gid}"
    if stat.S_ISLNK(st.st_mode):
        return f"link {os.readlink(p)} {meta}"
    if stat.S_ISREG(st.st_mode):
        return f"file {hashlib.sha256(p.read_bytes()).hexdigest()} {meta}"
    if stat.S_ISDIR(st.st_mode):
        return f"dir {meta}"
    return f"other {meta}"


@contextlib.contextmanager
def scratch_root() -> Iterator[ScratchRoot]:
    """A :class:`ScratchRoot` in a fresh temporary directory."""
    with (
        tempfile.TemporaryDirectory(prefix="frrdmvpn-root.", dir="/var/tmp") as d,
        ScratchRoot(Path(d)) as root,
    ):
        yield root
