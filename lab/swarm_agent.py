"""The swarm's NHRP client (:mod:`lab.swarm`), run inside the swarm's namespace.

``run --count N``: every spoke sends a Registration Request (the project's codec) in GRE
from its own NBMA address to the hub, again every second until the hub replies with
success, then every ``swarm.REREGISTER`` seconds. Like nhrpd with ``tunnel protection``, a
spoke whose CHILD_SA went down counts as unregistered, and registers again as soon as
charon reports one up (``child-updown`` events from the swarm's charon). The report
(``swarm.STATUS``, JSON) gives per spoke when it first sent, when it was first and last
registered and the last reply's code. An unanswered request is sent again with the same id
after 1, 2, 4, 8, 8 … seconds. A request whose spoke has no CHILD_SA starts charon's trap
(the swarm's connections are trapped, as a spoke's are) and is dropped; the SA coming up
sends the next one; after three refused in a row the agent asks charon to initiate the
spoke's connection itself (a trap's ACQUIRE can be swallowed by a larval state left behind).

``ping --index I --target A``: one ICMP echo from spoke I's tunnel address to ``A``, in GRE
through spoke I's CHILD_SA; exits 0 when the reply came back the same way.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import selectors
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import vici
import vici.exception

from frrdmvpn.codec.nhrp import (
    GRE_PROTO_NHRP,
    NhrpDecodeError,
    NhrpPacket,
    Op,
    build_gre,
    decode,
    encode,
    internet_checksum,
    parse_gre,
    parse_ipv4,
    registration_request,
)
from lab import swarm as sw
from lab import topology as topo

RETRY = 1.0  # seconds before a request unanswered is sent again, doubled each time
RETRY_MAX = 8.0
#: Requests refused in a row for want of a CHILD_SA (the trap kicked, nothing came) before
#: the agent asks charon to initiate the spoke's connection, as frrdmvpnd does on a spoke.
INITIATE_AFTER = 3
WRITE_EVERY = 0.5  # seconds between reports, at most
ETHERTYPE_IPV4 = 0x0800
IPPROTO_ICMP = 1


@dataclass
class SpokeState:
    """One spoke's registration, as the agent keeps it."""

    spoke: sw.Spoke
    sock: socket.socket
    request_id: int = 0
    fresh: bool = True  # the next request takes a new id (a retry keeps its id, as nhrpd's)
    retry: float = RETRY
    due: float = 0.0
    first_sent: float | None = None
    registered_at: float | None = None  # the first success
    last_registered: float | None = None  # the success that registered it this time
    registered: bool = False
    sent: int = 0
    blocked: int = 0
    blocked_in_row: int = 0
    initiations: int = 0
    replies: int = 0
    code: int | None = None


def _socket(address: str) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_GRE)
    s.bind((address, 0))
    s.setblocking(False)
    return s


def _gre_from(data: bytes) -> tuple[str, int, bytes] | None:
    """(outer destination, GRE protocol, payload) of a received GRE packet with the lab's key."""
    try:
        _src, dst, proto, payload = parse_ipv4(data)
        if proto != socket.IPPROTO_GRE:
            return None
        ptype, key, inner = parse_gre(payload)
    except (NhrpDecodeError, ValueError):
        return None
    return (str(dst), ptype, inner) if key == topo.GRE_KEY else None


