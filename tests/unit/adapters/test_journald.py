"""Logging to journald's native protocol (real AF_UNIX datagrams), and to stderr."""

from __future__ import annotations

import array
import fcntl
import io
import logging
import os
import socket
import struct
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from frrdmvpn.adapters import journald
from frrdmvpn.adapters.journald import FieldsFormatter, JournalHandler, fields

pytestmark = pytest.mark.unit

PEER = "198.51.100.11"


def _boom() -> None:
    raise ValueError("boom")


def _drain(sock: socket.socket) -> list[str]:
    """The MESSAGE of every entry queued on ``sock``."""
    sock.settimeout(0.2)
    out = []
    while True:
        try:
            out.append(as_dict(sock.recv(65536))["MESSAGE"])
        except TimeoutError:
            return out


def parse(data: bytes) -> list[tuple[str, bytes]]:
    """A native-protocol entry as (name, value) pairs, in order; strict about the framing."""
    out: list[tuple[str, bytes]] = []
    i = 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            name, value = line.split(b"=", 1)
            i = nl + 1
        else:  # binary form: NAME \n le64 size, value \n
            name = line
            (size,) = struct.unpack_from("<Q", data, nl + 1)
            start = nl + 1 + 8
            value = data[start : start + size]
            assert len(value) == size
            assert data[start + size : start + size + 1] == b"\n"
            i = start + size + 1
        out.append((name.decode("ascii"), value))
    return out


def as_dict(data: bytes) -> dict[str, str]:
    entry = parse(data)
    names = [name for name, _ in entry]
    assert len(names) == len(set(names)), names
    return {name: value.decode() for name, value in entry}


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[socket.socket, Path]]:
    """A datagram socket standing in for journald's, and its path."""
    path = tmp_path / "j.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(2)
        yield sock, path


@pytest.fixture
def logger(receiver: tuple[socket.socket, Path]) -> Iterator[tuple[logging.Logger, JournalHandler]]:
    """A logger of its own (not propagating) with a JournalHandler to ``receiver``."""
    handler = JournalHandler("frrdmvpnd", receiver[1])
    log = logging.getLogger("frrdmvpn.test.journal")
    log.propagate = False
    log.setLevel(1)
    log.addHandler(handler)
    yield log, handler
    log.removeHandler(handler)
    handler.close()
    log.propagate = True
    log.setLevel(logging.NOTSET)


def test_entry_has_message_priority_identifier_code_and_fields(
    receiver: tuple[socket.socket, Path], logger: tuple[logging.Logger, JournalHandler]
) -> None:
    sock, _ = receiver
    log, handler = logger
    reason = "charon has the CHILD_SA"
    log.info("peer %s: up", PEER, extra=fields(peer=PEER, event="transition", reason=reason))
    line = sys._getframe().f_lineno - 1
    got = as_dict(sock.recv(65536))
    assert got == {
        "MESSAGE": f"peer {PEER}: up",
        "PRIORITY": "6",
        "SYSLOG_IDENTIFIER": "frrdmvpnd",
        "LOGGER": "frrdmvpn.test.journal",
        "CODE_FILE": __file__,
        "CODE_LINE": str(line),
        "CODE_FUNC": "test_entry_has_message_priority_identifier_code_and_fields",
        "FRRDMVPN_PEER": PEER,
        "FRRDMVPN_EVENT": "transition",
        "FRRDMVPN_REASON": reason,
    }
    assert handler.dropped == 0


def test_record_without_fields(
    receiver: tuple[socket.socket, Path], logger: tuple[logging.Logger, JournalHandler]
) -> None:
    sock, _ = receiver
    logger[0].info("supervising %s", PEER)
    got = as_dict(sock.recv(65536))
    assert got["MESSAGE"] == f"supervising {PEER}"
    assert not [name for name in got if name.startswith("FRRDMVPN_")]


@pytest.mark.parametrize(
    ("level", "priority"),
    [
        (logging.DEBUG, "7"),
        (logging.INFO, "6"),
        (logging.WARNING, "4"),
        (logging.ERROR, "3"),
        (logging.CRITICAL, "2"),
        (logging.INFO + 5, "6"),
        (logging.WARNING - 1, "6"),
        (5, "7"),
    ],
)
def test_priority(
    receiver: tuple[socket.socket, Path],
    logger: tuple[logging.Logger, JournalHandler],
    level: int,
    priority: str,
) -> None:
    logger[0].log(level, "x")
    assert as_dict(receiver[0].recv(65536))["PRIORITY"] == priority


