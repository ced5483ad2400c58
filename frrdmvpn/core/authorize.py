"""Binding authorization: may nhrpd install the binding it asks about? Pure, no I/O.

nhrpd asks ``authorize-binding`` (docs/enforcement.md) before it
installs a dynamic, NHS or cached binding ``remote_addr -> remote_nbma``. The answer is
yes only if

1. the event names the claimed tunnel address and both NBMA addresses,
2. the claimed address is not this node's own (a shortcut's resolution binds an address
   of the peer's LAN, so claims outside the tunnel subnet are possible: a PSK map grants
   such prefixes, a certificate through an RFC 3779 address block; any-authenticated
   accepts any address),
3. an INSTALLED ESP transport-mode CHILD_SA protects exactly GRE between
   ``local_nbma`` and ``remote_nbma`` (see :func:`gre_protection_problem`), and
4. the IKE peer of such an SA may claim the address under the configured
   :class:`PolicyMode`.

Every :class:`Decision` carries a reason a human can act on. :func:`authorize` never
raises on what nhrpd or charon sent (garbage certificates included): anything it cannot
read is a denial with a reason.
"""

from __future__ import annotations

import enum
import ipaddress
import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from frrdmvpn.codec.nhrp_events import AuthorizeBinding, IPAddress
from frrdmvpn.codec.x509 import CertificateNames, DerError, SubjectAltNames, certificate_names
from frrdmvpn.core.identity import Identity, carries, certificate_identity

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# How many CHILD_SAs a "no protecting SA" reason lists before it summarises.
MAX_LISTED_SAS = 8
# Peer-chosen strings (IKE identities) are quoted and cut to this many characters.
MAX_QUOTED = 96

# A traffic selector as charon prints it (traffic_selector_printf_hook, used by VICI
# list-sas): "<addr>/<prefix>", then "[<proto>]" when a protocol is set. The protocol is
# the name from the host's protocol database (getprotobynumber), so GRE prints "gre" on a
# host with netbase's /etc/protocols and "47" without it; both are the same selector.
# Port-restricted forms ("[gre/1234]", "[gre/OPAQUE]") and ranges ("a..b") are not
# accepted: nhrpd's GRE needs all of protocol 47 between the two hosts, nothing else.
_SELECTOR = re.compile(r"(?P<addr>[0-9A-Fa-f.:]+)/(?P<prefix>[0-9]{1,3})\[(?P<proto>[^\]/]+)\]")
_GRE_NAMES = frozenset({"gre", "47"})


class PolicyMode(enum.Enum):
    """How a peer's IKE identity is bound to the tunnel address it claims."""

    # Every certificate issued to the peer's IKE identity grants the claimed address (an
    # iPAddress subjectAltName or an RFC 3779 address block).
    CERTIFICATE = "certificate"
    # The peer's IKE identity is in the configured map and the address in its networks; a
    # non-address identity only with a pre-shared key of its own.
    PSK_MAP = "psk-map"
    # Any IKE-authenticated peer may claim any address in the tunnel subnet (weak).
    ANY_AUTHENTICATED = "any-authenticated"


@dataclass(frozen=True)
class ChildSa:
    """What the authorizer knows of one CHILD_SA, as charon reports it (VICI list-sas)."""

    ike_uniqueid: int
    child_uniqueid: int
    local_host: IPAddress
    remote_host: IPAddress
    local_id: str
    remote_id: str
    state: str
    mode: str
    protocol: str
    local_ts: tuple[str, ...]
    remote_ts: tuple[str, ...]
    # The end-entity certificates charon holds for remote_id (VICI list-certs): any of
    # them may have authenticated the peer.
    remote_certs: tuple[bytes, ...] = ()
    remote_auth: str = "psk"
    ike_name: str = ""  # charon's connection name of the IKE_SA
    # The remote.id of that connection as VICI list-conns shows it (None: unset, any).
    conn_remote_id: str | None = None
    spi_in: int = 0  # the kernel SA's SPI towards us (0: not known)
    spi_out: int = 0

    @property
    def label(self) -> str:
        """``CHILD_SA #5 (IKE_SA #3)``, charon's unique ids."""
        return f"CHILD_SA #{self.child_uniqueid} (IKE_SA #{self.ike_uniqueid})"


