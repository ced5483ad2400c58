"""A private OpenSSH server on loopback that serves one command as every login's shell.

For tests that reach a program the way an operator or an automation tool does, over SSH:
:class:`LoopbackSshd` writes a host key, a client key and an ``sshd_config`` into a
directory, starts ``/usr/sbin/sshd -D -e`` on a free port of 127.0.0.1 with ``ForceCommand``
set to the command, and stops it again. Only key authentication is accepted (root included,
``prohibit-password``); the host's own sshd and its configuration are not touched.
sshd must run as root (it switches to the user who logs in) and needs ``/run/sshd``, its
privilege separation directory, which is created if it is missing.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

SSHD = Path("/usr/sbin/sshd")
PRIVSEP_DIR = Path("/run/sshd")


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def keygen(path: Path) -> Path:
    """A fresh ed25519 key pair without a passphrase: ``path`` and ``path.pub``."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "frrdmvpn-test", "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path


def login_command(argv: Sequence[str], env: Mapping[str, str]) -> str:
    """The ``ForceCommand`` line that runs ``argv`` with ``env`` added (via the login's shell)."""
    assignments = [f"{name}={value}" for name, value in env.items()]
    return shlex.join(["exec", "env", *assignments, *argv])


def descendants(root: int) -> list[int]:
    """The processes under ``root`` (children first found, then theirs), from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: list[int] = []
    level = [root]
    while level:
        level = [pid for pid, parent in parents.items() if parent in level]
        found.extend(level)
    return found


class LoopbackSshd:
    """``with LoopbackSshd(directory, argv, env) as sshd:`` then log in at
    ``127.0.0.1:sshd.port`` with ``sshd.client_key``; the server is stopped on exit."""

    def __init__(
        self, directory: Path, argv: Sequence[str], env: Mapping[str, str] | None = None
    ) -> None:
        self.directory = directory
        self.argv = list(argv)
        self.env = dict(env or {})
        self.port = free_port()
        self.host_key = directory / "ssh_host_ed25519_key"
        self.client_key = directory / "id_ed25519"
        self.authorized_keys = directory / "authorized_keys"
        self.config = directory / "sshd_config"
        self.pid_file = directory / "sshd.pid"
        self.log = directory / "sshd.log"
        self.process: subprocess.Popen[bytes] | None = None

    def write_config(self) -> None:
        keygen(self.host_key)
        keygen(self.client_key)
        self.authorized_keys.write_text(self.client_key.with_suffix(".pub").read_text())
        self.authorized_keys.chmod(0o600)
        lines = [
            f"ListenAddress 127.0.0.1:{self.port}",
            f"HostKey {self.host_key}",
            f"PidFile {self.pid_file}",
            f"AuthorizedKeysFile {self.authorized_keys}",
            "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes no",
            "UseDNS no",
            "PrintMotd no",
            "PrintLastLog no",
            "AllowTcpForwarding no",
            "X11Forwarding no",
            "LogLevel VERBOSE",
            f"ForceCommand {login_command(self.argv, self.env)}",
        ]
        self.config.write_text("\n".join(lines) + "\n")

    def start(self, timeout: float = 15.0) -> None:
        self.write_config()
        PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
        check = subprocess.run(
            [str(SSHD), "-t", "-f", str(self.config)], capture_output=True, text=True, check=False
        )
        if check.returncode != 0:
            raise RuntimeError(f"sshd -t rejects {self.config}: {check.stderr.strip()}")
        argv = [str(SSHD), "-D", "-e", "-f", str(self.config)]  # -e: its log on stderr
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"sshd exited {self.process.returncode}: {self.log_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(f"sshd does not listen on 127.0.0.1:{self.port}: {self.log_text()}")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        """Stops the listener and whatever it started that is still running (a session
        whose client did not close it, and the command under it)."""
        process, self.process = self.process, None
        if process is None:
            return
        deadline = time.monotonic() + 5  # a session whose client logged out ends by itself
        while descendants(process.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in [*reversed(descendants(process.pid)), process.pid]:  # the deepest first
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)

    def __enter__(self) -> LoopbackSshd:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