def test_newline_values_use_the_binary_form(
    receiver: tuple[socket.socket, Path], logger: tuple[logging.Logger, JournalHandler]
) -> None:
    sock, _ = receiver
    logger[0].warning("two\nlines", extra=fields(reason="a\nb", event="x=y"))
    data = sock.recv(65536)
    assert data.startswith(b"MESSAGE\n" + struct.pack("<Q", 9) + b"two\nlines\n")
    assert b"FRRDMVPN_REASON\n" + struct.pack("<Q", 3) + b"a\nb\n" in data
    assert b"FRRDMVPN_EVENT=x=y\n" in data  # '=' in a value needs no binary form
    got = as_dict(data)
    assert got["MESSAGE"] == "two\nlines"
    assert got["FRRDMVPN_REASON"] == "a\nb"
    assert got["FRRDMVPN_EVENT"] == "x=y"


def test_traceback_is_part_of_the_message(
    receiver: tuple[socket.socket, Path], logger: tuple[logging.Logger, JournalHandler]
) -> None:
    try:
        _boom()
    except ValueError:
        logger[0].exception("step failed", extra=fields(event="step"))
    got = as_dict(receiver[0].recv(65536))
    assert got["MESSAGE"].startswith("step failed\nTraceback (most recent call last):")
    assert got["MESSAGE"].endswith("ValueError: boom")
    assert got["PRIORITY"] == "3"
    assert got["FRRDMVPN_EVENT"] == "step"


def test_non_ascii_values_are_utf8(
    receiver: tuple[socket.socket, Path], logger: tuple[logging.Logger, JournalHandler]
) -> None:
    logger[0].info("neighbour ✓", extra=fields(reason="Grüße"))
    got = as_dict(receiver[0].recv(65536))
    assert got["MESSAGE"] == "neighbour ✓"
    assert got["FRRDMVPN_REASON"] == "Grüße"


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("peer", "FRRDMVPN_PEER"),
        ("remote-nbma", "FRRDMVPN_REMOTE_NBMA"),
        ("a.b c", "FRRDMVPN_A_B_C"),
        ("_hidden", "FRRDMVPN_HIDDEN"),
        ("__x_y", "FRRDMVPN_X_Y"),
        ("9lives", "FRRDMVPN_9LIVES"),
        ("Grüße", "FRRDMVPN_GR_SSE"),  # ß upper-cases to SS
        ("x" * 100, "FRRDMVPN_" + "X" * 55),
        ("", None),
        ("_", None),
        ("--", None),
    ],
)
def test_field_name(key: str, name: str | None) -> None:
    assert journald.field_name(key) == name
    if name is not None:
        assert len(name) <= 64
        assert not name.startswith("_")
        assert set(name) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def test_fields_are_sanitised_on_the_wire(
    receiver: tuple[socket.socket, Path], logger: tuple[logging.Logger, JournalHandler]
) -> None:
    extra = {"fields": {"Remote NBMA": PEER, "_SOURCE_REALTIME_TIMESTAMP": 1, "==": "gone"}}
    logger[0].info("x", extra=extra)
    got = as_dict(receiver[0].recv(65536))
    assert got["FRRDMVPN_REMOTE_NBMA"] == PEER
    assert got["FRRDMVPN_SOURCE_REALTIME_TIMESTAMP"] == "1"
    assert "gone" not in got.values()
    assert not [name for name in got if name.startswith("_")]


def test_fields_that_are_not_a_mapping_are_ignored(
    receiver: tuple[socket.socket, Path], logger: tuple[logging.Logger, JournalHandler]
) -> None:
    logger[0].info("x", extra={"fields": ["peer", PEER]})
    got = as_dict(receiver[0].recv(65536))
    assert got["MESSAGE"] == "x"
    assert not [name for name in got if name.startswith("FRRDMVPN_")]


def test_fields_helper() -> None:
    assert fields(peer=PEER, attempt=3, event="initiate") == {
        "fields": {"peer": PEER, "attempt": "3", "event": "initiate"}
    }
    assert fields() == {"fields": {}}
    assert fields(peer=None, claimed="10.0.0.2") == {"fields": {"claimed": "10.0.0.2"}}


def test_emit_never_raises_and_is_quiet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logging, "raiseExceptions", True)  # handleError would print
    handler = JournalHandler("frrdmvpnd", tmp_path / "missing.sock")
    log = logging.getLogger("frrdmvpn.test.journal.missing")
    log.propagate = False
    log.addHandler(handler)
    try:
        log.warning("nobody listens")
        log.warning("bad %d format", "text")  # the record's own formatting fails
        assert handler.dropped == 2
    finally:
        log.removeHandler(handler)
        handler.close()
        log.propagate = True
    assert capsys.readouterr() == ("", "")