def _report(path: str, started: float, spokes: list[SpokeState]) -> None:
    def rel(t: float | None) -> float | None:
        return None if t is None else round(t - started, 3)

    data = {
        "started_wall": time.time() - (time.monotonic() - started),
        "count": len(spokes),
        "registered": sum(s.registered for s in spokes),
        "spokes": [
            {
                "nbma": str(s.spoke.nbma),
                "overlay": str(s.spoke.overlay),
                "first_sent": rel(s.first_sent),
                "registered": rel(s.registered_at),
                "last_registered": rel(s.last_registered),
                "sent": s.sent,
                "blocked": s.blocked,
                "initiations": s.initiations,
                "replies": s.replies,
                "code": s.code,
            }
            for s in spokes
        ],
    }
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def _send_registration(st: SpokeState, hub: str, now: float) -> None:
    if st.fresh:
        st.request_id = (st.spoke.index << 16) | ((st.request_id + 1) & 0xFFFF)
        st.fresh = False
    pkt = registration_request(
        st.spoke.nbma,
        st.spoke.overlay,
        topo.hub().overlay.ip,
        holding_time=topo.NHRP_HOLDTIME,
        mtu=topo.GRE_MTU,
        request_id=st.request_id,
    )
    st.due = now + st.retry
    st.retry = min(2 * st.retry, RETRY_MAX)
    try:
        st.sock.sendto(build_gre(GRE_PROTO_NHRP, topo.GRE_KEY, encode(pkt)), (hub, 0))
    except OSError:  # no CHILD_SA (yet): charon's trap holds the packet, or the rule drops it
        st.blocked += 1
        st.blocked_in_row += 1
        st.registered = False
        return
    st.blocked_in_row = 0
    st.sent += 1
    if st.first_sent is None:
        st.first_sent = now


def _received(st: SpokeState, data: bytes, now: float) -> None:
    got = _gre_from(data)
    if got is None or got[1] != GRE_PROTO_NHRP:
        return
    try:
        pkt = decode(got[2])
    except NhrpDecodeError:
        return
    if not isinstance(pkt, NhrpPacket) or pkt.op != Op.REGISTRATION_REPLY:
        return
    if pkt.request_id != st.request_id:
        return
    st.replies += 1
    st.fresh = True
    st.code = pkt.cies[0].code if pkt.cies else None
    if st.code == 0:
        if st.registered_at is None:
            st.registered_at = now
        if not st.registered:
            st.last_registered = now
        st.registered = True
        st.retry = RETRY
        st.due = now + sw.REREGISTER


def _sa_changed(st: SpokeState, up: bool, now: float) -> None:
    """Its CHILD_SA went down (unregistered; a request soon starts charon's trap again) or
    came up (register now)."""
    st.registered = False
    st.fresh, st.retry, st.blocked_in_row = True, RETRY, 0
    st.due = now if up else min(st.due, now + RETRY)


def child_changes(event: Mapping[str, Any]) -> list[tuple[int, bool]]:
    """(spoke index, up) for each of the swarm's connections a ``child-updown`` event names
    (``up`` is present, ``yes``, only when the CHILD_SA came up)."""
    up = event.get("up") in (b"yes", "yes")
    found = []
    for key in event:
        name = key.decode() if isinstance(key, bytes) else str(key)
        if name.startswith("s") and name[1:].isdigit():
            found.append((int(name[1:]), up))
    return found


def _watch_sas(changes: queue.SimpleQueue[tuple[int, bool]], wake: socket.socket) -> None:
    """Forward the swarm charon's ``child-updown`` events as (spoke index, up), for ever."""
    while True:
        try:
            session = vici.Session()  # strongSwan's default socket: the swarm's charon
            for _label, event in session.listen(["child-updown"]):
                for change in child_changes(event):
                    changes.put(change)
                wake.send(b"!")
        except Exception as exc:  # charon not (yet) there, or gone: try again
            print(f"charon's events: {exc!r}", file=sys.stderr, flush=True)
            time.sleep(1)


class Initiator:
    """Asks the swarm's charon to initiate a spoke's connection (``initiate``, not waiting)."""

    def __init__(self) -> None:
        self.session: vici.Session | None = None

    def __call__(self, st: SpokeState) -> None:
        st.blocked_in_row = 0
        st.initiations += 1
        request = {"ike": f"s{st.spoke.index}", "child": "gre", "timeout": -1}
        try:
            if self.session is None:
                self.session = vici.Session()
            for _ in self.session.initiate(request):
                pass
        except vici.exception.CommandException as exc:
            print(f"initiate s{st.spoke.index}: {exc}", file=sys.stderr, flush=True)
        except (OSError, vici.exception.SessionException) as exc:
            print(f"initiate s{st.spoke.index}: {exc!r}", file=sys.stderr, flush=True)
            self.session = None


