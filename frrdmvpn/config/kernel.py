"""The desired kernel state: mGRE links, addresses, sysctls, nhrpd's NFLOG hooks, the
NBMA addresses the guards hold (:func:`guard_nbma`). Pure.

Plain data for the apply step (pyroute2, nftables). Per ``interface TunnelN``:

* link ``dmvpnN``, kind ``gre``, ``key`` from ``tunnel key``, ``ttl`` 64, MTU (default
  1400), no remote (multipoint);
* ``tunnel source IFNAME``: ``link`` IFNAME (the underlay device) and ``local`` its address
  when the caller knows it (``source_addresses``, read from the kernel; the lab sets both);
  ``tunnel source A.B.C.D``: ``local`` A.B.C.D;
* the tunnel address as a /32 (``ip address 192.0.2.1 255.255.255.0`` -> 192.0.2.1/32):
  nhrpd resolves every other overlay address through NHRP, so the subnet must not be
  on-link (VyOS enforces /32 for the same reason); the mask still defines the tunnel
  subnet for validation, authorization and OSPF;
* sysctls: forwarding on, reverse-path filtering off (replies to NHRP-routed and OSPF
  traffic arrive on the tunnel while the route back may differ), IPv6 off on the tunnel;
* NFLOG hooks nhrpd needs: multicast (OSPF hellos) to the multicast group, dropped from
  the kernel path; on a hub (``ip nhrp redirect``) forwarded tunnel-to-tunnel traffic,
  rate-limited, to the redirect group (values as in the lab: 4/minute, burst 1, /32 masks).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface
from types import MappingProxyType

from frrdmvpn.config import defaults
from frrdmvpn.config.model import Config, TunnelInterface
from frrdmvpn.core.guard_rules import guardable

NO_ADDRESSES: Mapping[str, IPv4Address] = MappingProxyType({})


@dataclass(frozen=True)
class GreTunnel:
    """One mGRE link."""

    name: str
    key: int | None
    local: IPv4Address | None
    link: str | None
    ttl: int
    mtu: int
    addresses: tuple[IPv4Interface, ...]
    tcp_mss: int
    kind: str = "gre"

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "kind": self.kind,
            "key": self.key,
            "local": None if self.local is None else str(self.local),
            "link": self.link,
            "ttl": self.ttl,
            "mtu": self.mtu,
            "addresses": [str(a) for a in self.addresses],
            "tcp_mss": self.tcp_mss,
        }


@dataclass(frozen=True)
class NhrpHooks:
    """nhrpd's NFLOG interception on one tunnel (rendered to nftables by the apply step)."""

    interface: str
    multicast_group: int
    multicast_destinations: str = "224.0.0.0/24"
    redirect_group: int | None = None
    redirect_rate: str = "4/minute"
    redirect_burst: int = 1
    redirect_mask: int = 32

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "interface": self.interface,
            "multicast_group": self.multicast_group,
            "multicast_destinations": self.multicast_destinations,
        }
        if self.redirect_group is not None:
            out |= {
                "redirect_group": self.redirect_group,
                "redirect_rate": self.redirect_rate,
                "redirect_burst": self.redirect_burst,
                "redirect_mask": self.redirect_mask,
            }
        return out


@dataclass(frozen=True)
class KernelState:
    """Everything frrdmvpn wants in the kernel."""

    tunnels: tuple[GreTunnel, ...]
    sysctls: tuple[tuple[str, str], ...]
    nhrp_hooks: tuple[NhrpHooks, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "tunnels": [t.to_dict() for t in self.tunnels],
            "sysctls": [list(s) for s in self.sysctls],
            "nhrp_hooks": [h.to_dict() for h in self.nhrp_hooks],
        }


def local_address(
    interface: TunnelInterface, source_addresses: Mapping[str, IPv4Address] = NO_ADDRESSES
) -> IPv4Address | None:
    """The tunnel's local NBMA address: the configured one, or the source device's."""
    if isinstance(interface.source, IPv4Address):
        return interface.source
    if interface.source is None:
        return None
    return source_addresses.get(interface.source)


def _tunnel(i: TunnelInterface, source_addresses: Mapping[str, IPv4Address]) -> GreTunnel:
    addresses = () if i.address is None else (IPv4Interface(f"{i.address.ip}/32"),)
    return GreTunnel(
        name=i.linux_name,
        key=i.key,
        local=local_address(i, source_addresses),
        link=i.source if isinstance(i.source, str) else None,
        ttl=defaults.GRE_TTL,
        mtu=defaults.mtu(i),
        addresses=addresses,
        tcp_mss=defaults.tcp_mss(i),
    )


def desired_kernel(
    config: Config, source_addresses: Mapping[str, IPv4Address] = NO_ADDRESSES
) -> KernelState:
    """The kernel state for ``config`` (assumed valid).

    ``source_addresses`` maps underlay device names to their address (facts the caller
    reads from the kernel), for ``tunnel source IFNAME``.
    """
    tunnels = tuple(_tunnel(i, source_addresses) for i in config.interfaces)
    sysctls: list[tuple[str, str]] = []
    if tunnels:
        sysctls += [
            ("net.ipv4.ip_forward", "1"),
            ("net.ipv4.conf.all.rp_filter", "0"),
            ("net.ipv4.conf.default.rp_filter", "0"),
        ]
    for t in tunnels:
        sysctls += [
            (f"net.ipv4.conf.{t.name}.rp_filter", "0"),
            (f"net.ipv6.conf.{t.name}.disable_ipv6", "1"),
        ]
    hooks = tuple(
        NhrpHooks(
            i.linux_name,
            defaults.NFLOG_MULTICAST_GROUP,
            redirect_group=defaults.NFLOG_REDIRECT_GROUP if i.nhrp_redirect else None,
        )
        for i in config.interfaces
    )
    return KernelState(tunnels, tuple(sysctls), hooks)


def guard_nbma(
    config: Config, addresses: Mapping[str, Iterable[IPv4Address]]
) -> frozenset[IPv4Address]:
    """The local NBMA addresses the configuration's GRE may leave from or arrive at.

    ``tunnel source A.B.C.D``: that address. ``tunnel source IFNAME``: every IPv4 address
    ``addresses`` (the kernel's, by interface name) gives IFNAME, not only the first one
    the tunnel takes when applied: the next apply takes another when the first goes away
    (DHCP). An interface without addresses adds none.
    """
    found: set[IPv4Address] = set()
    for tunnel in config.interfaces:
        if isinstance(tunnel.source, IPv4Address):
            found.add(tunnel.source)
        elif isinstance(tunnel.source, str):
            found.update(addresses.get(tunnel.source, ()))
    return frozenset(a for a in found if guardable(a))
