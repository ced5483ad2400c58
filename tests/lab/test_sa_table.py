"""The proxies' SA tables kept from the real charon's events (issue 17).

This module runs after every other lab test (``lab_audit``): by then each node's proxy has
lived through SAs terminated and rekeyed, charon and nhrpd restarted and killed, proxies
restarted, and audited its table against a full listing every ``topo.SA_AUDIT`` seconds.
Their logs (appended across restarts) must show each table reaching sync and no audit ever
finding drift; and now, a spoke's registration is accepted from the table, with no listing.
"""

from __future__ import annotations

import json
import re

import pytest

from lab import topology as topo
from lab.netns import Lab
from tests.lab.helpers import nhrp_cache, wait_for

pytestmark = [pytest.mark.lab, pytest.mark.lab_audit, pytest.mark.usefixtures("frrdmvpn_mode")]

TROUBLE = re.compile(r"SA table drift|unreadable .* from charon")


def _proxy_log(lab: Lab, node: str) -> str:
    return lab.run(node, ["cat", "/var/log/frrdmvpn-proxy.log"]).stdout


def _counters(lab: Lab, node: str) -> dict[str, int]:
    text = lab.run(node, ["cat", "/run/frrdmvpn/authorization.json"], check=False).stdout
    counters: dict[str, int] = json.loads(text)["counters"] if text else {}
    return counters


def _registered(lab: Lab) -> set[str]:
    return {e["nbma"] for e in nhrp_cache(lab, "hub") if e["type"] == "dynamic"}


def test_no_audit_ever_found_a_table_that_drifted(lab: Lab) -> None:
    for n in topo.NODES:
        log = _proxy_log(lab, n.name)
        assert "SA table in sync with charon" in log, f"{n.name}'s proxy never reached sync"
        trouble = [line for line in log.splitlines() if TROUBLE.search(line)]
        assert not trouble, f"{n.name}: " + "\n".join(trouble)


def test_a_registration_is_accepted_from_the_table(lab: Lab) -> None:
    spokes = {str(n.nbma.ip) for n in topo.NODES if not n.is_hub}
    wait_for("both spokes registered", lambda: spokes <= _registered(lab), 60)
    before = _counters(lab, "hub")
    lab.vtysh("hub", "clear ip nhrp cache")  # the spokes' next registrations are new bindings
    wait_for("both spokes registered again", lambda: spokes <= _registered(lab), 60)
    after = _counters(lab, "hub")
    accepted = after.get("accepted", 0) - before.get("accepted", 0)
    from_table = after.get("from_sa_table", 0) - before.get("from_sa_table", 0)
    assert accepted >= len(spokes)
    assert from_table >= len(spokes), (before, after)
    # and the table still agrees with charon at the next audit
    wait_for(
        "an audit of the hub's table",
        lambda: _counters(lab, "hub").get("sa_table_audits", 0) > after.get("sa_table_audits", 0),
        3 * topo.SA_AUDIT + 10,
    )
    assert _counters(lab, "hub").get("sa_table_drift", 0) == 0
