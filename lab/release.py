"""The Debian release the lab runs on: ``FRRDMVPN_LAB_RELEASE=bookworm|trixie`` (issue 16).

- ``bookworm`` (the default, Debian 12): the lab VM boots on this machine's own root (read-only
  over 9p) with the host's kernel package, exactly as before the option existed.
- ``trixie`` (Debian 13): a root built with mmdebstrap from Debian's archive and cached under
  ``/var/cache/frrdmvpn-lab/trixie/`` (rebuilt when :func:`root_digest` changes), with trixie's
  kernel unpacked into it and the test harness in a virtualenv inside it
  (:data:`GUEST_VENV`); the checkout is shared into the guest read-only at its own path.

Inside a node, :class:`Userland` says how this release runs its daemons (read from the root the
lab runs on, so the guest needs no option).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

RELEASES = ("bookworm", "trixie")
DEFAULT_RELEASE = "bookworm"
MIRROR = os.environ.get("FRRDMVPN_LAB_MIRROR", "http://deb.debian.org/debian")
SECURITY_MIRROR = os.environ.get(
    "FRRDMVPN_LAB_SECURITY_MIRROR", "http://deb.debian.org/debian-security"
)

#: What a trixie node root holds (plan E2): FRR, strongSwan as Debian 13 ships it (charon-systemd;
#: strongswan-charon is gone), the package's Depends and the tools the lab drives.
ROOT_PACKAGES = (
    "frr",
    "strongswan-swanctl",
    "charon-systemd",
    "libcharon-extra-plugins",
    "libstrongswan-extra-plugins",
    "libstrongswan-standard-plugins",
    "python3",
    "python3-venv",
    "python3-grpcio",
    "python3-protobuf",
    "python3-pyroute2",
    "python3-prompt-toolkit",
    "python3-prometheus-client",
    "apparmor",
    "iproute2",
    "nftables",
    "iptables",
    "kmod",
    "procps",
    "psmisc",
    "iputils-ping",
    "tcpdump",
    "openssl",
    "systemd",
    "systemd-container",
    "adduser",
    "util-linux",
    "man-db",
    "dbus",
    "ca-certificates",
    "lintian",  # the package tier checks the .deb with Debian 13's lintian too (tests/package)
)
#: The lab harness in the guest's virtualenv: the versions this checkout's .venv runs.
HARNESS_REQUIREMENTS = (
    "pytest==9.2.0",
    "pytest-timeout==2.4.0",
    "pexpect==4.9.0",
    "hypothesis==6.170.27",
    "vici==6.0.3",
    "grpcio==1.85.4",
    "grpcio-health-checking==1.85.1",
    "grpcio-reflection==1.85.1",
    "protobuf==7.36.2",
    "pyroute2==0.9.7",
    "prompt-toolkit==3.0.53",
    "prometheus-client==0.26.0",
    "textfsm==2.1.0",  # tests/lab/test_shell.py parses `show dmvpn` with ntc-templates
    "ntc-templates==9.3.0",
)
#: The harness virtualenv inside a built root (the guest's python for lab.cli and pytest).
GUEST_VENV = "/opt/frrdmvpn-lab/venv"
#: Where the root's customize hook leaves the release's kernel package.
KERNEL_DEB_DIR = "var/cache/frrdmvpn-lab-kernel"

CACHE_DIR = Path(os.environ.get("FRRDMVPN_LAB_CACHE", "/var/cache/frrdmvpn-lab"))


class ReleaseError(RuntimeError):
    """An unknown release, or its root could not be built."""


def selected(environ: dict[str, str] | None = None) -> str:
    """The release asked for (``FRRDMVPN_LAB_RELEASE``, default bookworm)."""
    env = os.environ if environ is None else environ
    name = env.get("FRRDMVPN_LAB_RELEASE", "").strip() or DEFAULT_RELEASE
    if name not in RELEASES:
        raise ReleaseError(
            f"unknown FRRDMVPN_LAB_RELEASE {name!r} (releases: {', '.join(RELEASES)})"
        )
    return name


def uses_host_root(release: str) -> bool:
    """bookworm boots on this machine's own root (today's lab); others on a built root."""
    return release == DEFAULT_RELEASE


def root_digest(release: str) -> str:
    """Identifies a built root's recipe: rebuilt when packages, mirrors or harness change."""
    text = "\n".join(
        [
            f"release {release}",
            f"mirror {MIRROR} {SECURITY_MIRROR}",
            *sorted(ROOT_PACKAGES),
            *sorted(HARNESS_REQUIREMENTS),
            f"venv {GUEST_VENV}",
            f"kernel {KERNEL_DEB_DIR}",
        ]
    )
    return hashlib.sha256(text.encode()).hexdigest()