def _empty_map() -> Mapping[str, frozenset[IPNetwork]]:
    return MappingProxyType({})


@dataclass(frozen=True)
class Policy:
    """The configured authorization policy. ``psk_map`` is copied and frozen.

    ``psk_own_key``: the non-address identities of the map whose pre-shared key is theirs
    alone (no other identity has the same key, and no key charon accepts for any identity
    exists); only these may claim anything, since nothing else ties such an identity to a
    peer (an address identity is tied to the address the peer speaks IKE from).
    """

    mode: PolicyMode
    tunnel_subnet: IPNetwork
    psk_map: Mapping[str, frozenset[IPNetwork]] = field(default_factory=_empty_map)
    psk_own_key: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not isinstance(self.mode, PolicyMode):
            raise TypeError(f"mode must be a PolicyMode, not {self.mode!r}")
        if not isinstance(self.tunnel_subnet, ipaddress.IPv4Network | ipaddress.IPv6Network):
            raise TypeError(f"tunnel_subnet must be an IP network, not {self.tunnel_subnet!r}")
        frozen: dict[str, frozenset[IPNetwork]] = {}
        for identity, networks in self.psk_map.items():
            if not isinstance(identity, str) or not identity:
                raise ValueError(f"psk_map key {identity!r} is not a non-empty IKE identity")
            nets = frozenset(networks)
            for net in nets:
                if not isinstance(net, ipaddress.IPv4Network | ipaddress.IPv6Network):
                    raise TypeError(f"psk_map[{identity!r}] holds {net!r}, not an IP network")
            frozen[identity] = nets
        object.__setattr__(self, "psk_map", MappingProxyType(frozen))
        object.__setattr__(self, "psk_own_key", frozenset(self.psk_own_key))


@dataclass(frozen=True)
class Decision:
    """The answer to one authorize-binding event, with the reason to log and show."""

    accept: bool
    reason: str
    weak: bool = False
    peer_identity: str | None = None


def _quote(text: str) -> str:
    quoted = repr(text)
    return quoted if len(quoted) <= MAX_QUOTED else quoted[: MAX_QUOTED - 4] + "...'"


def _same(a: IPAddress, b: IPAddress) -> bool:
    return a.version == b.version and a == b


def _inside(address: IPAddress, network: IPNetwork) -> bool:
    return address.version == network.version and address in network


def is_gre_host_selector(selector: str, host: IPAddress) -> bool:
    """``host/32[gre]`` (or ``[47]`` where charon has no /etc/protocols) for exactly ``host``."""
    return _is_gre_host_selector(selector, host)


def _is_gre_host_selector(selector: str, host: IPAddress) -> bool:
    match = _SELECTOR.fullmatch(selector)
    if match is None or match["proto"] not in _GRE_NAMES:
        return False
    try:
        address = ipaddress.ip_address(match["addr"])
    except ValueError:
        return False
    return _same(address, host) and match["prefix"] == str(address.max_prefixlen)


_ANY_PROTOCOL = re.compile(r"(?P<addr>[0-9A-Fa-f.:]+)/(?P<prefix>[0-9]{1,3})\[.*\]", re.DOTALL)


def is_host_selector(selector: str, host: IPAddress) -> bool:
    """``host/32[...]`` (``/128``) for exactly ``host``, whatever its protocol part reads."""
    match = _ANY_PROTOCOL.fullmatch(selector)
    if match is None:
        return False
    try:
        address = ipaddress.ip_address(match["addr"])
    except ValueError:
        return False
    return _same(address, host) and match["prefix"] == str(address.max_prefixlen)


def _selector_problem(side: str, selectors: tuple[str, ...], host: IPAddress) -> str | None:
    if not selectors:
        return f"no {side}_ts"
    bad = [s for s in selectors if not _is_gre_host_selector(s, host)]
    if not bad:
        return None
    prefix = 32 if host.version == 4 else 128
    more = f" (+{len(bad) - 1} more)" if len(bad) > 1 else ""
    return f"{side}_ts {_quote(bad[0])} is not {host}/{prefix}[gre]{more}"


