"""strongSwan (charon 5.9.8) VICI messages for the configuration, and their changes. Pure.

Shapes, as the ``vici`` Python package sends them (values are strings, lists of strings
or nested sections; charon parses numbers, times and booleans from strings):

``load-conn`` — one connection per IPsec profile a tunnel is protected with, named after
the profile (nhrpd's ``tunnel protection vici profile NAME`` names its CHILD_SA too)::

    {NAME: {"version": "2", "local_addrs": [NBMA], "remote_addrs": ["%any"],
            "proposals": [IKE...], "dpd_delay": "10s", "rekey_time": "86400s",
            "local": {"auth": "psk"|"pubkey", "id": ID, "certs": [CERTIFICATE]},
            "remote": {"auth": "psk"|"pubkey", "id": ID, "cacerts": [CA CERTIFICATE]},
            "children": {NAME: {"mode": "transport", "local_ts": ["dynamic[gre]"],
                                "remote_ts": ["dynamic[gre]"], "esp_proposals": [ESP...],
                                "start_action": "trap", "dpd_action": "trap", "reqid": "1",
                                "rekey_time": "3600s"}}}}

A wildcard transport-mode trap (``remote_addrs`` ``%any``, ``start_action``/``dpd_action``
``trap``): outbound GRE to a peer without an SA triggers IKE instead of leaving in clear;
``reqid`` 1 for every GRE child (see the comment in ``lab.topology.swanctl_conf``).
Optional keys appear only when configured. ``certs``/``cacerts`` carry the contents (PEM or
DER) of the trustpoint's files, which the caller reads (:func:`trustpoint_files` lists them)
and passes in ``files``: charon opens no path of the configuration.

``load-shared`` — one per keyring peer with a key, id ``frrdmvpn-KEYRING-PEER``::

    {"id": ID, "type": "IKE", "data": PSK, "owners": [IKE-ID...]}   # owners: if any

``unload-conn`` ``{"name": NAME}``, ``unload-shared`` ``{"id": ID}``; private keys are
loaded by the caller from the listed files with :func:`load_key_message`.

Identities: an address as is (``198.51.100.1``), a masked address as a subnet identity
(``198.51.100.0/24``, which charon matches against address identities), an FQDN as
``fqdn:NAME``; ``0.0.0.0`` (and ``address 0.0.0.0 0.0.0.0``) means any: no ``id``/owner.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from types import MappingProxyType
from typing import TypeAlias

from frrdmvpn.config import defaults
from frrdmvpn.config.kernel import NO_ADDRESSES, local_address
from frrdmvpn.config.model import (
    AddressIdentity,
    AuthMethod,
    Config,
    IkeIdentity,
    Ikev2Profile,
    Ikev2Proposal,
    IpsecProfile,
    TransformSet,
)

ViciValue: TypeAlias = "str | list[str] | list[bytes] | dict[str, ViciValue]"
ViciMessage: TypeAlias = dict[str, ViciValue]

IKE_ENCRYPTION = {
    "aes-cbc-128": "aes128",
    "aes-cbc-192": "aes192",
    "aes-cbc-256": "aes256",
    "aes-gcm-128": "aes128gcm16",
    "aes-gcm-256": "aes256gcm16",
}
AEAD = frozenset({"aes-gcm-128", "aes-gcm-256"})
INTEGRITY = {
    "md5": "md5",
    "sha1": "sha1",
    "sha256": "sha256",
    "sha384": "sha384",
    "sha512": "sha512",
}
DH_GROUPS = {
    1: "modp768",
    2: "modp1024",
    5: "modp1536",
    14: "modp2048",
    15: "modp3072",
    16: "modp4096",
    19: "ecp256",
    20: "ecp384",
    21: "ecp521",
    24: "modp2048s256",
    31: "x25519",
}
ESP_ENCRYPTION = {
    ("esp-aes", None): "aes128",
    ("esp-aes", 128): "aes128",
    ("esp-aes", 192): "aes192",
    ("esp-aes", 256): "aes256",
    ("esp-gcm", None): "aes128gcm16",
    ("esp-gcm", 128): "aes128gcm16",
    ("esp-gcm", 192): "aes192gcm16",
    ("esp-gcm", 256): "aes256gcm16",
    ("esp-null", None): "null",
}
ESP_INTEGRITY = {
    "esp-md5-hmac": "md5",
    "esp-sha-hmac": "sha1",
    "esp-sha256-hmac": "sha256",
    "esp-sha384-hmac": "sha384",
    "esp-sha512-hmac": "sha512",
}
GRE_SELECTOR = "dynamic[gre]"
PUBKEY = (AuthMethod.RSA_SIG, AuthMethod.ECDSA_SIG)
SHARED_PREFIX = "frrdmvpn"


class SourceAddressError(LookupError):
    """``tunnel source IFNAME`` whose address the caller did not supply."""


def ike_proposals(proposal: Ikev2Proposal) -> list[str]:
    """charon proposal strings: one for AEAD algorithms, one for the others (they cannot mix).

    ``encryption aes-cbc-256`` / ``integrity sha256`` / ``group 14`` -> ``aes256-sha256-modp2048``.
    """
    groups = [DH_GROUPS[g] for g in proposal.groups]
    prfs = [f"prf{INTEGRITY[p]}" for p in proposal.prf]
    out = []
    aead = [IKE_ENCRYPTION[e] for e in proposal.encryption if e in AEAD]
    classic = [IKE_ENCRYPTION[e] for e in proposal.encryption if e not in AEAD]
    if aead:
        out.append("-".join(aead + prfs + groups))
    if classic:
        out.append("-".join(classic + [INTEGRITY[i] for i in proposal.integrity] + prfs + groups))
    return out


def esp_proposal(transform_set: TransformSet, pfs_group: int | None = None) -> str:
    """``esp-aes 256 esp-sha256-hmac`` -> ``aes256-sha256`` (+ ``-modp2048`` with PFS 14)."""
    parts = [ESP_ENCRYPTION[(transform_set.encryption, transform_set.key_bits)]]
    if transform_set.integrity is not None:
        parts.append(ESP_INTEGRITY[transform_set.integrity])
    if pfs_group is not None:
        parts.append(DH_GROUPS[pfs_group])
    return "-".join(parts)


def ike_id(identity: IkeIdentity | IPv4Network) -> str | None:
    """charon's identity string, ``None`` for "any"."""
    if isinstance(identity, IPv4Network):
        if identity.prefixlen == 0:
            return None
        return str(identity.network_address) if identity.prefixlen == 32 else str(identity)
    if isinstance(identity, AddressIdentity):
        if int(identity.address) == 0:
            return None
        if identity.mask is None or int(identity.mask) == 0xFFFFFFFF:
            return str(identity.address)
        return str(IPv4Network(f"{identity.address}/{identity.mask}", strict=False))
    return f"fqdn:*.{identity.fqdn}" if identity.domain else f"fqdn:{identity.fqdn}"