def run(count: int, status: str) -> int:
    """Register ``count`` spokes and keep them registered until SIGTERM."""
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    hub = str(topo.hub().nbma.ip)
    sel = selectors.DefaultSelector()
    states = [SpokeState(s, _socket(str(s.nbma))) for s in sw.spokes(count)]
    for st in states:
        sel.register(st.sock, selectors.EVENT_READ, st)
    changes: queue.SimpleQueue[tuple[int, bool]] = queue.SimpleQueue()
    wake_r, wake_w = socket.socketpair()
    wake_r.setblocking(False)
    sel.register(wake_r, selectors.EVENT_READ, None)
    threading.Thread(target=_watch_sas, args=(changes, wake_w), daemon=True).start()
    initiate = Initiator()
    started = time.monotonic()
    written = 0.0
    dirty = True
    while not stop:
        now = time.monotonic()
        for st in states:
            if st.due <= now:
                _send_registration(st, hub, now)
                if st.blocked_in_row >= INITIATE_AFTER:
                    initiate(st)
                dirty = True
        wait = max(0.0, min(min(st.due for st in states) - time.monotonic(), WRITE_EVERY))
        for key, _ in sel.select(wait):
            st = key.data
            if st is None:
                with contextlib.suppress(BlockingIOError):
                    wake_r.recv(4096)
                while not changes.empty():
                    index, up = changes.get()
                    if index < len(states):
                        _sa_changed(states[index], up, time.monotonic())
                dirty = True
                continue
            while True:
                try:
                    data = st.sock.recv(65535)
                except BlockingIOError:
                    break
                _received(st, data, time.monotonic())
                dirty = True
        if dirty and time.monotonic() - written >= WRITE_EVERY:
            _report(status, started, states)
            written, dirty = time.monotonic(), False
    _report(status, started, states)
    return 0


def _ipv4(src: str, dst: str, proto: int, payload: bytes) -> bytes:
    header = bytearray(
        struct.pack(
            "!BBHHHBBH4s4s",
            0x45,
            0,
            20 + len(payload),
            0,
            0x4000,
            64,
            proto,
            0,
            socket.inet_aton(src),
            socket.inet_aton(dst),
        )
    )
    struct.pack_into("!H", header, 10, internet_checksum(header))
    return bytes(header) + payload


def ping(index: int, target: str, timeout: float) -> int:
    """One ICMP echo from spoke ``index``'s tunnel address; 0 when its reply came."""
    spoke = sw.spokes(index + 1)[index]
    ident = os.getpid() & 0xFFFF
    echo = bytearray(struct.pack("!BBHHH", 8, 0, 0, ident, 1) + b"frrdmvpn-swarm")
    struct.pack_into("!H", echo, 2, internet_checksum(echo))
    packet = _ipv4(str(spoke.overlay), target, IPPROTO_ICMP, bytes(echo))
    sock = _socket(str(spoke.nbma))
    sock.setblocking(True)
    sock.sendto(build_gre(ETHERTYPE_IPV4, topo.GRE_KEY, packet), (str(topo.hub().nbma.ip), 0))
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            data = sock.recv(65535)
        except TimeoutError:
            break
        got = _gre_from(data)
        if got is None or got[1] != ETHERTYPE_IPV4:
            continue
        try:
            src, dst, proto, icmp = parse_ipv4(got[2])
        except NhrpDecodeError:
            continue
        if (str(src), str(dst), proto) != (target, str(spoke.overlay), IPPROTO_ICMP):
            continue
        if len(icmp) >= 8 and icmp[0] == 0 and struct.unpack("!H", icmp[4:6])[0] == ident:
            print(f"reply from {target} to {spoke.overlay} ({spoke.nbma})")
            return 0
    print(f"no reply from {target} to {spoke.overlay} ({spoke.nbma})", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="swarm_agent", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="register the spokes and keep them registered")
    r.add_argument("--count", type=int, required=True)
    r.add_argument("--status", default=sw.STATUS)
    p = sub.add_parser("ping", help="one ICMP echo from a spoke's tunnel address")
    p.add_argument("--index", type=int, required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args(argv)
    if args.cmd == "run":
        return run(args.count, args.status)
    return ping(args.index, args.target, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