def gre_protection_problem(
    sa: ChildSa, local_nbma: IPAddress, remote_nbma: IPAddress
) -> str | None:
    """Why ``sa`` does not protect GRE between the NBMA pair, or ``None`` if it does.

    Protecting means: state INSTALLED, mode TRANSPORT, protocol ESP, local/remote host
    equal to ``local_nbma``/``remote_nbma`` (in that orientation), and every local and
    remote traffic selector exactly the host's ``/32`` (``/128``) with protocol GRE and
    no ports, e.g. ``198.51.100.11/32[gre]`` (``[47]`` is accepted as the same selector
    printed on a host without /etc/protocols; ``[gre/...]`` port forms are not).
    """
    problems: list[str] = []
    hosts_match = _same(sa.local_host, local_nbma) and _same(sa.remote_host, remote_nbma)
    if not hosts_match:
        swapped = _same(sa.local_host, remote_nbma) and _same(sa.remote_host, local_nbma)
        kind = "hosts swapped" if swapped else "between"
        problems.append(f"{kind} {sa.local_host}<->{sa.remote_host}")
    if sa.state != "INSTALLED":
        problems.append(f"state {_quote(sa.state)}")
    if sa.mode != "TRANSPORT":
        problems.append(f"mode {_quote(sa.mode)}")
    if sa.protocol != "ESP":
        problems.append(f"protocol {_quote(sa.protocol)}")
    if hosts_match:
        for side, selectors, host in (
            ("local", sa.local_ts, local_nbma),
            ("remote", sa.remote_ts, remote_nbma),
        ):
            problem = _selector_problem(side, selectors, host)
            if problem is not None:
                problems.append(problem)
    return ", ".join(problems) or None


def protects_gre(sa: ChildSa, local_nbma: IPAddress, remote_nbma: IPAddress) -> bool:
    """Whether ``sa`` protects GRE between the NBMA pair (see :func:`gre_protection_problem`)."""
    return gre_protection_problem(sa, local_nbma, remote_nbma) is None


def reads_garbled(sa: ChildSa) -> bool:
    """An INSTALLED ESP transport CHILD_SA whose every selector is its own hosts' (``/32``,
    ``/128``) but does not read as GRE: charon may print a selector's protocol wrongly
    (docs/enforcement.md, "Selectors charon garbled"), so what it protects is unknown."""
    return (
        sa.state == "INSTALLED"
        and sa.mode == "TRANSPORT"
        and sa.protocol == "ESP"
        and bool(sa.local_ts and sa.remote_ts)
        and all(is_host_selector(t, sa.local_host) for t in sa.local_ts)
        and all(is_host_selector(t, sa.remote_host) for t in sa.remote_ts)
        and not protects_gre(sa, sa.local_host, sa.remote_host)
    )


def _no_protection(
    sas: list[ChildSa], local_nbma: IPAddress, remote_nbma: IPAddress
) -> tuple[list[ChildSa], str]:
    """The protecting SAs, and if there are none a text saying why the SAs seen failed.

    Only SAs between the two NBMA addresses can protect; the rest are skipped cheaply (a hub
    with thousands of SAs decides in microseconds), and described only when listed."""
    pair = {local_nbma, remote_nbma}
    relevant = [sa for sa in sas if {sa.local_host, sa.remote_host} == pair]
    protecting = [
        sa for sa in relevant if gre_protection_problem(sa, local_nbma, remote_nbma) is None
    ]
    if protecting:
        return protecting, ""
    if not sas:
        return [], "charon reported no CHILD_SA at all"
    others = (sa for sa in sas if {sa.local_host, sa.remote_host} != pair)
    listed = list(itertools.islice(itertools.chain(relevant, others), MAX_LISTED_SAS))
    shown = "; ".join(
        f"{sa.label} {gre_protection_problem(sa, local_nbma, remote_nbma)}" for sa in listed
    )
    hidden = len(sas) - len(listed)
    return [], f"seen: {shown}" + (f"; and {hidden} more" if hidden > 0 else "")