def printed_ike_id(rendered: str) -> str:
    """An identity :func:`ike_id` rendered as charon prints it (never with ``fqdn:``)."""
    return rendered.removeprefix("fqdn:")


@dataclass(frozen=True)
class LocalEnd:
    """One IKE_SA as charon lists it: its connection, and this end's address and identity."""

    uniqueid: int
    conn: str
    host: str
    identity: str


def _auth(
    config: Config,
    profile: Ikev2Profile,
    local: bool,
    address: IPv4Address,
    files: Mapping[str, bytes],
) -> dict[str, ViciValue]:
    method = profile.authentication_local if local else profile.authentication_remote
    pubkey = method in PUBKEY
    section: dict[str, ViciValue] = {"auth": "pubkey" if pubkey else "psk"}
    identity: str | None
    if local:
        # Without ``identity local``: the NBMA address, with pre-shared keys and with
        # certificates alike (charon 5.9's default; 6.0 would take a certificate's subject
        # DN, so a node would present another identity after an upgrade to Debian 13).
        explicit = None if profile.identity_local is None else ike_id(profile.identity_local)
        identity = explicit or str(address)
    else:
        only = profile.match_remote[0] if len(profile.match_remote) == 1 else None
        identity = None if only is None else ike_id(only)
    if identity is not None:
        section["id"] = identity
    trustpoint = None if profile.trustpoint is None else config.trustpoint(profile.trustpoint)
    if pubkey and trustpoint is not None:
        path = trustpoint.certificate if local else trustpoint.ca_certificate
        data = None if path is None else files.get(path)
        if data is not None:
            section["certs" if local else "cacerts"] = [data]
    return section


