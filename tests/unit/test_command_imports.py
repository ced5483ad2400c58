"""Each frrdmvpnd command imports only what it uses (issue 18): ``guard check`` runs before
charon and FRR start and ``configured`` before frrdmvpn's units, on slow machines too, so
none of the commands but ``run`` may load asyncio, the API (grpc, protobuf) or
prometheus_client, and only ``apply`` pyroute2. ``bench/startup.py`` measures them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SPOKE = ROOT / "docs/examples/lab-spoke1.conf"
HEAVY = ["asyncio", "pyroute2", "grpc", "google.protobuf", "prometheus_client", "frrdmvpn.api"]

# The command in a fresh interpreter, the kernel's guards stubbed (nothing to read them
# with here); prints its exit status and the heavy packages it loaded.
COMMAND = """
import json, sys
from frrdmvpn.application import frrdmvpnd
class Guard:
    def __init__(self, spec):
        self.spec = spec
    def installed(self, covering=False):
        return True
    def counters(self):
        return {}
frrdmvpnd.KernelGuard = Guard
frrdmvpnd.xfrm_stats = dict
try:
    code = frrdmvpnd.main(sys.argv[2:])
except SystemExit as exc:
    code = exc.code
heavy = json.loads(sys.argv[1])
print(json.dumps([code, [m for m in heavy if m in sys.modules]]))
"""


def run(*argv: str) -> tuple[int, list[str]]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-c", COMMAND, json.dumps(HEAVY), *argv],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    code, heavy = json.loads(done.stdout.splitlines()[-1])
    return code, heavy


@pytest.fixture
def spoke(tmp_path: Path) -> Path:
    """The lab's spoke1 with its tunnel source on lo (an interface every namespace has)."""
    path = tmp_path / "frrdmvpn.conf"
    text = SPOKE.read_text()
    assert " tunnel source eth0\n" in text
    path.write_text(text.replace(" tunnel source eth0\n", " tunnel source lo\n"))
    return path


def test_the_commands_systemd_and_operators_run_import_nothing_heavy(
    spoke: Path, tmp_path: Path
) -> None:
    running = ["--running", str(tmp_path / "running.conf")]
    dropin = ["--dropin", str(tmp_path / "dropin.conf")]
    commands = {
        "--version": ["--version"],
        "configured": ["configured", "-c", str(spoke)],
        "configured --sync-charon-socket": [
            "configured",
            "-c",
            str(spoke),
            "--sync-charon-socket",
            *dropin,
        ],
        "validate": ["validate", "-c", str(spoke), *running],
        "guard check": ["guard", "check", "-c", str(spoke), *running],
        "guard status": ["guard", "status", "-c", str(spoke), *running],
        "save": ["save", "-c", str(tmp_path / "saved.conf"), *running],
    }
    found = {name: run(*argv) for name, argv in commands.items()}
    assert found == {
        "--version": (0, []),
        "configured": (0, []),
        "configured --sync-charon-socket": (0, []),
        "validate": (0, []),
        "guard check": (0, []),  # the stub's guards are installed
        "guard status": (0, []),
        "save": (1, []),  # nothing applied yet
    }
    assert (tmp_path / "dropin.conf").exists()


def test_apply_loads_its_adapters_but_not_the_api() -> None:
    code = (
        "import json, sys; from frrdmvpn.node_ports import real_ports; "
        "ports = real_ports(); ports.links.close(); "
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout) == ["asyncio", "pyroute2"]
