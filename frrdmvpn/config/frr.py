"""The desired nhrpd and ospfd configuration (FRR 8.4 vtysh syntax), one text per daemon.

Each text is what ``vtysh -d <daemon> -c 'show running-config'`` prints once the config
is applied, minus the lines frrdmvpn does not manage (``frr version``, ``log``,
``debug`` ...): statements in FRR's own order, blocks closed by ``exit`` and ``!``, and
values equal to FRR's built-in defaults left out because FRR does not print them
(holdtime 7200, hello 10, priority 1, OSPF network type broadcast on an mGRE link, SPF
throttle 0 50 5000). That makes :func:`frrdmvpn.config.frrdiff.diff` of the running
config against this text empty once applied.

Mapping (see ``docs/config.md``): ``interface TunnelN`` -> ``interface dmvpnN``;
``tunnel protection ipsec profile P`` -> ``tunnel protection vici profile P`` and the
global ``nhrp event socket`` (frrdmvpn authorizes every binding); ``ip nhrp nhs ...
multicast`` -> ``ip nhrp nhs ...`` + ``ip nhrp map multicast NBMA``; the classic
``ip nhrp nhs P`` takes its NBMA from ``ip nhrp map P NBMA``; ``ip nhrp redirect`` ->
also the global ``nhrp nflog-group``; every tunnel -> ``nhrp multicast-nflog-group``
(OSPF hellos through nhrpd); ``router ospf PID`` -> ``router ospf`` (FRR's number is an
instance, not a process id); ``router-id`` -> ``ospf router-id``; ``timers lsa arrival``
-> ``timers lsa min-arrival``; ``network A W area X``
-> ``network A/M area X``; ``passive-interface X`` -> ``ip ospf passive`` on X.
``ip nhrp authentication`` is rendered where the node's nhrpd has it (:class:`FrrVersion`:
FRR 10.2 and later print it after ``tunnel source``); NHS ``priority`` is not: no release
has it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address

from frrdmvpn.config import defaults
from frrdmvpn.config.model import Config, OspfNetworkType, TunnelInterface, linux_name
from frrdmvpn.config.secrets import MASK


@dataclass(frozen=True, order=True)
class FrrVersion:
    """The release of the node's FRR: what its daemons can be configured with."""

    major: int
    minor: int

    @property
    def nhrp_authentication(self) -> bool:
        """nhrpd has ``ip nhrp authentication`` (FRR 10.2 and later)."""
        return (self.major, self.minor) >= (10, 2)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


#: Debian 12's FRR, and what is assumed when the node's cannot be read.
FRR_8_4 = FrrVersion(8, 4)

_VERSION = re.compile(r"(?:FRRouting|version) ([0-9]{1,3})\.([0-9]{1,3})")


def frr_version(text: str) -> FrrVersion | None:
    """The release ``show version`` (``FRRouting 10.3 (hub) on Linux ...``) or a daemon's
    ``--version`` (``nhrpd version 8.4.4``) names."""
    found = _VERSION.search(text)
    return None if found is None else FrrVersion(int(found.group(1)), int(found.group(2)))


def check_supported(config: Config, version: Callable[[], FrrVersion]) -> None:
    """Raise ValueError if ``config`` asks of FRR what the node's release (``version``, read
    only when something depends on it) lacks: refused, never silently left out (an operator
    who configured NHRP authentication must not run without it unknowingly)."""
    asking = [i.name for i in config.interfaces if i.nhrp_authentication is not None]
    if asking and not (found := version()).nhrp_authentication:
        raise ValueError(
            "; ".join(
                f"interface {name}: ip nhrp authentication needs nhrpd from FRR 10.2 on "
                f"(Debian 13); this node runs FRR {found}"
                for name in asking
            )
        )


def shown(line: str) -> str:
    """``line`` (a vtysh command or running-config line) with its secret masked."""
    return re.sub(r"^(\s*(?:no )?ip nhrp authentication) \S+", rf"\1 {MASK}", line)


@dataclass(frozen=True)
class FrrConfig:
    """Desired configuration text per FRR daemon."""

    nhrpd: str
    ospfd: str

    def daemons(self) -> dict[str, str]:
        return {"nhrpd": self.nhrpd, "ospfd": self.ospfd}


def _block(header: str, lines: list[str]) -> list[str]:
    return [header, *(f" {line}" for line in lines), "exit", "!"]


def frr_ifname(name: str) -> str:
    """The FRR/Linux name of an interface named in the config (``Tunnel0`` -> ``dmvpn0``)."""
    if name.startswith("Tunnel") and name[6:].isascii() and name[6:].isdigit():
        return linux_name(int(name[6:]))
    return name


def _multicast_targets(i: TunnelInterface) -> list[str]:
    targets: list[str] = ["dynamic"] if i.nhrp_map_multicast_dynamic else []
    targets += [str(a) for a in i.nhrp_map_multicast]
    targets += [str(n.nbma) for n in i.nhrp_nhs if n.multicast and isinstance(n.nbma, IPv4Address)]
    return list(dict.fromkeys(targets))


def _nhs_nbma(i: TunnelInterface, protocol: IPv4Address | None) -> str | None:
    return next((str(m.nbma) for m in i.nhrp_maps if m.protocol == protocol), None)


