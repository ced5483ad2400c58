"""The spoke swarm (:mod:`lab.swarm`) against the real hub: many spokes at once (issue 17).

Twenty spokes, each with its own IKE_SA and CHILD_SA from the swarm's charon, register at
once through them; the hub's real charon, proxy, nhrpd and frrdmvpnd serve them all. This
module runs after the other lab tests and before the audits (``lab_late``: the kernel log
and the SA tables' audits then hold the swarm's load too), with the swarm taken down again
at its end.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab import topology as topo
from lab.netns import Lab
from lab.swarm import Swarm
from tests.lab.helpers import (
    AuthorizeEvents,
    capture_underlay,
    ike_sas,
    nhrp_cache,
    percentile,
    record,
    wait_for,
)

pytestmark = [pytest.mark.lab, pytest.mark.lab_late, pytest.mark.usefixtures("frrdmvpn_mode")]

COUNT = 20
HUB = topo.hub()


def _counters(lab: Lab) -> dict[str, int]:
    text = lab.run("hub", ["cat", "/run/frrdmvpn/authorization.json"], check=False).stdout
    counters: dict[str, int] = json.loads(text)["counters"] if text else {}
    return counters


def _nhrpd_log(lab: Lab) -> str:
    return lab.run("hub", ["cat", "/var/log/frr/nhrpd.log"]).stdout


def _bound(lab: Lab) -> set[str]:
    return {e["nbma"] for e in nhrp_cache(lab, "hub") if e["type"] == "dynamic"}


def _supervised(lab: Lab) -> dict[str, dict[str, Any]]:
    status = lab.node_dir(HUB) / "run" / "frrdmvpn" / "peers.json"
    return {p["remote"]: p for p in json.loads(status.read_text())}


@pytest.fixture(scope="module")
def swarm(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Swarm, Any]]:
    s = Swarm(lab)
    before = _counters(lab), len(_nhrpd_log(lab))
    with capture_underlay(tmp_path_factory.mktemp("swarm")) as cap:
        try:
            s.admit(COUNT)
            t0 = time.monotonic()
            phases = s.start()
            record(f"swarm{COUNT}_connections_loaded_s", phases["loaded"])
            wait_for(f"all {COUNT} spokes registered", lambda: s.registered() == COUNT, 240)
            record(f"swarm{COUNT}_all_registered_s", time.monotonic() - t0)
            # nhrpd replies to a registration before its binding is authorized
            nbmas = {str(sp.nbma) for sp in s.spokes}
            wait_for(f"all {COUNT} spokes bound at the hub", lambda: nbmas <= _bound(lab), 60)
            wait_for(
                "every authorization answered",
                lambda: AuthorizeEvents.parse(_nhrpd_log(lab)[before[1] :]).complete,
                30,
            )
            yield s, (before, cap)
        finally:
            if dest := os.environ.get("FRRDMVPN_LAB_ARTIFACTS"):
                s.collect_logs(Path(dest) / "swarm")
            s.down()


def test_every_spoke_registers_through_its_own_sa(lab: Lab, swarm: tuple[Swarm, Any]) -> None:
    s, ((before, _), cap) = swarm
    nbmas = {str(sp.nbma): str(sp.overlay) for sp in s.spokes}
    ikes = {ike["remote-host"] for ike in ike_sas(lab, "hub") if ike["state"] == "ESTABLISHED"}
    assert set(nbmas) <= ikes, sorted(set(nbmas) - ikes)
    cache = {
        e["nbma"]: e["protocol"]
        for e in nhrp_cache(lab, "hub")
        if e["type"] == "dynamic" and e["nbma"] in nbmas
    }
    assert cache == nbmas
    after = _counters(lab)
    accepted = after.get("accepted", 0) - before.get("accepted", 0)
    assert accepted >= COUNT, (before, after)
    assert after.get("denied", 0) == before.get("denied", 0), (before, after)
    assert cap.count("ip proto 47") == 0, "cleartext GRE on the underlay"


def test_every_authorization_is_answered_during_the_burst(
    lab: Lab, swarm: tuple[Swarm, Any]
) -> None:
    """As nhrpd sees it: one answer per event, each an accept (no timeout, no denial)."""
    _, ((_, since), _) = swarm
    events = AuthorizeEvents.parse(_nhrpd_log(lab)[since:])
    assert events.complete, (len(events.sent), len(events.answered))
    assert len(events.sent) >= COUNT
    assert {r for _, _, r in events.answered} == {"accept"}
    latencies = events.latencies()
    record(f"swarm{COUNT}_authorize_p50_ms", 1000 * percentile(latencies, 50))
    record(f"swarm{COUNT}_authorize_p99_ms", 1000 * percentile(latencies, 99))


def test_the_hubs_supervisor_sees_every_spoke_up(lab: Lab, swarm: tuple[Swarm, Any]) -> None:
    s, _ = swarm

    def all_up() -> bool:
        peers = _supervised(lab)
        return all(peers.get(str(sp.nbma), {}).get("state") == "UP" for sp in s.spokes)

    wait_for("the hub's supervisor to see every spoke UP", all_up, 60)


def test_traffic_from_any_spoke_reaches_the_hub_and_back(
    lab: Lab, swarm: tuple[Swarm, Any]
) -> None:
    s, _ = swarm
    for index in (0, COUNT // 2, COUNT - 1):
        assert s.ping(index, str(HUB.overlay.ip)), f"spoke {index}"


def test_the_hubs_table_stays_in_sync_with_every_spoke(lab: Lab, swarm: tuple[Swarm, Any]) -> None:
    start = _counters(lab).get("sa_table_audits", 0)
    wait_for(
        "an audit of the hub's table with the swarm up",
        lambda: _counters(lab).get("sa_table_audits", 0) > start,
        3 * topo.SA_AUDIT + 20,
    )
    assert _counters(lab).get("sa_table_drift", 0) == 0
    log = lab.run("hub", ["cat", "/var/log/frrdmvpn-proxy.log"]).stdout
    assert "SA table drift" not in log
