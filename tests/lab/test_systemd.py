"""The installed package under real systemd: spoke4 boots like an operator's machine
(systemd-nspawn on a throw-away root, in the lab's network) and comes up from its
/etc/frrdmvpn/frrdmvpn.conf alone, through the package's units, charon-systemd and FRR."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from frrdmvpn.client import Client
from frrdmvpn.lab import topology as topo
from frrdmvpn.lab.container import SystemdNode
from frrdmvpn.lab.netns import Lab
from frrdmvpn.v1 import types_pb2
from tests.lab.helpers import wait_for

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("frrdmvpn_mode")]

S4 = topo.SYSTEMD_NODE
UNITS = ("frrdmvpn-guard.service", "strongswan.service", "frrdmvpn-proxy.service",
         "frr.service", "frrdmvpn.service")  # fmt: skip


@pytest.fixture(scope="module")
def spoke4(lab: Lab) -> Iterator[SystemdNode]:
    if not lab.package:
        pytest.skip("needs the lab to run the installed package (FRRDMVPN_LAB_DEB)")
    if shutil.which("systemd-nspawn") is None:  # scripts/install-deps installs it
        pytest.fail("needs systemd-nspawn (Debian's systemd-container)")
    node = SystemdNode(lab, S4)
    try:
        node.boot()
        yield node
    finally:
        if dest := os.environ.get("FRRDMVPN_LAB_ARTIFACTS"):
            out = Path(dest) / S4.name
            out.mkdir(parents=True, exist_ok=True)
            if node.dir.exists():
                shutil.copy(node.dir / "console.log", out / "console.log")
            try:
                journal = node.run(["journalctl", "-b", "--no-pager", "-o", "short-monotonic"],
                                   check=False).stdout  # fmt: skip
                (out / "journal.txt").write_text(journal)
            except (OSError, RuntimeError) as exc:  # logs are best effort
                (out / "journal.txt").write_text(f"no journal: {exc}\n")
        node.halt()


def _hub_view(lab: Lab) -> tuple[int, object, tuple[int, ...]] | None:
    """spoke4 as the hub sees it: (state, state_since, IKE_SA ids), None when unknown."""
    with Client(f"unix:{lab.api_socket('hub')}") as api:
        peers = [p for p in api.peers(full=True) if p.key.remote_nbma == str(S4.nbma.ip)]
    if not peers:
        return None
    p = peers[0]
    since = (p.state_since.seconds, p.state_since.nanos)
    return p.state, since, tuple(sorted(sa.unique_id for sa in p.crypto.ike_sas))


def _up_at_hub(lab: Lab) -> bool:
    view = _hub_view(lab)
    return view is not None and view[0] == types_pb2.PEER_STATE_UP and bool(view[2])


def _guards(node: SystemdNode) -> tuple[bool, str]:
    table = node.run(["nft", "list", "table", "inet", "frrdmvpn_guard"], check=False)
    blocks = node.run(["ip", "xfrm", "policy", "list", "action", "block"]).stdout
    return table.returncode == 0, blocks


def test_the_node_comes_up_from_its_config_file_with_guards_first(
    lab: Lab, spoke4: SystemdNode
) -> None:
    spoke4.wait_active("frrdmvpn.service", 420)
    for unit in UNITS:
        assert spoke4.systemctl("is-active", unit) == "active", unit
    assert spoke4.show("frrdmvpn.service", "Type") == "notify"
    # The guards were in place before charon, FRR, the proxy and frrdmvpnd started, and
    # frrdmvpnd was ready only after: guards + configuration applied.
    guarded = spoke4.monotonic("frrdmvpn-guard.service", "ActiveEnterTimestampMonotonic")
    assert guarded > 0
    for unit in ("strongswan.service", "frr.service", "frrdmvpn-proxy.service",
                 "frrdmvpn.service"):  # fmt: skip
        started = spoke4.monotonic(unit, "ExecMainStartTimestampMonotonic")
        assert started > guarded, unit
    installed, blocks = _guards(spoke4)
    assert installed
    assert str(S4.nbma.ip) in blocks
    wait_for("spoke4 UP at the hub (SA + registration)", lambda: _up_at_hub(lab), 240)
    with Client(f"unix:{spoke4.path('/run/frrdmvpn/frrdmvpn.sock')}") as api:  # its own API

        def hub_up() -> bool:
            return any(p.state == types_pb2.PEER_STATE_UP for p in api.peers())

        wait_for("the hub UP at spoke4", hub_up, 120)


def test_restart_keeps_the_sas_and_bindings_and_stop_keeps_the_guards(
    lab: Lab, spoke4: SystemdNode
) -> None:
    spoke4.wait_active("frrdmvpn.service", 420)
    wait_for("spoke4 UP at the hub", lambda: _up_at_hub(lab), 240)
    before = _hub_view(lab)
    pid = spoke4.show("frrdmvpn.service", "MainPID")
    spoke4.systemctl("restart", "frrdmvpn.service")
    spoke4.wait_active("frrdmvpn.service", 300)
    assert spoke4.show("frrdmvpn.service", "MainPID") != pid
    time.sleep(10)  # a few supervision steps of the new daemon
    assert _hub_view(lab) == before  # same IKE_SA, never down, so the same binding
    nhrp = lab.vtysh_json("hub", "show ip nhrp cache json")
    assert str(S4.overlay.ip) in str(nhrp)

    spoke4.systemctl("stop", "frrdmvpn.service")
    assert spoke4.systemctl("is-active", "frrdmvpn.service", check=False) == "inactive"
    installed, blocks = _guards(spoke4)
    assert installed
    assert str(S4.nbma.ip) in blocks
    spoke4.systemctl("start", "frrdmvpn.service")
    spoke4.wait_active("frrdmvpn.service", 300)


def test_an_upgrade_restarts_frrdmvpn_and_keeps_the_sas_bindings_and_configuration(
    lab: Lab, spoke4: SystemdNode
) -> None:
    upgrade = os.environ.get("FRRDMVPN_LAB_DEB_NEXT")
    if not upgrade:
        pytest.skip("FRRDMVPN_LAB_DEB_NEXT names no rebuilt higher version")
    spoke4.wait_active("frrdmvpn.service", 420)
    wait_for("spoke4 UP at the hub", lambda: _up_at_hub(lab), 240)
    before = _hub_view(lab)
    conf = spoke4.path("/etc/frrdmvpn/frrdmvpn.conf").read_text()
    units = ("frrdmvpn.service", "frrdmvpn-proxy.service")
    # The unit's own record of each start: a restart always gets a new invocation id.
    invocations = {u: spoke4.show(u, "InvocationID") for u in units}
    assert all(invocations.values()), invocations
    # apt/dpkg as the operator runs it, with systemd up: the postinst restarts the units
    inside = f"/root/{Path(upgrade).name}"  # the container has its own /tmp: copy it over
    shutil.copy(upgrade, spoke4.path(inside))
    done = spoke4.run(["dpkg", "-i", inside], timeout=900)
    # deb-systemd-invoke skips a restart that policy-rc.d refuses and still exits 0
    said = done.stdout + done.stderr
    assert "returned 101" not in said, said
    assert "policy-rc.d" not in said, said
    version = spoke4.run(["dpkg-query", "-W", "-f=${Version}", "frrdmvpn"]).stdout
    assert f"_{version}_" in Path(upgrade).name
    spoke4.wait_active("frrdmvpn.service", 300)
    for unit, invocation in invocations.items():
        assert spoke4.show(unit, "InvocationID") not in ("", invocation), (
            f"{unit} was not restarted by the upgrade:\n{said}"
        )
    time.sleep(10)  # a few supervision steps of the new daemon
    assert _hub_view(lab) == before  # same IKE_SA, never down
    assert spoke4.path("/etc/frrdmvpn/frrdmvpn.conf").read_text() == conf
    installed, blocks = _guards(spoke4)
    assert installed
    assert str(S4.nbma.ip) in blocks
