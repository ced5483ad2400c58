"""What lab tests ask of the lab: NHRP/OSPF state from vtysh, SAs over VICI, underlay captures."""

from __future__ import annotations

import datetime
import itertools
import json
import math
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import vici

from lab import topology as topo
from lab.netns import TIMEOUT, Lab, wait_for

__all__ = [
    "TIMEOUT",
    "AuthorizeEvents",
    "Capture",
    "Pinger",
    "capture_underlay",
    "child_sas",
    "conns",
    "guard_status",
    "ike_ids_to",
    "ike_sas",
    "nhrp_cache",
    "percentile",
    "ping",
    "protected_peer",
    "record",
    "wait_for",
]


def edit_config(lab: Lab, node: str, old: str, new: str) -> None:
    """Replace the first ``old`` in ``node``'s frrdmvpn.conf (which must hold it) by ``new``."""
    path = lab.config_path(topo.node(node))
    text = path.read_text()
    assert old in text, (node, old)
    path.write_text(text.replace(old, new, 1))


def nhrp_cache(lab: Lab, node: str) -> list[dict[str, Any]]:
    table: list[dict[str, Any]] = lab.vtysh_json(node, "show ip nhrp cache json")["table"]
    return table


def protected_peer(lab: Lab, node: str, nbma: str) -> bool:
    """Whether ``node``'s nhrpd has a peer at ``nbma`` with at least one IPsec SA and a
    cache entry bound to it (registration or resolution done, authorized)."""
    sas = {e["dst"]: int(e["sas"]) for e in lab.vtysh_json(node, "show dmvpn json")}
    bound = any(e.get("nbma") == nbma for e in nhrp_cache(lab, node))
    return sas.get(nbma, 0) >= 1 and bound


def ike_ids_to(lab: Lab, node: str, remote: str) -> list[str]:
    """Unique ids of the ESTABLISHED IKE_SAs of ``dmvpn`` that ``node`` has with the remote
    identity ``remote``, in charon's order (what ``swanctl --list-sas`` shows)."""
    return [
        str(ike["uniqueid"])
        for ike in ike_sas(lab, node)
        if ike["name"] == "dmvpn" and ike["state"] == "ESTABLISHED" and ike["remote-id"] == remote
    ]


def ping(lab: Lab, node: str, src: str, dst: str, count: int = 1) -> bool:
    argv = ["ping", "-n", "-q", "-c", str(count), "-i", "0.2", "-W", "1", "-I", src, dst]
    return lab.run(node, argv, check=False).returncode == 0


def _text(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, list):
        return [_text(x) for x in v]
    if isinstance(v, dict):
        return {k: _text(x) for k, x in v.items()}
    return v


@contextmanager
def _vici(lab: Lab, node: str) -> Iterator[vici.Session]:
    """A VICI session with ``node``'s charon at the path swanctl uses (through frrdmvpn's proxy
    where it runs): what swanctl would list, without its seconds of start-up under TCG."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(lab.vici_socket(node)))
    try:
        yield vici.Session(sock)
    finally:
        sock.close()


def ike_sas(lab: Lab, node: str) -> list[dict[str, Any]]:
    """Every IKE_SA charon on ``node`` reports over VICI, with its connection's name."""
    with _vici(lab, node) as session:
        return [
            dict(ike, name=name) for sas in session.list_sas() for name, ike in _text(sas).items()
        ]


def conns(lab: Lab, node: str) -> dict[str, Any]:
    """The connections charon on ``node`` has loaded, by name (``swanctl --list-conns``)."""
    with _vici(lab, node) as session:
        loaded = [_text(conn) for conn in session.list_conns()]
    return {name: conn for each in loaded for name, conn in each.items()}


def child_sas(lab: Lab, node: str) -> list[dict[str, Any]]:
    """Every CHILD_SA charon on ``node`` reports over VICI, with its IKE SA's endpoints."""
    children = []
    for ike in ike_sas(lab, node):
        for child in ike.get("child-sas", {}).values():
            child["local-host"] = ike["local-host"]
            child["remote-host"] = ike["remote-host"]
            child["ike-state"] = ike["state"]
            child["ike-id"] = ike["uniqueid"]
            child["remote-id"] = ike.get("remote-id", "")
            children.append(child)
    return children


