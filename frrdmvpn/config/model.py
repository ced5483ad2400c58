"""The configuration model: frozen dataclasses for every statement of ``frrdmvpn.conf``.

A field that is ``None`` (or a flag that is ``False``) is *not configured*: the renderers
then use frrdmvpn's default (see :mod:`frrdmvpn.config.defaults`). Two flags whose
frrdmvpn default is *on* are tri-state (``None`` default, ``True`` configured,
``False`` configured off with ``no ...``): ``ip nhrp registration no-unique`` and
``ip ospf mtu-ignore``.

Collections are tuples in configuration order; named items (interfaces, keyrings,
profiles ...) are unique by name, list items (NHS, maps, OSPF networks ...) unique by
value. The parser keeps both invariants; :func:`frrdmvpn.config.canonical_text.render` keeps
the order, so ``parse(render(m)) == m``.

Interface naming: ``interface TunnelN`` is the Linux link ``dmvpnN`` (``Tunnel0`` ->
``dmvpn0``); ``N`` is 0-2147483647, so the name never exceeds Linux's 15 characters.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from frrdmvpn.core.authorize import PolicyMode

TUNNEL_PREFIX = "Tunnel"
LINUX_TUNNEL_PREFIX = "dmvpn"
TUNNEL_NUMBER_MAX = 2147483647


def linux_name(number: int) -> str:
    """The Linux link name of ``interface Tunnel<number>``: ``dmvpn<number>``."""
    return f"{LINUX_TUNNEL_PREFIX}{number}"


def tunnel_name(link: str) -> str:
    """The configuration's name of a Linux link: ``dmvpn0`` -> ``Tunnel0``; other links
    (a LAN's ``eth1``) keep their name."""
    number = link.removeprefix(LINUX_TUNNEL_PREFIX)
    if number != link and number.isascii() and number.isdigit():
        return f"{TUNNEL_PREFIX}{int(number)}"
    return link


class OspfNetworkType(enum.Enum):
    """``ip ospf network ...`` as typed in the configuration."""

    POINT_TO_MULTIPOINT = "point-to-multipoint"
    POINT_TO_POINT = "point-to-point"
    BROADCAST = "broadcast"
    NON_BROADCAST = "non-broadcast"


class AuthMethod(enum.Enum):
    """IKEv2 ``authentication local|remote`` methods."""

    PRE_SHARE = "pre-share"
    RSA_SIG = "rsa-sig"
    ECDSA_SIG = "ecdsa-sig"


class DpdMode(enum.Enum):
    """IKEv2 profile ``dpd INTERVAL RETRIES on-demand|periodic``."""

    ON_DEMAND = "on-demand"
    PERIODIC = "periodic"


class IpsecMode(enum.Enum):
    """Transform-set ``mode``."""

    TRANSPORT = "transport"
    TUNNEL = "tunnel"


@dataclass(frozen=True)
class AddressIdentity:
    """An IKE identity of type address; ``mask`` only for ``match identity remote``."""

    address: IPv4Address
    mask: IPv4Address | None = None


@dataclass(frozen=True)
class FqdnIdentity:
    """An IKE identity of type FQDN; ``domain`` (only for ``match identity remote``): any
    name under ``fqdn`` (charon ``*.fqdn``)."""

    fqdn: str
    domain: bool = False


IkeIdentity = AddressIdentity | FqdnIdentity


# --- crypto ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ikev2Proposal:
    """``crypto ikev2 proposal NAME``: Cisco algorithm keywords, in configured order."""

    name: str
    encryption: tuple[str, ...] = ()
    integrity: tuple[str, ...] = ()
    prf: tuple[str, ...] = ()
    groups: tuple[int, ...] = ()


@dataclass(frozen=True)
class KeyringPeer:
    """``peer NAME`` inside a keyring. ``address`` 0.0.0.0/0 means any peer."""

    name: str
    address: IPv4Network | None = None
    identity: IkeIdentity | None = None
    pre_shared_key: str | None = field(default=None, repr=False)  # a secret: never in a repr


@dataclass(frozen=True)
class Ikev2Keyring:
    """``crypto ikev2 keyring NAME``."""

    name: str
    peers: tuple[KeyringPeer, ...] = ()


@dataclass(frozen=True)
class Dpd:
    """Dead peer detection: ``dpd INTERVAL RETRIES on-demand|periodic``."""

    interval: int
    retries: int
    mode: DpdMode


@dataclass(frozen=True)
class Ikev2Profile:
    """``crypto ikev2 profile NAME``."""

    name: str
    match_remote: tuple[IkeIdentity, ...] = ()
    identity_local: IkeIdentity | None = None
    authentication_local: AuthMethod | None = None
    authentication_remote: AuthMethod | None = None
    keyring: str | None = None
    trustpoint: str | None = None
    dpd: Dpd | None = None
    lifetime: int | None = None


@dataclass(frozen=True)
class Trustpoint:
    """``crypto pki trustpoint NAME``: PEM/DER files on this host (absolute paths)."""

    name: str
    certificate: str | None = None
    private_key: str | None = None
    ca_certificate: str | None = None


@dataclass(frozen=True)
class TransformSet:
    """``crypto ipsec transform-set NAME ENC [BITS] [INTEGRITY]`` and its ``mode``.

    ``mode`` defaults to tunnel, as on Cisco IOS; DMVPN needs transport.
    """

    name: str
    encryption: str
    key_bits: int | None = None
    integrity: str | None = None
    mode: IpsecMode = IpsecMode.TUNNEL


@dataclass(frozen=True)
class IpsecProfile:
    """``crypto ipsec profile NAME``."""

    name: str
    transform_sets: tuple[str, ...] = ()
    ikev2_profile: str | None = None
    pfs_group: int | None = None
    lifetime_seconds: int | None = None


# --- the tunnel --------------------------------------------------------------------------


@dataclass(frozen=True)
class NhrpNhs:
    """``ip nhrp nhs PROTO|dynamic [nbma NBMA] [multicast] [priority N]``.

    ``protocol`` ``None`` is ``dynamic`` (the hub's tunnel address is learnt).
    ``nbma`` is an address or an FQDN; ``None`` in the classic form, where
    ``ip nhrp map PROTO NBMA`` supplies it.
    """

    protocol: IPv4Address | None
    nbma: IPv4Address | str | None = None
    multicast: bool = False
    priority: int | None = None


@dataclass(frozen=True)
class NhrpMap:
    """``ip nhrp map PROTO NBMA``: a static protocol-to-NBMA mapping."""

    protocol: IPv4Address
    nbma: IPv4Address


@dataclass(frozen=True)
class TunnelInterface:
    """``interface TunnelN``: the mGRE tunnel with its NHRP, OSPF and protection."""

    number: int
    description: str | None = None
    address: IPv4Interface | None = None
    mtu: int | None = None
    tcp_adjust_mss: int | None = None
    source: IPv4Address | str | None = None
    multipoint: bool = False
    key: int | None = None
    nhrp_authentication: str | None = field(default=None, repr=False)  # a secret, likewise
    nhrp_network_id: int | None = None
    nhrp_holdtime: int | None = None
    nhrp_maps: tuple[NhrpMap, ...] = ()
    nhrp_map_multicast_dynamic: bool = False
    nhrp_map_multicast: tuple[IPv4Address, ...] = ()
    nhrp_nhs: tuple[NhrpNhs, ...] = ()
    nhrp_registration_no_unique: bool | None = None
    nhrp_redirect: bool = False
    nhrp_shortcut: bool = False
    ospf_network: OspfNetworkType | None = None
    ospf_priority: int | None = None
    ospf_hello_interval: int | None = None
    ospf_dead_interval: int | None = None
    ospf_mtu_ignore: bool | None = None
    protection_profile: str | None = None

    @property
    def name(self) -> str:
        """``TunnelN``, the name in the configuration."""
        return f"{TUNNEL_PREFIX}{self.number}"

    @property
    def linux_name(self) -> str:
        """``dmvpnN``, the Linux link (and FRR interface) name."""
        return linux_name(self.number)


# --- routing and authorization -----------------------------------------------------------


@dataclass(frozen=True)
class OspfNetwork:
    """``network A.B.C.D W.W.W.W area AREA``; ``area`` as written (decimal or dotted)."""

    prefix: IPv4Network
    area: str


@dataclass(frozen=True)
class Ospf:
    """``router ospf [PID]``. The process id is local to the file; FRR gets ``router ospf``."""

    pid: int | None = None
    router_id: IPv4Address | None = None
    networks: tuple[OspfNetwork, ...] = ()
    passive_interfaces: tuple[str, ...] = ()
    spf_throttle: tuple[int, int, int] | None = None
    lsa_throttle: int | None = None
    lsa_arrival: int | None = None


@dataclass(frozen=True)
class AuthorizedIdentity:
    """``identity IKE-ID allow PREFIX...``: what an IKE identity may claim (psk-map)."""

    identity: str
    prefixes: tuple[IPv4Network, ...]


@dataclass(frozen=True)
class Authorization:
    """``frrdmvpn authorization MODE``: binding authorization (core.authorize.Policy)."""

    mode: PolicyMode
    identities: tuple[AuthorizedIdentity, ...] = ()


@dataclass(frozen=True)
class Config:
    """A whole ``frrdmvpn.conf``."""

    hostname: str | None = None
    trustpoints: tuple[Trustpoint, ...] = ()
    ikev2_proposals: tuple[Ikev2Proposal, ...] = ()
    ikev2_keyrings: tuple[Ikev2Keyring, ...] = ()
    ikev2_profiles: tuple[Ikev2Profile, ...] = ()
    transform_sets: tuple[TransformSet, ...] = ()
    ipsec_profiles: tuple[IpsecProfile, ...] = ()
    interfaces: tuple[TunnelInterface, ...] = ()
    ospf: Ospf | None = None
    authorization: Authorization | None = None

    def interface(self, name: str) -> TunnelInterface | None:
        """The tunnel called ``name`` (``Tunnel0``), if configured."""
        return next((i for i in self.interfaces if i.name == name), None)

    def ipsec_profile(self, name: str) -> IpsecProfile | None:
        return next((p for p in self.ipsec_profiles if p.name == name), None)

    def ikev2_profile(self, name: str) -> Ikev2Profile | None:
        return next((p for p in self.ikev2_profiles if p.name == name), None)

    def keyring(self, name: str) -> Ikev2Keyring | None:
        return next((k for k in self.ikev2_keyrings if k.name == name), None)

    def transform_set(self, name: str) -> TransformSet | None:
        return next((t for t in self.transform_sets if t.name == name), None)

    def trustpoint(self, name: str) -> Trustpoint | None:
        return next((t for t in self.trustpoints if t.name == name), None)

    def ikev2_profiles_in_use(self) -> list[Ikev2Profile]:
        """The IKEv2 profiles of the IPsec profiles protecting a tunnel, in tunnel order."""
        out: list[Ikev2Profile] = []
        for tunnel in self.interfaces:
            ipsec = self.ipsec_profile(tunnel.protection_profile or "")
            ikev2 = None if ipsec is None else self.ikev2_profile(ipsec.ikev2_profile or "")
            if ikev2 is not None and ikev2 not in out:
                out.append(ikev2)
        return out
