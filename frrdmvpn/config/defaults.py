"""frrdmvpn's defaults and the effective value of every setting left unconfigured.

The defaults encode the cross-vendor caveats of a Huawei/Cisco/VyOS DMVPN (docs/config.md,
section 3, says which and why):

* **Role.** A tunnel with an ``ip nhrp nhs`` is a spoke, otherwise a hub.
* **OSPF network type.** Hub ``point-to-multipoint`` (what Cisco hubs use over DMVPN,
  Huawei ``ospf network-type p2mp``); spoke ``point-to-point`` rendered as FRR's
  ``point-to-point dmvpn`` (FRR >= 8.0, verified in the lab against a p2mp hub). A cloud
  whose hub can only do ``broadcast`` (a Huawei USG) must configure
  ``ip ospf network broadcast`` on every node.
* **DR priority.** A spoke on a broadcast/non-broadcast network gets priority 0 (Cisco
  ``ip ospf priority 0``, Huawei AR ``ospf dr-priority 0``), so it never becomes DR.
* **Hello/dead.** Cisco's defaults for the type: 30/120 s for point-to-multipoint and for
  the spoke side of it (``point-to-point dmvpn`` pairs with a p2mp hub, so it must use the
  hub's timers), 10/40 s for broadcast and non-broadcast; dead = 4 x hello when only hello
  is configured. FRR's own default (10/40 for every type) would not form adjacencies
  with a Cisco p2mp hub.
* **MTU ignore** on: Huawei sends its L3 MTU in OSPF DBDs, others their L2 MTU, and the
  Cisco tunnel L2 MTU is fixed.
* **IP MTU 1400, TCP MSS MTU - 40** (1360): room for GRE with key (28 bytes) and any ESP
  transport transform here (<= 57 bytes) on a 1500-byte underlay.
* **NHRP holdtime 600 s**: registrations refresh every 200 s (holdtime/3), so a peer that
  missed a binding (for example while the event socket restarted) recovers within that;
  600 is inside every vendor's range (Huawei 300-31845, FRR 1-65000).
* **Registration no-unique** on: spokes whose NBMA address changes (DHCP, NAT) can
  re-register at once (Cisco and Huawei AR spokes both configure it).
"""

from __future__ import annotations

import enum

from frrdmvpn.config.model import OspfNetworkType, TunnelInterface

EVENT_SOCKET = "/run/frrdmvpn/nhrp-events.sock"
NFLOG_REDIRECT_GROUP = 1
NFLOG_MULTICAST_GROUP = 2
GRE_TTL = 64
#: One reqid for every GRE CHILD_SA (see lab.topology.swanctl_conf).
CHILD_REQID = 1
DEFAULT_MTU = 1400
MSS_MARGIN = 40  # IPv4 + TCP headers
DEFAULT_HOLDTIME = 600
FRR_DEFAULT_HOLDTIME = 7200
FRR_DEFAULT_HELLO = 10
FRR_DEFAULT_PRIORITY = 1
FRR_DEFAULT_SPF_THROTTLE = (0, 50, 5000)
FRR_DEFAULT_LSA_THROTTLE = 5000
FRR_DEFAULT_LSA_ARRIVAL = 1000
#: Worst-case per-packet overhead on the underlay: outer IPv4 20 + GRE 4 + key 4, plus ESP
#: transport with AES-CBC/SHA-256 (SPI 4 + seq 4 + IV 16 + padding <= 15 + 2 + ICV 16).
TUNNEL_OVERHEAD = 28 + 57
UNDERLAY_MTU = 1500


class Role(enum.Enum):
    """Hub (serves spokes: ``map multicast dynamic`` or ``redirect``, no NHS) or spoke."""

    HUB = "hub"
    SPOKE = "spoke"


def role(interface: TunnelInterface) -> Role:
    """A tunnel that registers with an NHS is a spoke; one without NHS is a hub only if it
    serves spokes (replicates multicast to dynamic peers or sends redirects): a spoke
    whose last NHS is being removed stays a spoke."""
    if interface.nhrp_nhs:
        return Role.SPOKE
    serves = interface.nhrp_map_multicast_dynamic or interface.nhrp_redirect
    return Role.HUB if serves else Role.SPOKE


def mtu(interface: TunnelInterface) -> int:
    return DEFAULT_MTU if interface.mtu is None else interface.mtu


def tcp_mss(interface: TunnelInterface) -> int:
    if interface.tcp_adjust_mss is not None:
        return interface.tcp_adjust_mss
    return mtu(interface) - MSS_MARGIN


def holdtime(interface: TunnelInterface) -> int:
    return DEFAULT_HOLDTIME if interface.nhrp_holdtime is None else interface.nhrp_holdtime


def registration_no_unique(interface: TunnelInterface) -> bool:
    return interface.nhrp_registration_no_unique is not False


def ospf_network(interface: TunnelInterface) -> OspfNetworkType:
    if interface.ospf_network is not None:
        return interface.ospf_network
    if role(interface) is Role.HUB:
        return OspfNetworkType.POINT_TO_MULTIPOINT
    return OspfNetworkType.POINT_TO_POINT


def ospf_hello(interface: TunnelInterface) -> int:
    if interface.ospf_hello_interval is not None:
        return interface.ospf_hello_interval
    slow = (OspfNetworkType.POINT_TO_MULTIPOINT, OspfNetworkType.POINT_TO_POINT)
    return 30 if ospf_network(interface) in slow else 10


def ospf_dead(interface: TunnelInterface) -> int:
    if interface.ospf_dead_interval is not None:
        return interface.ospf_dead_interval
    return 4 * ospf_hello(interface)


def ospf_priority(interface: TunnelInterface) -> int | None:
    """The DR priority to configure, or ``None`` for FRR's default (1)."""
    if interface.ospf_priority is not None:
        return interface.ospf_priority
    multi_access = (OspfNetworkType.BROADCAST, OspfNetworkType.NON_BROADCAST)
    if role(interface) is Role.SPOKE and ospf_network(interface) in multi_access:
        return 0
    return None


def ospf_mtu_ignore(interface: TunnelInterface) -> bool:
    return interface.ospf_mtu_ignore is not False