def _check_certificate(
    event: AuthorizeBinding, sa: ChildSa, claimed: IPAddress, subnet: IPNetwork
) -> tuple[bool, str]:
    """Certificates bind claims only if they provably belong to the peer's IKE identity.

    The identity must be exactly one identity of the type the connection's remote.id
    admits (:func:`frrdmvpn.core.identity.certificate_identity`), at least one certificate
    must be issued to exactly it (subject DN or a subjectAltName equal to it), and every
    certificate that may have authenticated the peer must allow the claim: the one nhrpd
    names, or all charon holds for the identity (any of them could have been presented).
    An iPAddress subjectAltName binds a tunnel address (inside the tunnel subnet: the
    certificate usually names the NBMA address too); an RFC 3779 address block binds any
    address in it (a LAN that shortcut resolutions bind to the peer)."""
    who = f"IKE peer {_quote(sa.remote_id)} ({sa.label})"
    identity = _certificate_peer(sa, who)
    if isinstance(identity, str):
        return False, identity
    held = _certificates(event, sa, who)
    if isinstance(held, str):
        return False, held
    if not any(carries(names, identity) for _, names in held):
        whose = (
            "the certificate from nhrpd"
            if event.remote_cert
            else (f"the {len(held)} certificate(s) charon holds for it")
        )
        return False, (
            f"{who}: {whose} has no subject DN or subjectAltName equal to its identity, so "
            "none provably belongs to it"
        )
    verdicts = [_judge_names(label, names.alt_names, claimed, subnet) for label, names in held]
    refused = next((text for ok, text in verdicts if not ok), None)
    if len(verdicts) == 1:
        return verdicts[0]
    if refused is None:
        return True, f"all {len(verdicts)} certificates charon holds for {who} allow it"
    return False, f"each certificate issued to the identity must allow the claim: {refused}"


def _certificate_peer(sa: ChildSa, who: str) -> Identity | str:
    """The peer's identity if it authenticated by certificate and can be tied to one."""
    if sa.remote_auth != "pubkey":
        return (
            f"{who} authenticated with {_quote(sa.remote_auth)}, not a certificate; "
            "certificate policy needs pubkey authentication"
        )
    identity = certificate_identity(sa.remote_id, sa.conn_remote_id, sa.ike_name)
    if isinstance(identity, str):
        return f"{who} cannot be tied to a certificate: {identity}"
    return identity


def _certificates(
    event: AuthorizeBinding, sa: ChildSa, who: str
) -> list[tuple[str, CertificateNames]] | str:
    """The certificates that may have authenticated the peer, each with the label its
    reasons use: the one nhrpd names, else all charon holds; or why there are none."""
    ders = (event.remote_cert,) if event.remote_cert else sa.remote_certs
    if not ders:
        return f"no certificate known for {who} (none from nhrpd or charon)"
    source = "nhrpd" if event.remote_cert else "charon"
    labels = [f"certificate of {who} from {source}"]
    if len(ders) > 1:
        labels = [
            f"certificate {i} of {len(ders)} charon holds for {who}"
            for i in range(1, len(ders) + 1)
        ]
    out: list[tuple[str, CertificateNames]] = []
    for label, der in zip(labels, ders, strict=True):
        try:
            out.append((label, certificate_names(der)))
        except DerError as exc:
            return f"{label} is malformed ({exc})"
    return out


def _judge_names(
    cert: str, names: SubjectAltNames, claimed: IPAddress, subnet: IPNetwork
) -> tuple[bool, str]:
    """What one certificate's names allow."""
    inside = _inside(claimed, subnet)
    if inside and any(_same(address, claimed) for address in names.ip_addresses):
        return True, f"{cert} has IP subjectAltName {claimed}"
    block = next((b for b in names.address_blocks if _inside(claimed, b)), None)
    if block is not None:
        return True, f"{cert} delegates address block {block} (RFC 3779), holding {claimed}"
    allowed = [str(a) for a in names.ip_addresses if _inside(a, subnet)]
    allowed += [str(b) for b in names.address_blocks]
    if allowed:
        return False, f"{cert} may claim only {', '.join(allowed)}, not {claimed}"
    return False, (
        f"{cert} has no IP subjectAltName inside the tunnel subnet {subnet} and no address "
        f"block ({names.describe()}), so it may claim nothing"
    )


