"""A lab node that boots like an operator's machine: systemd (in a systemd-nspawn container
on a throw-away overlay of this machine's root, in the node's network namespace) starts the
installed package's units, charon-systemd and FRR from ``/etc/frrdmvpn/frrdmvpn.conf``.

Needs the frrdmvpn package installed on this machine (the lab installs it) and
systemd-container; the rest of the lab keeps running its nodes directly.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

from lab import topology as topo
from lab.netns import Lab, LabError, wait_for
from lab.topology import Node

#: What the container boots to: the units an operator enables, and nothing else of this
#: machine's (its root is this machine's, with whatever services it has enabled).
TARGET = """[Unit]
Description=frrdmvpn lab node
Requires=basic.target
After=basic.target
Wants=frrdmvpn-guard.service frrdmvpn-proxy.service strongswan.service frr.service
Wants=frrdmvpn.service systemd-journald.service
AllowIsolate=yes
"""
FRR_DAEMONS = {"zebra": "yes", "nhrpd": "yes", "ospfd": "yes", "vtysh_enable": "yes"}


class SystemdNode:
    """Node ``n`` of ``lab`` under systemd (see the module docstring)."""

    def __init__(self, lab: Lab, n: Node) -> None:
        self.lab, self.node = lab, n
        self.dir = lab.node_dir(n)
        self.root = self.dir / "root"
        self._nspawn: subprocess.Popen[bytes] | None = None

    # -- lifecycle -----------------------------------------------------------------------
    def boot(self) -> None:
        """Network, root, configuration, then ``systemd-nspawn --boot``; returns once the
        container's systemd answers (its units may still be starting)."""
        if self.dir.exists():
            raise LabError(f"{self.node.name} is already in the lab")
        self.dir.mkdir(parents=True)
        self.lab.build_node(self.node)
        rw = self.dir / "rw"
        rw.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(rw)], check=True)
        (rw / "upper").mkdir()
        (rw / "work").mkdir()
        self.root.mkdir()
        opts = f"lowerdir=/,upperdir={rw}/upper,workdir={rw}/work"
        subprocess.run(
            ["mount", "-t", "overlay", "overlay", "-o", opts, str(self.root)], check=True
        )
        self._write_files()
        log = (self.dir / "console.log").open("wb")
        self._nspawn = subprocess.Popen(
            [
                "systemd-nspawn",
                "--quiet",
                "--register=no",
                "--keep-unit",
                "--capability=all",
                f"--directory={self.root}",
                f"--machine={self.node.name}",
                f"--network-namespace-path=/run/netns/{self.node.netns}",
                "--boot",
                "systemd.unit=frrdmvpn-lab-node.target",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # /proc/sys/net writable, as on a machine: frrdmvpnd sets the tunnel's sysctls.
            env={
                **os.environ,
                "SYSTEMD_NSPAWN_API_VFS_WRITABLE": "network",
                "SYSTEMD_LOG_COLOR": "0",
            },
        )
        wait_for(f"systemd in {self.node.name}", self._systemd_answers, 180)

    def _write_files(self) -> None:
        etc = self.root / "etc"
        conf = etc / "frrdmvpn/frrdmvpn.conf"
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(topo.frrdmvpn_conf(self.node, self.lab.auth))
        (etc / "hostname").write_text(f"{self.node.name}\n")
        daemons = etc / "frr/daemons"
        lines = []
        for line in daemons.read_text().splitlines():
            key = line.split("=", 1)[0]
            lines.append(f"{key}={FRR_DAEMONS[key]}" if key in FRR_DAEMONS else line)
        daemons.write_text("\n".join(lines) + "\n")
        (etc / "frr/frr.conf").write_text(f"hostname {self.node.name}\nlog syslog informational\n")
        (etc / "systemd/system/frrdmvpn-lab-node.target").write_text(TARGET)
        (etc / "machine-id").write_text("")  # systemd makes a transient one
        # A machine's root has no policy-rc.d; this one's may (container images ship one that
        # exits 101, and deb-systemd-invoke then silently skips every restart a package asks
        # for). Unlinking it here leaves a whiteout in the overlay: the node boots without it.
        (self.root / "usr/sbin/policy-rc.d").unlink(missing_ok=True)

    def _leader(self) -> int | None:
        """The container's PID 1 (as seen from here): nspawn's child running systemd."""
        if self._nspawn is None or self._nspawn.poll() is not None:
            return None
        for child in Path(f"/proc/{self._nspawn.pid}/task").glob("*/children"):
            for pid in child.read_text().split():
                with contextlib.suppress(OSError):
                    if Path(f"/proc/{pid}/comm").read_text().strip() == "systemd":
                        return int(pid)
        return None

    def _systemd_answers(self) -> bool:
        if self._nspawn is not None and self._nspawn.poll() is not None:
            raise LabError(
                f"systemd-nspawn for {self.node.name} exited: see {self.dir / 'console.log'}"
            )
        if self._leader() is None:
            return False
        state = self.run(["systemctl", "is-system-running"], check=False).stdout.strip()
        return state not in ("", "offline")

    def halt(self) -> None:
        """Shut the container down (SIGTERM: nspawn asks its systemd to power off), then
        remove its root and network."""
        if self._nspawn is not None and self._nspawn.poll() is None:
            self._nspawn.send_signal(signal.SIGTERM)
            try:
                self._nspawn.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self._nspawn.kill()
                self._nspawn.wait(timeout=30)
        for mount in (self.root, self.dir / "rw"):
            subprocess.run(["umount", "-l", str(mount)], check=False)
        self.lab.remove_node(self.node)

    # -- inside the node -----------------------------------------------------------------
    def run(
        self, argv: list[str], check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside the container (all its namespaces, its root)."""
        leader = self._leader()
        if leader is None:
            raise LabError(f"{self.node.name}'s container is not running")
        done = subprocess.run(
            ["nsenter", "-t", str(leader), "-a", "--", *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise LabError(
                f"[{self.node.name}] {' '.join(argv)} failed ({done.returncode}): "
                f"{(done.stderr or done.stdout).strip()}"
            )
        return done

    def path(self, inside: str) -> Path:
        """This machine's path to ``inside`` (absolute, in the running container's root)."""
        leader = self._leader()
        if leader is None:
            raise LabError(f"{self.node.name}'s container is not running")
        return Path(f"/proc/{leader}/root") / inside.lstrip("/")

    def systemctl(self, *args: str, check: bool = True, timeout: float = 120) -> str:
        return self.run(["systemctl", *args], check=check, timeout=timeout).stdout.strip()

    def show(self, unit: str, prop: str) -> str:
        """One property of ``unit`` (``systemctl show -P``)."""
        return self.systemctl("show", "-P", prop, unit)

    def wait_active(self, unit: str, timeout: float = 300) -> float:
        def active() -> bool:
            state = self.systemctl("is-active", unit, check=False)
            if state == "failed":
                journal = self.run(
                    ["journalctl", "-b", "--no-pager", "-n", "60", "-u", unit], check=False
                ).stdout
                raise LabError(f"{unit} failed on {self.node.name}:\n{journal}")
            return state == "active"

        return wait_for(f"{unit} active on {self.node.name}", active, timeout)

    def monotonic(self, unit: str, prop: str) -> int:
        """A ``...TimestampMonotonic`` property of ``unit``, in microseconds (0: never)."""
        return int(self.show(unit, prop) or 0)
