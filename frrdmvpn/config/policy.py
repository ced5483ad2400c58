"""The binding-authorization policy (:class:`frrdmvpn.core.authorize.Policy`) of a config.

``frrdmvpn authorization psk-map|certificate|any-authenticated`` with ``identity ID allow
PREFIX...`` lines (psk-map) gives the mode and map; the tunnel subnet is the network of the
tunnel's ``ip address``. Without the block, a protected tunnel gets ``any-authenticated``
(any IKE-authenticated peer may claim any address; :mod:`.validate` warns about it).
"""

from __future__ import annotations

from ipaddress import IPv4Network

from frrdmvpn.config.model import Config
from frrdmvpn.core.authorize import IPNetwork, Policy, PolicyMode

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
    if auth.mode is PolicyMode.PSK_MAP:
        psk_map = {e.identity: frozenset(e.prefixes) for e in auth.identities}
    return Policy(auth.mode, subnet, psk_map)
