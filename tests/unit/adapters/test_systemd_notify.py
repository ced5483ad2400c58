"""The hand-written sd_notify: exact datagrams on real AF_UNIX sockets, and the watchdog."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from frrdmvpn.adapters import systemd

pytestmark = pytest.mark.unit


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[socket.socket, dict[str, str]]]:
    """A datagram socket bound to a path, and the environment that names it."""
    path = tmp_path / "n.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(2)
        yield sock, {"NOTIFY_SOCKET": str(path)}


@pytest.fixture
def abstract_receiver() -> Iterator[tuple[socket.socket, dict[str, str]]]:
    """A datagram socket bound in the abstract namespace, and its ``@name``."""
    name = f"frrdmvpn-test-{os.getpid()}-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        sock.settimeout(2)
        yield sock, {"NOTIFY_SOCKET": f"@{name}"}


def test_notify_path_socket(receiver: tuple[socket.socket, dict[str, str]]) -> None:
    sock, env = receiver
    assert systemd.notify("READY=1\nSTATUS=hello", env)
    assert sock.recv(4096) == b"READY=1\nSTATUS=hello"


def test_notify_abstract_socket(abstract_receiver: tuple[socket.socket, dict[str, str]]) -> None:
    sock, env = abstract_receiver
    assert systemd.notify("WATCHDOG=1", env)
    assert sock.recv(4096) == b"WATCHDOG=1"


def test_helpers_send_exact_datagrams(receiver: tuple[socket.socket, dict[str, str]]) -> None:
    sock, env = receiver
    assert systemd.ready(env=env)
    assert sock.recv(4096) == b"READY=1"
    assert systemd.ready("serving 3 peers", env=env)
    assert sock.recv(4096) == b"READY=1\nSTATUS=serving 3 peers"
    assert systemd.stopping(env=env)
    assert sock.recv(4096) == b"STOPPING=1"
    assert systemd.status("two\nlines", env=env)
    assert sock.recv(4096) == b"STATUS=two lines"
    assert systemd.watchdog_ping(env=env)
    assert sock.recv(4096) == b"WATCHDOG=1"


def test_reloading_carries_monotonic_usec(
    abstract_receiver: tuple[socket.socket, dict[str, str]],
) -> None:
    sock, env = abstract_receiver
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert systemd.reloading(env=env)
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    first, second = sock.recv(4096).decode().split("\n")
    assert first == "RELOADING=1"
    key, _, value = second.partition("=")
    assert key == "MONOTONIC_USEC"
    assert before <= int(value) <= after


def test_notify_uses_os_environ(
    receiver: tuple[socket.socket, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, env = receiver
    monkeypatch.setenv("NOTIFY_SOCKET", env["NOTIFY_SOCKET"])
    assert systemd.stopping()
    assert sock.recv(4096) == b"STOPPING=1"


@pytest.mark.parametrize("value", [None, "", "@", "relative/path", "vsock:2:1234"])
def test_notify_without_usable_socket_is_false(value: str | None) -> None:
    env = {} if value is None else {"NOTIFY_SOCKET": value}
    assert systemd.notify("READY=1", env) is False
    assert systemd.ready(env=env) is False


def test_notify_unset_in_os_environ_is_false(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert systemd.watchdog_ping() is False


def test_notify_failure_is_false_not_raised(tmp_path: Path) -> None:
    assert systemd.notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "absent.sock")}) is False
    name = f"@frrdmvpn-absent-{uuid.uuid4().hex}"
    assert systemd.notify("READY=1", {"NOTIFY_SOCKET": name}) is False


def test_empty_message_is_not_sent(receiver: tuple[socket.socket, dict[str, str]]) -> None:
    sock, env = receiver
    assert systemd.notify("", env) is False
    sock.settimeout(0.05)
    with pytest.raises(TimeoutError):
        sock.recv(4096)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "20000000"}, 10.0),
        ({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": str(os.getpid())}, 1.5),
        ({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": str(os.getpid() + 1)}, None),
        ({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "x"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "-5"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({"WATCHDOG_PID": str(os.getpid())}, None),
    ],
)
def test_watchdog_interval(env: dict[str, str], expected: float | None) -> None:
    assert systemd.watchdog_interval(env) == expected


def test_watchdog_interval_reads_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert systemd.watchdog_interval() == 0.5
    monkeypatch.delenv("WATCHDOG_USEC")
    assert systemd.watchdog_interval() is None
