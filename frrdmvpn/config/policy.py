"""The binding-authorization policy (:class:`frrdmvpn.core.authorize.Policy`) of a config.

``frrdmvpn authorization psk-map|certificate|any-authenticated`` with ``identity ID allow
PREFIX...`` lines (psk-map) gives the mode and map; the tunnel subnet is the network of the
tunnel's ``ip address``. Without the block, a protected tunnel gets ``any-authenticated``
(any IKE-authenticated peer may claim any address; :mod:`.validate` warns about it).

What ties a psk-map identity to one peer: an address identity is tied at run time to the
address the peer speaks IKE from. Any other identity (FQDN, e-mail, DN, key-id) only by its
pre-shared key: charon authenticates a peer presenting identity ``I`` with every loaded key
whose owner matches ``I`` *or this node's own identity* (a key without owner is for any
identity), so ``I`` is tied to one peer only if no such key for any identity exists and its
own keys are no other keyring peer's. :func:`psk_identity_problems` says, per identity, why
not; validation refuses those, and the policy lets only the others claim (defence in depth).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from frrdmvpn.config.model import (
    AddressIdentity,
    AuthMethod,
    Config,
    FqdnIdentity,
    IkeIdentity,
    KeyringPeer,
)
from frrdmvpn.core.authorize import IPNetwork, Policy, PolicyMode
from frrdmvpn.core.identity import PATTERN_KINDS, Kind, parse

DEFAULT_MODE = PolicyMode.ANY_AUTHENTICATED


def authorization_policy(config: Config) -> Policy | None:
    """The policy for the (first) tunnel with an address; ``None`` without one."""
    tunnel = next((i for i in config.interfaces if i.address is not None), None)
    if tunnel is None or tunnel.address is None:
        return None
    subnet: IPv4Network = tunnel.address.network
    auth = config.authorization
    if auth is None:
        return Policy(DEFAULT_MODE, subnet)
    psk_map: dict[str, frozenset[IPNetwork]] = {}
    own_key: frozenset[str] = frozenset()
    if auth.mode is PolicyMode.PSK_MAP:
        psk_map = {e.identity: frozenset(e.prefixes) for e in auth.identities}
        problems = psk_identity_problems(config)
        keyed = {e.identity for e in auth.identities if _owning(config, e.identity)}
        own_key = frozenset(i for i in keyed if i not in problems and not is_address(i))
    return Policy(auth.mode, subnet, psk_map, own_key)


def is_address(identity: str) -> bool:
    """Whether a psk-map identity is one IP address (tied to the peer's IKE address)."""
    try:
        ipaddress.ip_address(identity)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class LoadedKey:
    """A keyring peer whose key frrdmvpn loads into charon (``load-shared``)."""

    keyring: str
    peer: KeyringPeer

    @property
    def name(self) -> str:
        return f"keyring {self.keyring} peer {self.peer.name}"

    @property
    def owner(self) -> IkeIdentity | IPv4Network | None:
        """charon's owner of the key (``None``: any identity), as :mod:`.swan` loads it."""
        if self.peer.identity is not None:
            return self.peer.identity
        if self.peer.address is None or self.peer.address.prefixlen == 0:
            return None
        return self.peer.address


def loaded_keys(config: Config) -> list[LoadedKey]:
    """The pre-shared keys frrdmvpn loads: those of the keyrings its PSK profiles use."""
    out: list[LoadedKey] = []
    seen: set[str] = set()
    for profile in config.ikev2_profiles_in_use():
        methods = (profile.authentication_local, profile.authentication_remote)
        keyring = config.keyring(profile.keyring or "")
        if AuthMethod.PRE_SHARE not in methods or keyring is None or keyring.name in seen:
            continue
        seen.add(keyring.name)
        out += [LoadedKey(keyring.name, p) for p in keyring.peers if p.pre_shared_key is not None]
    return out


def _local_identities(config: Config) -> tuple[list[IkeIdentity | IPv4Address], bool]:
    """This node's IKE identities on its PSK profiles (charon's "me"), and whether one of
    them is an address validation cannot know (``tunnel source IFNAME``)."""
    found: list[IkeIdentity | IPv4Address] = []
    unknown = False
    for profile in config.ikev2_profiles_in_use():
        if profile.identity_local is not None:
            found.append(profile.identity_local)
            continue
        for tunnel in config.interfaces:
            if isinstance(tunnel.source, IPv4Address):
                found.append(tunnel.source)
            elif tunnel.protection_profile:
                unknown = True
    return found, unknown


def _address_of(local: IkeIdentity | IPv4Address) -> IPv4Address | None:
    if isinstance(local, IPv4Address):
        return local
    return local.address if isinstance(local, AddressIdentity) else None


def _is_mine(owner: IkeIdentity | IPv4Network, local: IkeIdentity | IPv4Address) -> bool:
    """Whether charon matches this node's identity ``local`` against the key ``owner``."""
    address = _address_of(local)
    if isinstance(owner, IPv4Network):
        return address is not None and address in owner
    if isinstance(owner, AddressIdentity):
        return address is not None and address == owner.address
    return isinstance(local, FqdnIdentity) and local.fqdn.lower() == owner.fqdn.lower()


def _any_identity(config: Config, key: LoadedKey) -> str | None:
    """Why charon accepts ``key`` for any remote identity, or ``None``."""
    owner = key.owner
    if owner is None:
        return "it has no identity and address 0.0.0.0 0.0.0.0"
    mine, unknown = _local_identities(config)
    if any(_is_mine(owner, local) for local in mine):
        return "its owner is this node's own identity"
    if unknown and isinstance(owner, IPv4Network) and owner.prefixlen < 32:
        return f"its address {owner} may hold this node's own (tunnel source is an interface)"
    return None


def _owns(owner: IkeIdentity | IPv4Network | None, identity: str) -> bool:
    """Whether charon matches the remote ``identity`` against the key ``owner``."""
    wanted = parse(identity)
    if isinstance(owner, FqdnIdentity):
        return wanted.kind is Kind.FQDN and wanted.text.lower() == owner.fqdn.lower()
    return False  # address owners match address identities only (tied at run time)


def _owning(config: Config, identity: str) -> list[LoadedKey]:
    return [k for k in loaded_keys(config) if _owns(k.owner, identity)]


def psk_identity_problems(config: Config) -> dict[str, str]:
    """psk-map identity -> why it is not tied to one peer (address identities, and those
    with a pre-shared key of their own, are absent). Empty outside psk-map."""
    auth = config.authorization
    if auth is None or auth.mode is not PolicyMode.PSK_MAP:
        return {}
    keys = loaded_keys(config)
    out: dict[str, str] = {}
    for entry in auth.identities:
        identity = entry.identity
        if is_address(identity):
            continue
        kind = parse(identity).kind
        if "*" in identity or kind in PATTERN_KINDS:
            out[identity] = (
                f"IKE identity {identity} is a pattern ({kind.value}): it matches many "
                "identities, so every peer presenting one of them could claim its prefixes"
            )
            continue
        wildcard = next(((k, why) for k in keys if (why := _any_identity(config, k))), None)
        if wildcard is not None:
            key, why = wildcard
            out[identity] = (
                f"IKE identity {identity} is no address, and charon accepts the pre-shared "
                f"key of {key.name} for any identity ({why}): every holder of that key could "
                f"present {identity} and claim its prefixes"
            )
            continue
        for own in (k for k in keys if _owns(k.owner, identity)):
            other = next(
                (
                    k
                    for k in keys
                    if k.peer.pre_shared_key == own.peer.pre_shared_key
                    and not _owns(k.owner, identity)
                ),
                None,
            )
            if other is not None:
                out[identity] = (
                    f"IKE identity {identity} is no address, and its pre-shared key "
                    f"({own.name}) is also the key of {other.name}: that peer could present "
                    f"{identity} and claim its prefixes"
                )
                break
    return out
