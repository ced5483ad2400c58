"""One supervision step of a hub with N peers at rest: how its cost grows with N (issue 17).

A synthetic observation (N spokes, each with one IKE_SA, one protecting CHILD_SA, one dynamic
NHRP binding and nhrpd counting its SA; addresses in 2001:db8::/32) is stepped once to learn
the peers, then ``--rounds`` more times unchanged; the median step is printed per N. Run it
on two trees (e.g. a worktree of the previous commit) for before and after.

Run: ``.venv/bin/python bench/supervisor_step.py [--peers 100,300,1000,3000] [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from ipaddress import IPv6Address

from frrdmvpn.core.authorize import ChildSa
from frrdmvpn.core.supervisor import IkeSa, NhrpBinding, Observation, PeerKey, Supervisor

HUB = IPv6Address("2001:db8::1")


def observation(peers: int) -> Observation:
    ike, children, nhrp = [], [], []
    counted: dict[PeerKey, int] = {}
    for i in range(peers):
        remote = IPv6Address(int(IPv6Address("2001:db8:0:1::")) + i)
        ike.append(IkeSa(i + 1, HUB, remote, "ESTABLISHED"))
        children.append(
            ChildSa(
                ike_uniqueid=i + 1,
                child_uniqueid=i + 1,
                local_host=HUB,
                remote_host=remote,
                local_id=str(HUB),
                remote_id=str(remote),
                state="INSTALLED",
                mode="TRANSPORT",
                protocol="ESP",
                local_ts=(f"{HUB}/128[gre]",),
                remote_ts=(f"{remote}/128[gre]",),
            )
        )
        tunnel = IPv6Address(int(IPv6Address("2001:db8:0:2::")) + i)
        nhrp.append(NhrpBinding(tunnel, remote, "dynamic", "gre1"))
        counted[(HUB, remote)] = 1
    return Observation(True, tuple(ike), tuple(children), tuple(nhrp), counted)


def median_step(peers: int, rounds: int) -> float:
    obs = observation(peers)
    sup = Supervisor(HUB)
    sup.step(obs, 0.0)
    times = []
    for r in range(rounds):
        t0 = time.perf_counter()
        sup.step(obs, float(r + 1))
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", default="100,300,1000,3000")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print("| peers | step (ms, median) | per peer (µs) |")
    print("|---:|---:|---:|")
    for n in (int(p) for p in args.peers.split(",")):
        step = median_step(n, args.rounds)
        print(f"| {n} | {step * 1000:.1f} | {step / n * 1e6:.1f} |")


if __name__ == "__main__":
    main()
