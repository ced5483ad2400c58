"""A swarm of spokes against the lab's hub: real IKE_SAs, real NHRP registrations (issue 17).

One namespace (``topo.SWARM``) on the underlay bridge holds every spoke's NBMA address and
one charon with a connection per spoke (its own IKE_SA and transport-mode GRE CHILD_SA to
the hub, the lab's group key, the spoke's address as its IKE identity). No FRR runs there:
:mod:`lab.swarm_agent` sends each spoke's NHRP Registration Requests from its own address
(through its CHILD_SA: an xfrm policy applies to raw sockets too) and reads the hub's
replies, so the hub's real charon, proxy, nhrpd and frrdmvpnd serve N spokes. A spoke's GRE
never leaves in clear: the namespace drops GRE that no IPsec policy covers.

Addresses stay in the documentation ranges: NBMA 198.51.100.100 and up, tunnel addresses
192.0.2.100 and up, hence at most :data:`MAX_SPOKES` spokes (nhrpd takes IPv4 NBMA only).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab import topology as topo
from lab.netns import Lab, LabError, wait_for

FIRST = 100  # the first spoke's last octet, in the underlay and in the tunnel network
MAX_SPOKES = 155  # .100 ... .254 of both /24s
STATUS = "/run/swarm.json"  # the agent's report, inside the swarm's namespace
CHARON_VICI = "/var/run/charon.vici"  # the swarm's charon, at strongSwan's default place
#: The agent re-registers a spoke this long before its registration would expire.
REREGISTER = topo.NHRP_HOLDTIME / 3
CHECKOUT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Spoke:
    """One spoke of the swarm."""

    index: int
    nbma: ipaddress.IPv4Address
    overlay: ipaddress.IPv4Address


def spokes(count: int) -> tuple[Spoke, ...]:
    """The first ``count`` spokes; ValueError beyond what the documentation ranges hold."""
    if not 1 <= count <= MAX_SPOKES:
        raise ValueError(f"a swarm has 1 to {MAX_SPOKES} spokes, not {count}")
    underlay = ipaddress.IPv4Address(int(topo.UNDERLAY.network_address) + FIRST)
    overlay = ipaddress.IPv4Address(int(topo.OVERLAY.network_address) + FIRST)
    return tuple(Spoke(i, underlay + i, overlay + i) for i in range(count))


def swanctl_conf(swarm: tuple[Spoke, ...]) -> str:
    """The swarm charon's configuration: per spoke one connection to the hub, trapped (the
    spoke's first GRE packet starts it) and trapped again when the hub goes away."""
    hub = topo.hub().nbma.ip
    blocks = [
        f"""    s{s.index} {{
        version = 2
        local_addrs = {s.nbma}
        remote_addrs = {hub}
        proposals = {topo.IKE_PROPOSALS}
        dpd_delay = 10s
        mobike = no
        local {{
            auth = psk
            id = {s.nbma}
        }}
        remote {{
            auth = psk
        }}
        children {{
            gre {{
                mode = transport
                local_ts = dynamic[gre]
                remote_ts = dynamic[gre]
                esp_proposals = {topo.ESP_PROPOSALS}
                start_action = trap
                dpd_action = trap
                close_action = trap
            }}
        }}
    }}
"""
        for s in swarm
    ]
    secrets = f'secrets {{\n    ike-swarm {{\n        secret = "{topo.PSK}"\n    }}\n}}\n'
    return "connections {\n" + "".join(blocks) + "}\n" + secrets


def namespace_commands(swarm: tuple[Spoke, ...]) -> list[str]:
    """``ip -batch`` lines adding the spokes' addresses and a keyed GRE link that takes the
    hub's GRE (else the kernel answers each packet with an ICMP error)."""
    return [
        *(f"addr add {s.nbma}/{topo.UNDERLAY.prefixlen} dev eth0" for s in swarm),
        f"link add swarm0 type gre key {topo.GRE_KEY} ttl 64",
        "link set swarm0 up",
    ]


#: GRE leaves the swarm only through an IPsec policy (as frrdmvpn's guards ensure on a node).
NO_CLEARTEXT_GRE = ["-A", "OUTPUT", "-p", "gre", "-m", "policy", "--dir", "out", "--pol", "none"]


