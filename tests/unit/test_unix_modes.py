"""Who may open frrdmvpn's local sockets, tried by processes of other users (setpriv): the
proxy's two sockets and the directory of nhrpd's event socket (frrdmvpn-proxy's ``serve``,
through frrdmvpn/adapters/unix_server.py), and the root-only directory where each API
listener's gRPC server listens behind its relay (frrdmvpn/api/server.py).

Everything starts under umask 0, so no mode below comes from the umask.
"""

from __future__ import annotations

import argparse
import asyncio
import grp
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.api_node import Node
from tests.fakes.api_node import run as run_api
from tests.fakes.proxy import ask, run_proxy

PROXY_GROUP = "frr"  # frrdmvpn-proxy's --group default: nhrpd's group

pytestmark = [
    pytest.mark.unit,
    pytest.mark.timeout(90),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run clients as other users"),
]

STRANGER = 65533  # a uid in no group of frrdmvpn's (any uid works: names do not matter)

# For each argument "connect:PATH" or "list:PATH": "ok" or the errno's name.
PROBE = """
import errno, json, os, socket, sys
out = []
for arg in sys.argv[1:]:
    what, path = arg.split(":", 1)
    try:
        if what == "connect":
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(path)
        else:
            os.listdir(path)
        out.append("ok")
    except OSError as exc:
        out.append(errno.errorcode[exc.errno])
print(json.dumps(out))
"""


def probe(uid: int, gid: int, *tries: str) -> list[str]:
    """What ``uid`` (primary group ``gid``, no other) gets for each try."""
    setpriv = shutil.which("setpriv")
    assert setpriv is not None
    argv = [
        setpriv,
        f"--reuid={uid}",
        f"--regid={gid}",
        "--clear-groups",
        "--",
        sys.executable,
        "-I",
        "-c",
        PROBE,
        *tries,
    ]
    done = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=30)
    answer: list[str] = json.loads(done.stdout)
    return answer


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory other users can pass through (pytest's tmp_path is root's only)."""
    path = Path(tempfile.mkdtemp(prefix="fmodes-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def umask_0() -> Iterator[None]:
    old = os.umask(0)
    yield
    os.umask(old)


def owner(path: Path) -> tuple[int, int, int]:
    st = os.stat(path)
    return stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid


@pytest.mark.skipif(
    not any(g.gr_name == PROXY_GROUP for g in grp.getgrall()),
    reason=f"needs the group {PROXY_GROUP} (Debian's frr package)",
)
@pytest.mark.usefixtures("umask_0")
def test_the_proxys_sockets_are_root_and_frrs_0660_and_nobody_else_connects(
    shared_dir: Path,
) -> None:
    frr = grp.getgrnam(PROXY_GROUP).gr_gid
    (shared_dir / "run").mkdir(mode=0o777)  # as if left from before: opened up wide

    async def body(args: argparse.Namespace) -> None:
        vici, events, run_dir = args.listen, args.events, args.events.parent
        assert stat.S_ISSOCK(os.stat(vici).st_mode)
        assert stat.S_ISSOCK(os.stat(events).st_mode)
        assert owner(vici) == (0o660, 0, frr)
        assert owner(events) == (0o660, 0, frr)
        assert owner(run_dir) == (0o751, 0, frr)
        tries = (f"connect:{vici}", f"connect:{events}", f"list:{run_dir}")
        # a member of the group (nhrpd) reaches both, and lists the directory
        member = await asyncio.to_thread(probe, STRANGER, frr, *tries)
        assert member == ["ok", "ok", "ok"]
        # any other user: refused by each socket's mode; it may pass through the directory
        # (the API's clients must reach their sockets in /run/frrdmvpn) but not list it
        stranger = await asyncio.to_thread(probe, STRANGER, STRANGER, *tries)
        assert stranger == ["EACCES", "EACCES", "EACCES"]
        # the proxy served what came before and after them
        assert await ask(events, 1) == "eventid=1\nresult=deny\n\n"

    run_proxy(shared_dir, body)


@pytest.mark.usefixtures("umask_0")
def test_the_api_grpc_servers_listen_where_only_root_may_enter(shared_dir: Path) -> None:
    """Behind each unix socket a relay passes the bytes to a gRPC server of that socket's
    role; reaching the administrators' gRPC server directly would make anyone one."""
    stale = shared_dir / ".admin.sock.d"
    stale.mkdir(mode=0o777)  # as if left from before: opened up wide

    async def body(node: Node) -> None:
        for public in (node.socket, shared_dir / "admin.sock"):
            internal = shared_dir / f".{public.name}.d" / "grpc.sock"
            assert stat.S_ISSOCK(os.stat(internal).st_mode)
            assert owner(internal.parent) == (0o700, 0, 0)
            tries = (f"connect:{internal}", f"list:{internal.parent}")
            refused = await asyncio.to_thread(probe, STRANGER, STRANGER, *tries)
            assert refused == ["EACCES", "EACCES"]
        # The directory is the only barrier: gRPC's own socket is as open as the umask
        # (0 here) made it, and a way in at the directory reaches the administrator.
        admin = shared_dir / ".admin.sock.d"
        admin.chmod(0o711)
        opened = await asyncio.to_thread(probe, STRANGER, STRANGER, f"connect:{admin}/grpc.sock")
        assert opened == ["ok"]

    run_api(shared_dir, body)
