"""``debug dmvpn`` / ``debug nhrp``: the Watch API's changes as live debug lines.

:func:`event_lines` turns one WatchResponse into the lines a debug category prints (pure);
:class:`Debugger` keeps one Watch stream (live changes only, no snapshot) for the enabled
categories in a thread and hands each line to ``emit``.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterable
from typing import Any

import grpc

from frrdmvpn.v1 import ipsec_pb2, nhrp_pb2, types_pb2, watch_service_pb2

CATEGORIES: dict[str, tuple[str, ...]] = {
    "dmvpn": ("peer", "ipsec_sa"),
    "nhrp": ("nhrp_cache", "nhs"),
}
"""Debug category -> the Watch event kinds it follows."""

ON = {"dmvpn": "DMVPN debugging is on", "nhrp": "NHRP protocol debugging is on"}
OFF = {"dmvpn": "DMVPN debugging is off", "nhrp": "NHRP protocol debugging is off"}
ALL_OFF = "All possible debugging has been turned off"

_CHANGE = {
    watch_service_pb2.CHANGE_TYPE_ADDED: "added",
    watch_service_pb2.CHANGE_TYPE_UPDATED: "updated",
    watch_service_pb2.CHANGE_TYPE_REMOVED: "removed",
}


def _state(value: int) -> str:
    try:
        return str(types_pb2.PeerState.Name(value)).removeprefix("PEER_STATE_")  # type: ignore[arg-type]
    except ValueError:
        return str(value)


def _enum(enum: Any, value: int, prefix: str) -> str:
    try:
        return str(enum.Name(value)).removeprefix(prefix)
    except ValueError:
        return str(value)


def stamp(event: Any) -> str:
    """IOS's debug time stamp: ``*Nov 28 08:14:01.123``, local time."""
    if event.HasField("time"):
        seconds = event.time.seconds + event.time.nanos / 1e9
        when = dt.datetime.fromtimestamp(seconds).astimezone()
    else:
        when = dt.datetime.now().astimezone()
    return "*" + when.strftime("%b %e %H:%M:%S.") + f"{when.microsecond // 1000:03d}"


def event_lines(event: Any, categories: Iterable[str]) -> list[str]:
    """The debug lines ``event`` makes for the enabled ``categories``."""
    enabled = set(categories)
    which = event.WhichOneof("event")
    head = stamp(event) + ": "
    if which == "overflow":
        return [f"{head}% debug: {event.overflow.lost_events} event(s) lost (too slow)"]
    if which == "peer" and "dmvpn" in enabled:
        return [head + _peer(event.peer)]
    if which == "ipsec_sa" and "dmvpn" in enabled:
        return [head + _ipsec(event.ipsec_sa)]
    if which == "nhrp_cache" and "nhrp" in enabled:
        return [head + _cache(event.nhrp_cache)]
    if which == "nhs" and "nhrp" in enabled:
        return [head + _nhs(event.nhs)]
    return []


def _peer(ev: Any) -> str:
    p = ev.peer
    who = f"{p.interface or 'Tunnel?'}: peer {p.tunnel_address or '-'} (NBMA {p.key.remote_nbma})"
    if ev.HasField("transition"):
        t = ev.transition
        reason = f": {t.reason}" if t.reason else ""
        return f"DMVPN: {who} {_state(t.from_state)} -> {_state(t.to_state)}{reason}"
    change = _CHANGE.get(ev.change, "changed")
    return f"DMVPN: {who} {change}, state {_state(p.state)}"


def _ipsec(ev: Any) -> str:
    if ev.WhichOneof("sa") == "ike_sa":
        sa = ev.ike_sa
        what = f"IKE_SA #{sa.unique_id} local {sa.local_host} remote {sa.remote_host}"
        state = _enum(ipsec_pb2.IkeSaState, sa.state, "IKE_SA_STATE_")
    else:
        sa = ev.child_sa
        what = f"CHILD_SA #{sa.unique_id}"
        state = ""
    change = {"added": "UP", "removed": "DOWN"}.get(_CHANGE.get(ev.change, ""), "updated")
    detail = ev.reason or state
    return f"%DMVPN-5-CRYPTO_SS: {what} (peer {ev.peer.remote_nbma}) is {change}" + (
        f" ({detail})" if detail else ""
    )


def _cache(ev: Any) -> str:
    e = ev.entry
    kind = _enum(nhrp_pb2.NhrpCacheType, e.type, "NHRP_CACHE_TYPE_").lower()
    change = _CHANGE.get(ev.change, "changed")
    via = f" via {e.via}" if e.via else ""
    nbma = f" NBMA {e.nbma_address}" if e.nbma_address else ""
    return (
        f"NHRP: {e.interface}: cache entry {e.protocol_address}/{e.prefix_length}{via}{nbma}"
        f" ({kind}) {change}"
    )


def _nhs(ev: Any) -> str:
    n = ev.nhs
    state = {
        nhrp_pb2.NHS_STATE_WAITING: "W (waiting)",
        nhrp_pb2.NHS_STATE_REGISTERING: "E (expecting replies)",
        nhrp_pb2.NHS_STATE_RESPONDING: "RE (responding)",
    }.get(n.state, "unknown")
    change = _CHANGE.get(ev.change, "changed")
    nbma = f" (NBMA {n.nbma_address or n.configured_nbma})"
    return f"NHRP: {n.interface}: NHS {n.protocol_address or 'dynamic'}{nbma} {change}: {state}"


Emit = Callable[[str], None]


class Debugger:
    """The enabled debug categories and the Watch stream that feeds them."""

    def __init__(self, watch: Callable[[list[str]], Any], emit: Emit) -> None:
        self._watch = watch
        self.emit = emit
        self.enabled: set[str] = set()
        self._call: Any = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        return bool(self.enabled)

    def enable(self, *categories: str) -> None:
        self._restart(self.enabled | set(categories))

    def disable(self, *categories: str) -> None:
        self._restart(self.enabled - set(categories))

    def stop(self) -> None:
        self._restart(set())

    def _restart(self, categories: set[str]) -> None:
        with self._lock:
            if categories == self.enabled and (self._thread is not None or not categories):
                return
            self._cancel()
            self.enabled = categories
            if not categories:
                return
            kinds = sorted({k for c in categories for k in CATEGORIES[c]})
            call = self._watch(kinds)
            self._call = call
            thread = threading.Thread(
                target=self._run,
                args=(call, frozenset(categories)),
                name="debug-watch",
                daemon=True,
            )
            self._thread = thread
            thread.start()

    def _cancel(self) -> None:
        call, thread = self._call, self._thread
        self._call = self._thread = None
        if call is not None:
            call.cancel()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def wait(self, timeout: float | None = None) -> None:
        """Block until the stream ends (it is cancelled or fails)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self, call: Any, categories: frozenset[str]) -> None:
        try:
            for event in call:
                for line in event_lines(event, categories):
                    self.emit(line)
        except grpc.RpcError as exc:
            ended = f"{exc.code().name}: {exc.details()}"
        else:
            ended = "the daemon closed it"
        # Cancelled (undebug, or another stream replaced this one): nothing to say. The
        # lock is not taken here: _restart holds it while it waits for this thread.
        if self._call is not call:
            return
        self.enabled = set()
        self._call = self._thread = None
        self.emit(f"% debug stream ended: {ended}")