def sources(release: str) -> list[str]:
    return [
        f"deb {MIRROR} {release} main",
        f"deb {SECURITY_MIRROR} {release}-security main",
        f"deb {MIRROR} {release}-updates main",
    ]


def mmdebstrap_argv(release: str, root: Path, ca_bundle: str) -> list[str]:
    """The root's build: packages, then (hooks, while apt's lists exist and the chroot has
    network) the release's current kernel package and the harness virtualenv."""
    kernel_hook = (
        f'mkdir -p "$1"/{KERNEL_DEB_DIR} && chroot "$1" sh -c "cd /{KERNEL_DEB_DIR} && '
        "apt-get download -q \\$(apt-cache depends linux-image-amd64 | "
        'sed -n \\"s/.*Depends: \\(linux-image-[0-9].*\\)/\\1/p\\")"'
    )
    # The host's pip settings (PIP_CERT, PIP_FIND_LINKS) name host files: a clean environment.
    pip_hook = (
        f'cp {ca_bundle} "$1"/tmp/host-ca.crt && chroot "$1" env -i PATH=/usr/bin:/bin '
        "HOME=/root PIP_CERT=/tmp/host-ca.crt PIP_DISABLE_PIP_VERSION_CHECK=1 sh -c "
        f'"python3 -m venv {GUEST_VENV} && {GUEST_VENV}/bin/pip install -q '
        f'{" ".join(HARNESS_REQUIREMENTS)}" && rm "$1"/tmp/host-ca.crt'
    )
    return [
        "mmdebstrap",
        "--variant=apt",
        f"--include={','.join(ROOT_PACKAGES)}",
        f"--customize-hook={kernel_hook}",
        f"--customize-hook={pip_hook}",
        release,
        str(root),
        *sources(release),
    ]


def release_dir(release: str, cache: Path = CACHE_DIR) -> Path:
    return cache / release


def prepare_root(release: str, cache: Path = CACHE_DIR) -> Path:
    """The release's root, built (once per :func:`root_digest`) under ``cache/release/root``."""
    if uses_host_root(release):
        return Path("/")
    base = release_dir(release, cache)
    root = base / "root"
    stamp = base / "root.digest"
    digest = root_digest(release)
    if root.is_dir() and stamp.exists() and stamp.read_text().strip() == digest:
        return root
    if shutil.which("mmdebstrap") is None:
        raise ReleaseError(f"building the {release} root needs mmdebstrap (scripts/install-deps)")
    base.mkdir(parents=True, exist_ok=True)
    building = base / "root.new"
    if building.exists():
        shutil.rmtree(building)
    ca = os.environ.get("PIP_CERT") or "/etc/ssl/certs/ca-certificates.crt"
    t0 = time.monotonic()
    done = subprocess.run(
        mmdebstrap_argv(release, building, ca), capture_output=True, text=True, check=False
    )
    (base / "mmdebstrap.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise ReleaseError(
            f"mmdebstrap {release} failed ({done.returncode}); see {base / 'mmdebstrap.log'}:\n"
            + "\n".join((done.stdout + done.stderr).splitlines()[-15:])
        )
    stamp.unlink(missing_ok=True)
    if root.exists():
        shutil.rmtree(root)
    building.rename(root)
    stamp.write_text(digest + "\n")
    (base / "root.seconds").write_text(f"{time.monotonic() - t0:.1f}\n")
    return root


@dataclass(frozen=True)
class Userland:
    """How the Debian userland the lab runs on starts its daemons."""

    codename: str
    #: FRR daemons started before zebra (FRR 10's frrinit starts mgmtd first).
    frr_first: tuple[str, ...]
    #: FRR daemons keep their stdio open until the end of configuration (FRR 10): a file.
    frr_stdio_file: bool


BOOKWORM_USERLAND = Userland(
    codename="bookworm",
    frr_first=(),
    frr_stdio_file=False,
)
TRIXIE_USERLAND = Userland(
    codename="trixie",
    frr_first=("mgmtd",),
    frr_stdio_file=True,
)


def userland_for(codename: str) -> Userland:
    """The userland facts of ``codename`` (unknown releases: bookworm's, today's lab)."""
    return TRIXIE_USERLAND if codename == "trixie" else BOOKWORM_USERLAND


def os_codename(os_release: str) -> str:
    """VERSION_CODENAME from an os-release text ("" if absent)."""
    for line in os_release.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "VERSION_CODENAME":
            return value.strip().strip('"')
    return ""


def current_userland() -> Userland:
    """The userland of the root this process runs on."""
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        text = ""
    return userland_for(os_codename(text))
