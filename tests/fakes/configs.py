"""Generated configurations (hypothesis strategies) of the language."""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Protocol, TypeVar

from hypothesis import strategies as st

from frrdmvpn.config import commands as cmd
from frrdmvpn.config.canonical_text import netmask
from frrdmvpn.config.model import (
    AddressIdentity,
    AuthMethod,
    Authorization,
    AuthorizedIdentity,
    Config,
    Dpd,
    DpdMode,
    FqdnIdentity,
    IkeIdentity,
    Ikev2Keyring,
    Ikev2Profile,
    Ikev2Proposal,
    IpsecMode,
    IpsecProfile,
    KeyringPeer,
    NhrpMap,
    NhrpNhs,
    Ospf,
    OspfNetwork,
    OspfNetworkType,
    TransformSet,
    Trustpoint,
    TunnelInterface,
)
from frrdmvpn.core.authorize import PolicyMode


class Named(Protocol):
    @property
    def name(self) -> str: ...


T = TypeVar("T")

N = TypeVar("N", bound=Named)

names = st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,9}", fullmatch=True)

words = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9.@_!#-]{0,15}", fullmatch=True)

addresses = st.integers(0, 2**32 - 1).map(IPv4Address)

hosts = st.integers(1, 2**32 - 2).map(IPv4Address)

networks = st.builds(
    lambda a, n: IPv4Network(f"{a}/{n}", strict=False), addresses, st.integers(0, 32)
)

fqdns = st.from_regex(r"[a-z][a-z0-9-]{0,8}[a-z0-9](\.[a-z][a-z0-9]{0,5}){0,2}", fullmatch=True)

ifnames = st.from_regex(r"(eth|lan|br|wan)[0-9]{1,3}(\.[0-9]{1,4})?", fullmatch=True)

paths = st.from_regex(r"/[a-z0-9_]{1,8}(/[a-z0-9_.-]{1,8}){0,3}", fullmatch=True)

descriptions = st.from_regex(r"[A-Za-z0-9(][A-Za-z0-9 ()_.,:-]{0,20}[A-Za-z0-9)]", fullmatch=True)


def opt(strategy: st.SearchStrategy[T]) -> st.SearchStrategy[T | None]:
    return st.none() | strategy


def unique(
    strategy: st.SearchStrategy[T],
    key: Callable[[T], object] | None = None,
    *,
    min_size: int = 0,
    max_size: int | None = None,
) -> st.SearchStrategy[tuple[T, ...]]:
    if key is None:
        items = st.lists(strategy, unique=True, min_size=min_size, max_size=max_size)
    else:
        items = st.lists(strategy, unique_by=key, min_size=min_size, max_size=max_size)
    return items.map(tuple)


nhs = st.one_of(
    st.builds(NhrpNhs, hosts, opt(hosts | fqdns), st.booleans(), opt(st.integers(0, 255))),
    st.builds(NhrpNhs, st.none(), hosts | fqdns, st.booleans(), opt(st.integers(0, 255))),
)


def _nhs_key(n: NhrpNhs) -> object:
    return n.protocol if n.protocol is not None else ("dynamic", n.nbma)


tunnels = st.builds(
    TunnelInterface,
    number=st.integers(0, 2147483647),
    description=opt(descriptions),
    address=opt(st.builds(lambda a, n: IPv4Interface(f"{a}/{n}"), addresses, st.integers(0, 32))),
    mtu=opt(st.integers(576, 9000)),
    tcp_adjust_mss=opt(st.integers(500, 1460)),
    source=opt(hosts | ifnames),
    multipoint=st.booleans(),
    key=opt(st.integers(0, 2**32 - 1)),
    nhrp_authentication=opt(words),
    nhrp_network_id=opt(st.integers(1, 2**32 - 1)),
    nhrp_holdtime=opt(st.integers(1, 65000)),
    nhrp_maps=unique(st.builds(NhrpMap, hosts, hosts), max_size=3),
    nhrp_map_multicast_dynamic=st.booleans(),
    nhrp_map_multicast=unique(hosts, max_size=3),
    nhrp_nhs=unique(nhs, _nhs_key, max_size=3),
    nhrp_registration_no_unique=opt(st.booleans()),
    nhrp_redirect=st.booleans(),
    nhrp_shortcut=st.booleans(),
    ospf_network=opt(st.sampled_from(OspfNetworkType)),
    ospf_priority=opt(st.integers(0, 255)),
    ospf_hello_interval=opt(st.integers(1, 65535)),
    ospf_dead_interval=opt(st.integers(1, 65535)),
    ospf_mtu_ignore=opt(st.booleans()),
    protection_profile=opt(names),
)