def _conn(
    config: Config,
    profile: IpsecProfile,
    addresses: list[IPv4Address],
    files: Mapping[str, bytes],
) -> ViciMessage | None:
    ikev2 = None if profile.ikev2_profile is None else config.ikev2_profile(profile.ikev2_profile)
    if ikev2 is None:
        return None
    proposals = [p for prop in config.ikev2_proposals for p in ike_proposals(prop)]
    ike: dict[str, ViciValue] = {
        "version": "2",
        "local_addrs": [str(a) for a in addresses],
        "remote_addrs": ["%any"],
        "proposals": proposals or ["default"],
    }
    if ikev2.dpd is not None:
        ike["dpd_delay"] = f"{ikev2.dpd.interval}s"
    if ikev2.lifetime is not None:
        ike["rekey_time"] = f"{ikev2.lifetime}s"
    ike["local"] = _auth(config, ikev2, True, addresses[0], files)
    ike["remote"] = _auth(config, ikev2, False, addresses[0], files)
    sets = [t for name in profile.transform_sets if (t := config.transform_set(name))]
    child: dict[str, ViciValue] = {
        "mode": sets[0].mode.value if sets else "transport",
        "local_ts": [GRE_SELECTOR],
        "remote_ts": [GRE_SELECTOR],
        "esp_proposals": [esp_proposal(t, profile.pfs_group) for t in sets] or ["default"],
        "start_action": "trap",
        "dpd_action": "trap",
        "reqid": str(defaults.CHILD_REQID),
    }
    if profile.lifetime_seconds is not None:
        child["rekey_time"] = f"{profile.lifetime_seconds}s"
    ike["children"] = {profile.name: child}
    return {profile.name: ike}


def _empty() -> Mapping[str, ViciMessage]:
    return MappingProxyType({})


@dataclass(frozen=True)
class SwanState:
    """What frrdmvpn wants loaded in charon: connections, shared keys, private key files."""

    conns: Mapping[str, ViciMessage] = field(default_factory=_empty)
    shared: Mapping[str, ViciMessage] = field(default_factory=_empty)
    private_keys: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {
            "load-conn": [self.conns[name] for name in self.conns],
            "load-shared": [self.shared[i] for i in self.shared],
            "private-keys": list(self.private_keys),
        }


EMPTY = SwanState()


def desired_swan(
    config: Config,
    source_addresses: Mapping[str, IPv4Address] = NO_ADDRESSES,
    files: Mapping[str, bytes] = MappingProxyType({}),
) -> SwanState:
    """The charon state for ``config`` (assumed valid); ``files`` holds the contents of
    :func:`trustpoint_files` by path (a certificate missing there is left out).

    Raises :class:`SourceAddressError` for a protected ``tunnel source IFNAME`` whose
    address is not in ``source_addresses``.
    """
    addresses: dict[str, list[IPv4Address]] = {}
    for tunnel in config.interfaces:
        if tunnel.protection_profile is None:
            continue
        local = local_address(tunnel, source_addresses)
        if local is None:
            raise SourceAddressError(
                f"{tunnel.name}: the address of tunnel source {tunnel.source} is needed "
                "for the IKE local address"
            )
        found = addresses.setdefault(tunnel.protection_profile, [])
        if local not in found:
            found.append(local)
    conns: dict[str, ViciMessage] = {}
    for name, locals_ in addresses.items():
        profile = config.ipsec_profile(name)
        conn = None if profile is None else _conn(config, profile, locals_, files)
        if conn is not None:
            conns[name] = conn
    ikev2_used = config.ikev2_profiles_in_use()
    return SwanState(
        MappingProxyType(conns),
        MappingProxyType(_shared(config, ikev2_used)),
        _private_keys(config, ikev2_used),
    )


def connection_names(config: Config) -> frozenset[str]:
    """The names of the connections :func:`desired_swan` loads for ``config``: each IPsec
    profile a tunnel is protected with (its CHILD_SA and nhrpd's ``tunnel protection vici
    profile`` have the same name)."""
    return frozenset(
        t.protection_profile
        for t in config.interfaces
        if t.protection_profile is not None and config.ipsec_profile(t.protection_profile)
    )


