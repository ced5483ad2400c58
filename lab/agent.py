"""Guest side of the lab VM: run commands the host sends over virtio-serial ports.

Each port carries one session at a time (see :mod:`lab.wire`). The agent is the
VM's only long-lived process besides PID 1, adopts orphans (child subreaper) and reaps them.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import json
import os
import pty
import select
import signal
import struct
import subprocess
import termios
import threading
import time
from pathlib import Path
from typing import Any

from lab.wire import Decoder, Frame, FrameError, Kind, encode, encode_json

PORT_CLASS = Path("/sys/class/virtio-ports")
PORT_PREFIX = "frrdmvpn.agent."
PR_SET_CHILD_SUBREAPER = 36
_OWN: set[int] = set()
_OWN_LOCK = threading.Lock()
_SHUTDOWN = threading.Event()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _wait_for_host(fd: int) -> bool:
    """Block until the host side of the port is connected and has sent data."""
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLHUP)
    while not _SHUTDOWN.is_set():
        events = poller.poll(1000)
        # A disconnected port reports POLLHUP, with POLLIN too (a read would return EOF).
        if any(ev & select.POLLHUP for _, ev in events):
            time.sleep(0.1)
        elif events:
            return True
    return False


class Session:
    """One command run on behalf of the host."""

    def __init__(self, port_fd: int, request: dict[str, Any]) -> None:
        self.port_fd = port_fd
        self.tty = bool(request.get("tty"))
        env = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": "/root",
            "LANG": "C.UTF-8",
            "TERM": str(request.get("term", "dumb")),
        }
        env.update({str(k): str(v) for k, v in dict(request.get("env", {})).items()})
        argv = [str(a) for a in request["argv"]]
        cwd = str(request.get("cwd", "/"))
        self.out_fds: dict[int, Kind] = {}
        self.stdin_fd: int | None
        if self.tty:
            master, slave = pty.openpty()
            self._winch(master, request)
            self.proc = subprocess.Popen(
                argv,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                cwd=cwd,
                env=env,
                start_new_session=True,
                preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),  # noqa: PLW1509
            )
            os.close(slave)
            self.master = master
            self.stdin_fd = master
            self.out_fds[master] = Kind.STDOUT
        else:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=cwd,
                env=env,
                start_new_session=True,
            )
            assert self.proc.stdin
            assert self.proc.stdout
            assert self.proc.stderr
            self.stdin_fd = self.proc.stdin.fileno()
            self.out_fds[self.proc.stdout.fileno()] = Kind.STDOUT
            self.out_fds[self.proc.stderr.fileno()] = Kind.STDERR
        with _OWN_LOCK:
            _OWN.add(self.proc.pid)

    @staticmethod
    def _winch(fd: int, size: dict[str, Any]) -> None:
        rows, cols = int(size.get("rows", 24)), int(size.get("cols", 80))
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def _from_host(self, frame: Frame) -> None:
        if frame.kind is Kind.STDIN and self.stdin_fd is not None:
            with contextlib.suppress(OSError):
                _write_all(self.stdin_fd, frame.payload)
        elif frame.kind is Kind.EOF and self.stdin_fd is not None:
            if self.tty:
                with contextlib.suppress(OSError):
                    _write_all(self.stdin_fd, b"\x04")
            else:
                assert self.proc.stdin
                self.proc.stdin.close()
                self.stdin_fd = None
        elif frame.kind is Kind.WINCH and self.tty:
            self._winch(self.master, frame.json())
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGWINCH)

    def run(self, decoder: Decoder) -> None:
        """Relay until the command exits (EXIT sent) or the host goes away (command killed)."""
        poller = select.poll()
        poller.register(self.port_fd, select.POLLIN | select.POLLHUP)
        for fd in self.out_fds:
            poller.register(fd, select.POLLIN | select.POLLHUP)
        open_outs = set(self.out_fds)
        try:
            while open_outs:
                for fd, ev in poller.poll(1000):
                    if fd == self.port_fd:
                        if ev & select.POLLHUP:
                            raise ConnectionResetError("host disconnected")
                        for frame in decoder.feed(os.read(fd, 65536)):
                            self._from_host(frame)
                        continue
                    try:
                        data = os.read(fd, 65536)
                    except OSError:  # EIO on a pty whose last slave closed
                        data = b""
                    if data:
                        _write_all(self.port_fd, encode(self.out_fds[fd], data))
                    else:
                        poller.unregister(fd)
                        open_outs.discard(fd)
            rc = self.proc.wait()
            _write_all(self.port_fd, encode_json(Kind.EXIT, {"rc": rc}))
        except (OSError, FrameError):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        finally:
            # Close each descriptor exactly once, through its owner: a double close could
            # close a descriptor a later session has been given in the meantime.
            if self.tty:
                os.close(self.master)
            for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
                if stream is not None and not stream.closed:
                    with contextlib.suppress(OSError):
                        stream.close()
            with _OWN_LOCK:
                _OWN.discard(self.proc.pid)


def serve_port(path: Path) -> None:
    """Serve sessions on one port, forever (until shutdown is requested)."""
    fd = os.open(path, os.O_RDWR)
    while _wait_for_host(fd):
        decoder = Decoder()
        try:
            # Frames left over from a finished session (e.g. a late EOF) precede the OPEN.
            frames: list[Frame] = []
            while not frames:
                data = os.read(fd, 65536)
                if not data:
                    break
                frames = decoder.feed(data)
                while frames and frames[0].kind is not Kind.OPEN:
                    frames.pop(0)
            if not frames:
                continue
            request = frames[0].json()
            if request.get("shutdown"):
                _write_all(fd, encode_json(Kind.EXIT, {"rc": 0}))
                _SHUTDOWN.set()
                return
            try:
                session = Session(fd, request)
            except (OSError, KeyError, ValueError) as exc:
                _write_all(fd, encode(Kind.STDERR, f"agent: cannot run: {exc}\n".encode()))
                _write_all(fd, encode_json(Kind.EXIT, {"rc": 127}))
                continue
            for frame in frames[1:]:
                session._from_host(frame)
            session.run(decoder)
        except (OSError, FrameError, json.JSONDecodeError) as exc:
            print(f"agent: {path.name}: session dropped: {exc}", flush=True)


def _find_ports() -> list[Path]:
    """Device nodes of our named ports (no udev in the guest, so read the names from sysfs)."""
    found = []
    for entry in sorted(PORT_CLASS.glob("vport*")):
        with contextlib.suppress(OSError):
            if (entry / "name").read_text().strip().startswith(PORT_PREFIX):
                found.append(Path("/dev", entry.name))
    return found


def _reap_orphans() -> None:
    """Reap zombies adopted as subreaper that are not our own sessions' commands."""
    me = os.getpid()
    while not _SHUTDOWN.is_set():
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            pid = int(stat.parent.name)
            if fields[0] == "Z" and int(fields[1]) == me:
                with _OWN_LOCK:
                    own = pid in _OWN
                if not own:
                    with contextlib.suppress(ChildProcessError):
                        os.waitpid(pid, os.WNOHANG)
        time.sleep(2)


def main(argv: list[str] | None = None) -> int:
    """Run the agent on every frrdmvpn.agent.N port; signal readiness in the run directory."""
    parser = argparse.ArgumentParser(prog="lab.agent")
    parser.add_argument("--run", type=Path, required=True, help="host-shared run directory")
    args = parser.parse_args(argv)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    deadline = time.monotonic() + 30
    ports: list[Path] = []
    while not ports and time.monotonic() < deadline:
        ports = _find_ports()
        time.sleep(0.1)
    if not ports:
        print("agent: no virtio-serial ports found", flush=True)
        return 1
    threads = [threading.Thread(target=serve_port, args=(p,), daemon=True) for p in ports]
    for t in threads:
        t.start()
    threading.Thread(target=_reap_orphans, daemon=True).start()
    (args.run / "agent.ready").write_text(f"{len(ports)}\n")
    print(f"agent: serving {len(ports)} ports", flush=True)
    _SHUTDOWN.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