def _check_psk_map(policy: Policy, sa: ChildSa, claimed: IPAddress) -> tuple[bool, str]:
    who = f"IKE identity {_quote(sa.remote_id)} ({sa.label})"
    try:  # an address identity must be the address the peer speaks IKE from: with a group
        as_address = ipaddress.ip_address(sa.remote_id)  # PSK any member could claim another's
    except ValueError:
        as_address = None
    if as_address is not None and not _same(as_address, sa.remote_host):
        return False, f"{who} is an address other than the peer's own ({sa.remote_host})"
    networks = policy.psk_map.get(sa.remote_id)
    if networks is None:
        return False, f"{who} is not in the PSK authorization map, so it may claim nothing"
    if as_address is None and sa.remote_id not in policy.psk_own_key:
        return False, (
            f"{who} is no address and has no pre-shared key of its own (with a key shared "
            "with another identity, or one charon accepts for any identity, every holder "
            "can present it), so it may claim nothing"
        )
    allowed = ", ".join(sorted(str(n) for n in networks)) or "nothing"
    if any(_inside(claimed, net) for net in networks):
        return True, f"{who} may claim {allowed} per the PSK authorization map"
    return False, f"{who} may claim only {allowed}, not {claimed}"


def _precheck(
    event: AuthorizeBinding, policy: Policy, subject: str
) -> Decision | tuple[IPAddress, IPAddress, IPAddress]:
    """A denial for an incomplete event or a bad claim, else (claimed, local, remote NBMA)."""
    claimed, local_nbma, remote_nbma = event.remote_addr, event.local_nbma, event.remote_nbma
    if claimed is None or local_nbma is None or remote_nbma is None:
        named = (("remote_addr", claimed), ("local_nbma", local_nbma), ("remote_nbma", remote_nbma))
        missing = ", ".join(name for name, value in named if value is None)
        return Decision(
            False,
            f"deny {subject}: event {event.eventid} on {event.interface} lacks {missing}; "
            "a binding can only be checked with remote_addr, local_nbma and remote_nbma",
        )
    if event.local_addr is not None and _same(claimed, event.local_addr):
        return Decision(
            False,
            f"deny {subject}: claimed address is this node's own tunnel address on "
            f"{event.interface}",
        )
    return claimed, local_nbma, remote_nbma


def authorize(event: AuthorizeBinding, sas: Iterable[ChildSa], policy: Policy) -> Decision:
    """Decide one authorize-binding event against charon's CHILD_SAs and the policy."""
    subject = f"{event.remote_addr or '?'} via {event.remote_nbma or '?'}"
    checked = _precheck(event, policy, subject)
    if isinstance(checked, Decision):
        return checked
    claimed, local_nbma, remote_nbma = checked

    protecting, why_not = _no_protection(list(sas), local_nbma, remote_nbma)
    if not protecting:
        return Decision(
            False,
            f"deny {subject}: no INSTALLED ESP transport CHILD_SA protects GRE "
            f"{local_nbma}<->{remote_nbma}; {why_not}",
        )

    if policy.mode is PolicyMode.ANY_AUTHENTICATED:
        sa = protecting[0]
        return Decision(
            True,
            f"accept {subject}: WEAK authorization (policy any-authenticated): IKE peer "
            f"{_quote(sa.remote_id)} ({sa.label}) protects GRE but nothing binds it to "
            f"{claimed}; any authenticated peer may claim any address",
            weak=True,
            peer_identity=sa.remote_id,
        )

    failures: list[str] = []
    for sa in protecting:
        if policy.mode is PolicyMode.CERTIFICATE:
            ok, text = _check_certificate(event, sa, claimed, policy.tunnel_subnet)
        else:
            ok, text = _check_psk_map(policy, sa, claimed)
        if ok:
            return Decision(True, f"accept {subject}: {text}", peer_identity=sa.remote_id)
        if text not in failures:
            failures.append(text)
    return Decision(
        False,
        f"deny {subject}: policy {policy.mode.value}: {'; '.join(failures)}",
        peer_identity=protecting[0].remote_id,
    )
