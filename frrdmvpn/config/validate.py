"""Semantic validation: what parses but cannot work, with diagnostics at line and token.

:func:`validate` returns diagnostics sorted by position; any with severity error means
the configuration must not be applied (the caller enforces that). Each rule has a stable
``code`` (listed in ``docs/config.md``). Range rules repeat the parser's checks for models
built in code (the shell, tests).

Without a source map, the configuration is rendered canonically and re-parsed, so the
positions refer to ``render(config)`` (what ``show running-config`` prints).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from frrdmvpn.config import defaults
from frrdmvpn.config.canonical_text import (
    map_line,
    match_remote_line,
    network_line,
    nhs_line,
    passive_line,
    render,
)
from frrdmvpn.config.diagnostics import Diagnostic, Severity, sort_key
from frrdmvpn.config.grammar import is_ifname
from frrdmvpn.config.model import (
    AddressIdentity,
    AuthMethod,
    Config,
    FqdnIdentity,
    IkeIdentity,
    Ikev2Keyring,
    Ikev2Profile,
    Ikev2Proposal,
    IpsecMode,
    IpsecProfile,
    OspfNetworkType,
    TransformSet,
    TunnelInterface,
)
from frrdmvpn.config.modes import ROOT, Context, Mode
from frrdmvpn.config.parse import ParseResult, parse
from frrdmvpn.config.policy import psk_identity_problems
from frrdmvpn.config.source import SourceMap, Span
from frrdmvpn.config.swan import AEAD, TrustpointFile, trustpoint_files
from frrdmvpn.core.authorize import PolicyMode

NHRP_AUTH_MAX = 8  # Cisco command reference: at most 8 characters
# What the systems downstream take (issue 14, hole 9); docs/config.md lists where each is
# enforced. Lengths in bytes are of the UTF-8 text.
NAME_MAX = 255  # bytes: a VICI name has one length byte (the IPsec profile is charon's
#                 connection and CHILD_SA name); the same limit for every name
VALUE_MAX = 65535  # bytes: a VICI value has two length bytes (the pre-shared key)
HOSTNAME_MAX = 255  # characters: FRR's HOSTNAME_LEN; FRR also wants a letter or digit first
DESCRIPTION_MAX = 240  # characters, like IOS: far below the 4,095 bytes of an FRR vty line
#                        and its 256 words (FRR takes the description as words of a line)
PATH_MAX = 4095  # bytes: Linux's PATH_MAX (4096) less the terminating NUL
#: Every rule code (documented in docs/config.md).
CODES = frozenset(
    {
        "multiple-tunnels",
        "tunnel-address-missing",
        "tunnel-mask",
        "tunnel-source-missing",
        "tunnel-source-ifname",
        "tunnel-mode-missing",
        "network-id-missing",
        "holdtime-range",
        "network-id-range",
        "mtu-range",
        "mss-range",
        "key-range",
        "ospf-priority-range",
        "ospf-hello-range",
        "ospf-dead-range",
        "mtu-fragmentation",
        "mss-too-large",
        "nhs-outside-subnet",
        "nhs-is-self",
        "nhs-nbma-missing",
        "nbma-is-self",
        "duplicate-nbma",
        "map-outside-subnet",
        "nhs-priority-unsupported",
        "multicast-fqdn",
        "nhrp-authentication-length",
        "nhrp-authentication-unsupported",
        "ospf-network-unsupported",
        "ospf-spoke-priority",
        "ospf-dead-le-hello",
        "protection-missing",
        "ipsec-profile-missing",
        "ikev2-proposal-invalid",
        "transform-invalid",
        "transform-set-missing",
        "transform-set-mode",
        "ikev2-profile-missing",
        "ikev2-auth-missing",
        "remote-identity-multiple",
        "keyring-missing",
        "psk-missing",
        "psk-no-match",
        "trustpoint-missing",
        "trustpoint-incomplete",
        "trustpoint-path",
        "ospf-tunnel-not-covered",
        "ospf-passive-tunnel",
        "ospf-passive-unknown",
        "spf-throttle",
        "ospf-network-area",
        "authorization-missing",
        "authorization-identities-unused",
        "psk-map-empty",
        "authorization-certificate-psk",
        "psk-map-overlap",
        "certificate-remote-identity",
        "psk-map-shared-key",
        "name-too-long",
        "hostname-invalid",
        "description-too-long",
        "psk-too-long",
        "path-too-long",
        "trustpoint-file",
    }
)
PUBKEY = (AuthMethod.RSA_SIG, AuthMethod.ECDSA_SIG)
# Raises ValueError or OSError when apply may not read the file (frrdmvpn.adapters.trusted_files).
FileCheck = Callable[[TrustpointFile], None]

_HEADERS = {
    Mode.INTERFACE: "interface",
    Mode.IKEV2_PROPOSAL: "crypto ikev2 proposal",
    Mode.IKEV2_KEYRING: "crypto ikev2 keyring",
    Mode.IKEV2_PROFILE: "crypto ikev2 profile",
    Mode.PKI_TRUSTPOINT: "crypto pki trustpoint",
    Mode.TRANSFORM_SET: "crypto ipsec transform-set",
    Mode.IPSEC_PROFILE: "crypto ipsec profile",
    Mode.ROUTER_OSPF: "router ospf",
    Mode.AUTHORIZATION: "frrdmvpn authorization",
}

_KINDS = {
    Mode.IKEV2_PROPOSAL: "IKEv2 proposal",
    Mode.IKEV2_KEYRING: "keyring",
    Mode.IKEV2_KEYRING_PEER: "keyring peer",
    Mode.IKEV2_PROFILE: "IKEv2 profile",
    Mode.PKI_TRUSTPOINT: "trustpoint",
    Mode.TRANSFORM_SET: "transform-set",
    Mode.IPSEC_PROFILE: "IPsec profile",
}


@dataclass(frozen=True)
class At:
    """Where a finding points: the statement ``key`` in ``ctx`` (``None``: the block
    header) and the token (index, negative from the end, or the token's text)."""

    ctx: Context
    key: str | None = None
    token: int | str = 0


def _header(ctx: Context) -> tuple[Context, str]:
    """Where the block header of ``ctx`` is recorded."""
    if ctx.mode is Mode.IKEV2_KEYRING_PEER:
        return Context(Mode.IKEV2_KEYRING, ctx.keys[:1]), f"peer {ctx.keys[1]}"
    return ROOT, " ".join([_HEADERS[ctx.mode], *ctx.keys[:1]])


def _header_at(ctx: Context, token: int | str = 1) -> At:
    header_ctx, key = _header(ctx)
    return At(header_ctx, key, token)


class _Checker:
    def __init__(self, config: Config, source: SourceMap) -> None:
        self.config = config
        self.source = source
        self.found: list[Diagnostic] = []

    # --- reporting -------------------------------------------------------------------

    def _span(self, at: At) -> tuple[Span | None, int | str]:
        ctx, token = at.ctx, at.token
        span = None if at.key is None else self.source.find(ctx, at.key)
        if at.key is None:
            token = 1
        while span is None and ctx != ROOT:
            ctx, key = _header(ctx)
            span = self.source.find(ctx, key)
        return span, token

    def report(self, severity: Severity, code: str, message: str, at: At, expected: str) -> None:
        assert code in CODES, code
        span, token = self._span(at)
        if span is None:
            self.found.append(Diagnostic(None, None, None, message, expected, severity, code))
            return
        tok = span.token(token) if isinstance(token, int) else span.find(token)
        self.found.append(
            Diagnostic(span.line, tok.column, tok.text, message, expected, severity, code)
        )

    def error(self, code: str, message: str, at: At, expected: str) -> None:
        self.report(Severity.ERROR, code, message, at, expected)

    def warn(self, code: str, message: str, at: At, expected: str) -> None:
        self.report(Severity.WARNING, code, message, at, expected)

    def check_range(self, value: int | None, bounds: tuple[int, int], code: str, at: At) -> None:
        lo, hi = bounds
        if value is not None and not lo <= value <= hi:
            self.error(code, f"{at.key} {value} is out of range", at, f"{lo}-{hi}")

    # --- rules -----------------------------------------------------------------------

    def run(self) -> list[Diagnostic]:
        c = self.config
        for extra in c.interfaces[1:]:
            self.error(
                "multiple-tunnels",
                f"frrdmvpn drives one DMVPN tunnel per node; {extra.name} is a second one",
                At(ROOT, f"interface {extra.name}", 1),
                f"only interface {c.interfaces[0].name}",
            )
        for tunnel in c.interfaces:
            self.tunnel(tunnel)
        for proposal in c.ikev2_proposals:
            self.proposal(proposal)
        for tp in c.trustpoints:
            ctx = Context(Mode.PKI_TRUSTPOINT, (tp.name,))
            paths = (
                ("certificate", tp.certificate),
                ("private-key", tp.private_key),
                ("ca-certificate", tp.ca_certificate),
            )
            for key, path in paths:
                if path is not None and not path.startswith("/"):
                    self.error(
                        "trustpoint-path",
                        f"{key} {path} is not an absolute path",
                        At(ctx, key, 1),
                        "/absolute/path",
                    )
        for ts in c.transform_sets:
            self.transform_set(ts)
        used = {t.protection_profile for t in c.interfaces if t.protection_profile}
        for profile in c.ipsec_profiles:
            self.ipsec_profile(profile, profile.name in used)
        used_ikev2 = {
            p.ikev2_profile for p in c.ipsec_profiles if p.name in used and p.ikev2_profile
        }
        for ikev2 in c.ikev2_profiles:
            self.ikev2_profile(ikev2, ikev2.name in used_ikev2)
        self.ospf()
        self.authorization(used_ikev2)
        self.limits()
        return sorted(self.found, key=sort_key)

    # --- what FRR, charon and Linux can take -----------------------------------------

    def limits(self) -> None:
        c = self.config
        if c.hostname is not None:
            self.hostname(c.hostname)
        named: list[tuple[str, Context, int]] = [  # (name, its context, header token)
            *((p.name, Context(Mode.IKEV2_PROPOSAL, (p.name,)), 3) for p in c.ikev2_proposals),
            *((k.name, Context(Mode.IKEV2_KEYRING, (k.name,)), 3) for k in c.ikev2_keyrings),
            *(
                (p.name, Context(Mode.IKEV2_KEYRING_PEER, (k.name, p.name)), 1)
                for k in c.ikev2_keyrings
                for p in k.peers
            ),
            *((p.name, Context(Mode.IKEV2_PROFILE, (p.name,)), 3) for p in c.ikev2_profiles),
            *((t.name, Context(Mode.PKI_TRUSTPOINT, (t.name,)), 3) for t in c.trustpoints),
            *((t.name, Context(Mode.TRANSFORM_SET, (t.name,)), 3) for t in c.transform_sets),
            *((p.name, Context(Mode.IPSEC_PROFILE, (p.name,)), 3) for p in c.ipsec_profiles),
        ]
        for name, ctx, token in named:
            size = len(name.encode("utf-8", "surrogatepass"))
            if size > NAME_MAX:
                self.error(
                    "name-too-long",
                    f"{_KINDS[ctx.mode]} names have at most {NAME_MAX} "
                    "bytes, like every name (a name in charon's VICI has one length "
                    f"byte); this one has {size}",
                    _header_at(ctx, token),
                    f"a name of 1-{NAME_MAX} bytes",
                )
        for t in c.interfaces:
            if t.description is not None and len(t.description) > DESCRIPTION_MAX:
                self.error(
                    "description-too-long",
                    f"a description has at most "
                    f"{DESCRIPTION_MAX} characters; this one has {len(t.description)}",
                    At(Context(Mode.INTERFACE, (t.name,)), "description", 1),
                    f"1-{DESCRIPTION_MAX} characters",
                )
        for k in c.ikev2_keyrings:
            for peer in k.peers:
                key = peer.pre_shared_key
                size = 0 if key is None else len(key.encode("utf-8", "surrogatepass"))
                if size > VALUE_MAX:  # pointing at the keyword: the key is never shown
                    self.error(
                        "psk-too-long",
                        f"a pre-shared key has at most {VALUE_MAX} "
                        f"bytes (a VICI value has two length bytes); this one has {size}",
                        At(
                            Context(Mode.IKEV2_KEYRING_PEER, (k.name, peer.name)),
                            "pre-shared-key",
                            0,
                        ),
                        f"1-{VALUE_MAX} bytes",
                    )
        for tp in c.trustpoints:
            paths = (
                ("certificate", tp.certificate),
                ("private-key", tp.private_key),
                ("ca-certificate", tp.ca_certificate),
            )
            for key, path in paths:
                size = 0 if path is None else len(path.encode("utf-8", "surrogatepass"))
                if size > PATH_MAX:
                    self.error(
                        "path-too-long",
                        f"a path has at most {PATH_MAX} bytes "
                        f"(Linux's PATH_MAX); this one has {size}",
                        At(Context(Mode.PKI_TRUSTPOINT, (tp.name,)), key, 1),
                        f"1-{PATH_MAX} bytes",
                    )

    def hostname(self, name: str) -> None:
        at = At(ROOT, "hostname", 1)
        if len(name) > HOSTNAME_MAX:
            self.error(
                "hostname-invalid",
                f"a host name has at most {HOSTNAME_MAX} "
                f"characters (FRR's limit); this one has {len(name)}",
                at,
                f"1-{HOSTNAME_MAX} characters",
            )
        elif not (name[0].isascii() and name[0].isalnum()):
            self.error(
                "hostname-invalid",
                f"a host name starts with a letter or a digit (FRR refuses {name[0]!r})",
                at,
                "hub1, spoke-2 ...",
            )

    # --- the tunnel ------------------------------------------------------------------

    def tunnel(self, t: TunnelInterface) -> None:
        ctx = Context(Mode.INTERFACE, (t.name,))
        self.tunnel_basics(t, ctx)
        self.tunnel_sizes(t, ctx)
        self.nhrp(t, ctx)
        self.nhrp_extras(t, ctx)
        self.tunnel_ospf(t, ctx)
        if t.protection_profile is None:
            self.warn(
                "protection-missing",
                f"{t.name} is not protected by IPsec: GRE and NHRP in cleartext "
                "(not for production)",
                _header_at(ctx),
                "tunnel protection ipsec profile NAME",
            )
        elif self.config.ipsec_profile(t.protection_profile) is None:
            names = ", ".join(p.name for p in self.config.ipsec_profiles)
            self.error(
                "ipsec-profile-missing",
                f"IPsec profile {t.protection_profile!r} is not configured",
                At(ctx, "tunnel protection", 4),
                f"one of: {names}" if names else "crypto ipsec profile NAME",
            )

    def tunnel_basics(self, t: TunnelInterface, ctx: Context) -> None:
        header = _header_at(ctx)
        if t.address is None:
            self.error(
                "tunnel-address-missing",
                f"{t.name} has no ip address",
                header,
                "ip address A.B.C.D M.M.M.M (the tunnel subnet's mask)",
            )
        elif t.address.network.prefixlen >= 31:
            self.error(
                "tunnel-mask",
                f"{t.address.with_netmask}: give the tunnel subnet's mask (frrdmvpn itself "
                "puts a /32 on the Linux link)",
                At(ctx, "ip address", 3),
                "the mask hub and spokes share, e.g. 255.255.255.0",
            )
        if t.source is None:
            self.error(
                "tunnel-source-missing",
                f"{t.name} has no tunnel source",
                header,
                "tunnel source IFNAME|A.B.C.D",
            )
        elif isinstance(t.source, str) and not is_ifname(t.source):
            self.error(
                "tunnel-source-ifname",
                f"{t.source!r} is not a Linux interface name",
                At(ctx, "tunnel source", 2),
                "IFNAME (1-15 characters)",
            )
        if not t.multipoint:
            self.error(
                "tunnel-mode-missing",
                f"{t.name} is not multipoint GRE",
                header,
                "tunnel mode gre multipoint",
            )
        if t.nhrp_network_id is None:
            self.error(
                "network-id-missing",
                f"{t.name} has no NHRP network-id: NHRP stays down without one",
                header,
                "ip nhrp network-id <1-4294967295>",
            )

    def tunnel_sizes(self, t: TunnelInterface, ctx: Context) -> None:
        for value, bounds, code, key in (
            (t.nhrp_holdtime, (1, 65000), "holdtime-range", "ip nhrp holdtime"),
            (t.nhrp_network_id, (1, 4294967295), "network-id-range", "ip nhrp network-id"),
            (t.mtu, (576, 9000), "mtu-range", "ip mtu"),
            (t.tcp_adjust_mss, (500, 1460), "mss-range", "ip tcp adjust-mss"),
            (t.key, (0, 4294967295), "key-range", "tunnel key"),
            (t.ospf_priority, (0, 255), "ospf-priority-range", "ip ospf priority"),
            (t.ospf_hello_interval, (1, 65535), "ospf-hello-range", "ip ospf hello-interval"),
            (t.ospf_dead_interval, (1, 65535), "ospf-dead-range", "ip ospf dead-interval"),
        ):
            self.check_range(value, bounds, code, At(ctx, key, -1))
        mtu = defaults.mtu(t)
        ceiling = defaults.UNDERLAY_MTU - defaults.TUNNEL_OVERHEAD
        if t.mtu is not None and 576 <= mtu <= 9000 and mtu > ceiling:
            self.warn(
                "mtu-fragmentation",
                f"IP MTU {mtu} + GRE/ESP overhead (up to {defaults.TUNNEL_OVERHEAD} bytes) "
                f"exceeds a {defaults.UNDERLAY_MTU}-byte underlay: packets get fragmented",
                At(ctx, "ip mtu", -1),
                f"at most {ceiling} (1400 is the usual choice)",
            )
        if t.tcp_adjust_mss is not None and t.tcp_adjust_mss > mtu - defaults.MSS_MARGIN:
            self.warn(
                "mss-too-large",
                f"TCP MSS {t.tcp_adjust_mss} does not fit the IP MTU {mtu}",
                At(ctx, "ip tcp adjust-mss", -1),
                f"at most {mtu - defaults.MSS_MARGIN} (MTU - 40)",
            )

    def nhrp(self, t: TunnelInterface, ctx: Context) -> None:
        subnet = None if t.address is None else t.address.network
        local = t.source if isinstance(t.source, IPv4Address) else None
        claims: dict[str, tuple[str, str]] = {}  # NBMA -> (tunnel address claiming it, line)

        def claim(nbma: object, owner: str, at: At) -> None:
            if nbma is None:
                return
            if local is not None and nbma == local:
                self.error(
                    "nbma-is-self",
                    f"NBMA {nbma} is this node's own tunnel source",
                    at,
                    "the peer's underlay address",
                )
            first = claims.setdefault(str(nbma), (owner, str(at.key)))
            if first[0] != owner:
                self.error(
                    "duplicate-nbma",
                    f"NBMA {nbma} is already mapped to {first[0]} (by '{first[1]}')",
                    at,
                    "one tunnel address per NBMA address",
                )

        for nhs in t.nhrp_nhs:
            key = nhs_line(nhs)
            target = "dynamic" if nhs.protocol is None else str(nhs.protocol)
            if nhs.protocol is not None and subnet is not None:
                self.nhs_address(t, nhs.protocol, subnet, At(ctx, key, 3))
            nbma = nhs.nbma
            if nbma is None:
                nbma = next((m.nbma for m in t.nhrp_maps if m.protocol == nhs.protocol), None)
                if nbma is None:
                    self.error(
                        "nhs-nbma-missing",
                        f"NHS {target} has no NBMA address",
                        At(ctx, key, 3),
                        f"nbma A.B.C.D, or ip nhrp map {target} A.B.C.D",
                    )
            claim(nbma, target, At(ctx, key, 5 if nhs.nbma is not None else 3))
        for entry in t.nhrp_maps:
            key = map_line(entry)
            if subnet is not None and entry.protocol not in subnet:
                self.error(
                    "map-outside-subnet",
                    f"{entry.protocol} is outside the tunnel subnet {subnet}",
                    At(ctx, key, 3),
                    f"an address in {subnet}",
                )
            claim(entry.nbma, str(entry.protocol), At(ctx, key, 4))

    def nhs_address(
        self, t: TunnelInterface, protocol: IPv4Address, subnet: IPv4Network, at: At
    ) -> None:
        if protocol not in subnet:
            message = f"NHS {protocol} is outside the tunnel subnet {subnet}"
            self.error("nhs-outside-subnet", message, at, f"an address in {subnet}")
        elif t.address is not None and protocol == t.address.ip:
            message = f"NHS {protocol} is this node's own tunnel address"
            self.error("nhs-is-self", message, at, "the hub's tunnel address")

    def nhrp_extras(self, t: TunnelInterface, ctx: Context) -> None:
        for nhs in t.nhrp_nhs:
            key = nhs_line(nhs)
            if nhs.priority is not None:
                self.warn(
                    "nhs-priority-unsupported",
                    "FRR 8.4 nhrpd has no NHS priority: ignored (every NHS is used)",
                    At(ctx, key, "priority"),
                    f"ip nhrp nhs {'dynamic' if nhs.protocol is None else nhs.protocol} ...",
                )
            if nhs.multicast and isinstance(nhs.nbma, str):
                self.warn(
                    "multicast-fqdn",
                    "multicast replication needs an NBMA address, not a name: ignored",
                    At(ctx, key, "multicast"),
                    "nbma A.B.C.D",
                )
        if t.nhrp_authentication is not None:
            at = At(ctx, "ip nhrp authentication", 3)
            if len(t.nhrp_authentication) > NHRP_AUTH_MAX:
                self.error(
                    "nhrp-authentication-length",
                    f"NHRP authentication strings have at most {NHRP_AUTH_MAX} characters",
                    at,
                    f"1-{NHRP_AUTH_MAX} characters",
                )
            self.warn(
                "nhrp-authentication-unsupported",
                "nhrpd sends NHRP authentication from FRR 10.2 (Debian 13) on: on FRR 8.4 "
                "(Debian 12) frrdmvpnd refuses to apply it; remove it there, on the peers "
                "too (they would drop our packets)",
                At(ctx, "ip nhrp authentication", 2),
                "no ip nhrp authentication",
            )

    def tunnel_ospf(self, t: TunnelInterface, ctx: Context) -> None:
        kind = defaults.ospf_network(t)
        hub = defaults.role(t) is defaults.Role.HUB
        at = At(ctx, "ip ospf network", 3)
        if kind is OspfNetworkType.NON_BROADCAST:
            self.error(
                "ospf-network-unsupported",
                "non-broadcast needs static neighbours, which frrdmvpn does not configure",
                at,
                "point-to-multipoint (hub), point-to-point (spoke), or broadcast on every "
                "node (Huawei USG hub)",
            )
        elif kind is OspfNetworkType.POINT_TO_POINT and hub:
            self.error(
                "ospf-network-unsupported",
                "point-to-point allows one neighbour; a hub has one per spoke",
                at,
                "point-to-multipoint (or broadcast on every node)",
            )
        multi_access = kind in (OspfNetworkType.BROADCAST, OspfNetworkType.NON_BROADCAST)
        if not hub and multi_access and t.ospf_priority:
            self.warn(
                "ospf-spoke-priority",
                f"spoke with DR priority {t.ospf_priority}: a spoke elected DR cannot reach "
                "the other spokes",
                At(ctx, "ip ospf priority", -1),
                "0 (the default for spokes)",
            )
        configured = t.ospf_dead_interval is not None or t.ospf_hello_interval is not None
        hello, dead = defaults.ospf_hello(t), defaults.ospf_dead(t)
        if configured and dead <= hello:
            self.error(
                "ospf-dead-le-hello",
                f"dead interval {dead} is not longer than the hello interval {hello}",
                At(ctx, "ip ospf dead-interval", -1),
                f"4 x hello = {4 * hello}",
            )

    # --- crypto ----------------------------------------------------------------------

    def proposal(self, p: Ikev2Proposal) -> None:
        ctx = Context(Mode.IKEV2_PROPOSAL, (p.name,))
        aead = [e for e in p.encryption if e in AEAD]
        classic = [e for e in p.encryption if e not in AEAD]
        code = "ikev2-proposal-invalid"
        problems: list[tuple[str, At, str]] = []
        if not p.encryption:
            problems.append(
                (
                    f"proposal {p.name} has no encryption",
                    _header_at(ctx, 3),
                    "encryption aes-cbc-256|aes-gcm-256 ...",
                )
            )
        if aead and classic:
            problems.append(
                (
                    "AEAD (GCM) and non-AEAD encryption cannot share a proposal",
                    At(ctx, "encryption", aead[0]),
                    "a second proposal",
                )
            )
        if aead and p.integrity:
            problems.append(
                (
                    "GCM encryption has no separate integrity algorithm",
                    At(ctx, "integrity", 1),
                    "no integrity; prf sha256 ...",
                )
            )
        if aead and not p.prf:
            problems.append(
                (
                    "GCM encryption needs a PRF",
                    At(ctx, "encryption", aead[0]),
                    "prf sha256|sha384|sha512",
                )
            )
        if classic and not p.integrity:
            problems.append(
                (
                    f"{classic[0]} needs an integrity algorithm",
                    At(ctx, "encryption", classic[0]),
                    "integrity sha256",
                )
            )
        if not p.groups:
            problems.append(
                (
                    f"proposal {p.name} has no Diffie-Hellman group",
                    _header_at(ctx, 3),
                    "group 14|19|20|21|31 ...",
                )
            )
        for message, at, expected in problems:
            self.error(code, message, at, expected)

    def transform_set(self, ts: TransformSet) -> None:
        key = f"crypto ipsec transform-set {ts.name}"
        code = "transform-invalid"
        if ts.encryption == "esp-gcm" and ts.integrity is not None:
            self.error(
                code,
                "esp-gcm authenticates by itself: no integrity transform",
                At(ROOT, key, ts.integrity),
                f"crypto ipsec transform-set {ts.name} esp-gcm {ts.key_bits or 128}",
            )
        elif ts.encryption != "esp-gcm" and ts.integrity is None:
            self.error(
                code,
                f"{ts.encryption} needs an integrity transform",
                At(ROOT, key, ts.encryption),
                "esp-sha256-hmac|esp-sha384-hmac|esp-sha512-hmac",
            )
        if ts.encryption == "esp-null" and ts.key_bits is not None:
            self.error(code, "esp-null has no key size", At(ROOT, key, str(ts.key_bits)), "")
        if ts.encryption == "esp-gcm" and ts.key_bits not in (None, 128, 192, 256):
            self.error(code, "esp-gcm keys are 128, 192 or 256 bits", At(ROOT, key, 5), "256")

    def ipsec_profile(self, p: IpsecProfile, used: bool) -> None:
        ctx = Context(Mode.IPSEC_PROFILE, (p.name,))
        names = ", ".join(t.name for t in self.config.transform_sets) or "none configured"
        for name in p.transform_sets:
            ts = self.config.transform_set(name)
            if ts is None:
                self.error(
                    "transform-set-missing",
                    f"transform-set {name!r} is not configured",
                    At(ctx, "set transform-set", name),
                    f"one of: {names}",
                )
            elif used and ts.mode is not IpsecMode.TRANSPORT:
                self.error(
                    "transform-set-mode",
                    f"transform-set {name} is in tunnel mode; DMVPN protects GRE between the "
                    "NBMA addresses in transport mode",
                    At(Context(Mode.TRANSFORM_SET, (name,)), "mode", 1),
                    "mode transport",
                )
        if used and not p.transform_sets:
            message = f"IPsec profile {p.name} has no transform-set"
            self.error("transform-set-missing", message, _header_at(ctx, 3), "set transform-set")
        profiles = ", ".join(i.name for i in self.config.ikev2_profiles) or "none configured"
        if p.ikev2_profile is None and used:
            message = f"IPsec profile {p.name} has no IKEv2 profile"
            self.error("ikev2-profile-missing", message, _header_at(ctx, 3), "set ikev2-profile")
        elif p.ikev2_profile is not None and self.config.ikev2_profile(p.ikev2_profile) is None:
            self.error(
                "ikev2-profile-missing",
                f"IKEv2 profile {p.ikev2_profile!r} is not configured",
                At(ctx, "set ikev2-profile", 2),
                f"one of: {profiles}",
            )

    def ikev2_profile(self, p: Ikev2Profile, used: bool) -> None:
        ctx = Context(Mode.IKEV2_PROFILE, (p.name,))
        methods = (p.authentication_local, p.authentication_remote)
        if used and None in methods:
            self.error(
                "ikev2-auth-missing",
                f"IKEv2 profile {p.name} MUST have a local and a remote authentication method",
                _header_at(ctx, 3),
                "authentication local|remote pre-share|rsa-sig|ecdsa-sig",
            )
        if len(p.match_remote) > 1:
            self.error(
                "remote-identity-multiple",
                "one match identity remote per profile (a strongSwan connection matches one "
                "remote identity)",
                At(ctx, match_remote_line(p.match_remote[1]), 3),
                "a single match statement",
            )
        keyring = None if p.keyring is None else self.config.keyring(p.keyring)
        if p.keyring is not None and keyring is None:
            names = ", ".join(k.name for k in self.config.ikev2_keyrings) or "none configured"
            message = f"keyring {p.keyring!r} is not configured"
            self.error("keyring-missing", message, At(ctx, "keyring local", 2), f"one of: {names}")
        if AuthMethod.PRE_SHARE in methods and used:
            if p.keyring is None:
                message = f"IKEv2 profile {p.name} uses pre-shared keys but has no keyring"
                self.error("keyring-missing", message, _header_at(ctx, 3), "keyring local NAME")
            elif keyring is not None:
                self.keys(p, ctx, keyring)
        self.certificates(p, ctx, used)

    def certificates(self, p: Ikev2Profile, ctx: Context, used: bool) -> None:
        tp = None if p.trustpoint is None else self.config.trustpoint(p.trustpoint)
        if p.trustpoint is not None and tp is None:
            names = ", ".join(t.name for t in self.config.trustpoints) or "none configured"
            message = f"trustpoint {p.trustpoint!r} is not configured"
            self.error("trustpoint-missing", message, At(ctx, "pki trustpoint", 2), names)
        if not used or not {p.authentication_local, p.authentication_remote} & set(PUBKEY):
            return
        if p.trustpoint is None:
            message = f"IKEv2 profile {p.name} uses certificates but has no trustpoint"
            self.error("trustpoint-missing", message, _header_at(ctx, 3), "pki trustpoint NAME")
        elif tp is not None:
            at = _header_at(Context(Mode.PKI_TRUSTPOINT, (tp.name,)), 3)
            if p.authentication_local in PUBKEY and None in (tp.certificate, tp.private_key):
                message = f"trustpoint {tp.name} needs this host's certificate and private key"
                self.error("trustpoint-incomplete", message, at, "certificate PATH, private-key")
            if p.authentication_remote in PUBKEY and tp.ca_certificate is None:
                message = f"trustpoint {tp.name} needs the CA certificate peers chain to"
                self.error("trustpoint-incomplete", message, at, "ca-certificate PATH")

    def keys(self, p: Ikev2Profile, ctx: Context, keyring: Ikev2Keyring) -> None:
        with_key = [peer for peer in keyring.peers if peer.pre_shared_key is not None]
        if not with_key:
            self.error(
                "psk-missing",
                f"keyring {keyring.name} has no pre-shared key",
                _header_at(Context(Mode.IKEV2_KEYRING, (keyring.name,)), 3),
                "peer NAME, address 0.0.0.0 0.0.0.0, pre-shared-key KEY",
            )
            return
        for identity in p.match_remote:
            if not any(_covers(peer.address, peer.identity, identity) for peer in with_key):
                self.error(
                    "psk-no-match",
                    f"no pre-shared key in keyring {keyring.name} for remote identity "
                    f"{_words(identity)}",
                    At(ctx, match_remote_line(identity), 4),
                    "a keyring peer with that address or identity",
                )

    # --- routing and authorization ---------------------------------------------------

    def ospf(self) -> None:
        o = self.config.ospf
        if o is None:
            return
        ctx = Context(Mode.ROUTER_OSPF)
        names = {t.name for t in self.config.interfaces}
        for t in self.config.interfaces:
            if t.address is not None and not any(t.address.ip in n.prefix for n in o.networks):
                net = t.address.network
                self.warn(
                    "ospf-tunnel-not-covered",
                    f"no network statement covers {t.name}'s address {t.address.ip}: OSPF "
                    "will not run over the tunnel",
                    At(ROOT, "router ospf", 0),
                    f"network {net.network_address} {net.hostmask} area 0",
                )
        for name in o.passive_interfaces:
            at = At(ctx, passive_line(name), 1)
            if name in names:
                message = f"{name} is passive: no OSPF adjacency over the DMVPN"
                self.warn("ospf-passive-tunnel", message, at, "a LAN interface")
            elif name.startswith("Tunnel"):
                configured = " ".join(sorted(names)) or "none"
                self.warn("ospf-passive-unknown", f"{name} is not configured", at, configured)
        if o.spf_throttle is not None and o.spf_throttle[1] > o.spf_throttle[2]:
            self.error(
                "spf-throttle",
                "the initial SPF hold time exceeds the maximum",
                At(ctx, "timers throttle spf", 4),
                f"at most {o.spf_throttle[2]}",
            )
        seen: dict[IPv4Network, str] = {}
        for n in o.networks:
            if seen.setdefault(n.prefix, n.area) != n.area:
                message = f"network {n.prefix} is in two areas"
                self.error(
                    "ospf-network-area", message, At(ctx, network_line(n), -1), seen[n.prefix]
                )

    def authorization(self, used_ikev2: set[str]) -> None:
        c = self.config
        auth = c.authorization
        protected = [t for t in c.interfaces if t.protection_profile is not None]
        if auth is None:
            if protected:
                self.warn(
                    "authorization-missing",
                    "no frrdmvpn authorization block: any IKE-authenticated peer may claim "
                    "any tunnel address",
                    At(ROOT, f"interface {protected[0].name}", 1),
                    "frrdmvpn authorization psk-map|certificate|any-authenticated",
                )
            return
        ctx = Context(Mode.AUTHORIZATION)
        header = At(ROOT, "frrdmvpn authorization", 2)
        if auth.mode is not PolicyMode.PSK_MAP and auth.identities:
            self.error(
                "authorization-identities-unused",
                f"identity lines only apply to psk-map, not {auth.mode.value}",
                At(ctx, f"identity {auth.identities[0].identity}", 0),
                "frrdmvpn authorization psk-map",
            )
        if auth.mode is PolicyMode.PSK_MAP and not auth.identities:
            message = "the psk-map is empty: every binding will be denied"
            self.warn("psk-map-empty", message, header, "identity IKE-ID allow PREFIX ...")
        if auth.mode is PolicyMode.CERTIFICATE:
            for name in sorted(used_ikev2):
                profile = c.ikev2_profile(name)
                if profile is not None and profile.authentication_remote not in PUBKEY:
                    self.error(
                        "authorization-certificate-psk",
                        "certificate authorization needs peers authenticated by certificate; "
                        f"IKEv2 profile {name} authenticates them otherwise",
                        header,
                        "psk-map (or authentication remote rsa-sig)",
                    )
                elif profile is not None:
                    self.certificate_identity(profile)
        for identity, problem in psk_identity_problems(c).items():
            self.error(
                "psk-map-shared-key",
                problem,
                At(ctx, f"identity {identity}", 1),
                "an address identity, or a keyring peer with identity fqdn NAME and a key "
                "no other peer has, and no key for any identity",
            )
        owned = [(p, e.identity) for e in auth.identities for p in e.prefixes]
        earlier = overlapping_earlier([p for p, _ in owned])
        for i, (prefix, identity) in enumerate(owned):
            clash = [
                f"{owned[j][0]} of {owned[j][1]}" for j in earlier[i] if owned[j][1] != identity
            ]
            if clash:
                self.error(
                    "psk-map-overlap",
                    f"{prefix} overlaps {', '.join(clash)}: two peers could claim the same address",
                    At(ctx, f"identity {identity}", str(prefix)),
                    "disjoint prefixes per identity",
                )

    def certificate_identity(self, profile: Ikev2Profile) -> None:
        """Certificate authorization needs a typed remote identity: charon then admits only
        identities of that type, so the one it reports can be tied to a certificate."""
        ctx = Context(Mode.IKEV2_PROFILE, (profile.name,))
        expected = "match identity remote fqdn domain DOMAIN|fqdn FQDN|address A.B.C.D [M.M.M.M]"
        if not profile.match_remote:
            self.error(
                "certificate-remote-identity",
                f"certificate authorization needs match identity remote in IKEv2 profile "
                f"{profile.name}: without it charon accepts any identity of any type from a "
                "peer, and no certificate can be tied to it",
                _header_at(ctx, 3),
                expected,
            )
            return
        for identity in profile.match_remote:
            if isinstance(identity, AddressIdentity) and int(identity.address) == 0:
                self.error(
                    "certificate-remote-identity",
                    f"{match_remote_line(identity)} accepts any identity of any type: "
                    "certificate authorization needs a typed remote identity",
                    At(ctx, match_remote_line(identity), 4),
                    expected,
                )


def _words(identity: IkeIdentity) -> str:
    if isinstance(identity, AddressIdentity):
        return str(identity.address)
    return f"*.{identity.fqdn}" if identity.domain else identity.fqdn


def _covers(
    address: IPv4Network | None, peer_identity: IkeIdentity | None, wanted: IkeIdentity
) -> bool:
    """Whether a keyring peer's key can be selected for the remote identity ``wanted``."""
    wildcard = isinstance(wanted, AddressIdentity) and int(wanted.address) == 0
    if peer_identity is not None:
        if isinstance(wanted, FqdnIdentity) and wanted.domain:
            under = "." + wanted.fqdn.lower()
            return isinstance(peer_identity, FqdnIdentity) and (
                peer_identity.fqdn.lower().endswith(under)
            )
        return peer_identity == wanted or wildcard
    if address is None:
        return False
    if address.prefixlen == 0 or wildcard:
        return True
    return isinstance(wanted, AddressIdentity) and wanted.address in address


def validate(config: Config, source: SourceMap | None = None) -> tuple[Diagnostic, ...]:
    """All semantic findings for ``config``, sorted by position."""
    if source is None:
        source = parse(render(config), lenient=True).source
    return tuple(_Checker(config, source).run())


def file_findings(config: Config, source: SourceMap, files: FileCheck) -> tuple[Diagnostic, ...]:
    """An error at each certificate or key file apply would read that ``files`` refuses
    (it raises ``ValueError`` or ``OSError`` saying why: never anything from the file)."""
    checker = _Checker(config, source)
    for f in trustpoint_files(config):
        try:
            files(f)
        except (ValueError, OSError) as exc:
            reason = str(exc) if isinstance(exc, ValueError) else f"{f.keyword} {f.path}: {exc}"
            at = At(Context(Mode.PKI_TRUSTPOINT, (f.trustpoint,)), f.keyword, 1)
            expected = (
                "a regular file of root's, "
                + ("mode 0600 or 0640" if f.secret else "writable by root only")
                + f", of 1-{VALUE_MAX} bytes, in directories only root may write"
            )
            checker.error("trustpoint-file", reason, at, expected)
    return tuple(checker.found)


def check(
    text: str, secrets_from: Config | None = None, files: FileCheck | None = None
) -> tuple[Config, tuple[Diagnostic, ...]]:
    """Parse and, if the text parses, validate: the model and every diagnostic.
    ``secrets_from``: the configuration whose secrets masked ones (``<removed>``) keep. With
    ``files``, a configuration without other errors has its certificate and key files
    checked too (:func:`file_findings`)."""
    if secrets_from is None:
        parsed, found = _checked(text)
    else:
        parsed = parse(text, secrets_from=secrets_from)
        found = validate(parsed.config, parsed.source) if parsed.ok else ()
    if not parsed.ok:
        return parsed.config, parsed.diagnostics
    if files is not None and not any(f.is_error for f in found):
        found += file_findings(parsed.config, parsed.source, files)
    return parsed.config, tuple(sorted(found, key=sort_key))


@functools.lru_cache(maxsize=8)
def _checked(text: str) -> tuple[ParseResult, tuple[Diagnostic, ...]]:
    """:func:`parse` and :func:`validate` of ``text``, both pure, remembered for the same
    text: the running configuration is checked again by every audit (every 30 s) and every
    ``GetConfig`` (the shell's start asks for the host name), a hub's of thousands of lines."""
    parsed = parse(text)
    return parsed, (validate(parsed.config, parsed.source) if parsed.ok else ())


def overlapping_earlier(prefixes: list[IPv4Network]) -> list[list[int]]:
    """For each prefix, the positions of the earlier ones it overlaps, in order. Two
    prefixes overlap only when one holds the other: sorted by first address, broadest
    first, the prefixes still open at one hold it, so a psk-map of N disjoint prefixes
    costs N log N, not N squared (a hub's thousand spokes)."""
    found: list[list[int]] = [[] for _ in prefixes]
    ranked = sorted(
        range(len(prefixes)),
        key=lambda i: (int(prefixes[i].network_address), prefixes[i].prefixlen, i),
    )
    holding: list[int] = []  # positions of the open prefixes, each inside the one before
    for i in ranked:
        start = int(prefixes[i].network_address)
        while holding and int(prefixes[holding[-1]].broadcast_address) < start:
            holding.pop()
        for j in holding:
            found[max(i, j)].append(min(i, j))
        holding.append(i)
    for positions in found:
        positions.sort()
    return found
