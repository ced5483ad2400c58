"""Kernel IPsec state that charon does not know: what a crashed charon leaves behind.

After a SIGKILL the kernel keeps charon's SAs and per-peer policies; the new charon knows
none of them, yet they keep carrying GRE, so no ACQUIRE ever asks for a new SA and the
peer (which soon drops its side) is cut off for good. Pure: the kernel's and charon's views
come in, the entries to delete go out.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from frrdmvpn.core.authorize import ChildSa

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
GUARD_PRIORITY = 1_000_000


@dataclass(frozen=True)
class KernelSa:
    src: IPAddress
    dst: IPAddress
    proto: str
    spi: int


@dataclass(frozen=True)
class KernelPolicy:
    direction: str  # in, out, fwd
    src: IPNetwork
    dst: IPNetwork
    proto: str
    action: str
    priority: int


def orphan_sas(kernel: Iterable[KernelSa], children: Iterable[ChildSa]) -> list[KernelSa]:
    """ESP SAs whose (destination, SPI) no CHILD_SA of charon's has (larval SPI 0 aside)."""
    known: set[tuple[IPAddress, int]] = set()
    for c in children:
        known.add((c.local_host, c.spi_in))
        known.add((c.remote_host, c.spi_out))
    return [s for s in kernel if s.proto == "esp" and s.spi and (s.dst, s.spi) not in known]


def _host(net: IPNetwork) -> IPAddress | None:
    return net.network_address if net.prefixlen == net.max_prefixlen else None


def orphan_policies(
    kernel: Iterable[KernelPolicy], children: Iterable[ChildSa], local: Iterable[IPAddress]
) -> list[KernelPolicy]:
    """Per-peer GRE policies (host to host, charon's kind) for pairs charon has no SA for.
    The guards' block policies and charon's wildcard trap are never touched."""
    pairs = {(c.local_host, c.remote_host) for c in children}
    mine = set(local)
    out = []
    for p in kernel:
        src, dst = _host(p.src), _host(p.dst)
        if p.proto != "gre" or p.action != "allow" or p.priority == GUARD_PRIORITY:
            continue
        if src is None or dst is None:
            continue
        pair = (src, dst) if p.direction == "out" else (dst, src)
        if pair[0] in mine and pair not in pairs:
            out.append(p)
    return out
