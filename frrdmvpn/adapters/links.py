"""The kernel's side of a node: mGRE links, addresses, sysctls (pyroute2 and /proc/sys).

Reads what exists and brings it to a :class:`frrdmvpn.config.kernel.GreTunnel`: a link
whose GRE parameters (key, local address, underlay device, TTL) differ is re-created (the
kernel cannot change them in place); MTU, addresses and state are changed in place.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl.ifinfmsg import GRE_KEY

from frrdmvpn.config.kernel import GreTunnel

SYSCTL_ROOT = Path("/proc/sys")


class LinkError(RuntimeError):
    """The kernel refused a change (message names the link and the reason)."""


def _attr(msg: Any, name: str) -> Any:
    return msg.get_attr(name)


def _gre_info(link: Any) -> dict[str, Any] | None:
    info = _attr(link, "IFLA_LINKINFO")
    if info is None or info.get_attr("IFLA_INFO_KIND") != "gre":
        return None
    data = info.get_attr("IFLA_INFO_DATA")
    if data is None:
        return {}
    return dict(data["attrs"])


class Links:
    """Observe and change GRE links in the current network namespace."""

    def __init__(self, ipr: IPRoute | None = None) -> None:
        self._ipr = ipr or IPRoute()

    def close(self) -> None:
        self._ipr.close()

    def _index(self, name: str) -> int | None:
        found = self._ipr.link_lookup(ifname=name)
        return int(found[0]) if found else None

    def _name(self, index: int) -> str | None:
        links = self._ipr.get_links(index)
        return str(_attr(links[0], "IFLA_IFNAME")) if links else None

    def addresses(self) -> dict[str, tuple[ipaddress.IPv4Address, ...]]:
        """Each device's IPv4 addresses, in the kernel's order (its primary one first)."""
        out: dict[str, list[ipaddress.IPv4Address]] = {}
        for addr in self._ipr.get_addr(family=2):
            name = self._name(int(addr["index"]))
            # IFA_LOCAL is the device's own address (IFA_ADDRESS is the peer's on
            # point-to-point links such as PPPoE).
            local = _attr(addr, "IFA_LOCAL") or _attr(addr, "IFA_ADDRESS")
            if name is not None and local:
                out.setdefault(name, []).append(ipaddress.IPv4Address(local))
        return {name: tuple(found) for name, found in out.items()}

    def source_addresses(self) -> dict[str, ipaddress.IPv4Address]:
        """Each device's first IPv4 address (for ``tunnel source IFNAME``)."""
        return {name: found[0] for name, found in self.addresses().items()}

    def tunnel(self, name: str) -> GreTunnel | None:
        """The GRE link ``name`` as it is (``None``: no such link; LinkError: not GRE)."""
        index = self._index(name)
        if index is None:
            return None
        link = self._ipr.get_links(index)[0]
        gre = _gre_info(link)
        if gre is None:
            raise LinkError(f"{name} exists but is not a GRE link: frrdmvpn will not replace it")
        under = gre.get("IFLA_GRE_LINK") or 0
        local = gre.get("IFLA_GRE_LOCAL")
        key = gre.get("IFLA_GRE_IKEY") or None  # a key of 0 is no key
        addresses = tuple(
            ipaddress.IPv4Interface(f"{_attr(a, 'IFA_ADDRESS')}/{a['prefixlen']}")
            for a in self._ipr.get_addr(index=index, family=2)
        )
        return GreTunnel(
            name=name,
            key=key,
            local=None
            if not local or ipaddress.IPv4Address(local).is_unspecified
            else ipaddress.IPv4Address(local),
            link=self._name(int(under)) if under else None,
            ttl=int(gre.get("IFLA_GRE_TTL", 0)),
            mtu=int(_attr(link, "IFLA_MTU")),
            addresses=tuple(sorted(addresses)),
            tcp_mss=0,
        )

    @staticmethod
    def _same_gre(a: GreTunnel, b: GreTunnel) -> bool:
        return (a.key, a.local, a.link, a.ttl) == (b.key, b.local, b.link, b.ttl)

    def ensure(self, want: GreTunnel) -> list[str]:
        """Make link ``want.name`` match ``want``; returns what was changed (empty: nothing)."""
        changes: list[str] = []
        have = self.tunnel(want.name)
        try:
            if have is not None and not self._same_gre(have, want):
                self._ipr.link("del", index=self._index(want.name))
                changes.append(f"deleted {want.name} (GRE parameters changed)")
                have = None
            if have is None:
                self._create(want)
                changes.append(
                    f"created {want.name}: gre key {want.key} local {want.local} "
                    f"dev {want.link} ttl {want.ttl}"
                )
                have = self.tunnel(want.name)
                assert have is not None
            index = self._index(want.name)
            if have.mtu != want.mtu:
                self._ipr.link("set", index=index, mtu=want.mtu)
                changes.append(f"{want.name}: mtu {have.mtu} -> {want.mtu}")
            for addr in set(have.addresses) - set(want.addresses):
                self._ipr.addr(
                    "del", index=index, address=str(addr.ip), prefixlen=addr.network.prefixlen
                )
                changes.append(f"{want.name}: removed address {addr}")
            for addr in sorted(set(want.addresses) - set(have.addresses)):
                self._ipr.addr(
                    "add", index=index, address=str(addr.ip), prefixlen=addr.network.prefixlen
                )
                changes.append(f"{want.name}: added address {addr}")
            link = self._ipr.get_links(index)[0]
            if not int(link["flags"]) & 1:  # IFF_UP
                self._ipr.link("set", index=index, state="up")
                changes.append(f"{want.name}: up")
        except NetlinkError as exc:
            raise LinkError(f"{want.name}: the kernel refused the change: {exc}") from exc
        return changes

    def _create(self, want: GreTunnel) -> None:
        args: dict[str, Any] = {"ifname": want.name, "kind": "gre", "gre_ttl": want.ttl}
        if want.key is not None:
            args.update(
                gre_ikey=want.key, gre_okey=want.key, gre_iflags=GRE_KEY, gre_oflags=GRE_KEY
            )
        if want.local is not None:
            args["gre_local"] = str(want.local)
        if want.link is not None:
            under = self._index(want.link)
            if under is None:
                raise LinkError(f"{want.name}: tunnel source device {want.link} does not exist")
            args["gre_link"] = under
        self._ipr.link("add", **args)

    def delete(self, name: str) -> bool:
        """Delete GRE link ``name`` if it exists; whether it did."""
        if self.tunnel(name) is None:
            return False
        self._ipr.link("del", index=self._index(name))
        return True


