"""Clients run as another uid (setpriv) against a socket of the test, and a bounded asyncio run."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

ASK = """
import socket, sys
path, request, end = sys.argv[1], bytes.fromhex(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_UNIX)
s.connect(path)
s.sendall(request)
got = b""
while True:
    if end == "vici" and len(got) >= 4 and len(got) >= 4 + int.from_bytes(got[:4], "big"):
        break
    if end == "events" and b"\\n\\n" in got:
        break
    data = s.recv(65536)
    if not data:
        break
    got += data
print(got.hex(), flush=True)
"""


def as_user(
    uid: int, script: str, *args: str, env: dict[str, str] | None = None, isolated: bool = True
) -> subprocess.Popen[str]:
    """``script`` run by ``uid`` (setpriv). Started with posix_spawn, not fork: this process
    runs gRPC's threads, and a forked child of it may crash before it executes anything."""
    python = [sys.executable, *(["-I"] if isolated else []), "-c", script, *args]
    setpriv = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--"]
    return subprocess.Popen(
        [*setpriv, *python],
        env=env,
        close_fds=False,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


async def line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    return (await asyncio.to_thread(proc.stdout.readline)).strip()


async def ask(uid: int, path: Path, request: bytes, end: str) -> bytes:
    proc = as_user(uid, ASK, str(path), request.hex(), end)
    answer = bytes.fromhex(await line(proc))
    proc.wait(10)
    return answer


def run(main: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(main(), 50))
