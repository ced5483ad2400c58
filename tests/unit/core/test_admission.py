"""Per-UID caps (issue 14, hole 9): the pure policy, then frrdmvpn-proxy's two sockets with
clients of other users (subprocesses run as other uids; SO_PEERCRED tells who they are).

On main, ~510 idle connections of one member of group frr exhausted the proxy's descriptors,
and nhrpd (same process for its event socket) was no longer served.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest

from frrdmvpn.adapters.nhrp_event_server import NhrpEventServer
from frrdmvpn.adapters.vici_proxy import ViciProxy
from frrdmvpn.codec.nhrp_events import AuthorizeBinding
from frrdmvpn.codec.vici import Packet, PacketType, decode_packet, encode_packet, frame
from frrdmvpn.core.admission import Admission, Refusal, Ticket
from frrdmvpn.core.authorize import Decision
from frrdmvpn.enforcement import admissions
from frrdmvpn.v1 import watch_service_pb2 as wpb
from tests.fakes.api_node import Node, read
from tests.fakes.api_node import run as run_api
from tests.fakes.charon import fake_charon
from tests.fakes.other_uid import as_user, ask, line, run

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

ATTACKER, NHRPD, OTHER = 65534, 65533, 65532  # any uid works for a client; names do not matter


# --- the policy -----------------------------------------------------------------------------


def test_per_principal_total_and_reserved_budgets() -> None:
    a = Admission("streams", per_principal=2, total=3, reserved={"uid 0": 1, "uid 101": 2})
    one, two = a.admit("uid 1000"), a.admit("uid 1000")
    assert isinstance(one, Ticket)
    assert isinstance(two, Ticket)
    assert a.admit("uid 1000") == Refusal(
        "uid 1000", "uid 1000 holds 2 streams, the limit per client is 2"
    )
    assert isinstance(a.admit("uid 1001"), Ticket)
    assert a.admit("uid 1002") == Refusal(
        "uid 1002", "3 streams are open, the limit for all clients is 3"
    )
    # reserved principals are served however full the shared budget is, up to their own
    assert isinstance(a.admit("uid 101"), Ticket)
    assert isinstance(a.admit("uid 101"), Ticket)
    assert a.admit("uid 101") == Refusal("uid 101", "uid 101 holds 2 streams, its limit is 2")
    assert isinstance(a.admit("uid 0"), Ticket)
    assert a.refused == {"uid 1000": 1, "uid 1002": 1, "uid 101": 1}
    a.release(one)
    a.release(one)  # twice: nothing more
    assert a.held["uid 1000"] == 1
    assert isinstance(a.admit("uid 1002"), Ticket)


# --- frrdmvpn-proxy's sockets -----------------------------------------------------------------

HOLD = """
import socket, sys
path, count = sys.argv[1], int(sys.argv[2])
socks = []
for _ in range(count):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    socks.append(s)
print("READY", flush=True)
refused = int(sys.stdin.readline() or "-1")
if refused < 0:
    sys.exit()
closed = sum(s.recv(1) == b"" for s in socks[count - refused:])  # blocks until closed
still_open = 0
for s in socks[:count - refused]:
    s.setblocking(False)
    try:
        s.recv(1)
    except BlockingIOError:
        still_open += 1
