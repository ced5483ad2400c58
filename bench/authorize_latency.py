"""Latency of one binding-authorization decision (the pure policy, without the VICI query).

Run: ``.venv/bin/python bench/authorize_latency.py``. Prints p50/p99 per SA-table size.
"""

from __future__ import annotations

import ipaddress
import statistics
import time

from frrdmvpn.codec.nhrp_events import AuthorizeBinding
from frrdmvpn.core.authorize import ChildSa, Policy, PolicyMode, authorize

HUB = ipaddress.IPv4Address("198.51.100.1")


def spoke(i: int) -> tuple[ipaddress.IPv4Address, ipaddress.IPv4Address]:
    return ipaddress.IPv4Address(0xC6336400 + 2 + i), ipaddress.IPv4Address(0xC0000200 + 2 + i)


def table(n: int) -> list[ChildSa]:
    out = []
    for i in range(n):
        nbma, _ = spoke(i % 250)
        out.append(
            ChildSa(
                i,
                i,
                HUB,
                nbma,
                str(HUB),
                str(nbma),
                "INSTALLED",
                "TRANSPORT",
                "ESP",
                (f"{HUB}/32[gre]",),
                (f"{nbma}/32[gre]",),
            )
        )
    return out


def main() -> None:
    policy = Policy(
        PolicyMode.PSK_MAP,
        ipaddress.IPv4Network("192.0.2.0/24"),
        {
            str(spoke(i)[0]): frozenset({ipaddress.IPv4Network(f"{spoke(i)[1]}/32")})
            for i in range(250)
        },
    )
    for n in (1, 10, 100, 1000):
        sas = table(n)
        nbma, addr = spoke((n - 1) % 250)
        event = AuthorizeBinding(
            7,
            "dynamic",
            "invalid",
            0,
            "gre1",
            ipaddress.IPv4Address("192.0.2.1"),
            None,
            HUB,
            b"",
            addr,
            nbma,
            b"",
        )
        times = []
        for _ in range(2000):
            t0 = time.perf_counter()
            decision = authorize(event, sas, policy)
            times.append((time.perf_counter() - t0) * 1000)
        assert decision.accept, decision.reason
        times.sort()
        print(
            f"{n:5d} SAs: p50 {statistics.median(times):.3f} ms, "
            f"p99 {times[int(len(times) * 0.99)]:.3f} ms"
        )


if __name__ == "__main__":
    main()