@dataclass
class Capture:
    """Packets seen on the underlay bridge while a capture ran."""

    pcap: Path

    def count(self, bpf: str) -> int:
        out = subprocess.run(
            ["tcpdump", "-r", str(self.pcap), "-n", bpf],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return len(out.splitlines())


@contextmanager
def capture_underlay(tmp: Path) -> Iterator[Capture]:
    """Capture everything on the underlay bridge for the duration of the block."""
    pcap = tmp / "underlay.pcap"
    proc = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            topo.UNDERLAY_NS,
            "tcpdump",
            "-i",
            topo.BRIDGE,
            "-n",
            "-U",
            "-w",
            str(pcap),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    line = proc.stderr.readline()  # "listening on nbma0 ..." once the capture is armed
    assert "listening" in line, line
    try:
        yield Capture(pcap)
    finally:
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


RESULTS = Path(os.environ.get("FRRDMVPN_LAB_ARTIFACTS", "build/lab-artifacts")) / "results.json"


def guard_status(lab: Lab, node: str) -> dict[str, Any]:
    n = topo.node(node)
    argv = [lab.program("frrdmvpnd"), "guard", "status", "--nbma", str(n.nbma.ip)]
    done = lab.run(node, argv, check=False)
    status: dict[str, Any] = json.loads(done.stdout)
    status["rc"] = done.returncode
    return status


_NHRPD_STAMP = r"^(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d\.\d{3}) NHRP: \[[A-Z0-9-]+\] evmgr: "


def _stamp(text: str) -> float:
    return datetime.datetime.strptime(text, "%Y/%m/%d %H:%M:%S.%f").timestamp()


@dataclass(frozen=True)
class AuthorizeEvents:
    """nhrpd's ``authorize-binding`` events in a stretch of its log (``debug nhrp event``):
    when each was sent, and each answer (time, event id, result)."""

    sent: list[float]
    answered: list[tuple[float, int, str]]

    @classmethod
    def parse(cls, log: str) -> AuthorizeEvents:
        sent = [_stamp(m) for m in re.findall(_NHRPD_STAMP + "sending event authorize", log, re.M)]
        pattern = _NHRPD_STAMP + r"received: eventid=(\d+) result=(\w+)"
        answered = [(_stamp(t), int(e), r) for t, e, r in re.findall(pattern, log, re.M)]
        return cls(sent, answered)

    @property
    def complete(self) -> bool:
        """Every event sent has its answer (a lost one would never balance)."""
        return bool(self.sent) and len(self.answered) == len(self.sent)

    def latencies(self) -> list[float]:
        """Seconds from each event's sending to its answer, sorted. nhrpd numbers its events
        in the order it sends them; answers may come in any order, each with its id."""
        assert self.complete, (len(self.sent), len(self.answered))
        ids = sorted(e for _, e, _ in self.answered)
        # one nhrpd process: its ids count up by one per event sent (a restart starts over)
        assert ids == list(range(ids[0], ids[0] + len(ids))), ids
        return sorted(t - self.sent[e - ids[0]] for t, e, _ in self.answered)


def percentile(values: list[float], p: float) -> float:
    """The ``p``-th percentile (nearest rank) of sorted ``values``."""
    return values[max(0, math.ceil(p / 100 * len(values)) - 1)]


def record(name: str, value: float) -> None:
    """Keep a measured number for bench/ (written next to the junit files)."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data[name] = round(value, 2)
    RESULTS.write_text(json.dumps(data, indent=1, sort_keys=True))


class Pinger:
    """A background ping from spoke1's LAN every 0.1 s, replies timestamped by ping (-D)."""

    def __init__(self, lab: Lab, dst: str) -> None:
        argv = [
            "ping",
            "-n",
            "-D",
            "-i",
            "0.1",
            "-W",
            "1",
            "-I",
            str(topo.node("spoke1").lan.ip),
            dst,
        ]
        self.proc = subprocess.Popen(
            lab.argv("spoke1", argv), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        self.output = ""

    def stop(self) -> str:
        self.proc.terminate()
        self.output, _ = self.proc.communicate(timeout=10)
        return self.output

    def longest_gap(self) -> float:
        """The longest time without replies (seconds) while it ran: the traffic outage,
        measured by the data plane itself (0.1 s resolution). Call after :meth:`stop`."""
        stamps = [
            float(m) for m in re.findall(r"^\[(\d+\.\d+)\] \d+ bytes from", self.output, re.M)
        ]
        if len(stamps) < 2:
            raise AssertionError(f"too few replies to measure an outage: {self.output[-300:]!r}")
        return max(b - a for a, b in itertools.pairwise(stamps))