print(closed, still_open, flush=True)
sys.stdin.readline()
"""


EVENT = (
    "eventid=7\nevent=authorize-binding\ntype=dynamic\nold_type=invalid\nnum_nhs=0\n"
    "interface=dmvpn0\nlocal_addr=192.0.2.1\nlocal_nbma=198.51.100.1\n"
    "remote_addr=192.0.2.11\nremote_nbma=198.51.100.11\n\n"
)


async def until(condition: Callable[[], bool]) -> None:
    """Wait for the server to have seen every connection (a wait, not a timed assertion)."""
    while not condition():
        await asyncio.sleep(0.01)


def seen_all(admission: Admission, count: int) -> bool:
    return admission.held["uid 65534"] + admission.refused["uid 65534"] >= count


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run clients as other users")
def test_one_user_cannot_starve_nhrpd_on_either_socket(
    shared_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    vici, events = admissions(nhrpd_uid=NHRPD)
    decided: list[int] = []

    async def decide(event: AuthorizeBinding) -> Decision:
        decided.append(event.eventid)
        return Decision(True, "test")

    async def main() -> None:
        charon = await fake_charon(shared_dir / "charon.vici")
        proxy = ViciProxy(
            shared_dir / "proxy.vici", shared_dir / "charon.vici", group=None, admission=vici
        )
        server = NhrpEventServer(decide, shared_dir / "ev.sock", group=None, admission=events)
        await proxy.start()
        await server.start()
        for sock in ("proxy.vici", "ev.sock"):
            (shared_dir / sock).chmod(0o666)
        holders = []
        for sock, admission in (("proxy.vici", vici), ("ev.sock", events)):
            proc = as_user(ATTACKER, HOLD, str(shared_dir / sock), "100")
            assert await line(proc) == "READY"
            await until(partial(seen_all, admission, 100))
            holders.append((proc, admission))
        assert (vici.held["uid 65534"], vici.refused["uid 65534"]) == (4, 96)
        assert (events.held["uid 65534"], events.refused["uid 65534"]) == (2, 98)
        for proc, admission in holders:  # the refused ones were closed, the others kept
            assert proc.stdin is not None
            proc.stdin.write(f"{admission.refused['uid 65534']}\n")
            proc.stdin.flush()
            closed, still_open = map(int, (await line(proc)).split())
            assert (closed, still_open) == (
                admission.refused["uid 65534"],
                admission.held["uid 65534"],
            )
        # nhrpd is served on both, and so is another user of the group
        request = frame(encode_packet(Packet(PacketType.CMD_REQUEST, "version", {})))
        answer = await ask(NHRPD, shared_dir / "proxy.vici", request, "vici")
        assert decode_packet(answer[4:]).type is PacketType.CMD_RESPONSE
        reply = await ask(NHRPD, shared_dir / "ev.sock", EVENT.encode(), "events")
        assert reply == b"eventid=7\nresult=accept\n\n"
        reply = await ask(OTHER, shared_dir / "ev.sock", EVENT.encode(), "events")
        assert reply == b"eventid=7\nresult=accept\n\n"
        for proc, _ in holders:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(10)
        await until(lambda: not vici.held and not events.held)
        await server.close()
        await proxy.close()
        charon.close()

    run(main)
    assert decided == [7, 7]
    refusals = [r.getMessage() for r in caplog.records if "refused a connection" in r.message]
    assert refusals[0].startswith("refused a connection of uid 65534 (nobody) pid ")
    assert refusals[0].endswith(
        ": uid 65534 holds 4 VICI connections, the limit per client is 4 (refusal 1 of uid 65534)"
    )
    assert [r.rsplit("(refusal ", 1)[1] for r in refusals] == [
        f"{n} of uid 65534)" for n in (1, 2, 4, 8, 16, 32, 64) * 2
    ]
    assert "holds 2 event socket connections, the limit per client is 2" in refusals[-1]


# --- frrdmvpnd's API: connections and Watch streams per user ---------------------------------

WATCH = """
import json, sys
import grpc
from frrdmvpn.v1 import watch_service_pb2 as wpb, watch_service_pb2_grpc
channel = grpc.insecure_channel("unix:" + sys.argv[1])
stub = watch_service_pb2_grpc.WatchServiceStub(channel)
calls = [stub.Watch(wpb.WatchRequest()) for _ in range(int(sys.argv[2]))]
results = []
for call in calls:
    try:
        next(call)
        results.append("OK")
    except grpc.RpcError as exc:
        results.append(f"{exc.code().name}: {exc.details()}")
print(json.dumps(results), flush=True)
sys.stdin.readline()
"""


def as_user_with_frrdmvpn(uid: int, script: str, *args: str) -> subprocess.Popen[str]:
    root = Path(__file__).resolve().parents[3]
    env = dict(os.environ, PYTHONPATH=str(root))
    return as_user(uid, script, *args, env=env, isolated=False)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run clients as other users")
def test_one_user_cannot_hold_every_watch_stream_nor_every_api_connection(
    shared_dir: Path,
) -> None:
    """On main one member of the API's group could hold all 64 Watch slots; the API now knows
    each local caller's uid (SO_PEERCRED, through its front) and caps it."""

    async def body(node: Node) -> None:
        node.socket.chmod(0o666)
        front = node.server.admission
        assert front is not None
        watcher = as_user_with_frrdmvpn(ATTACKER, WATCH, str(node.socket), "10")
        results = json.loads(await line(watcher))
        refused = (
            "RESOURCE_EXHAUSTED: uid 65534 holds 8 Watch streams, the limit per client is 8: "
            "close one and watch again"
        )
        assert Counter(results) == {"OK": 8, refused: 2}  # the 10 calls race: which 2 varies
        assert node.backend.broker.admission.held["uid 65534"] == 8
        mine = node.watch.Watch(wpb.WatchRequest())  # root still watches
        assert (await read(mine)).HasField("snapshot_begin")
        mine.cancel()
        holder = as_user(ATTACKER, HOLD, str(node.socket), "20")
        assert await line(holder) == "READY"
        await until(lambda: front.held["uid 65534"] + front.refused["uid 65534"] >= 21)
        assert (front.held["uid 65534"], front.refused["uid 65534"]) == (8, 13)
        for proc in (watcher, holder):
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(10)
        await until(lambda: not node.backend.broker.admission.held["uid 65534"])

    run_api(shared_dir, body)
