"""A Prometheus endpoint (``/metrics``) over a snapshot of the daemon, read at each scrape.

The daemon hands over a callable returning a :class:`MetricsView`; nothing is cached, so a
scrape always shows the current state. The endpoint is off by default and, when enabled,
listens on a loopback address only unless ``allow_remote=True`` is passed.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

DIRECTIONS = ("in", "out")
VERDICTS = ("accepted", "denied", "weak_accepted")


@dataclass(frozen=True)
class MetricsView:
    """What one scrape shows."""

    ready: bool
    peers_by_state: Mapping[str, int]  # state name ("up", ...) -> number of peers
    sas: int  # IKE_SAs
    guard_dropped: Mapping[str, tuple[int, int]]  # "in"/"out" -> (packets, bytes)
    authorization: Mapping[str, int]  # "accepted"/"denied"/"weak_accepted" -> count
    config_revision: int
    applies_failed: int


def _families(view: MetricsView | None) -> Iterator[Metric]:
    """The metric families, with samples from ``view`` (none for ``describe``)."""
    ready = GaugeMetricFamily("frrdmvpn_ready", "1 when frrdmvpnd is ready, else 0")
    peers = GaugeMetricFamily("frrdmvpn_peers", "DMVPN peers by state", labels=["state"])
    sas = GaugeMetricFamily("frrdmvpn_ike_sas", "IKE_SAs currently known to charon")
    packets = CounterMetricFamily(
        "frrdmvpn_guard_dropped_packets_total",
        "Packets dropped by the fail-closed guard",
        labels=["direction"],
    )
    octets = CounterMetricFamily(
        "frrdmvpn_guard_dropped_bytes_total",
        "Bytes dropped by the fail-closed guard",
        labels=["direction"],
    )
    decisions = CounterMetricFamily(
        "frrdmvpn_authorization_decisions_total",
        "Peer authorization decisions by verdict",
        labels=["verdict"],
    )
    revision = GaugeMetricFamily(
        "frrdmvpn_config_revision", "Revision of the configuration last applied"
    )
    failures = CounterMetricFamily(
        "frrdmvpn_config_apply_failures_total", "Configuration applies that failed"
    )
    if view is not None:
        ready.add_metric([], 1 if view.ready else 0)
        for state, count in sorted(view.peers_by_state.items()):
            peers.add_metric([state], count)
        sas.add_metric([], view.sas)
        for direction in sorted({*DIRECTIONS, *view.guard_dropped}):
            dropped_packets, dropped_bytes = view.guard_dropped.get(direction, (0, 0))
            packets.add_metric([direction], dropped_packets)
            octets.add_metric([direction], dropped_bytes)
        for verdict in sorted({*VERDICTS, *view.authorization}):
            decisions.add_metric([verdict], view.authorization.get(verdict, 0))
        revision.add_metric([], view.config_revision)
        failures.add_metric([], view.applies_failed)
    yield from (ready, peers, sas, packets, octets, decisions, revision, failures)


class ViewCollector:
    """A custom collector: calls ``view`` at each scrape and yields its metrics."""

    def __init__(self, view: Callable[[], MetricsView]) -> None:
        self._view = view

    def collect(self) -> Iterator[Metric]:
        """The metrics of a fresh view."""
        return _families(self._view())

    def describe(self) -> Iterator[Metric]:
        """The metric names, without calling the view (used at registration)."""
        return _families(None)


def registry(view: Callable[[], MetricsView]) -> CollectorRegistry:
    """A registry of its own (not the global one) holding a :class:`ViewCollector`."""
    reg = CollectorRegistry()
    reg.register(ViewCollector(view))
    return reg


def is_loopback(address: str) -> bool:
    """Whether ``address`` is ``localhost`` or a loopback IP (IPv4-mapped included)."""
    if address.lower() == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


class _Server(Protocol):
    def shutdown(self) -> None: ...
    def server_close(self) -> None: ...


class MetricsServer:
    """A running endpoint; :meth:`close` stops it and frees the port."""

    def __init__(
        self,
        address: str,
        port: int,
        registry: CollectorRegistry,
        server: _Server | None = None,
        thread: threading.Thread | None = None,
    ) -> None:
        self.address = address
        self.port = port
        self.registry = registry
        self._server = server
        self._thread = thread

    def close(self) -> None:
        """Stop serving and release the socket; a no-op after the first call.

        With a prometheus_client older than 0.20 (no handle returned) the server cannot be
        stopped: it is a daemon thread that ends with the process.
        """
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def start(
    address: str,
    port: int,
    view: Callable[[], MetricsView],
    *,
    allow_remote: bool = False,
) -> MetricsServer:
    """Serve ``/metrics`` on ``address``:``port`` (0 picks a free port, see ``.port``).

    Raises ValueError for a non-loopback address unless ``allow_remote`` is set, and
    OSError when the socket cannot be bound.
    """
    if not allow_remote and not is_loopback(address):
        raise ValueError(
            f"metrics address {address!r} is not a loopback address: the endpoint listens "
            "on localhost only unless remote access is explicitly allowed"
        )
    reg = registry(view)
    started: object = start_http_server(port, address, registry=reg)
    if isinstance(started, tuple) and len(started) == 2:  # prometheus_client >= 0.20
        server, thread = started
        return MetricsServer(address, int(server.server_port), reg, server, thread)
    return MetricsServer(address, port, reg)  # older versions return None
