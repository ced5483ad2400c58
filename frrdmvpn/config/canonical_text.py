"""The canonical text of a :class:`~frrdmvpn.config.model.Config`.

Sections come in a fixed order (hostname, trustpoints, IKEv2 proposals, keyrings, IKEv2
profiles, transform-sets, IPsec profiles, tunnels, ``router ospf``, authorization), each
closed by ``!``; items keep their model order; every statement is one line, one space of
indentation per sub-mode level. ``parse(render(m)) == m`` and ``render(parse(t))`` is
canonical (rendering it again gives the same text).
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from frrdmvpn.config.model import (
    AddressIdentity,
    Authorization,
    AuthorizedIdentity,
    Config,
    IkeIdentity,
    Ikev2Keyring,
    Ikev2Profile,
    Ikev2Proposal,
    IpsecProfile,
    KeyringPeer,
    NhrpMap,
    NhrpNhs,
    Ospf,
    OspfNetwork,
    TransformSet,
    Trustpoint,
    TunnelInterface,
)


def netmask(prefixlen: int) -> IPv4Address:
    return IPv4Network(f"0.0.0.0/{prefixlen}").netmask


def wildcard(prefixlen: int) -> IPv4Address:
    return IPv4Network(f"0.0.0.0/{prefixlen}").hostmask


# --- one line per statement (also the source-map keys of list items) --------------------


def identity_words(identity: IkeIdentity) -> str:
    if isinstance(identity, AddressIdentity):
        mask = "" if identity.mask is None else f" {identity.mask}"
        return f"address {identity.address}{mask}"
    return f"fqdn {'domain ' if identity.domain else ''}{identity.fqdn}"


def match_remote_line(identity: IkeIdentity) -> str:
    return f"match identity remote {identity_words(identity)}"


def nhs_line(nhs: NhrpNhs) -> str:
    words = ["ip nhrp nhs", "dynamic" if nhs.protocol is None else str(nhs.protocol)]
    if nhs.nbma is not None:
        words.append(f"nbma {nhs.nbma}")
    if nhs.multicast:
        words.append("multicast")
    if nhs.priority is not None:
        words.append(f"priority {nhs.priority}")
    return " ".join(words)


def map_line(entry: NhrpMap) -> str:
    return f"ip nhrp map {entry.protocol} {entry.nbma}"


def map_multicast_line(nbma: IPv4Address | None) -> str:
    return f"ip nhrp map multicast {'dynamic' if nbma is None else nbma}"


def network_line(network: OspfNetwork) -> str:
    prefix = network.prefix
    return f"network {prefix.network_address} {wildcard(prefix.prefixlen)} area {network.area}"


def passive_line(ifname: str) -> str:
    return f"passive-interface {ifname}"


def authorized_line(entry: AuthorizedIdentity) -> str:
    return f"identity {entry.identity} allow " + " ".join(str(p) for p in entry.prefixes)


def keyring_address_words(network: IPv4Network) -> str:
    address = network.network_address
    if network.prefixlen == 32 and int(address) != 0:
        return f"address {address}"
    return f"address {address} {network.netmask}"


def transform_words(ts: TransformSet) -> str:
    words = [ts.encryption]
    if ts.key_bits is not None:
        words.append(str(ts.key_bits))
    if ts.integrity is not None:
        words.append(ts.integrity)
    return " ".join(words)


def peer_line(peer: KeyringPeer) -> str:
    return f"peer {peer.name}"


# --- blocks ------------------------------------------------------------------------------


def _trustpoint(tp: Trustpoint) -> list[str]:
    lines = [f"crypto pki trustpoint {tp.name}"]
    if tp.certificate is not None:
        lines.append(f" certificate {tp.certificate}")
    if tp.private_key is not None:
        lines.append(f" private-key {tp.private_key}")
    if tp.ca_certificate is not None:
        lines.append(f" ca-certificate {tp.ca_certificate}")
    return lines


def _proposal(p: Ikev2Proposal) -> list[str]:
    lines = [f"crypto ikev2 proposal {p.name}"]
    for keyword, values in (
        ("encryption", p.encryption),
        ("integrity", p.integrity),
        ("prf", p.prf),
    ):
        if values:
            lines.append(f" {keyword} " + " ".join(values))
    if p.groups:
        lines.append(" group " + " ".join(str(g) for g in p.groups))
    return lines


def _keyring(k: Ikev2Keyring) -> list[str]:
    lines = [f"crypto ikev2 keyring {k.name}"]
    for peer in k.peers:
        lines.append(f" {peer_line(peer)}")
        if peer.address is not None:
            lines.append(f"  {keyring_address_words(peer.address)}")
        if peer.identity is not None:
            lines.append(f"  identity {identity_words(peer.identity)}")
        if peer.pre_shared_key is not None:
            lines.append(f"  pre-shared-key {peer.pre_shared_key}")
    return lines


def _ikev2_profile(p: Ikev2Profile) -> list[str]:
    lines = [f"crypto ikev2 profile {p.name}"]
    lines += [f" {match_remote_line(i)}" for i in p.match_remote]
    if p.identity_local is not None:
        lines.append(f" identity local {identity_words(p.identity_local)}")
    if p.authentication_local is not None:
        lines.append(f" authentication local {p.authentication_local.value}")
    if p.authentication_remote is not None:
        lines.append(f" authentication remote {p.authentication_remote.value}")
    if p.keyring is not None:
        lines.append(f" keyring local {p.keyring}")
    if p.trustpoint is not None:
        lines.append(f" pki trustpoint {p.trustpoint}")
    if p.dpd is not None:
        lines.append(f" dpd {p.dpd.interval} {p.dpd.retries} {p.dpd.mode.value}")
    if p.lifetime is not None:
        lines.append(f" lifetime {p.lifetime}")
    return lines


def _transform_set(ts: TransformSet) -> list[str]:
    return [
        f"crypto ipsec transform-set {ts.name} {transform_words(ts)}",
        f" mode {ts.mode.value}",
    ]


def _ipsec_profile(p: IpsecProfile) -> list[str]:
    lines = [f"crypto ipsec profile {p.name}"]
    if p.transform_sets:
        lines.append(" set transform-set " + " ".join(p.transform_sets))
    if p.ikev2_profile is not None:
        lines.append(f" set ikev2-profile {p.ikev2_profile}")
    if p.pfs_group is not None:
        lines.append(f" set pfs group{p.pfs_group}")
    if p.lifetime_seconds is not None:
        lines.append(f" set security-association lifetime seconds {p.lifetime_seconds}")
    return lines


def _flag(value: bool | None, line: str) -> list[str]:
    if value is None:
        return []
    return [line if value else f"no {line}"]


def interface_lines(i: TunnelInterface) -> list[str]:
    """The statements of a tunnel, unindented, in canonical order (no header)."""
    out: list[str] = []
    if i.description is not None:
        out.append(f"description {i.description}")
    if i.address is not None:
        out.append(f"ip address {i.address.ip} {i.address.netmask}")
    if i.mtu is not None:
        out.append(f"ip mtu {i.mtu}")
    if i.tcp_adjust_mss is not None:
        out.append(f"ip tcp adjust-mss {i.tcp_adjust_mss}")
    if i.nhrp_authentication is not None:
        out.append(f"ip nhrp authentication {i.nhrp_authentication}")
    if i.nhrp_network_id is not None:
        out.append(f"ip nhrp network-id {i.nhrp_network_id}")
    if i.nhrp_holdtime is not None:
        out.append(f"ip nhrp holdtime {i.nhrp_holdtime}")
    out += [map_line(m) for m in i.nhrp_maps]
    if i.nhrp_map_multicast_dynamic:
        out.append(map_multicast_line(None))
    out += [map_multicast_line(a) for a in i.nhrp_map_multicast]
    out += [nhs_line(n) for n in i.nhrp_nhs]
    out += _flag(i.nhrp_registration_no_unique, "ip nhrp registration no-unique")
    if i.nhrp_redirect:
        out.append("ip nhrp redirect")
    if i.nhrp_shortcut:
        out.append("ip nhrp shortcut")
    if i.ospf_network is not None:
        out.append(f"ip ospf network {i.ospf_network.value}")
    if i.ospf_priority is not None:
        out.append(f"ip ospf priority {i.ospf_priority}")
    if i.ospf_hello_interval is not None:
        out.append(f"ip ospf hello-interval {i.ospf_hello_interval}")
    if i.ospf_dead_interval is not None:
        out.append(f"ip ospf dead-interval {i.ospf_dead_interval}")
    out += _flag(i.ospf_mtu_ignore, "ip ospf mtu-ignore")
    if i.source is not None:
        out.append(f"tunnel source {i.source}")
    if i.multipoint:
        out.append("tunnel mode gre multipoint")
    if i.key is not None:
        out.append(f"tunnel key {i.key}")
    if i.protection_profile is not None:
        out.append(f"tunnel protection ipsec profile {i.protection_profile}")
    return out


def _interface(i: TunnelInterface) -> list[str]:
    return [f"interface {i.name}"] + [f" {line}" for line in interface_lines(i)]


def _ospf(o: Ospf) -> list[str]:
    lines = ["router ospf" + ("" if o.pid is None else f" {o.pid}")]
    if o.router_id is not None:
        lines.append(f" router-id {o.router_id}")
    if o.spf_throttle is not None:
        lines.append(" timers throttle spf " + " ".join(str(v) for v in o.spf_throttle))
    if o.lsa_throttle is not None:
        lines.append(f" timers throttle lsa all {o.lsa_throttle}")
    if o.lsa_arrival is not None:
        lines.append(f" timers lsa arrival {o.lsa_arrival}")
    lines += [f" {passive_line(p)}" for p in o.passive_interfaces]
    lines += [f" {network_line(n)}" for n in o.networks]
    return lines


def _authorization(a: Authorization) -> list[str]:
    lines = [f"frrdmvpn authorization {a.mode.value}"]
    lines += [f" {authorized_line(e)}" for e in a.identities]
    return lines


def blocks(config: Config) -> list[list[str]]:
    """The canonical blocks (lists of lines) of ``config``, in order."""
    out: list[list[str]] = []
    if config.hostname is not None:
        out.append([f"hostname {config.hostname}"])
    out += [_trustpoint(t) for t in config.trustpoints]
    out += [_proposal(p) for p in config.ikev2_proposals]
    out += [_keyring(k) for k in config.ikev2_keyrings]
    out += [_ikev2_profile(p) for p in config.ikev2_profiles]
    out += [_transform_set(t) for t in config.transform_sets]
    out += [_ipsec_profile(p) for p in config.ipsec_profiles]
    out += [_interface(i) for i in config.interfaces]
    if config.ospf is not None:
        out.append(_ospf(config.ospf))
    if config.authorization is not None:
        out.append(_authorization(config.authorization))
    return out


def render(config: Config) -> str:
    """The canonical text of ``config`` (empty for an empty config)."""
    return "".join("\n".join(block) + "\n!\n" for block in blocks(config))
