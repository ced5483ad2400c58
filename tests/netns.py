"""Run a Python script against the real kernel in a network namespace of its own (root and
``unshare``: tests of netlink, nftables and XFRM that must not touch the host's state)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def in_netns(script: str, *args: str) -> dict[str, Any]:
    """What ``script`` (run with ``args``) printed last, as JSON."""
    done = subprocess.run(
        ["unshare", "--net", sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    seen: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return seen
