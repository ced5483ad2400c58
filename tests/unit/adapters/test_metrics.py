"""The Prometheus endpoint: a real HTTP scrape on loopback, and the loopback-only rule."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator

import prometheus_client
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from frrdmvpn.adapters import metrics
from frrdmvpn.adapters.metrics import MetricsView

pytestmark = pytest.mark.unit

FIRST = MetricsView(
    ready=False,
    peers_by_state={"up": 2, "down": 1},
    sas=2,
    guard_dropped={"in": (5, 420)},
    authorization={"accepted": 3, "denied": 1},
    config_revision=7,
    applies_failed=0,
)
SECOND = MetricsView(
    ready=True,
    peers_by_state={"up": 3},
    sas=4,
    guard_dropped={"in": (6, 500), "out": (1, 84)},
    authorization={"accepted": 4, "denied": 1, "weak_accepted": 2},
    config_revision=8,
    applies_failed=1,
)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Sample name and sorted labels -> value, parsed from the text exposition."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scrape(server: metrics.MetricsServer) -> str:
    url = f"http://127.0.0.1:{server.port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.status == 200
        return str(response.read().decode())


@pytest.fixture
def views() -> list[MetricsView]:
    return [FIRST, SECOND]


@pytest.fixture
def server(views: list[MetricsView]) -> Iterator[metrics.MetricsServer]:
    with metrics.start("127.0.0.1", 0, lambda: views.pop(0)) as running:
        yield running


def test_scrapes_show_the_current_view(server: metrics.MetricsServer) -> None:
    assert server.port != 0
    first = samples(scrape(server))
    assert first[("frrdmvpn_ready", ())] == 0
    assert first[("frrdmvpn_peers", (("state", "down"),))] == 1
    assert first[("frrdmvpn_peers", (("state", "up"),))] == 2
    assert first[("frrdmvpn_ike_sas", ())] == 2
    assert first[("frrdmvpn_guard_dropped_packets_total", (("direction", "in"),))] == 5
    assert first[("frrdmvpn_guard_dropped_bytes_total", (("direction", "in"),))] == 420
    assert first[("frrdmvpn_guard_dropped_packets_total", (("direction", "out"),))] == 0
    assert first[("frrdmvpn_authorization_decisions_total", (("verdict", "accepted"),))] == 3
    assert first[("frrdmvpn_authorization_decisions_total", (("verdict", "weak_accepted"),))] == 0
    assert first[("frrdmvpn_config_revision", ())] == 7
    assert first[("frrdmvpn_config_apply_failures_total", ())] == 0

    second = samples(scrape(server))
    assert second[("frrdmvpn_ready", ())] == 1
    assert ("frrdmvpn_peers", (("state", "down"),)) not in second
    assert second[("frrdmvpn_peers", (("state", "up"),))] == 3
    assert second[("frrdmvpn_ike_sas", ())] == 4
    assert second[("frrdmvpn_guard_dropped_packets_total", (("direction", "out"),))] == 1
    assert second[("frrdmvpn_guard_dropped_bytes_total", (("direction", "out"),))] == 84
    assert second[("frrdmvpn_authorization_decisions_total", (("verdict", "weak_accepted"),))] == 2
    assert second[("frrdmvpn_config_revision", ())] == 8
    assert second[("frrdmvpn_config_apply_failures_total", ())] == 1


def test_exposition_types_and_help(server: metrics.MetricsServer) -> None:
    text = scrape(server)
    assert "# TYPE frrdmvpn_ready gauge" in text
    assert "# TYPE frrdmvpn_guard_dropped_packets_total counter" in text
    assert "# HELP frrdmvpn_ike_sas " in text
    assert 'frrdmvpn_peers{state="up"} 2.0' in text
    assert "frrdmvpn_config_apply_failures_total 0.0" in text


def test_close_frees_the_port() -> None:
    running = metrics.start("127.0.0.1", 0, lambda: FIRST)
    port = running.port
    running.close()
    running.close()  # idempotent
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))


def test_view_is_not_called_at_registration() -> None:
    calls: list[int] = []

    def view() -> MetricsView:
        calls.append(1)
        return SECOND

    reg = metrics.registry(view)
    assert calls == []
    text = generate_latest(reg).decode()
    assert calls == [1]
    assert samples(text)[("frrdmvpn_ike_sas", ())] == 4
    assert "frrdmvpn_ready" not in generate_latest(prometheus_client.REGISTRY).decode()


@pytest.mark.parametrize(
    "address", ["0.0.0.0", "::", "", "192.0.2.1", "example.org", "2001:db8::1"]
)
def test_non_loopback_is_refused(address: str) -> None:
    with pytest.raises(ValueError, match="not a loopback address"):
        metrics.start(address, 0, lambda: FIRST)


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("0.0.0.0", False),
        ("::", False),
        ("::ffff:192.0.2.1", False),
        ("10.0.0.1", False),
        ("", False),
    ],
)
def test_is_loopback(address: str, expected: bool) -> None:
    assert metrics.is_loopback(address) is expected


def test_allow_remote_binds_any_address() -> None:
    with metrics.start("0.0.0.0", 0, lambda: SECOND, allow_remote=True) as running:
        assert samples(scrape(running))[("frrdmvpn_ready", ())] == 1


def test_old_prometheus_client_returning_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "start_http_server", lambda *_a, **_k: None)
    running = metrics.start("127.0.0.1", 9999, lambda: FIRST)
    assert running.port == 9999
    running.close()  # nothing to stop, and no error