remote_identities: st.SearchStrategy[IkeIdentity] = st.one_of(
    st.builds(AddressIdentity, addresses, opt(st.integers(0, 32).map(netmask))),
    st.builds(FqdnIdentity, fqdns, st.booleans()),
)

local_identities: st.SearchStrategy[IkeIdentity] = st.one_of(
    st.builds(AddressIdentity, addresses), st.builds(FqdnIdentity, fqdns)
)

proposals = st.builds(
    Ikev2Proposal,
    name=names,
    encryption=unique(st.sampled_from(cmd.IKE_ENCRYPTION)),
    integrity=unique(st.sampled_from(cmd.IKE_INTEGRITY)),
    prf=unique(st.sampled_from(cmd.IKE_PRF)),
    groups=unique(st.sampled_from(cmd.DH_GROUPS)),
)

keyrings = st.builds(
    Ikev2Keyring,
    names,
    unique(
        st.builds(KeyringPeer, names, opt(networks), opt(local_identities), opt(words)),
        lambda p: p.name,
        max_size=3,
    ),
)

ikev2_profiles = st.builds(
    Ikev2Profile,
    name=names,
    match_remote=unique(remote_identities, max_size=2),
    identity_local=opt(local_identities),
    authentication_local=opt(st.sampled_from(AuthMethod)),
    authentication_remote=opt(st.sampled_from(AuthMethod)),
    keyring=opt(names),
    trustpoint=opt(names),
    dpd=opt(st.builds(Dpd, st.integers(10, 3600), st.integers(2, 60), st.sampled_from(DpdMode))),
    lifetime=opt(st.integers(120, 86400)),
)

trustpoints = st.builds(Trustpoint, names, opt(paths), opt(paths), opt(paths))

transform_sets = st.builds(
    TransformSet,
    names,
    st.sampled_from(cmd.ESP_ENCRYPTION),
    opt(st.sampled_from((128, 192, 256))),
    opt(st.sampled_from(cmd.ESP_INTEGRITY)),
    st.sampled_from(IpsecMode),
)

ipsec_profiles = st.builds(
    IpsecProfile,
    names,
    unique(names, max_size=3),
    opt(names),
    opt(st.sampled_from(cmd.DH_GROUPS)),
    opt(st.integers(120, 86400)),
)

areas = st.integers(0, 2**32 - 1).map(str) | addresses.map(str)

ospfs = st.builds(
    Ospf,
    pid=opt(st.integers(1, 65535)),
    router_id=opt(addresses),
    networks=unique(st.builds(OspfNetwork, networks, areas), lambda n: n.prefix, max_size=4),
    passive_interfaces=unique(ifnames | st.integers(0, 99).map(lambda n: f"Tunnel{n}"), max_size=3),
    spf_throttle=opt(st.tuples(*(st.integers(0, 600000),) * 3)),
    lsa_throttle=opt(st.integers(0, 5000)),
    lsa_arrival=opt(st.integers(0, 600000)),
)

authorizations = st.builds(
    Authorization,
    st.sampled_from(PolicyMode),
    unique(
        st.builds(AuthorizedIdentity, words, unique(networks, min_size=1, max_size=3)),
        lambda e: e.identity,
        max_size=3,
    ),
)


def by_name(strategy: st.SearchStrategy[N]) -> st.SearchStrategy[tuple[N, ...]]:
    return unique(strategy, lambda o: o.name, max_size=2)


configs = st.builds(
    Config,
    hostname=opt(names),
    trustpoints=by_name(trustpoints),
    ikev2_proposals=by_name(proposals),
    ikev2_keyrings=by_name(keyrings),
    ikev2_profiles=by_name(ikev2_profiles),
    transform_sets=by_name(transform_sets),
    ipsec_profiles=by_name(ipsec_profiles),
    interfaces=unique(tunnels, lambda t: t.number, max_size=2),
    ospf=opt(ospfs),
    authorization=opt(authorizations),
)
