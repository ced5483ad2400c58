"""The installed package under real systemd: spoke4 boots like an operator's machine
(systemd-nspawn on a throw-away root, in the lab's network) and comes up from its
/etc/frrdmvpn/frrdmvpn.conf alone, through the package's units, charon-systemd and FRR."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from frrdmvpn.adapters.vtysh import extract_json
from frrdmvpn.client import Client
from frrdmvpn.v1 import types_pb2
from lab import topology as topo
from lab.container import SystemdNode
from lab.netns import Lab
from tests.lab.helpers import capture_underlay, record, wait_for

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("frrdmvpn_mode")]

S4 = topo.SYSTEMD_NODE
HUB = topo.node("hub")
UNITS = (
    "frrdmvpn-guard.service",
    "strongswan.service",
    "frrdmvpn-proxy.service",
    "frr.service",
    "frrdmvpn.service",
)


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
                journal = node.run(
                    ["journalctl", "-b", "--no-pager", "-o", "short-monotonic"], check=False
                ).stdout
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
    for unit in ("strongswan.service", "frr.service", "frrdmvpn-proxy.service", "frrdmvpn.service"):
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


def _nhrpd_pid(node: SystemdNode) -> str:
    try:
        return node.path("/run/frr/nhrpd.pid").read_text().strip()
    except OSError:  # `frrinit.sh stop` removes it
        return ""


def _registered_with_hub(node: SystemdNode) -> bool:
    """spoke4's nhrpd is registered with the hub through a protected SA, and the tunnel
    carries traffic to the hub (False while nhrpd is away)."""

    def show(command: str) -> Any:
        done = node.run(["vtysh", "-c", command], check=False)
        return extract_json(done.stdout) if done.returncode == 0 else None

    nhs, dmvpn = show("show ip nhrp nhs json"), show("show dmvpn json")
    if nhs is None or dmvpn is None:
        return False
    hub = (str(HUB.nbma.ip), str(HUB.overlay.ip))
    sas = {e["dst"]: int(e["sas"]) for e in dmvpn}
    if [(e["nbma"], e["protocol"]) for e in nhs["table"]] != [hub] or sas.get(hub[0], 0) < 1:
        return False
    ping = ["ping", "-n", "-q", "-c", "1", "-W", "1", "-I", str(S4.overlay.ip), str(HUB.overlay.ip)]
    return node.run(ping, check=False).returncode == 0


def _restarts_logged(node: SystemdNode) -> int:
    journal = node.run(
        ["journalctl", "-b", "--no-pager", "-o", "cat", "-u", "frrdmvpn.service"], check=False
    ).stdout
    return journal.count("restarted (pid")


def _comes_back_configured(
    lab: Lab, node: SystemdNode, tmp_path: Path, fault: Callable[[], None]
) -> float:
    """Seconds from ``fault`` until spoke4 is registered with the hub again; nothing in clear
    meanwhile, and frrdmvpnd logged the restart it configured again."""
    node.wait_active("frrdmvpn.service", 420)
    wait_for("spoke4 registered with the hub", lambda: _registered_with_hub(node), 240)
    old, logged = _nhrpd_pid(node), _restarts_logged(node)
    with capture_underlay(tmp_path) as cap:
        t0 = time.monotonic()
        fault()
        wait_for("a new nhrpd in spoke4", lambda: _nhrpd_pid(node) not in ("", old), 240)
        wait_for("spoke4 registered with the hub again", lambda: _registered_with_hub(node), 240)
        took = time.monotonic() - t0
    assert cap.count("ip proto 47") == 0
    assert _restarts_logged(node) > logged
    wait_for("spoke4 UP at the hub", lambda: _up_at_hub(lab), 120)
    return took


def test_watchfrr_restarts_a_killed_nhrpd_and_frrdmvpnd_configures_it(
    lab: Lab, spoke4: SystemdNode, tmp_path: Path
) -> None:
    def crash() -> None:
        spoke4.run(["sh", "-c", "kill -9 $(cat /run/frr/nhrpd.pid)"])

    record(
        "systemd_nhrpd_kill_time_to_registered_s",
        _comes_back_configured(lab, spoke4, tmp_path, crash),
    )


def test_systemctl_restart_frr_comes_back_configured(
    lab: Lab, spoke4: SystemdNode, tmp_path: Path
) -> None:
    def restart() -> None:  # FRR's own stop may take its 90 s under emulation
        spoke4.run(["systemctl", "restart", "frr.service"], timeout=300)

    record(
        "systemd_frr_restart_time_to_registered_s",
        _comes_back_configured(lab, spoke4, tmp_path, restart),
    )
    assert spoke4.systemctl("is-active", "frr.service") == "active"


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


#: Each unit's capability bounding set (the kernel's numbers: CHOWN 0, NET_ADMIN 12,
#: NET_RAW 13) and the address families all of them may use.
CAPABILITIES = {
    "frrdmvpn-guard.service": {"cap_net_admin": 12},
    "frrdmvpn-proxy.service": {"cap_chown": 0, "cap_net_admin": 12, "cap_net_raw": 13},
    "frrdmvpn.service": {"cap_chown": 0, "cap_kill": 5, "cap_net_admin": 12, "cap_net_raw": 13},
}
FAMILIES = {"AF_UNIX", "AF_NETLINK", "AF_INET", "AF_INET6"}
#: What a boot starts, in its order (a reboot's equivalent).
RESTART = (
    "frrdmvpn-guard.service",
    "frrdmvpn-proxy.service",
    "strongswan.service",
    "frr.service",
    "frrdmvpn.service",
)
#: How long ``systemctl restart`` of :data:`RESTART` may take in spoke4: on the lab's loaded
#: VM it took over 120 s (each unit starts Python once or twice, 10-15 s each).
RESTART_TIMEOUT = 420


def _status(node: SystemdNode, pid: str) -> dict[str, str]:
    """``/proc/PID/status`` of a process in the node."""
    text = node.run(["cat", f"/proc/{pid}/status"]).stdout
    return {k: v.strip() for k, _, v in (line.partition(":") for line in text.splitlines())}


def test_the_units_run_sandboxed_with_only_their_capabilities_and_still_work(
    lab: Lab, spoke4: SystemdNode
) -> None:
    spoke4.wait_active("frrdmvpn.service", 420)
    for unit, caps in CAPABILITIES.items():
        for prop, value in (
            ("NoNewPrivileges", "yes"),
            ("ProtectSystem", "strict"),
            ("ProtectHome", "yes"),
            ("PrivateTmp", "yes"),
            ("PrivateDevices", "yes"),
            ("ProtectKernelModules", "yes"),
            ("ProtectKernelTunables", "yes"),
            ("LockPersonality", "yes"),
            ("RestrictRealtime", "yes"),
            ("RestrictSUIDSGID", "yes"),
            ("MemoryDenyWriteExecute", "yes"),
            ("UMask", "0077"),
        ):
            assert spoke4.show(unit, prop) == value, (unit, prop)
        assert set(spoke4.show(unit, "CapabilityBoundingSet").split()) == set(caps), unit
        assert set(spoke4.show(unit, "RestrictAddressFamilies").split()) == FAMILIES, unit
        assert spoke4.show(unit, "SystemCallArchitectures") == "native", unit
    # the kernel's view of the running daemons: no new privileges, a seccomp filter, and a
    # bounding set of exactly their capabilities
    for unit in ("frrdmvpn-proxy.service", "frrdmvpn.service"):
        status = _status(spoke4, spoke4.show(unit, "MainPID"))
        assert (status["NoNewPrivs"], status["Seccomp"]) == ("1", "2"), unit
        assert int(status["CapBnd"], 16) == sum(1 << n for n in CAPABILITIES[unit].values())
    assert "frrvty" in spoke4.show("frrdmvpn.service", "SupplementaryGroups").split()
    # the sockets that must be group-accessible are, whatever the units' umask: nhrpd's,
    # the operators' and the administrators' (both groups made by the package)
    for path, group in (
        ("/run/charon.vici", "frr"),
        ("/run/frrdmvpn/nhrp-events.sock", "frr"),
        ("/run/frrdmvpn/frrdmvpn.sock", "frrdmvpn"),
        ("/run/frrdmvpn/frrdmvpn-admin.sock", "frrdmvpn-admin"),
    ):
        mode = spoke4.run(["stat", "-c", "%a %G", path]).stdout.split()
        assert mode == ["660", group], path
    # and everything works in the sandbox: the tunnel is up at the hub and from spoke4,
    # through vtysh, charon, the proxy and the API
    wait_for("spoke4 UP at the hub", lambda: _up_at_hub(lab), 240)
    with Client(f"unix:{spoke4.path('/run/frrdmvpn/frrdmvpn.sock')}") as api:

        def hub_up() -> bool:
            return any(p.state == types_pb2.PEER_STATE_UP for p in api.peers())

        wait_for("the hub UP at spoke4", hub_up, 120)


def _installs(node: SystemdNode) -> int:
    """How often frrdmvpn-guard.service installed the guards in this boot."""
    out = node.run(
        ["journalctl", "-b", "-u", "frrdmvpn-guard.service", "-o", "cat", "--no-pager"]
    ).stdout
    return out.count("frrdmvpnd: guard installed for")


def test_an_nftables_restart_or_reload_leaves_the_guards_in_place(
    lab: Lab, spoke4: SystemdNode
) -> None:
    spoke4.wait_active("frrdmvpn.service", 420)
    conf = spoke4.path("/etc/nftables.conf")
    if not conf.exists() or "flush ruleset" not in conf.read_text():
        # as Debian ships it: the file begins with "flush ruleset"
        conf.write_text(
            "#!/usr/sbin/nft -f\n\nflush ruleset\n\ntable inet filter {\n"
            "\tchain input {\n\t\ttype filter hook input priority filter;\n\t}\n}\n"
        )
    assert "\nflush ruleset\n" in conf.read_text()
    # frrdmvpnd puts back missing guards too; stopped, only the units' dependencies act
    spoke4.systemctl("stop", "frrdmvpn.service")
    try:
        if spoke4.systemctl("is-active", "nftables.service", check=False) != "active":
            spoke4.systemctl("start", "nftables.service")  # a start alone flushes, too
            spoke4.systemctl("restart", "frrdmvpn-guard.service")
        assert spoke4.run(["frrdmvpnd", "guard", "check"]).returncode == 0
        invocation = spoke4.show("frrdmvpn-guard.service", "InvocationID")

        spoke4.systemctl("restart", "nftables.service")
        wait_for(
            "frrdmvpn-guard restarted with nftables",
            lambda: (
                spoke4.show("frrdmvpn-guard.service", "InvocationID") not in ("", invocation)
                and spoke4.systemctl("is-active", "frrdmvpn-guard.service", check=False) == "active"
            ),
            120,
        )
        installed, blocks = _guards(spoke4)
        assert installed
        assert str(S4.nbma.ip) in blocks  # nft never touched the XFRM layer
        assert spoke4.run(["frrdmvpnd", "guard", "check"]).returncode == 0

        done = _installs(spoke4)
        spoke4.systemctl("reload", "nftables.service")
        wait_for("frrdmvpn-guard reloaded with nftables", lambda: _installs(spoke4) > done, 120)
        installed, blocks = _guards(spoke4)
        assert installed
        assert str(S4.nbma.ip) in blocks
        assert spoke4.run(["frrdmvpnd", "guard", "check"]).returncode == 0
    finally:
        spoke4.systemctl("start", "frrdmvpn.service")
        spoke4.wait_active("frrdmvpn.service", 300)
    wait_for("spoke4 UP at the hub", lambda: _up_at_hub(lab), 240)


def test_a_broken_configuration_stops_only_dmvpn_and_keeps_charon_and_frr(
    lab: Lab, spoke4: SystemdNode
) -> None:
    spoke4.wait_active("frrdmvpn.service", 420)
    path = spoke4.path("/etc/frrdmvpn/frrdmvpn.conf")
    good = path.read_text()
    path.write_text(good + "no such command\n")  # an operator's typo
    try:
        # what a boot does; systemctl returns once every job has ended (minutes on the
        # lab's loaded VM: each of the five units starts Python at least once)
        spoke4.systemctl("restart", *RESTART, check=False, timeout=RESTART_TIMEOUT)
        states = {u: spoke4.systemctl("is-active", u, check=False) for u in RESTART}
        assert states == {
            "frrdmvpn-guard.service": "failed",
            "frrdmvpn-proxy.service": "active",
            "strongswan.service": "active",
            "frr.service": "active",
            "frrdmvpn.service": "failed",
        }
        # failed, not restarting: with Restart=on-failure systemd restarted frrdmvpn.service
        # (and frrdmvpn-guard.service with it) 2 s after each failed ExecCondition, for ever
        assert spoke4.show("frrdmvpn.service", "NRestarts") == "0"
        why = spoke4.run(
            ["journalctl", "-b", "-u", "frrdmvpn.service", "-o", "cat", "--no-pager", "-n", "40"]
        ).stdout
        assert "/etc/frrdmvpn/frrdmvpn.conf is not valid:" in why
        # charon stayed where it was, and swanctl reaches it through the proxy
        assert spoke4.path("/etc/strongswan.d/frrdmvpn.conf").exists()
        spoke4.run(["swanctl", "--list-sas"])
        # DMVPN stays fail-closed: the guards are still there
        installed, blocks = _guards(spoke4)
        assert installed
        assert str(S4.nbma.ip) in blocks
        # and it stayed failed meanwhile (well past RestartSec=2)
        assert spoke4.systemctl("is-active", "frrdmvpn.service", check=False) == "failed"
        assert spoke4.show("frrdmvpn.service", "NRestarts") == "0"
    finally:
        path.write_text(good)
        spoke4.systemctl("reset-failed")
        spoke4.systemctl("restart", *RESTART, timeout=RESTART_TIMEOUT)
        spoke4.wait_active("frrdmvpn.service", 300)
    wait_for("spoke4 UP at the hub again", lambda: _up_at_hub(lab), 240)