def set_sysctls(pairs: Iterable[tuple[str, str]], root: Path = SYSCTL_ROOT) -> list[str]:
    """Write each ``key=value`` whose current value differs; returns the ones written."""
    changed = []
    for key, value in pairs:
        path = root / key.replace(".", "/")
        if key.startswith("net.ipv6.") and not (root / "net/ipv6").exists():
            continue  # IPv6 disabled at boot (ipv6.disable=1): nothing to switch off
        try:
            current = path.read_text().strip()
        except OSError as exc:
            raise LinkError(f"sysctl {key}: {exc}") from exc
        if current != value:
            try:
                path.write_text(value + "\n")
            except OSError as exc:
                raise LinkError(f"sysctl {key}={value}: {exc}") from exc
            changed.append(f"sysctl {key} = {value} (was {current})")
    return changed


def tunnel_locals(names: set[str]) -> set[ipaddress.IPv4Address]:
    """The local address of each GRE link of these names, as the kernel has it (a link that
    is missing, not GRE or without a local address adds nothing)."""
    links = Links()
    try:
        found = set()
        for name in sorted(names):
            try:
                tunnel = links.tunnel(name)
            except LinkError:
                continue
            if tunnel is not None and tunnel.local is not None:
                found.add(tunnel.local)
        return found
    finally:
        links.close()