def nhrpd_interface(i: TunnelInterface, version: FrrVersion = FRR_8_4) -> list[str]:
    """The nhrpd statements of one tunnel, in the order ``version`` prints them."""
    lines: list[str] = []
    if i.description is not None:
        lines.append(f"description {i.description}")
    if i.protection_profile is not None:
        lines.append(f"tunnel protection vici profile {i.protection_profile}")
    if isinstance(i.source, str):
        lines.append(f"tunnel source {i.source}")
    if i.nhrp_authentication is not None and version.nhrp_authentication:
        lines.append(f"ip nhrp authentication {i.nhrp_authentication}")
    if i.nhrp_network_id is not None:
        lines.append(f"ip nhrp network-id {i.nhrp_network_id}")
    holdtime = defaults.holdtime(i)
    if holdtime != defaults.FRR_DEFAULT_HOLDTIME:
        lines.append(f"ip nhrp holdtime {holdtime}")
    if i.nhrp_shortcut:
        lines.append("ip nhrp shortcut")
    if i.nhrp_redirect:
        lines.append("ip nhrp redirect")
    if defaults.registration_no_unique(i):
        lines.append("ip nhrp registration no-unique")
    lines += [f"ip nhrp map {m.protocol} {m.nbma}" for m in i.nhrp_maps]
    for nhs in i.nhrp_nhs:
        nbma = _nhs_nbma(i, nhs.protocol) if nhs.nbma is None else str(nhs.nbma)
        if nbma is not None:
            target = "dynamic" if nhs.protocol is None else str(nhs.protocol)
            lines.append(f"ip nhrp nhs {target} nbma {nbma}")
    lines += [f"ip nhrp map multicast {t}" for t in _multicast_targets(i)]
    return lines


def ospf_network_words(i: TunnelInterface) -> str:
    kind = defaults.ospf_network(i)
    if kind is OspfNetworkType.POINT_TO_POINT:
        return "point-to-point dmvpn"
    return str(kind.value)


def ospfd_interface(i: TunnelInterface) -> list[str]:
    """The ospfd statements of one tunnel, in FRR 8.4's order."""
    lines: list[str] = []
    if i.description is not None:
        lines.append(f"description {i.description}")
    if defaults.ospf_network(i) is not OspfNetworkType.BROADCAST:
        lines.append(f"ip ospf network {ospf_network_words(i)}")
    hello = defaults.ospf_hello(i)
    if hello != defaults.FRR_DEFAULT_HELLO:
        lines.append(f"ip ospf hello-interval {hello}")
    lines.append(f"ip ospf dead-interval {defaults.ospf_dead(i)}")
    priority = defaults.ospf_priority(i)
    if priority is not None and priority != defaults.FRR_DEFAULT_PRIORITY:
        lines.append(f"ip ospf priority {priority}")
    if defaults.ospf_mtu_ignore(i):
        lines.append("ip ospf mtu-ignore")
    return lines


def _header(config: Config) -> list[str]:
    return [] if config.hostname is None else [f"hostname {config.hostname}"]


def render_nhrpd(config: Config, version: FrrVersion = FRR_8_4) -> str:
    lines = _header(config)
    tunnels = config.interfaces
    if any(i.protection_profile is not None for i in tunnels):
        lines.append(f"nhrp event socket {defaults.EVENT_SOCKET}")
    if any(i.nhrp_redirect for i in tunnels):
        lines.append(f"nhrp nflog-group {defaults.NFLOG_REDIRECT_GROUP}")
    if tunnels:
        lines.append(f"nhrp multicast-nflog-group {defaults.NFLOG_MULTICAST_GROUP}")
    lines.append("!")
    for i in tunnels:
        lines += _block(f"interface {i.linux_name}", nhrpd_interface(i, version))
    return "\n".join(lines) + "\n"


def render_ospfd(config: Config) -> str:
    lines = [*_header(config), "!"]
    ospf = config.ospf
    if ospf is None:
        return "\n".join(lines) + "\n"
    tunnels = {i.linux_name: i for i in config.interfaces}
    passive = [frr_ifname(p) for p in ospf.passive_interfaces]
    for name, i in tunnels.items():
        extra = ["ip ospf passive"] if name in passive else []
        lines += _block(f"interface {name}", ospfd_interface(i) + extra)
    for name in passive:
        if name not in tunnels:
            lines += _block(f"interface {name}", ["ip ospf passive"])
    body: list[str] = []
    if ospf.router_id is not None:
        body.append(f"ospf router-id {ospf.router_id}")
    if ospf.spf_throttle is not None and ospf.spf_throttle != defaults.FRR_DEFAULT_SPF_THROTTLE:
        body.append("timers throttle spf " + " ".join(str(v) for v in ospf.spf_throttle))
    if ospf.lsa_throttle is not None and ospf.lsa_throttle != defaults.FRR_DEFAULT_LSA_THROTTLE:
        body.append(f"timers throttle lsa all {ospf.lsa_throttle}")
    if ospf.lsa_arrival is not None and ospf.lsa_arrival != defaults.FRR_DEFAULT_LSA_ARRIVAL:
        body.append(f"timers lsa min-arrival {ospf.lsa_arrival}")
    # ospfd keeps networks in a prefix table and prints them in that order.
    networks = sorted(ospf.networks, key=lambda n: (n.prefix.network_address, n.prefix.prefixlen))
    body += [f"network {n.prefix} area {n.area}" for n in networks]
    lines += _block("router ospf", body)
    return "\n".join(lines) + "\n"


def render_frr(config: Config, version: FrrVersion = FRR_8_4) -> FrrConfig:
    """nhrpd and ospfd configuration for ``config`` (assumed valid) on FRR ``version``."""
    return FrrConfig(render_nhrpd(config, version), render_ospfd(config))