class Swarm:
    """The swarm in a running lab with PSK authentication: in frrdmvpn mode (the hub admits
    each spoke in its psk-map) or trap mode (stock strongSwan and FRR, for comparison)."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.spokes: tuple[Spoke, ...] = ()

    def up(self, count: int) -> None:
        """:meth:`admit` ``count`` spokes, then :meth:`start` them."""
        if self.lab.node_dir(topo.SWARM).exists():
            raise LabError("the swarm is already running: stop it first")
        self.admit(count)
        self.start()

    def admit(self, count: int) -> None:
        """Admit ``count`` spokes in the hub's psk-map (frrdmvpn mode; trap mode admits any
        peer with the group key)."""
        if self.lab.auth != "psk":
            raise LabError("the swarm needs the lab with PSK authentication")
        try:
            self.spokes = spokes(count)
        except ValueError as exc:
            raise LabError(str(exc)) from exc
        if self.lab.mode == "frrdmvpn":
            self._admit(self.spokes)

    def start(self) -> dict[str, float]:
        """Start the swarm's charon (every connection trapped) and its agent (every spoke's
        first request starts its IKE_SA at once); returns when each phase ended (seconds)."""
        lab, name = self.lab, topo.SWARM.name
        t0 = time.monotonic()
        files = {
            "etc/strongswan.conf": topo.strongswan_conf(topo.SWARM, "trap"),
            "etc/swanctl/swanctl.conf": swanctl_conf(self.spokes),
        }
        lab.add_bare_node(topo.SWARM, files)
        lab.batch(name, namespace_commands(self.spokes))
        lab.run(name, ["iptables", *NO_CLEARTEXT_GRE, "-j", "DROP"])
        phases = {"namespace": time.monotonic() - t0}
        lab.spawn(name, [topo.CHARON], None)
        sock = lab.node_dir(topo.SWARM) / "run" / Path(CHARON_VICI).name
        wait_for("the swarm's charon", sock.exists)
        phases["charon"] = time.monotonic() - t0
        lab.run(name, ["swanctl", "--load-all", "--noprompt", "--uri", f"unix://{CHARON_VICI}"])
        phases["loaded"] = time.monotonic() - t0
        count = str(len(self.spokes))
        lab.spawn(name, self._agent("run", "--count", count), "swarm-agent.log", self._env())
        return phases

    def status(self) -> dict[str, Any]:
        """The agent's last report ({} before its first)."""
        path = self.lab.node_dir(topo.SWARM) / "run" / Path(STATUS).name
        with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
            report: dict[str, Any] = json.loads(path.read_text())
            return report
        return {}

    def registered(self) -> int:
        """How many spokes are registered now (the agent's last report)."""
        return int(self.status().get("registered", 0))

    def ping(self, index: int, target: str, timeout: float = 5.0) -> bool:
        """Whether an ICMP echo from spoke ``index``'s tunnel address, in GRE from its NBMA
        address, gets its reply from ``target`` in time."""
        argv = self._agent(
            "ping", "--index", str(index), "--target", target, "--timeout", str(timeout)
        )
        done = subprocess.run(
            self.lab.argv(topo.SWARM.name, argv),
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout + 30,
            env=self._env(),
        )
        return done.returncode == 0

    def collect_logs(self, dest: Path) -> None:
        """Copy the swarm's logs (charon's, the agent's) and the agent's report to ``dest``."""
        d = self.lab.node_dir(topo.SWARM)
        dest.mkdir(parents=True, exist_ok=True)
        for src in (*(d / "log").glob("*"), d / "run" / Path(topo.CHARON_LOG).name):
            if src.is_file():
                shutil.copy(src, dest / src.name)
        (dest / Path(STATUS).name).write_text(json.dumps(self.status(), indent=1))

    def down(self) -> None:
        """Stop the swarm (its charon deletes every IKE_SA) and take the hub's psk-map back."""
        self.lab.remove_node(topo.SWARM)
        if self.lab.mode == "frrdmvpn":
            self._admit(())
        self.spokes = ()

    def _admit(self, swarm: tuple[Spoke, ...]) -> None:
        hub = topo.hub()
        more = tuple((s.nbma, s.overlay) for s in swarm)
        self.lab.config_path(hub).write_text(topo.frrdmvpn_conf(hub, "psk", more))
        self.lab.apply(hub.name)

    @staticmethod
    def _agent(*args: str) -> list[str]:
        return [sys.executable, "-m", "lab.swarm_agent", *args]

    @staticmethod
    def _env() -> dict[str, str]:
        return {**os.environ, "PYTHONPATH": str(CHECKOUT)}
