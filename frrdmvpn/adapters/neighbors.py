"""Kernel neighbour entries of the GRE interfaces (iproute2's JSON output)."""

from __future__ import annotations

import asyncio
import ipaddress
import json
from typing import Any

from frrdmvpn.core.supervisor import Neighbor

TIMEOUT = 10.0


async def _ip(*args: str) -> tuple[int, str, str]:
    """Run ``ip``; a failure to run or a time-out is an exit status, never an exception."""
    try:
        proc = await asyncio.create_subprocess_exec(
            "ip", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
    except OSError as exc:
        return 127, "", str(exc)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return 124, "", f"ip {' '.join(args)} timed out"
    return proc.returncode or 0, out.decode(), err.decode()


def parse_neighbors(interface: str, data: Any) -> list[Neighbor]:
    """Entries of ``ip -j neigh show dev IF``; malformed ones are skipped."""
    out = []
    for e in data if isinstance(data, list) else []:
        try:
            dst = ipaddress.ip_address(e["dst"])
        except (KeyError, ValueError, TypeError):
            continue
        state = e.get("state") or ["NONE"]
        out.append(Neighbor(interface, dst, e.get("lladdr"), str(state[0])))
    return out


async def gre_neighbors(interfaces: set[str]) -> list[Neighbor]:
    out: list[Neighbor] = []
    for iface in sorted(interfaces):
        rc, text, _ = await _ip("-j", "neigh", "show", "dev", iface)
        if rc == 0 and text.strip():
            try:
                out += parse_neighbors(iface, json.loads(text))
            except json.JSONDecodeError:
                continue
    return out


async def replace_neighbor(
    interface: str, protocol: ipaddress.IPv4Address | ipaddress.IPv6Address, nbma: str
) -> str:
    """Point ``protocol`` at ``nbma`` on ``interface``; returns iproute2's error, if any."""
    rc, _, err = await _ip("neigh", "replace", str(protocol), "lladdr", nbma, "dev", interface,
                           "nud", "reachable")  # fmt: skip
    return err.strip() if rc else ""
