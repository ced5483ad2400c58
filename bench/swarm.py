"""A hub with N spokes (lab/swarm.py): frrdmvpn against stock strongSwan and FRR (issue 17).

Run as root from the checkout, with the package the nodes run:
``FRRDMVPN_LAB_DEB=build/deb/frrdmvpn_*_all.deb .venv/bin/python bench/swarm.py
[--counts 50,100,155] [--modes frrdmvpn,trap]`` (``FRRDMVPN_LAB_RELEASE=trixie``: Debian 13).
Where the kernel lacks GRE/ESP it boots its own VM (``/var/tmp/frrdmvpn-lab/vm-bench``).

Per mode (``frrdmvpn``: nhrpd's tunnel protection through frrdmvpn; ``trap``: the best
stock setup, charon's wildcard trap and no protection in nhrpd) the lab comes up once; per N
the swarm starts, and the bench reports:

- from the swarm's start (its namespace, charon, connections loaded, the agent's first
  requests: ``start`` says when each phase ended) to all N IKE_SAs at the hub, to all N
  registered (the agent's replies) and to every ``authorize-binding`` answered (nhrpd's log,
  frrdmvpn mode), with the answers' latency as nhrpd logs it (p50/p99) and how many were
  refused;
- CPU (% of one core) of the hub's charon, nhrpd, frrdmvpnd and frrdmvpn-proxy during that
  burst and at rest (a quiet window after it), and their RSS at rest;
- ``show dmvpn`` in the shell end to end (and the shell's start alone: ``--version``; and
  in a shell already running, its second command),
  ``ListPeers`` (all pages), a Watch snapshot;
- the hub's charon stopped and started, and its nhrpd killed and started: from the start
  to all N registered again (and every authorization answered, none refused);
- cleartext GRE seen on the underlay during all of it (frrdmvpn's promise: 0).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.lab.helpers

from cli.api import ShellClient
from cli.session import Session
from frrdmvpn.client import Client
from lab import release as rel
from lab import topology as topo
from lab.kernel import native_capable
from lab.netns import Lab, program_name, wait_for
from lab.swarm import Swarm
from lab.vm import LabVm, VmError, run_dir_for
from tests.lab.helpers import (
    AuthorizeEvents,
    capture_underlay,
    ike_sas,
    nhrp_cache,
    percentile,
)

TICK = os.sysconf("SC_CLK_TCK")
HUB = topo.hub()
LOGS = Path(__file__).resolve().parents[1] / "build" / "bench-swarm"  # the nodes' logs
PROGRAMS = ("charon", "nhrpd", "frrdmvpnd", "frrdmvpn-proxy")


def _hub_processes(lab: Lab) -> dict[int, str]:
    found = {}
    for pid in lab.pids().get(HUB.netns, []):
        prog = program_name(pid, PROGRAMS)
        if prog is not None:
            found[pid] = prog
    return found


def _ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0
    return sum(int(f) for f in fields[11:13])  # utime + stime (vtysh runs are gone: vty)


def _rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class CpuWindow:
    """CPU of the hub's programs between ``__init__`` and :meth:`stop` (% of one core)."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.procs = _hub_processes(lab)
        self.before = {pid: _ticks(pid) for pid in self.procs}
        self.t0 = time.monotonic()

    def stop(self) -> dict[str, float]:
        wall = time.monotonic() - self.t0
        used: dict[str, float] = dict.fromkeys(PROGRAMS, 0.0)
        for pid, prog in self.procs.items():
            used[prog] += _ticks(pid) - self.before[pid]
        return {p: 100 * t / TICK / wall for p, t in used.items()}


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.monotonic()
    value = fn()
    return time.monotonic() - t0, value


def _nhrpd_log(lab: Lab) -> str:
    return lab.run("hub", ["cat", "/var/log/frr/nhrpd.log"]).stdout


def _all_registered_since(swarm: Swarm, wall: float) -> bool:
    status = swarm.status()
    if not status or status["registered"] != status["count"]:
        return False
    since = wall - status["started_wall"]
    return all((s["last_registered"] or -1) >= since for s in status["spokes"])


def _events_done(lab: Lab, since: int, count: int) -> AuthorizeEvents | None:
    events = AuthorizeEvents.parse(_nhrpd_log(lab)[since:])
    return events if events.complete and len(events.sent) >= count else None


def _authorizations(lab: Lab, since: int, count: int, timeout: float) -> dict[str, Any]:
    """Wait until nhrpd's events since ``since`` (log offset) are all answered."""
    found: list[AuthorizeEvents] = []

    def done() -> bool:
        events = _events_done(lab, since, count)
        if events is not None:
            found.append(events)
        return events is not None

    wait_for("every authorize-binding answered", done, timeout)
    latencies = found[-1].latencies()
    return {
        "events": len(latencies),
        "refused": sum(r != "accept" for _, _, r in found[-1].answered),
        "p50_ms": 1000 * percentile(latencies, 50),
        "p99_ms": 1000 * percentile(latencies, 99),
        "last": max(t for t, _, _ in found[-1].answered),
    }


