"""FRR daemons on this machine in a private network and mount namespace (tests, bench/).

zebra first (``unshare``: a new network namespace and a private tmpfs on /run, so nhrpd
reaches no charon of this machine), then the others inside its namespaces (``nsenter``),
as watchfrr would start them. Their vty sockets and pid files are in ``run``, which the
daemons (user frr) must be able to write: make it under /tmp, not under a root-only dir.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from frrdmvpn.adapters.vtysh import read_pid

FRR = Path("/usr/lib/frr")


class HostFrr:
    """zebra plus ``daemons``, each of which can be killed and started again."""

    def __init__(self, run: Path | None = None, daemons: tuple[str, ...] = ("nhrpd",)) -> None:
        self.run = run or Path(tempfile.mkdtemp(prefix="frrdmvpn-frr-"))
        self.daemons = daemons
        shutil.chown(self.run, "frr", "frr")

    def argv(self, daemon: str) -> list[str]:
        return [
            str(FRR / daemon),
            "-d",
            "-P",
            "0",
            "--vty_socket",
            str(self.run),
            "-i",
            str(self.run / f"{daemon}.pid"),
            "-z",
            str(self.run / "zserv.api"),
            "--log",
            f"file:{self.run / daemon}.log",
            "-f",
            "/dev/null",
        ]

    def start(self) -> None:
        script = 'mount -t tmpfs tmpfs /run && ip link set lo up && exec "$@"'
        zebra = subprocess.run(
            [
                "unshare",
                "--mount",
                "--net",
                "--fork",
                "--",
                "sh",
                "-c",
                script,
                "sh",
                *self.argv("zebra"),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if zebra.returncode != 0:
            raise RuntimeError(f"zebra did not start: {zebra.stderr.strip()}")
        for daemon in self.daemons:
            self.start_daemon(daemon)

    def start_daemon(self, daemon: str) -> None:
        """Start ``daemon`` in zebra's namespaces (returns once its vty socket listens)."""
        zebra = read_pid(self.run / "zebra.pid")
        subprocess.run(
            ["nsenter", "-t", str(zebra), "-m", "-n", *self.argv(daemon)],
            check=True,
            capture_output=True,
        )

    def pid(self, daemon: str) -> int | None:
        return read_pid(self.run / f"{daemon}.pid")

    def kill(self, daemon: str, sig: int = signal.SIGKILL) -> int | None:
        """Signal ``daemon``; its pid (None if it has none)."""
        pid = self.pid(daemon)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        return pid

    def stop(self) -> None:
        """Stop every daemon and remove the directory."""
        for daemon in (*self.daemons, "zebra"):
            self.kill(daemon, signal.SIGTERM)
        shutil.rmtree(self.run, ignore_errors=True)
