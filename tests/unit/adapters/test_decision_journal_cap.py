"""frrdmvpnd reads the proxy's decision journal (/run/frrdmvpn/authorization.json) at every
observation: a file over 4 MiB is refused without being read whole, whether the kernel
knows its size (a regular file) or not (a FIFO, a file that grows). The journals here are
valid, padded with blanks: without the cap they would be read and parsed.

How much this thread read is the kernel's count (``rchar`` of /proc/thread-self/io).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from frrdmvpn.adapters.decision_journal import MAX_BYTES, read

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

MiB = 1024 * 1024
JOURNAL = {"started": 1.5, "mode": "psk-map", "counters": {"accepted": 1}, "decisions": []}


def padded(size: int) -> bytes:
    """A valid journal of exactly ``size`` bytes."""
    data = json.dumps(JOURNAL).encode()
    return data + b" " * (size - len(data))


def bytes_read() -> int:
    """Bytes this thread has read so far (the kernel's count; reading it adds a few)."""
    for line in Path("/proc/thread-self/io").read_text().splitlines():
        key, _, value = line.partition(":")
        if key == "rchar":
            return int(value)
    raise AssertionError("no rchar in /proc/thread-self/io")


def test_a_5_mib_journal_is_refused_without_being_read(tmp_path: Path) -> None:
    path = tmp_path / "authorization.json"
    path.write_bytes(padded(MAX_BYTES))
    assert 4 * MiB == MAX_BYTES
    assert read(path) == JOURNAL  # at the cap: read
    path.write_bytes(padded(5 * MiB))
    before = bytes_read()
    assert read(path) is None
    assert bytes_read() - before < 64 * 1024  # the size decided it, not the bytes


def test_a_journal_whose_size_the_kernel_does_not_know_is_read_up_to_the_cap(
    tmp_path: Path,
) -> None:
    """A FIFO in its place (stat says 0 bytes): 5 MiB come, no more than the cap is read."""
    path = tmp_path / "authorization.json"
    os.mkfifo(path, 0o600)
    sent: list[int] = []

    def proxy() -> None:
        data, total = padded(5 * MiB), 0
        try:
            with path.open("wb") as f:
                for at in range(0, len(data), 65536):
                    total += f.write(data[at : at + 65536])
                    f.flush()
        except BrokenPipeError:  # the reader stopped reading: what is expected
            pass
        sent.append(total)

    writer = threading.Thread(target=proxy)
    writer.start()
    before = bytes_read()
    assert read(path) is None
    got = bytes_read() - before
    writer.join(30)
    assert not writer.is_alive()
    assert MAX_BYTES < got <= MAX_BYTES + 64 * 1024
    assert sent[0] < 5 * MiB  # the rest was never taken