def _api_times(lab: Lab) -> dict[str, float]:
    def shell(*args: str) -> subprocess.CompletedProcess[str]:
        argv = lab.argv("hub", [lab.program("frrdmvpn-shell"), *args])
        return subprocess.run(argv, capture_output=True, text=True, check=True)

    t_start, _ = _timed(lambda: shell("--version"))
    t_shell, done = _timed(lambda: shell("-c", "show dmvpn"))
    # in a shell already running: the shell's own session, here (its first command loads
    # the renderers, as a shell's first command does)
    shell_api = ShellClient(f"unix:{lab.api_admin_socket('hub')}", timeout=60)
    try:
        session = Session(shell_api)
        session.execute("show dmvpn")
        t_session, _ = _timed(lambda: session.execute("show dmvpn"))
    finally:
        shell_api.close()
    with Client(f"unix:{lab.api_admin_socket('hub')}", timeout=60) as api:
        t_list, peers = _timed(api.peers)

        def snapshot() -> int:
            n = 0
            stream = api.watch(("peer",))
            for e in stream:
                if e.WhichOneof("event") == "snapshot_end":
                    stream.cancel()
                    return n
                n += 1
            return n

        t_watch, events = _timed(snapshot)
    return {
        "shell_start_s": t_start,
        "show_dmvpn_s": t_shell,
        "show_dmvpn_in_shell_s": t_session,
        "show_dmvpn_lines": len(done.stdout.splitlines()),
        "list_peers_s": t_list,
        "list_peers": len(peers),
        "watch_snapshot_s": t_watch,
        "watch_events": events,
    }


def _journal_counters(lab: Lab) -> dict[str, int]:
    text = lab.run("hub", ["cat", "/run/frrdmvpn/authorization.json"], check=False).stdout
    counters: dict[str, int] = json.loads(text)["counters"] if text else {}
    return counters


def _burst(lab: Lab, swarm: Swarm, rest: float, out: dict[str, Any]) -> None:
    """The swarm started: to all registered and authorized; CPU during it and at rest."""
    count, protect = len(swarm.spokes), lab.mode == "frrdmvpn"
    since = len(_nhrpd_log(lab))
    before = _journal_counters(lab) if protect else {}
    cpu = CpuWindow(lab)
    t0, wall0 = time.monotonic(), time.time()
    out["start"] = swarm.start()
    nbmas = {str(s.nbma) for s in swarm.spokes}

    def established() -> bool:
        ikes = {i["remote-host"] for i in ike_sas(lab, "hub") if i["state"] == "ESTABLISHED"}
        return nbmas <= ikes

    wait_for("every IKE_SA at the hub", established, 900)
    out["all_ike_s"] = time.monotonic() - t0
    wait_for("the swarm registered", lambda: swarm.registered() == count, 900)
    out["all_registered_s"] = time.monotonic() - t0
    spokes = swarm.status()["spokes"]
    out["first_request_s"] = max(s["first_sent"] for s in spokes)  # from the agent's start
    out["requests_max"] = max(s["sent"] for s in spokes)  # per spoke, until registered
    out["requests_mean"] = sum(s["sent"] for s in spokes) / count
    if protect:
        auth = _authorizations(lab, since, count, 120)
        out["all_authorized_s"] = auth.pop("last") - wall0
        after = _journal_counters(lab)
        for k in ("from_sa_table", "from_listing"):
            auth[k] = after.get(k, 0) - before.get(k, 0)
        out["burst_authorize"] = auth
    out["burst_cpu"] = cpu.stop()
    time.sleep(rest / 3)
    cpu = CpuWindow(lab)
    time.sleep(rest)
    out["rest_cpu"] = cpu.stop()
    out["rss_mib"] = {
        prog: sum(_rss_mib(p) for p, n in _hub_processes(lab).items() if n == prog)
        for prog in PROGRAMS
    }
    if protect:
        out["api"] = _api_times(lab)


def _charon_restart(lab: Lab, swarm: Swarm, out: dict[str, Any]) -> None:
    """The hub's charon stopped, then started: to every spoke registered again."""
    since = len(_nhrpd_log(lab))
    lab.stop_charon("hub")
    wall, t0 = time.time(), time.monotonic()
    lab.start_charon("hub")
    wait_for("the swarm back", lambda: _all_registered_since(swarm, wall), 900)
    out["charon_restart_registered_s"] = time.monotonic() - t0
    ikes = {i["remote-host"] for i in ike_sas(lab, "hub") if i["state"] == "ESTABLISHED"}
    out["charon_restart_ike_missing"] = len({str(s.nbma) for s in swarm.spokes} - ikes)
    if lab.mode == "frrdmvpn":
        auth = _authorizations(lab, since, len(swarm.spokes), 120)
        out["charon_restart_authorized_s"] = auth.pop("last") - wall
        out["charon_restart_authorize"] = auth