def _shared(config: Config, profiles: list[Ikev2Profile]) -> dict[str, ViciMessage]:
    out: dict[str, ViciMessage] = {}
    for profile in profiles:
        psk = AuthMethod.PRE_SHARE in (profile.authentication_local, profile.authentication_remote)
        keyring = None if profile.keyring is None else config.keyring(profile.keyring)
        if not psk or keyring is None:
            continue
        for peer in keyring.peers:
            if peer.pre_shared_key is None:
                continue
            owner = None
            if peer.identity is not None:
                owner = ike_id(peer.identity)
            elif peer.address is not None:
                owner = ike_id(peer.address)
            message: ViciMessage = {
                "id": f"{SHARED_PREFIX}-{keyring.name}-{peer.name}",
                "type": "IKE",
                "data": peer.pre_shared_key,
            }
            if owner is not None:
                message["owners"] = [owner]
            out[str(message["id"])] = message
    return out


@dataclass(frozen=True)
class TrustpointFile:
    """A file of a trustpoint that charon needs: where it is configured, its path, whether
    it is secret (the private key)."""

    trustpoint: str
    keyword: str  # certificate, private-key, ca-certificate
    path: str
    secret: bool = False


def trustpoint_files(config: Config) -> tuple[TrustpointFile, ...]:
    """The certificate and key files :func:`desired_swan` and the private keys need (those of
    the trustpoints of the IKEv2 profiles in use, for their certificate methods)."""
    out: list[TrustpointFile] = []
    for profile in config.ikev2_profiles_in_use():
        tp = None if profile.trustpoint is None else config.trustpoint(profile.trustpoint)
        if tp is None:
            continue
        wanted: list[tuple[str | None, str]] = []
        if profile.authentication_local in PUBKEY:
            wanted += [(tp.certificate, "certificate"), (tp.private_key, "private-key")]
        if profile.authentication_remote in PUBKEY:
            wanted.append((tp.ca_certificate, "ca-certificate"))
        for path, keyword in wanted:
            needed = (
                None if path is None else TrustpointFile(tp.name, keyword, path, "key" in keyword)
            )
            if needed is not None and needed not in out:
                out.append(needed)
    return tuple(out)


def _private_keys(config: Config, profiles: list[Ikev2Profile]) -> tuple[str, ...]:
    paths: list[str] = []
    for profile in profiles:
        if profile.authentication_local not in PUBKEY:
            continue
        tp = None if profile.trustpoint is None else config.trustpoint(profile.trustpoint)
        if tp is not None and tp.private_key is not None and tp.private_key not in paths:
            paths.append(tp.private_key)
    return tuple(paths)


@dataclass(frozen=True)
class SwanChanges:
    """What to send to charon to go from one state to another (load replaces same names)."""

    load_conns: tuple[ViciMessage, ...] = ()
    unload_conns: tuple[str, ...] = ()
    load_shared: tuple[ViciMessage, ...] = ()
    unload_shared: tuple[str, ...] = ()
    load_keys: tuple[str, ...] = ()
    unload_keys: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not any(
            (
                self.load_conns,
                self.unload_conns,
                self.load_shared,
                self.unload_shared,
                self.load_keys,
                self.unload_keys,
            )
        )

    def unload_conn_messages(self) -> list[ViciMessage]:
        return [{"name": name} for name in self.unload_conns]

    def unload_shared_messages(self) -> list[ViciMessage]:
        return [{"id": ident} for ident in self.unload_shared]


def diff_swan(old: SwanState, new: SwanState) -> SwanChanges:
    """The changes from ``old`` to ``new`` (use :data:`EMPTY` for a first apply).

    Unchanged connections and keys are not reloaded; removed ones are unloaded. The order
    to send them in: load keys and shared secrets, load connections, then unload
    connections, shared secrets and keys.
    """
    return SwanChanges(
        load_conns=tuple(m for n, m in new.conns.items() if old.conns.get(n) != m),
        unload_conns=tuple(n for n in old.conns if n not in new.conns),
        load_shared=tuple(m for i, m in new.shared.items() if old.shared.get(i) != m),
        unload_shared=tuple(i for i in old.shared if i not in new.shared),
        load_keys=tuple(p for p in new.private_keys if p not in old.private_keys),
        unload_keys=tuple(p for p in old.private_keys if p not in new.private_keys),
    )


def load_key_message(data: bytes, key_type: str = "any") -> dict[str, str | bytes]:
    """``load-key`` for the PEM/DER ``data`` of one of :attr:`SwanState.private_keys`."""
    return {"type": key_type, "data": data}
