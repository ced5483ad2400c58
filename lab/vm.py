"""Host side of the lab VM: boot QEMU (TCG) on Debian's kernel and run commands inside it.

On bookworm (the default release) the guest's root is the host's root, read-only over
virtio-9p under a tmpfs overlay, so the checkout, its virtualenv and the installed
FRR/strongSwan are at the same paths inside. On another release (``lab.release``) the root is
one built for it, and the checkout is shared read-only at its own path (under a tmpfs overlay)
with the harness's virtualenv inside the root.
Commands travel over virtio-serial ports (see :mod:`lab.agent`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import termios
import time
import tty
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from lab import release as rel
from lab.kernel import REQUIRED_MODULES, GuestKernel, prepare_guest_kernel, prepare_root_kernel
from lab.wire import Decoder, Kind, encode, encode_json

AGENT_PORTS = 4
GUEST_MODULES = (
    *REQUIRED_MODULES,
    "esp4_offload",
    "xfrm_interface",
    "nfnetlink_log",
    "xt_NFLOG",
    "xt_hashlimit",
    "nft_compat",
    "nf_tables",
    "bridge",
    "veth",
    "dummy",
    "af_key",
    "authenc",
    "echainiv",
    "aes_generic",
    "gcm",
    "ghash_generic",
    "chacha20poly1305",
    "seqiv",
)
BOOT_TIMEOUT = float(os.environ.get("FRRDMVPN_LAB_BOOT_TIMEOUT", "180"))
#: The guest's 9p cache mode for the host root (read-only to the guest, and not changed by
#: the host while a lab runs): "loose" caches data and metadata in the guest; "" = none.
ROOT_CACHE = os.environ.get("FRRDMVPN_LAB_ROOT_CACHE", "loose")


class VmError(RuntimeError):
    """The VM could not be started, reached or stopped."""


def package_dir() -> Path:
    return Path(__file__).resolve().parent


def checkout_dir() -> Path:
    """The source tree this lab package lives in (shared with a built root's guest)."""
    return package_dir().parent


@dataclass(frozen=True)
class GuestRoot:
    """What the guest boots on and how it runs this checkout's lab."""

    release: str
    root: Path  # the host directory shared as the guest's /
    python: str  # the guest's python for lab.agent, lab.cli and pytest
    pythonpath: str
    checkout: Path | None  # shared read-only at its own path (None: it is in the root)


def host_guest() -> GuestRoot:
    """bookworm: the host's own root, this Python and its PYTHONPATH (the lab as it was)."""
    return GuestRoot(
        release=rel.DEFAULT_RELEASE,
        root=Path("/"),
        python=sys.executable,
        # The host's, if any (``PYTHONPATH=. python3 -m lab.cli``): the guest imports
        # what this process does.
        pythonpath=os.environ.get("PYTHONPATH", ""),
        checkout=None,
    )


def built_guest(release: str, root: Path) -> GuestRoot:
    """A built root: its harness virtualenv, this checkout on the path."""
    src = checkout_dir()
    return GuestRoot(
        release=release,
        root=root,
        python=f"{rel.GUEST_VENV}/bin/python",
        pythonpath=str(src),
        checkout=src,
    )


def guest_python(release: str) -> str:
    """The guest's python for ``release`` (without building anything)."""
    return sys.executable if rel.uses_host_root(release) else f"{rel.GUEST_VENV}/bin/python"


def prepare_guest(release: str) -> tuple[GuestRoot, GuestKernel]:
    """The root and kernel ``release`` boots (built and cached on first use)."""
    if rel.uses_host_root(release):
        return host_guest(), prepare_guest_kernel()
    root = rel.prepare_root(release)
    kernel = prepare_root_kernel(root, rel.KERNEL_DEB_DIR, rel.release_dir(release))
    return built_guest(release, root), kernel


def run_dir_for(base: Path, release: str) -> Path:
    """The VM run directory of ``release``: ``base`` itself for bookworm (as before),
    ``base-<release>`` for another."""
    return base if rel.uses_host_root(release) else base.with_name(f"{base.name}-{release}")


class LabVm:
    """One QEMU guest, described by its run directory (shared read-write with the guest)."""

    def __init__(self, run_dir: Path, release: str = rel.DEFAULT_RELEASE) -> None:
        self.run_dir = run_dir
        self.release = release

    @property
    def python(self) -> str:
        """The python the guest runs the lab with."""
        return guest_python(self.release)

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "qemu.pid"

    @property
    def console(self) -> Path:
        return self.run_dir / "console.log"

    def pid(self) -> int | None:
        """QEMU's pid if it is running."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        return pid if str(self.run_dir).encode() in cmdline else None

    def running(self) -> bool:
        return self.pid() is not None and (self.run_dir / "agent.ready").exists()

    def qemu_argv(
        self, kernel: GuestKernel, memory_mb: int, cpus: int, guest: GuestRoot | None = None
    ) -> list[str]:
        guest = guest or host_guest()
        append = " ".join(
            [
                "console=ttyS0",
                "panic=-1",
                "quiet",
                "loglevel=4",
                "apparmor=1",
                "security=apparmor",
                f"frrdmvpn.stage2={package_dir() / 'guest-init.sh'}",
                f"frrdmvpn.python={guest.python}",
                f"frrdmvpn.pythonpath={guest.pythonpath}",
                f"frrdmvpn.run={self.run_dir}",
                f"frrdmvpn.modules={kernel.modules_in_guest}",
                f"frrdmvpn.modprobe={','.join(GUEST_MODULES)}",
                f"frrdmvpn.rootcache={ROOT_CACHE}",
                *([f"frrdmvpn.checkout={guest.checkout}"] if guest.checkout else []),
            ]
        )
        accel = ["-accel", "kvm"] if _has_hw_virt() else ["-accel", "tcg,thread=multi"]
        argv = [
            "qemu-system-x86_64",
            *accel,
            "-cpu",
            "max" if accel[1] != "kvm" else "host",
            "-smp",
            str(cpus),
            "-m",
            str(memory_mb),
            "-nodefaults",
            "-no-reboot",
            "-display",
            "none",
            "-nic",
            "none",
            "-serial",
            f"file:{self.console}",
            "-kernel",
            str(kernel.vmlinuz),
            "-initrd",
            str(kernel.initramfs),
            "-append",
            append,
            "-device",
            "virtio-rng-pci",
            "-virtfs",
            f"local,path={guest.root},mount_tag=hostroot,security_model=passthrough,readonly=on,"
            "multidevs=remap",
            "-virtfs",
            f"local,path={self.run_dir},mount_tag=labrun,security_model=passthrough",
        ]
        if guest.checkout is not None:
            argv += [
                "-virtfs",
                f"local,path={guest.checkout},mount_tag=labsrc,security_model=passthrough,"
                "readonly=on,multidevs=remap",
            ]
        argv += ["-device", "virtio-serial-pci"]
        for i in range(AGENT_PORTS):
            argv += [
                "-chardev",
                f"socket,id=agent{i},path={self.run_dir / f'agent{i}.sock'},server=on,wait=off",
                "-device",
                f"virtserialport,chardev=agent{i},name=frrdmvpn.agent.{i}",
            ]
        return argv

    def start(self, memory_mb: int = 2048, cpus: int = 2, timeout: float = BOOT_TIMEOUT) -> float:
        """Boot the VM and wait for its agent; returns the boot time in seconds."""
        if self.pid() is not None:
            raise VmError(f"a lab VM is already running (pid file {self.pid_file})")
        guest, kernel = prepare_guest(self.release)
        if self.run_dir.exists():
            shutil.rmtree(self.run_dir)
        self.run_dir.mkdir(parents=True)
        argv = self.qemu_argv(kernel, memory_mb, cpus, guest)
        (self.run_dir / "qemu.argv").write_text(json.dumps(argv))
        t0 = time.monotonic()
        with open(self.run_dir / "qemu.log", "wb") as log:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid_file.write_text(f"{proc.pid}\n")
        ready = self.run_dir / "agent.ready"
        while not ready.exists():
            if proc.poll() is not None:
                raise VmError(f"QEMU exited ({proc.returncode}) while booting:\n{self.tail()}")
            if time.monotonic() - t0 > timeout:
                self.kill()
                raise VmError(f"the VM's agent was not ready after {timeout:.0f} s:\n{self.tail()}")
            time.sleep(0.2)
        return time.monotonic() - t0

    def tail(self, lines: int = 40) -> str:
        texts = []
        for f in (self.console, self.run_dir / "qemu.log", self.run_dir / "agent.log"):
            with contextlib.suppress(OSError):
                texts.append(f"--- {f.name}\n" + "\n".join(f.read_text().splitlines()[-lines:]))
        return "\n".join(texts)

    def kill(self) -> None:
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            _wait_gone(pid, 10)

    def stop(self, timeout: float = 60) -> None:
        """Power the guest off (agent shutdown), or kill QEMU; remove the run directory."""
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(VmError, OSError), self._port() as sock:
                sock.sendall(encode_json(Kind.OPEN, {"shutdown": True}))
                _recv_some(sock, 5)
            if not _wait_gone(pid, timeout):
                self.kill()
        if self.run_dir.exists():
            shutil.rmtree(self.run_dir)

    @contextlib.contextmanager
    def _port(self) -> Iterator[socket.socket]:
        """Connect to a free agent port (one session per port at a time)."""
        for i in range(AGENT_PORTS):
            lock = open(self.run_dir / f"agent{i}.lock", "a+b")  # noqa: SIM115
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.close()
                continue
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(str(self.run_dir / f"agent{i}.sock"))
                yield sock
                return
            finally:
                sock.close()
                lock.close()
        raise VmError(f"all {AGENT_PORTS} agent ports of the lab VM are busy")

    def run(
        self,
        argv: list[str],
        *,
        interactive: bool = False,
        cwd: str | None = None,
        env: dict[str, str] | None = None,
        stdout: BinaryIO | None = None,
        stderr: BinaryIO | None = None,
    ) -> int:
        """Run ``argv`` in the guest, relaying stdio; returns its exit status."""
        out = stdout or sys.stdout.buffer
        err = stderr or sys.stderr.buffer
        stdin_fd: int | None = sys.stdin.fileno() if sys.stdin is not None else None
        if stdin_fd is not None:
            try:
                os.fstat(stdin_fd)
            except OSError:
                stdin_fd = None
        use_tty = interactive and stdin_fd is not None and os.isatty(stdin_fd)
        request: dict[str, object] = {
            "argv": argv,
            "tty": use_tty,
            "cwd": cwd or os.getcwd(),
            "env": env or {},
            "term": os.environ.get("TERM", "dumb"),
        }
        if use_tty:
            size = os.get_terminal_size(stdin_fd)  # type: ignore[arg-type]
            request.update(rows=size.lines, cols=size.columns)
        with self._port() as sock:
            sock.sendall(encode_json(Kind.OPEN, request))
            saved = None
            if use_tty and stdin_fd is not None:
                saved = termios.tcgetattr(stdin_fd)
                tty.setraw(stdin_fd)

                def winch(_sig: int, _frm: object) -> None:
                    sz = os.get_terminal_size(stdin_fd)
                    sock.sendall(encode_json(Kind.WINCH, {"rows": sz.lines, "cols": sz.columns}))

                signal.signal(signal.SIGWINCH, winch)
            try:
                return _relay(sock, stdin_fd, out, err)
            finally:
                if saved is not None and stdin_fd is not None:
                    termios.tcsetattr(stdin_fd, termios.TCSADRAIN, saved)
                    signal.signal(signal.SIGWINCH, signal.SIG_DFL)


def _relay(sock: socket.socket, stdin_fd: int | None, out: BinaryIO, err: BinaryIO) -> int:
    decoder = Decoder()
    watch = [sock.fileno()]
    if stdin_fd is not None:
        watch.append(stdin_fd)
    else:
        sock.sendall(encode(Kind.EOF))
    while True:
        try:
            ready, _, _ = select.select(watch, [], [])
        except InterruptedError:
            continue
        if stdin_fd is not None and stdin_fd in ready:
            data = os.read(stdin_fd, 65536)
            if data:
                sock.sendall(encode(Kind.STDIN, data))
            else:
                sock.sendall(encode(Kind.EOF))
                watch.remove(stdin_fd)
        if sock.fileno() in ready:
            data = sock.recv(65536)
            if not data:
                raise VmError("the lab VM closed the session without an exit status")
            for frame in decoder.feed(data):
                if frame.kind is Kind.STDOUT:
                    out.write(frame.payload)
                    out.flush()
                elif frame.kind is Kind.STDERR:
                    err.write(frame.payload)
                    err.flush()
                elif frame.kind is Kind.EXIT:
                    return int(frame.json()["rc"])


def _recv_some(sock: socket.socket, timeout: float) -> bytes:
    sock.settimeout(timeout)
    try:
        return sock.recv(4096)
    except TimeoutError:
        return b""


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                return True
        except ChildProcessError:
            if not Path(f"/proc/{pid}").exists():
                return True
        time.sleep(0.1)
    return False


def _has_hw_virt() -> bool:
    """Real VT-x/AMD-V (a /dev/kvm without them, as on PVM hosts, cannot boot a stock kernel)."""
    if not Path("/dev/kvm").exists():
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " vmx" in flags or " svm" in flags