def test_large_entry_goes_as_a_sealed_memfd(
    receiver: tuple[socket.socket, Path], logger: tuple[logging.Logger, JournalHandler]
) -> None:
    sock, _ = receiver
    big = "x" * (4 << 20)  # beyond any default SO_SNDBUF: EMSGSIZE
    logger[0].info(big, extra=fields(peer=PEER))
    fds = array.array("i")
    data, ancdata, _, _ = sock.recvmsg(16, socket.CMSG_SPACE(fds.itemsize))
    assert data == b""
    ((level, kind, payload),) = ancdata
    assert (level, kind) == (socket.SOL_SOCKET, socket.SCM_RIGHTS)
    fds.frombytes(payload[: fds.itemsize])
    with os.fdopen(fds[0], "rb") as passed:
        seals = fcntl.fcntl(passed.fileno(), fcntl.F_GET_SEALS)
        wanted = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SEAL
        assert seals & wanted == wanted
        got = as_dict(passed.read())
    assert got["MESSAGE"] == big
    assert got["FRRDMVPN_PEER"] == PEER
    assert logger[1].dropped == 0


def test_large_entry_is_truncated_without_memfd(
    receiver: tuple[socket.socket, Path],
    logger: tuple[logging.Logger, JournalHandler],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_memfd(*_args: object) -> None:
        raise OSError("no memfd here")

    monkeypatch.setattr(JournalHandler, "_send_fd", staticmethod(no_memfd))
    size = 4 << 20
    logger[0].info("é" * (size // 2), extra=fields(peer=PEER))
    got = as_dict(receiver[0].recv(1 << 20))
    note = f" [truncated: {size} bytes in all]"
    assert got["MESSAGE"] == "é" * (journald.TRUNCATED_MESSAGE // 2) + note
    assert got["FRRDMVPN_PEER"] == PEER
    assert logger[1].dropped == 0


def test_stalled_journal_costs_one_timeout(
    receiver: tuple[socket.socket, Path],
    logger: tuple[logging.Logger, JournalHandler],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(journald, "SEND_TIMEOUT", 0.05)
    sock, _ = receiver
    log, handler = logger
    sent = 0
    while handler.dropped == 0:  # nobody reads: the receive queue fills up
        log.info("filler %d", sent)
        sent += 1
        assert sent < 100_000
    log.info("dropped without waiting")
    assert handler.dropped == 2
    assert _drain(sock) == [f"filler {i}" for i in range(sent - 1)]
    log.info("back")
    assert as_dict(sock.recv(65536))["MESSAGE"] == "back"
    assert handler.dropped == 2


def test_journal_restart_is_followed(tmp_path: Path) -> None:
    """sendto, not connect: a journald that comes back on a new socket gets the entries."""
    path = tmp_path / "j.sock"
    handler = JournalHandler("frrdmvpnd", path)
    record = logging.LogRecord("n", logging.INFO, __file__, 1, "one", None, None)
    for text in ("one", "two"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.bind(str(path))
            sock.settimeout(2)
            record.msg = text
            handler.handle(record)
            assert as_dict(sock.recv(65536))["MESSAGE"] == text
        path.unlink()
    handler.close()
    assert handler.dropped == 0


def _record(msg: str, extra: Mapping[str, object] | None = None) -> logging.LogRecord:
    record = logging.LogRecord("frrdmvpn.supervisor", logging.INFO, __file__, 1, msg, None, None)
    record.created = 0.0
    record.msecs = 0.0
    for key, value in (extra or {}).items():
        setattr(record, key, value)
    return record


def test_fields_formatter() -> None:
    fmt = FieldsFormatter("%(name)s %(levelname)s %(message)s")
    extra = fields(peer=PEER, event="transition", reason="charon has no CHILD_SA")
    assert fmt.format(_record(f"peer {PEER}: UP -> DOWN", extra)) == (
        f"frrdmvpn.supervisor INFO peer {PEER}: UP -> DOWN"
        f' peer={PEER} event=transition reason="charon has no CHILD_SA"'
    )
    assert fmt.format(_record("plain")) == "frrdmvpn.supervisor INFO plain"
    assert fmt.format(_record("odd", {"fields": "not a mapping"})) == (
        "frrdmvpn.supervisor INFO odd"
    )


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("simple", "simple"),
        ("", '""'),
        ("a b", '"a b"'),
        ("a=b", '"a=b"'),
        ('say "no"', '"say \\"no\\""'),
        ("back\\slash", '"back\\\\slash"'),
        ("two\nlines", '"two\\nlines"'),
        ("tab\there", '"tab\\there"'),
    ],
)
def test_fields_formatter_quoting(value: str, shown: str) -> None:
    fmt = FieldsFormatter("%(message)s")
    assert fmt.format(_record("m", fields(reason=value))) == f"m reason={shown}"


def test_fields_formatter_puts_fields_before_the_traceback() -> None:
    fmt = FieldsFormatter("%(levelname)s %(message)s")
    try:
        _boom()
    except ValueError:
        record = _record("failed", fields(event="step"))
        record.exc_info = sys.exc_info()
    first, *rest = fmt.format(record).splitlines()
    assert first == "INFO failed event=step"
    assert rest[0] == "Traceback (most recent call last):"
    assert rest[-1] == "ValueError: boom"


@pytest.fixture
def root() -> Iterator[logging.Logger]:
    """The root logger, restored afterwards (handlers and level)."""
    log = logging.getLogger()
    handlers, level = list(log.handlers), log.level
    yield log
    for handler in log.handlers:
        if handler not in handlers:
            log.removeHandler(handler)
            handler.close()
    log.setLevel(level)


def _ours(log: logging.Logger) -> list[logging.Handler]:
    return [h for h in log.handlers if h.name in {"frrdmvpn-journal", "frrdmvpn-stderr"}]


def _stderr_stream() -> str:
    st = os.fstat(2)
    return f"{st.st_dev}:{st.st_ino}"


def test_setup_uses_the_journal_under_systemd(
    root: logging.Logger, receiver: tuple[socket.socket, Path]
) -> None:
    sock, path = receiver
    journald.setup("frrdmvpn-proxy", False, {"JOURNAL_STREAM": _stderr_stream()}, path)
    (handler,) = _ours(root)
    assert isinstance(handler, JournalHandler)
    assert root.level == logging.INFO
    logging.getLogger("frrdmvpn.test.setup").info("ready", extra=fields(event="ready"))
    got = as_dict(sock.recv(65536))
    assert got["SYSLOG_IDENTIFIER"] == "frrdmvpn-proxy"
    assert got["FRRDMVPN_EVENT"] == "ready"
    logging.getLogger("frrdmvpn.test.setup").debug("not at INFO")
    sock.settimeout(0.1)
    with pytest.raises(TimeoutError):
        sock.recv(65536)


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"JOURNAL_STREAM": ""},
        {"JOURNAL_STREAM": "garbage"},
        {"JOURNAL_STREAM": "1:2"},  # stderr was redirected away from the journal
    ],
)
def test_setup_uses_stderr_without_the_journal_stream(
    root: logging.Logger, receiver: tuple[socket.socket, Path], env: dict[str, str]
) -> None:
    journald.setup("frrdmvpnd", True, env, receiver[1])
    (handler,) = _ours(root)
    assert type(handler) is logging.StreamHandler
    assert isinstance(handler.formatter, FieldsFormatter)
    assert root.level == logging.DEBUG


def test_setup_uses_stderr_without_the_socket(root: logging.Logger, tmp_path: Path) -> None:
    env = {"JOURNAL_STREAM": _stderr_stream()}
    journald.setup("frrdmvpnd", False, env, tmp_path / "missing.sock")
    (handler,) = _ours(root)
    assert type(handler) is logging.StreamHandler
    (tmp_path / "file").write_text("")  # a file where the socket should be is not one
    journald.setup("frrdmvpnd", False, env, tmp_path / "file")
    (handler,) = _ours(root)
    assert type(handler) is logging.StreamHandler


def test_setup_stderr_output(root: logging.Logger, monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stderr", out)
    journald.setup("frrdmvpnd", False, {})
    logging.getLogger("frrdmvpn.supervisor").info(
        "peer %s: initiate (attempt %d)", PEER, 2, extra=fields(peer=PEER, event="initiate")
    )
    line = out.getvalue()
    assert line.endswith(
        f" frrdmvpn.supervisor INFO peer {PEER}: initiate (attempt 2) peer={PEER} event=initiate\n"
    )


def test_setup_is_idempotent(root: logging.Logger, receiver: tuple[socket.socket, Path]) -> None:
    others = [h for h in root.handlers if h not in _ours(root)]
    journald.setup("frrdmvpnd", False, {})
    journald.setup("frrdmvpnd", False, {})
    assert len(_ours(root)) == 1
    env = {"JOURNAL_STREAM": _stderr_stream()}
    journald.setup("frrdmvpnd", False, env, receiver[1])
    journald.setup("frrdmvpnd", True, env, receiver[1])
    (handler,) = _ours(root)
    assert isinstance(handler, JournalHandler)
    assert root.level == logging.DEBUG
    assert [h for h in root.handlers if h not in _ours(root)] == others  # pytest's stay