def _nhrpd_restart(lab: Lab, swarm: Swarm, out: dict[str, Any]) -> None:
    """The hub's nhrpd killed, then started: to every spoke in its cache again."""
    nbmas = {str(s.nbma) for s in swarm.spokes}
    since = len(_nhrpd_log(lab))
    lab.kill("hub", "/usr/lib/frr/nhrpd")
    wall, t0 = time.time(), time.monotonic()
    lab.start_frr("hub", ["nhrpd"])

    def cached() -> bool:
        dyn = {e["nbma"] for e in nhrp_cache(lab, "hub") if e["type"] == "dynamic"}
        return nbmas <= dyn

    wait_for("the swarm in the restarted nhrpd's cache", cached, 900)
    out["nhrpd_restart_registered_s"] = time.monotonic() - t0
    if lab.mode == "frrdmvpn":
        auth = _authorizations(lab, since, len(swarm.spokes), 120)
        out["nhrpd_restart_authorized_s"] = auth.pop("last") - wall
        out["nhrpd_restart_authorize"] = auth


def measure(lab: Lab, count: int, rest: float, logs: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"N": count}
    swarm = Swarm(lab)
    swarm.admit(count)
    time.sleep(15)  # what the hub's apply set going (the guards, the daemons' audits) ends
    with capture_underlay(Path(lab.state_dir)) as cap:
        try:
            _burst(lab, swarm, rest, out)
            _charon_restart(lab, swarm, out)
            _nhrpd_restart(lab, swarm, out)
        finally:
            swarm.collect_logs(logs / f"{lab.mode}-{count}")
            swarm.down()
        out["cleartext_gre"] = cap.count("ip proto 47")
    return out


def _converged(lab: Lab) -> bool:
    spokes = {str(n.nbma.ip) for n in topo.NODES if not n.is_hub}
    return spokes <= {e["nbma"] for e in nhrp_cache(lab, "hub") if e["type"] == "dynamic"}


def _print(mode: str, results: list[dict[str, Any]]) -> None:
    print(f"\n#### {mode}\n")
    print("| N | " + " | ".join(str(r["N"]) for r in results) + " |")
    print("|---|" + "---:|" * len(results))
    rows: dict[str, list[str]] = {}
    for r in results:
        for key, value in r.items():
            if key == "N":
                continue
            if isinstance(value, dict):
                for sub, v in value.items():
                    rows.setdefault(f"{key}.{sub}", []).append(_fmt(v))
            else:
                rows.setdefault(key, []).append(_fmt(value))
    for key, cells in rows.items():
        print(f"| {key} | " + " | ".join(cells) + " |")


def _fmt(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def measure_mode(mode: str, counts: list[int], rest: float, logs: Path) -> None:
    lab = Lab(Path(f"/var/tmp/frrdmvpn-lab/bench-swarm-{mode}"), mode=mode)
    lab.up()
    try:
        wait_for("the lab to converge", lambda: _converged(lab), 300)
        results = []
        for n in counts:
            print(f"{mode}: {n} spokes", flush=True)
            results.append(measure(lab, n, rest, logs))
            print(results[-1], flush=True)
            wait_for("the lab back to its own spokes", lambda: _converged(lab), 300)
        _print(mode, results)
    finally:
        lab.collect_logs(logs / f"{mode}-lab")
        lab.down()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--counts", default="50,100,155", help="spokes per run, comma-separated")
    parser.add_argument("--modes", default="frrdmvpn,trap", help="frrdmvpn and/or trap")
    parser.add_argument("--rest", type=float, default=30.0, help="seconds of the quiet window")
    parser.add_argument("--logs", type=Path, default=LOGS, help="the nodes' logs land here")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    modes = args.modes.split(",")
    counts = [int(c) for c in args.counts.split(",")]
    if args.inside or native_capable():
        for mode in modes:
            measure_mode(mode, counts, args.rest, args.logs)
        return 0
    release = rel.selected()
    vm = LabVm(run_dir_for(Path("/var/tmp/frrdmvpn-lab/vm-bench"), release), release)
    try:
        print(f"vm: booted in {vm.start():.1f} s", flush=True)
        deb = os.environ.get("FRRDMVPN_LAB_DEB", "")
        env = {"FRRDMVPN_LAB_DEB": os.path.abspath(deb) if deb else ""}
        argv = [vm.python, os.path.abspath(__file__), "--inside", "--counts", args.counts]
        guest_logs = vm.run_dir / "bench-swarm"  # the guest writes the checkout in a tmpfs
        argv += ["--modes", args.modes, "--rest", str(args.rest), "--logs", str(guest_logs)]
        try:
            rc = vm.run(argv, cwd=os.getcwd(), env=env)
        except VmError:
            print(vm.tail(60), file=sys.stderr)
            raise
        if guest_logs.exists():
            shutil.copytree(guest_logs, args.logs, dirs_exist_ok=True)
        return rc
    finally:
        vm.stop()


if __name__ == "__main__":
    sys.exit(main())
