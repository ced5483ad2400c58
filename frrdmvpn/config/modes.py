"""Configuration modes (IOS sub-modes) and the context a line is applied in."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Mode(enum.Enum):
    """A configuration mode; the value is the IOS prompt suffix (``R(config-if)#``)."""

    CONFIG = "config"
    INTERFACE = "config-if"
    IKEV2_PROPOSAL = "config-ikev2-proposal"
    IKEV2_KEYRING = "config-ikev2-keyring"
    IKEV2_KEYRING_PEER = "config-ikev2-keyring-peer"
    IKEV2_PROFILE = "config-ikev2-profile"
    PKI_TRUSTPOINT = "ca-trustpoint"
    TRANSFORM_SET = "cfg-crypto-trans"
    IPSEC_PROFILE = "ipsec-profile"
    ROUTER_OSPF = "config-router"
    AUTHORIZATION = "config-frrdmvpn-auth"

    @property
    def prompt(self) -> str:
        return self.value

    @property
    def parent(self) -> Mode | None:
        if self is Mode.CONFIG:
            return None
        if self is Mode.IKEV2_KEYRING_PEER:
            return Mode.IKEV2_KEYRING
        return Mode.CONFIG

    @property
    def title(self) -> str:
        """How messages name the mode: ``interface mode``."""
        return _TITLES[self]


_TITLES = {
    Mode.CONFIG: "global configuration mode",
    Mode.INTERFACE: "interface mode",
    Mode.IKEV2_PROPOSAL: "IKEv2 proposal mode",
    Mode.IKEV2_KEYRING: "IKEv2 keyring mode",
    Mode.IKEV2_KEYRING_PEER: "IKEv2 keyring peer mode",
    Mode.IKEV2_PROFILE: "IKEv2 profile mode",
    Mode.PKI_TRUSTPOINT: "trustpoint mode",
    Mode.TRANSFORM_SET: "transform-set mode",
    Mode.IPSEC_PROFILE: "IPsec profile mode",
    Mode.ROUTER_OSPF: "router ospf mode",
    Mode.AUTHORIZATION: "authorization mode",
}


@dataclass(frozen=True)
class Context:
    """Where a line applies: a mode and the names that select the edited object.

    ``Context(Mode.INTERFACE, ("Tunnel0",))``, ``Context(Mode.IKEV2_KEYRING_PEER,
    ("K", "P"))``; the global context is :data:`ROOT`.
    """

    mode: Mode = Mode.CONFIG
    keys: tuple[str, ...] = ()

    def parent(self) -> Context:
        """The enclosing context (``exit``); the root is its own parent."""
        parent = self.mode.parent
        if parent is None:
            return self
        return Context(parent, self.keys[:1] if parent is Mode.IKEV2_KEYRING else ())

    def __str__(self) -> str:
        return self.mode.prompt + "".join(f" {k}" for k in self.keys)


ROOT = Context()
