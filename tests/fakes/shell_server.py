"""A frrdmvpnd API for the shell's terminal tests (``python -m tests.fakes.shell_server DIR``).

It serves the real :class:`frrdmvpn.api.server.ApiServer` on ``DIR/api.sock`` over a
:class:`frrdmvpn.api.backend.Backend` fed synthetic state: the lab hub's configuration
applied to fake ports, three spokes UP (tests.unit.api.test_api_server's observation), guard
counters, an authorization journal and ospfd's neighbours. Clearing a peer's crypto
session makes it go DOWN, then UP again half a second later (what ``debug dmvpn`` shows).
It prints ``READY`` when it serves and stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from frrdmvpn.api.backend import Backend
from frrdmvpn.api.server import ApiServer
from frrdmvpn.config.model import Config
from frrdmvpn.datastores import ApplyReport, Datastores
from frrdmvpn.v1 import peer_pb2
from tests.fakes.api_node import (
    HUB_TEXT,
    FakeFrr,
    FakeOperations,
    observation,
    observe_counters,
)
from tests.fakes.world import World

SPOKES = 3


class LenientWorld(World):
    """The fake node of tests.unit.test_apply, whose FRR takes any configuration lines."""

    def frr_configure(self, daemon: str, lines: list[str]) -> None:
        self.log.append(f"vtysh {daemon}")


class FlappingOperations(FakeOperations):
    """Clearing a peer takes it DOWN now and brings it back UP half a second later."""

    def __init__(self, backend: Backend) -> None:
        super().__init__()
        self.backend = backend

    async def clear(self, peers: list[peer_pb2.Peer], **kw: Any) -> list[Any]:
        out = await super().clear(peers, **kw)
        index = {p.key.remote_nbma for p in peers}
        down = [i for i, p in enumerate(self.backend.peers()) if p.key.remote_nbma in index]
        self.backend.observed(observation(SPOKES, down=down))
        loop = asyncio.get_running_loop()
        loop.call_later(0.5, lambda: self.backend.observed(observation(SPOKES)))
        return out


def build(directory: Path) -> tuple[Backend, Datastores]:
    world = LenientWorld()
    stores = Datastores(
        saved=directory / "etc" / "frrdmvpn.conf",
        running=directory / "run" / "running.conf",
        ports=lambda: world.ports(Config()),
    )
    backend = Backend(stores, hostname="hub", frr=FakeFrr())
    report = stores.apply_text(HUB_TEXT, origin="startup")
    assert report.ok, report.message
    backend.observed(observation(SPOKES))
    observe_counters(backend)
    backend.set_ready()
    return backend, stores


async def serve(directory: Path) -> None:
    backend, stores = build(directory)
    loop = asyncio.get_running_loop()

    def config_changed(what: str, report: ApplyReport | None) -> None:
        loop.call_soon_threadsafe(backend.config_changed, what, report)

    stores.on_change = config_changed
    api = ApiServer(
        backend,
        FlappingOperations(backend),
        socket_path=directory / "api.sock",
        group=None,
        admin_socket=directory / "admin.sock",
        admin_group=None,
    )
    await api.start()
    await api.set_serving(True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("READY", flush=True)
    await stop.wait()
    await api.stop(0)


@contextlib.contextmanager
def running(prefix: str) -> Iterator[Path]:
    """This server in a subprocess, for a test module: yields its administrators' socket
    (the operators' is ``api.sock`` beside it)."""
    root = Path(__file__).resolve().parents[2]
    directory = Path(tempfile.mkdtemp(prefix=prefix))  # short: unix socket paths are bounded
    env = dict(os.environ, PYTHONPATH=str(root))
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.shell_server", str(directory)],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        assert server.stdout.readline().strip() == "READY"
        yield directory / "admin.sock"
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1].startswith("-"):
        sys.exit("usage: python -m tests.fakes.shell_server DIR")
    asyncio.run(serve(Path(sys.argv[1])))
