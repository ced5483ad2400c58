"""Every statement of the language: its pattern per mode and how it edits the model.

One table (:data:`GRAMMAR`) drives the file parser, :func:`frrdmvpn.config.edit.apply_line`
(the shell's primitive), ``?`` help and the reference in ``docs/config.md``.
Handlers are pure: ``(config, context, args) -> Outcome``; they raise
:class:`~frrdmvpn.config.grammar.LineError` for a line that is understood but not
applicable (for example a network already configured in another area).
"""

from __future__ import annotations

import dataclasses
import operator
import re
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Any, TypeVar

from frrdmvpn.command_engine.grammar import Element, Opt, Param
from frrdmvpn.command_engine.params import (
    Choice,
    IntRange,
    Ipv4,
    Line,
    Mask,
    ParamType,
    Prefix,
    Tunnel,
    Whole,
    Wildcard,
    Word,
)
from frrdmvpn.config import canonical_text
from frrdmvpn.config.grammar import (
    END,
    Area,
    Args,
    Command,
    Grammar,
    Handler,
    Host,
    IfName,
    LineError,
    Outcome,
    Secret,
    Source,
    is_fqdn,
    parse_network,
)
from frrdmvpn.config.model import (
    TUNNEL_NUMBER_MAX,
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
from frrdmvpn.config.modes import Context, Mode
from frrdmvpn.core.authorize import PolicyMode

# Algorithm keywords (Cisco IOS XE) accepted by the language.
IKE_ENCRYPTION = ("aes-cbc-128", "aes-cbc-192", "aes-cbc-256", "aes-gcm-128", "aes-gcm-256")
IKE_INTEGRITY = ("md5", "sha1", "sha256", "sha384", "sha512")
IKE_PRF = IKE_INTEGRITY
DH_GROUPS = (1, 2, 5, 14, 15, 16, 19, 20, 21, 24, 31)
ESP_ENCRYPTION = ("esp-aes", "esp-gcm", "esp-null")
ESP_KEY_BITS = ("128", "192", "256")
ESP_INTEGRITY = (
    "esp-md5-hmac",
    "esp-sha-hmac",
    "esp-sha256-hmac",
    "esp-sha384-hmac",
    "esp-sha512-hmac",
)

N = TypeVar("N")
_NAME = operator.attrgetter("name")


# --- small helpers -------------------------------------------------------------------------


def _index(items: tuple[N, ...], name: str) -> int | None:
    """Where the item called ``name`` is. Looked for from the end: a file's lines edit the
    block entered last, so parsing one costs a look at one item, not at all of them."""
    for at in range(len(items) - 1, -1, -1):
        if getattr(items[at], "name", None) == name:
            return at
    return None


def _upsert(items: tuple[N, ...], name: str, make: Callable[[], N]) -> tuple[N, ...]:
    known = name in map(_NAME, items)  # a new block's name is looked for in C, not Python
    return items if known else (*items, make())


def _map(items: tuple[N, ...], name: str, fn: Callable[[N], N], what: str) -> tuple[N, ...]:
    at = _index(items, name)
    if at is None:
        raise LineError(f"{what} {name} is not configured (enter it first)")
    return (*items[:at], fn(items[at]), *items[at + 1 :])


def _drop(items: tuple[N, ...], name: str) -> tuple[N, ...]:
    return tuple(i for i in items if getattr(i, "name", None) != name)


_COLLECTIONS: dict[Mode, tuple[str, str]] = {
    Mode.INTERFACE: ("interfaces", "interface"),
    Mode.IKEV2_PROPOSAL: ("ikev2_proposals", "IKEv2 proposal"),
    Mode.IKEV2_KEYRING: ("ikev2_keyrings", "keyring"),
    Mode.IKEV2_KEYRING_PEER: ("ikev2_keyrings", "keyring"),
    Mode.IKEV2_PROFILE: ("ikev2_profiles", "IKEv2 profile"),
    Mode.PKI_TRUSTPOINT: ("trustpoints", "trustpoint"),
    Mode.TRANSFORM_SET: ("transform_sets", "transform-set"),
    Mode.IPSEC_PROFILE: ("ipsec_profiles", "IPsec profile"),
}
_SINGLETONS: dict[Mode, tuple[str, str]] = {
    Mode.ROUTER_OSPF: ("ospf", "router ospf"),
    Mode.AUTHORIZATION: ("authorization", "frrdmvpn authorization"),
}


def _edit(config: Config, ctx: Context, fn: Callable[[Any], Any]) -> Config:
    """Apply ``fn`` to the object the context selects."""
    changes: dict[str, Any]
    if ctx.mode in _COLLECTIONS:
        field, what = _COLLECTIONS[ctx.mode]
        if ctx.mode is Mode.IKEV2_KEYRING_PEER:
            inner, peer_name = fn, ctx.keys[1]

            def fn(k: Ikev2Keyring) -> Ikev2Keyring:
                return dataclasses.replace(k, peers=_map(k.peers, peer_name, inner, "peer"))

        changes = {field: _map(getattr(config, field), ctx.keys[0], fn, what)}
    elif ctx.mode in _SINGLETONS:
        field, what = _SINGLETONS[ctx.mode]
        current = getattr(config, field)
        if current is None:
            raise LineError(f"{what} is not configured (enter it first)")
        changes = {field: fn(current)}
    else:
        raise LineError(f"nothing to edit in {ctx.mode.title}")
    return dataclasses.replace(config, **changes)


def _set(**changes: object) -> Handler:
    """A handler setting fields to constants."""

    def handler(config: Config, ctx: Context, args: Args) -> Outcome:
        return Outcome(_edit(config, ctx, lambda o: dataclasses.replace(o, **changes)))

    return handler


def _set_from(field: str, read: Callable[[Args], object]) -> Handler:
    """A handler setting ``field`` from the arguments."""

    def handler(config: Config, ctx: Context, args: Args) -> Outcome:
        value = read(args)
        return Outcome(_edit(config, ctx, lambda o: dataclasses.replace(o, **{field: value})))

    return handler


def _arg(name: str) -> Callable[[Args], object]:
    return lambda args: args.get(name)


# --- parameter types specific to this language -------------------------------------------


class _OrDynamic(ParamType):
    """An IPv4 address or the keyword ``dynamic`` (by unique prefix), read as :data:`DYNAMIC`."""

    label = "A.B.C.D|dynamic"
    rank = 1

    def read(self, token: str) -> object | None:
        if DYNAMIC.startswith(token.lower()):
            return DYNAMIC
        return Ipv4().read(token)


DYNAMIC = "dynamic"


class _PassiveName(ParamType):
    """``TunnelN`` (the word spelt out, any case) or a Linux interface name."""

    label = "TunnelN|IFNAME"

    def read(self, token: str) -> object | None:
        m = re.fullmatch(r"(?i)tunnel([0-9]{1,10})", token)
        if m is not None and int(m.group(1)) <= TUNNEL_NUMBER_MAX:
            return f"Tunnel{int(m.group(1))}"
        return IfName().read(token)

    def reason(self, token: str) -> str | None:
        return IfName().reason(token)


# --- global mode ---------------------------------------------------------------------------


def _enter(
    field: str, make: Callable[[str], Any], mode: Mode, header: str
) -> tuple[Handler, Handler]:
    def enter(config: Config, ctx: Context, args: Args) -> Outcome:
        name = args.text("name")
        changes: dict[str, Any] = {field: _upsert(getattr(config, field), name, lambda: make(name))}
        return Outcome(
            dataclasses.replace(config, **changes),
            Context(mode, (name,)),
            f"{header} {name}",
        )

    def remove(config: Config, ctx: Context, args: Args) -> Outcome:
        name = args.text("name")
        changes: dict[str, Any] = {field: _drop(getattr(config, field), name)}
        return Outcome(dataclasses.replace(config, **changes), key=f"{header} {name}")

    return enter, remove


def _interface_enter(config: Config, ctx: Context, args: Args) -> Outcome:
    number = args.number("tunnel")
    name = f"Tunnel{number}"
    items = _upsert(config.interfaces, name, lambda: TunnelInterface(number))
    return Outcome(
        dataclasses.replace(config, interfaces=items),
        Context(Mode.INTERFACE, (name,)),
        f"interface {name}",
    )


def _interface_remove(config: Config, ctx: Context, args: Args) -> Outcome:
    name = f"Tunnel{args.number('tunnel')}"
    return Outcome(
        dataclasses.replace(config, interfaces=_drop(config.interfaces, name)),
        key=f"interface {name}",
    )


def _transform_set_enter(config: Config, ctx: Context, args: Args) -> Outcome:
    name = args.text("name")
    bits = args.opt_text("bits")
    existing = config.transform_set(name)
    new = TransformSet(
        name=name,
        encryption=args.text("encryption"),
        key_bits=None if bits is None else int(bits),
        integrity=args.opt_text("integrity"),
        mode=IpsecMode.TUNNEL if existing is None else existing.mode,
    )
    if existing is None:
        items = (*config.transform_sets, new)
    else:
        items = tuple(new if t.name == name else t for t in config.transform_sets)
    return Outcome(
        dataclasses.replace(config, transform_sets=items),
        Context(Mode.TRANSFORM_SET, (name,)),
        f"crypto ipsec transform-set {name}",
    )


def _ospf_enter(config: Config, ctx: Context, args: Args) -> Outcome:
    pid = args.opt_number("pid")
    if config.ospf is None:
        ospf = Ospf(pid=pid)
    elif pid is not None and config.ospf.pid is not None and pid != config.ospf.pid:
        raise LineError(
            f"only one OSPF process: router ospf {config.ospf.pid} is already configured",
            "pid",
            str(config.ospf.pid),
        )
    else:
        ospf = config.ospf if pid is None else dataclasses.replace(config.ospf, pid=pid)
    return Outcome(dataclasses.replace(config, ospf=ospf), Context(Mode.ROUTER_OSPF), "router ospf")


def _ospf_remove(config: Config, ctx: Context, args: Args) -> Outcome:
    return Outcome(dataclasses.replace(config, ospf=None), key="router ospf")


def _authorization_enter(config: Config, ctx: Context, args: Args) -> Outcome:
    mode = PolicyMode(args.text("mode"))
    current = config.authorization
    auth = Authorization(mode) if current is None else dataclasses.replace(current, mode=mode)
    return Outcome(
        dataclasses.replace(config, authorization=auth),
        Context(Mode.AUTHORIZATION),
        "frrdmvpn authorization",
    )


def _authorization_remove(config: Config, ctx: Context, args: Args) -> Outcome:
    return Outcome(dataclasses.replace(config, authorization=None), key="frrdmvpn authorization")


def _hostname(config: Config, ctx: Context, args: Args) -> Outcome:
    return Outcome(dataclasses.replace(config, hostname=args.text("name")))


def _no_hostname(config: Config, ctx: Context, args: Args) -> Outcome:
    return Outcome(dataclasses.replace(config, hostname=None))


NAME = Param("name", Word("WORD"))


def _global() -> list[Command]:
    g = Mode.CONFIG
    out = [
        Command(g, ("hostname", NAME), _hostname, "Set the host name", _no_hostname),
        Command(
            g,
            ("interface", Param("tunnel", Tunnel(TUNNEL_NUMBER_MAX))),
            _interface_enter,
            "Configure an mGRE tunnel interface",
            _interface_remove,
            no_depth=2,
        ),
        Command(
            g,
            ("router", "ospf", Opt(Param("pid", IntRange(1, 65535)))),
            _ospf_enter,
            "Configure the OSPF process",
            _ospf_remove,
            no_depth=2,
        ),
        Command(
            g,
            ("frrdmvpn", "authorization", Param("mode", Choice(*(m.value for m in PolicyMode)))),
            _authorization_enter,
            "Binding authorization policy",
            _authorization_remove,
            no_depth=2,
        ),
    ]
    blocks: list[tuple[tuple[str, ...], str, Callable[[str], Any], Mode, str]] = [
        (
            ("crypto", "ikev2", "proposal"),
            "ikev2_proposals",
            Ikev2Proposal,
            Mode.IKEV2_PROPOSAL,
            "Define an IKEv2 proposal",
        ),
        (
            ("crypto", "ikev2", "keyring"),
            "ikev2_keyrings",
            Ikev2Keyring,
            Mode.IKEV2_KEYRING,
            "Define an IKEv2 keyring (pre-shared keys)",
        ),
        (
            ("crypto", "ikev2", "profile"),
            "ikev2_profiles",
            Ikev2Profile,
            Mode.IKEV2_PROFILE,
            "Define an IKEv2 profile",
        ),
        (
            ("crypto", "pki", "trustpoint"),
            "trustpoints",
            Trustpoint,
            Mode.PKI_TRUSTPOINT,
            "Define certificate files",
        ),
        (
            ("crypto", "ipsec", "profile"),
            "ipsec_profiles",
            IpsecProfile,
            Mode.IPSEC_PROFILE,
            "Define an IPsec profile",
        ),
    ]
    for words, field, make, mode, help_text in blocks:
        enter, remove = _enter(field, make, mode, " ".join(words))
        out.append(Command(g, (*words, NAME), enter, help_text, remove, no_depth=4))
    enc = Param("encryption", Choice(*ESP_ENCRYPTION))
    bits = Opt(Param("bits", Choice(*ESP_KEY_BITS)))
    integrity = Opt(Param("integrity", Choice(*ESP_INTEGRITY)))

    def remove_ts(config: Config, ctx: Context, args: Args) -> Outcome:
        name = args.text("name")
        return Outcome(
            dataclasses.replace(config, transform_sets=_drop(config.transform_sets, name)),
            key=f"crypto ipsec transform-set {name}",
        )

    out.append(
        Command(
            g,
            ("crypto", "ipsec", "transform-set", NAME, enc, bits, integrity),
            _transform_set_enter,
            "Define an IPsec transform-set",
            remove_ts,
            no_depth=4,
        )
    )
    return out


# --- interface mode ------------------------------------------------------------------------


def _address(args: Args) -> IPv4Interface:
    return IPv4Interface(f"{args.address('address')}/{args.number('mask')}")


def _nhs_add(config: Config, ctx: Context, args: Args) -> Outcome:
    target = args.get("target")
    protocol = None if target == DYNAMIC else args.address("target")
    nbma = args.get("nbma")
    assert nbma is None or isinstance(nbma, IPv4Address | str)
    if protocol is None and nbma is None:
        raise LineError("a dynamic NHS needs its NBMA address", "target", "nbma A.B.C.D|FQDN")
    nhs = NhrpNhs(protocol, nbma, args.has("multicast"), args.opt_number("priority"))

    def same(other: NhrpNhs) -> bool:
        if protocol is None:
            return other.protocol is None and other.nbma == nbma
        return other.protocol == protocol

    def edit(i: TunnelInterface) -> TunnelInterface:
        if any(same(n) for n in i.nhrp_nhs):
            entries = tuple(nhs if same(n) else n for n in i.nhrp_nhs)
        else:
            entries = (*i.nhrp_nhs, nhs)
        return dataclasses.replace(i, nhrp_nhs=entries)

    return Outcome(_edit(config, ctx, edit), key=canonical_text.nhs_line(nhs))


def _nhs_remove(config: Config, ctx: Context, args: Args) -> Outcome:
    target = args.get("target")
    nbma = args.get("nbma")

    def gone(n: NhrpNhs) -> bool:
        if target == DYNAMIC:
            return n.protocol is None and (nbma is None or n.nbma == nbma)
        return n.protocol == target and (nbma is None or n.nbma == nbma)

    def edit(i: TunnelInterface) -> TunnelInterface:
        return dataclasses.replace(i, nhrp_nhs=tuple(n for n in i.nhrp_nhs if not gone(n)))

    return Outcome(_edit(config, ctx, edit))


def _map_add(config: Config, ctx: Context, args: Args) -> Outcome:
    entry = NhrpMap(args.address("protocol"), args.address("nbma"))

    def edit(i: TunnelInterface) -> TunnelInterface:
        if entry in i.nhrp_maps:
            return i
        return dataclasses.replace(i, nhrp_maps=(*i.nhrp_maps, entry))

    return Outcome(_edit(config, ctx, edit), key=canonical_text.map_line(entry))


def _map_remove(config: Config, ctx: Context, args: Args) -> Outcome:
    protocol, nbma = args.address("protocol"), args.opt_address("nbma")

    def edit(i: TunnelInterface) -> TunnelInterface:
        kept = tuple(
            m for m in i.nhrp_maps if not (m.protocol == protocol and nbma in (None, m.nbma))
        )
        return dataclasses.replace(i, nhrp_maps=kept)

    return Outcome(_edit(config, ctx, edit))


def _multicast(add: bool) -> Handler:
    def handler(config: Config, ctx: Context, args: Args) -> Outcome:
        target = args.get("target")

        def edit(i: TunnelInterface) -> TunnelInterface:
            if target == DYNAMIC:
                return dataclasses.replace(i, nhrp_map_multicast_dynamic=add)
            assert isinstance(target, IPv4Address)
            rest = tuple(a for a in i.nhrp_map_multicast if a != target)
            if add:
                entries = (
                    i.nhrp_map_multicast if target in i.nhrp_map_multicast else (*rest, target)
                )
            else:
                entries = rest
            return dataclasses.replace(i, nhrp_map_multicast=entries)

        address = None if target == DYNAMIC else target
        assert address is None or isinstance(address, IPv4Address)
        return Outcome(_edit(config, ctx, edit), key=canonical_text.map_multicast_line(address))

    return handler


def _interface() -> list[Command]:
    m = Mode.INTERFACE
    ospf_types = Choice(*(t.value for t in OspfNetworkType))

    def setting(
        words: tuple[str, ...],
        param: Param | None,
        field: str,
        help_text: str,
        read: Callable[[Args], object] | None = None,
    ) -> Command:
        pattern: tuple[Element, ...] = words if param is None else (*words, param)
        if param is None:
            handler = _set(**{field: True})
        else:
            handler = _set_from(field, read or _arg(param.name))
        no_value: object = False if param is None else None
        return Command(
            m,
            pattern,
            handler,
            help_text,
            _set(**{field: no_value}),
            no_depth=len(words),
            key=" ".join(words),
        )

    def tristate(words: tuple[str, ...], field: str, help_text: str) -> Command:
        return Command(
            m,
            words,
            _set(**{field: True}),
            help_text,
            _set(**{field: False}),
            _set(**{field: None}),
            key=" ".join(words),
        )

    return [
        setting(("description",), Param("text", Line()), "description", "Interface description"),
        Command(
            m,
            ("ip", "address", Param("address", Ipv4()), Param("mask", Mask())),
            _set_from("address", _address),
            "Tunnel (overlay) address and subnet mask",
            _set(address=None),
            no_depth=2,
            key="ip address",
        ),
        setting(("ip", "mtu"), Param("bytes", IntRange(576, 9000)), "mtu", "IP MTU of the tunnel"),
        setting(
            ("ip", "tcp", "adjust-mss"),
            Param("bytes", IntRange(500, 1460)),
            "tcp_adjust_mss",
            "Clamp the TCP MSS of SYNs through the tunnel",
        ),
        setting(
            ("ip", "nhrp", "authentication"),
            Param("secret", Secret("nhrp_authentication", "NHRP authentication string")),
            "nhrp_authentication",
            "NHRP cleartext authentication string",
        ),
        setting(
            ("ip", "nhrp", "network-id"),
            Param("id", IntRange(1, 4294967295)),
            "nhrp_network_id",
            "NHRP network id (required)",
        ),
        setting(
            ("ip", "nhrp", "holdtime"),
            Param("seconds", IntRange(1, 65000)),
            "nhrp_holdtime",
            "NHRP registration holdtime",
        ),
        Command(
            m,
            (
                "ip",
                "nhrp",
                "nhs",
                Param("target", _OrDynamic()),
                Opt("nbma", Param("nbma", Host())),
                Opt(Param("multicast", Choice("multicast"))),
                Opt("priority", Param("priority", IntRange(0, 255))),
            ),
            _nhs_add,
            "Next hop server",
            _nhs_remove,
            no_depth=4,
        ),
        Command(
            m,
            ("ip", "nhrp", "map", Param("protocol", Ipv4()), Param("nbma", Ipv4())),
            _map_add,
            "Static NHRP mapping",
            _map_remove,
            no_depth=4,
        ),
        Command(
            m,
            ("ip", "nhrp", "map", "multicast", Param("target", _OrDynamic())),
            _multicast(add=True),
            "NBMA destinations of multicast (OSPF hellos)",
            _multicast(add=False),
            no_depth=5,
        ),
        tristate(
            ("ip", "nhrp", "registration", "no-unique"),
            "nhrp_registration_no_unique",
            "Do not set the unique flag in registrations (default on)",
        ),
        setting(
            ("ip", "nhrp", "redirect"), None, "nhrp_redirect", "Send NHRP redirects (hub, Phase 3)"
        ),
        setting(
            ("ip", "nhrp", "shortcut"),
            None,
            "nhrp_shortcut",
            "Install NHRP shortcuts (spoke, Phase 3)",
        ),
        setting(
            ("ip", "ospf", "network"),
            Param("type", ospf_types),
            "ospf_network",
            "OSPF network type",
            lambda a: OspfNetworkType(a.text("type")),
        ),
        setting(
            ("ip", "ospf", "priority"),
            Param("priority", IntRange(0, 255)),
            "ospf_priority",
            "OSPF DR priority",
        ),
        setting(
            ("ip", "ospf", "hello-interval"),
            Param("seconds", IntRange(1, 65535)),
            "ospf_hello_interval",
            "OSPF hello interval",
        ),
        setting(
            ("ip", "ospf", "dead-interval"),
            Param("seconds", IntRange(1, 65535)),
            "ospf_dead_interval",
            "OSPF dead interval",
        ),
        tristate(
            ("ip", "ospf", "mtu-ignore"),
            "ospf_mtu_ignore",
            "Ignore the MTU in OSPF DBD packets (default on)",
        ),
        setting(
            ("tunnel", "source"),
            Param("source", Source()),
            "source",
            "Underlay (NBMA) interface or address",
        ),
        Command(
            m,
            ("tunnel", "mode", "gre", "multipoint"),
            _set(multipoint=True),
            "Multipoint GRE (required)",
            _set(multipoint=False),
            no_depth=2,
            key="tunnel mode",
        ),
        setting(("tunnel", "key"), Param("key", IntRange(0, 4294967295)), "key", "GRE key"),
        Command(
            m,
            ("tunnel", "protection", "ipsec", "profile", Param("profile", Word("WORD"))),
            _set_from("protection_profile", _arg("profile")),
            "Protect the tunnel with an IPsec profile",
            _set(protection_profile=None),
            no_depth=2,
            key="tunnel protection",
        ),
    ]


# --- crypto modes --------------------------------------------------------------------------


def _appending(field: str, convert: Callable[[object], object] = lambda v: v) -> Handler:
    def handler(config: Config, ctx: Context, args: Args) -> Outcome:
        values = [convert(v) for v in args.items("values")]

        def edit(o: Any) -> Any:
            current = tuple(getattr(o, field))
            return dataclasses.replace(
                o, **{field: current + tuple(v for v in dict.fromkeys(values) if v not in current)}
            )

        return Outcome(_edit(config, ctx, edit))

    return handler


def _removing(field: str, convert: Callable[[object], object] = lambda v: v) -> Handler:
    def handler(config: Config, ctx: Context, args: Args) -> Outcome:
        values = [convert(v) for v in args.items("values")]

        def edit(o: Any) -> Any:
            current = tuple(getattr(o, field))
            kept = () if not values else tuple(v for v in current if v not in values)
            return dataclasses.replace(o, **{field: kept})

        return Outcome(_edit(config, ctx, edit))

    return handler


def _proposal() -> list[Command]:
    m = Mode.IKEV2_PROPOSAL
    out = []
    for keyword, choices, field, help_text in (
        ("encryption", IKE_ENCRYPTION, "encryption", "IKE encryption algorithms"),
        ("integrity", IKE_INTEGRITY, "integrity", "IKE integrity algorithms (non-AEAD)"),
        ("prf", IKE_PRF, "prf", "IKE pseudo-random functions"),
    ):
        values = Param("values", Choice(*choices), many=True)
        out.append(
            Command(
                m, (keyword, values), _appending(field), help_text, _removing(field), no_depth=1
            )
        )
    groups = Param("values", Choice(*(str(g) for g in DH_GROUPS)), many=True)
    out.append(
        Command(
            m,
            ("group", groups),
            _appending("groups", lambda v: int(str(v))),
            "Diffie-Hellman groups",
            _removing("groups", lambda v: int(str(v))),
            no_depth=1,
        )
    )
    return out


def _identity(args: Args, with_mask: bool = False) -> IkeIdentity:
    kind, value = args.text("kind"), args.get("value")
    mask = args.opt_number("mask")
    domain = args.has("domain")
    if domain and (kind != "fqdn" or not with_mask):
        raise LineError("domain only in match identity remote fqdn", "domain", "FQDN")
    if kind == "address":
        if not isinstance(value, IPv4Address):
            raise LineError(f"{value} is not an IPv4 address", "value", "A.B.C.D")
        if mask is not None and not with_mask:
            raise LineError("no mask here", "mask", "<cr>")
        return AddressIdentity(value, None if mask is None else canonical_text.netmask(mask))
    if not isinstance(value, str) or not is_fqdn(value):
        raise LineError(f"{value} is not a host name", "value", "FQDN")
    if mask is not None:
        raise LineError("an FQDN identity has no mask", "mask", "<cr>")
    return FqdnIdentity(value, domain)


KIND = Param("kind", Choice("address", "fqdn"))
VALUE = Param("value", Host())


def _peer_enter(config: Config, ctx: Context, args: Args) -> Outcome:
    name = args.text("name")

    def edit(k: Ikev2Keyring) -> Ikev2Keyring:
        return dataclasses.replace(k, peers=_upsert(k.peers, name, lambda: KeyringPeer(name)))

    return Outcome(
        _edit(config, ctx, edit),
        Context(Mode.IKEV2_KEYRING_PEER, (ctx.keys[0], name)),
        f"peer {name}",
    )


def _peer_remove(config: Config, ctx: Context, args: Args) -> Outcome:
    name = args.text("name")

    def edit(k: Ikev2Keyring) -> Ikev2Keyring:
        return dataclasses.replace(k, peers=_drop(k.peers, name))

    return Outcome(_edit(config, ctx, edit), key=f"peer {name}")


def _peer_address(args: Args) -> IPv4Network:
    address, mask = args.address("address"), args.opt_number("mask")
    if mask is None:
        mask = 0 if int(address) == 0 else 32
    return parse_network(address, mask)


def _match_remote(add: bool) -> Handler:
    def handler(config: Config, ctx: Context, args: Args) -> Outcome:
        identity = _identity(args, with_mask=True) if args.has("kind") else None

        def edit(p: Ikev2Profile) -> Ikev2Profile:
            if not add:
                kept = () if identity is None else tuple(i for i in p.match_remote if i != identity)
                return dataclasses.replace(p, match_remote=kept)
            if identity in p.match_remote:
                return p
            assert identity is not None
            return dataclasses.replace(p, match_remote=(*p.match_remote, identity))

        key = None if identity is None else canonical_text.match_remote_line(identity)
        return Outcome(_edit(config, ctx, edit), key=key)

    return handler


def _keyring_modes() -> list[Command]:
    k, p = Mode.IKEV2_KEYRING, Mode.IKEV2_KEYRING_PEER
    return [
        Command(
            k, ("peer", NAME), _peer_enter, "Define a peer and its key", _peer_remove, no_depth=2
        ),
        Command(
            p,
            ("address", Param("address", Ipv4()), Opt(Param("mask", Mask()))),
            _set_from("address", _peer_address),
            "Peer address (0.0.0.0 0.0.0.0: any)",
            _set(address=None),
            no_depth=1,
        ),
        Command(
            p,
            ("identity", KIND, VALUE),
            _set_from("identity", _identity),
            "Peer IKE identity",
            _set(identity=None),
            no_depth=1,
        ),
        Command(
            p,
            ("pre-shared-key", Param("key", Secret("pre_shared_key", "pre-shared key"))),
            _set_from("pre_shared_key", _arg("key")),
            "The pre-shared key",
            _set(pre_shared_key=None),
            no_depth=1,
        ),
    ]


def _profile() -> list[Command]:
    m = Mode.IKEV2_PROFILE
    methods = Choice(*(a.value for a in AuthMethod))
    return [
        Command(
            m,
            (
                "match",
                "identity",
                "remote",
                KIND,
                Opt(Param("domain", Whole("domain"))),
                VALUE,
                Opt(Param("mask", Mask())),
            ),
            _match_remote(add=True),
            "Remote identity this profile matches",
            _match_remote(add=False),
            no_depth=3,
        ),
        Command(
            m,
            ("identity", "local", KIND, VALUE),
            _set_from("identity_local", _identity),
            "Local IKE identity",
            _set(identity_local=None),
            no_depth=2,
        ),
        Command(
            m,
            ("authentication", "local", Param("method", methods)),
            _set_from("authentication_local", lambda a: AuthMethod(a.text("method"))),
            "Local authentication method",
            _set(authentication_local=None),
            no_depth=2,
        ),
        Command(
            m,
            ("authentication", "remote", Param("method", methods)),
            _set_from("authentication_remote", lambda a: AuthMethod(a.text("method"))),
            "Remote authentication method",
            _set(authentication_remote=None),
            no_depth=2,
        ),
        Command(
            m,
            ("keyring", "local", NAME),
            _set_from("keyring", _arg("name")),
            "Keyring with the pre-shared keys",
            _set(keyring=None),
            no_depth=1,
        ),
        Command(
            m,
            ("pki", "trustpoint", NAME),
            _set_from("trustpoint", _arg("name")),
            "Trustpoint with the certificates",
            _set(trustpoint=None),
            no_depth=2,
        ),
        Command(
            m,
            (
                "dpd",
                Param("interval", IntRange(10, 3600)),
                Param("retries", IntRange(2, 60)),
                Param("mode", Choice(*(d.value for d in DpdMode))),
            ),
            _set_from(
                "dpd",
                lambda a: Dpd(a.number("interval"), a.number("retries"), DpdMode(a.text("mode"))),
            ),
            "Dead peer detection",
            _set(dpd=None),
            no_depth=1,
        ),
        Command(
            m,
            ("lifetime", Param("seconds", IntRange(120, 86400))),
            _set_from("lifetime", _arg("seconds")),
            "IKE SA lifetime",
            _set(lifetime=None),
            no_depth=1,
        ),
    ]


def _trustpoint() -> list[Command]:
    m = Mode.PKI_TRUSTPOINT
    path = Param("path", Word("PATH"))
    return [
        Command(
            m,
            ("certificate", path),
            _set_from("certificate", _arg("path")),
            "This host's certificate file",
            _set(certificate=None),
            no_depth=1,
        ),
        Command(
            m,
            ("private-key", path),
            _set_from("private_key", _arg("path")),
            "This host's private key file",
            _set(private_key=None),
            no_depth=1,
        ),
        Command(
            m,
            ("ca-certificate", path),
            _set_from("ca_certificate", _arg("path")),
            "CA certificate file peers must chain to",
            _set(ca_certificate=None),
            no_depth=1,
        ),
    ]


def _ipsec() -> list[Command]:
    t, p = Mode.TRANSFORM_SET, Mode.IPSEC_PROFILE
    groups = Choice(*(f"group{g}" for g in DH_GROUPS))
    return [
        Command(
            t,
            ("mode", Param("mode", Choice(*(m.value for m in IpsecMode)))),
            _set_from("mode", lambda a: IpsecMode(a.text("mode"))),
            "Encapsulation mode (DMVPN: transport)",
            _set(mode=IpsecMode.TUNNEL),
            no_depth=1,
        ),
        Command(
            p,
            ("set", "transform-set", Param("values", Word("WORD"), many=True)),
            _set_from(
                "transform_sets", lambda a: tuple(dict.fromkeys(str(v) for v in a.items("values")))
            ),
            "Transform-sets, in order of preference",
            _set(transform_sets=()),
            no_depth=2,
        ),
        Command(
            p,
            ("set", "ikev2-profile", NAME),
            _set_from("ikev2_profile", _arg("name")),
            "IKEv2 profile",
            _set(ikev2_profile=None),
            no_depth=2,
        ),
        Command(
            p,
            ("set", "pfs", Param("group", groups)),
            _set_from("pfs_group", lambda a: int(a.text("group")[5:])),
            "Perfect forward secrecy group",
            _set(pfs_group=None),
            no_depth=2,
        ),
        Command(
            p,
            (
                "set",
                "security-association",
                "lifetime",
                "seconds",
                Param("seconds", IntRange(120, 86400)),
            ),
            _set_from("lifetime_seconds", _arg("seconds")),
            "IPsec SA lifetime",
            _set(lifetime_seconds=None),
            no_depth=3,
        ),
    ]


# --- router ospf and authorization ---------------------------------------------------------


def _network(add: bool) -> Handler:
    def handler(config: Config, ctx: Context, args: Args) -> Outcome:
        if args.has("prefix"):
            prefix = args.get("prefix")
            assert isinstance(prefix, IPv4Network)
        else:
            prefix = parse_network(args.address("address"), args.number("wildcard"))
        area = args.opt_text("area")

        def edit(o: Ospf) -> Ospf:
            existing = next((n for n in o.networks if n.prefix == prefix), None)
            if not add:
                if existing is not None and area not in (None, existing.area):
                    raise LineError(
                        f"network {prefix} is in area {existing.area}", "area", existing.area
                    )
                return dataclasses.replace(
                    o, networks=tuple(n for n in o.networks if n.prefix != prefix)
                )
            if area is None:
                raise LineError("the network needs an area", END, "area <0-4294967295>|A.B.C.D")
            if existing is not None:
                if existing.area != area:
                    raise LineError(
                        f"network {prefix} is already in area {existing.area} (remove it first)",
                        "area",
                        existing.area,
                    )
                return o
            return dataclasses.replace(o, networks=(*o.networks, OspfNetwork(prefix, area)))

        key = None if area is None else canonical_text.network_line(OspfNetwork(prefix, area))
        return Outcome(_edit(config, ctx, edit), key=key)

    return handler


def _passive(add: bool) -> Handler:
    def handler(config: Config, ctx: Context, args: Args) -> Outcome:
        name = args.text("ifname")

        def edit(o: Ospf) -> Ospf:
            rest = tuple(p for p in o.passive_interfaces if p != name)
            if not add:
                return dataclasses.replace(o, passive_interfaces=rest)
            if name in o.passive_interfaces:
                return o
            return dataclasses.replace(o, passive_interfaces=(*rest, name))

        return Outcome(_edit(config, ctx, edit), key=canonical_text.passive_line(name))

    return handler


def _identity_allow(config: Config, ctx: Context, args: Args) -> Outcome:
    identity = args.text("identity")
    prefixes = tuple(dict.fromkeys(p for p in args.items("prefixes") if isinstance(p, IPv4Network)))
    entry = AuthorizedIdentity(identity, prefixes)

    def edit(a: Authorization) -> Authorization:
        if any(e.identity == identity for e in a.identities):
            entries = tuple(entry if e.identity == identity else e for e in a.identities)
        else:
            entries = (*a.identities, entry)
        return dataclasses.replace(a, identities=entries)

    return Outcome(_edit(config, ctx, edit), key=f"identity {identity}")


def _identity_remove(config: Config, ctx: Context, args: Args) -> Outcome:
    identity = args.text("identity")

    def edit(a: Authorization) -> Authorization:
        kept = tuple(e for e in a.identities if e.identity != identity)
        return dataclasses.replace(a, identities=kept)

    return Outcome(_edit(config, ctx, edit), key=f"identity {identity}")


def _ospf_and_authorization() -> list[Command]:
    o, a = Mode.ROUTER_OSPF, Mode.AUTHORIZATION
    area = Opt("area", Param("area", Area()))
    return [
        Command(
            o,
            ("router-id", Param("id", Ipv4())),
            _set_from("router_id", _arg("id")),
            "OSPF router id",
            _set(router_id=None),
            no_depth=1,
        ),
        Command(
            o,
            ("network", Param("address", Ipv4()), Param("wildcard", Wildcard()), area),
            _network(add=True),
            "Run OSPF on interfaces inside this network",
            _network(add=False),
            no_depth=3,
        ),
        Command(
            o,
            ("network", Param("prefix", Prefix()), area),
            _network(add=True),
            "Run OSPF on interfaces inside this prefix",
            _network(add=False),
            no_depth=2,
        ),
        Command(
            o,
            ("passive-interface", Param("ifname", _PassiveName())),
            _passive(add=True),
            "Do not send OSPF hellos on this interface",
            _passive(add=False),
            no_depth=2,
        ),
        Command(
            o,
            (
                "timers",
                "throttle",
                "spf",
                Param("delay", IntRange(0, 600000)),
                Param("initial", IntRange(0, 600000)),
                Param("maximum", IntRange(0, 600000)),
            ),
            _set_from(
                "spf_throttle",
                lambda a: (a.number("delay"), a.number("initial"), a.number("maximum")),
            ),
            "SPF throttling (milliseconds)",
            _set(spf_throttle=None),
            no_depth=3,
        ),
        Command(
            o,
            ("timers", "throttle", "lsa", "all", Param("ms", IntRange(0, 5000))),
            _set_from("lsa_throttle", _arg("ms")),
            "Minimum interval between originations of an LSA (milliseconds)",
            _set(lsa_throttle=None),
            no_depth=4,
        ),
        Command(
            o,
            ("timers", "lsa", "arrival", Param("ms", IntRange(0, 600000))),
            _set_from("lsa_arrival", _arg("ms")),
            "Minimum interval between accepted copies of an LSA (milliseconds)",
            _set(lsa_arrival=None),
            no_depth=3,
        ),
        Command(
            a,
            (
                "identity",
                Param("identity", Word("IKE-ID")),
                "allow",
                Param("prefixes", Prefix(), many=True),
            ),
            _identity_allow,
            "Prefixes this IKE identity may claim (psk-map)",
            _identity_remove,
            no_depth=2,
        ),
    ]


def _fill_keys(commands: list[Command]) -> list[Command]:
    return [
        c if c.key else dataclasses.replace(c, key=" ".join(c.leading_keywords())) for c in commands
    ]


COMMANDS: tuple[Command, ...] = tuple(
    _fill_keys(
        _global()
        + _interface()
        + _proposal()
        + _keyring_modes()
        + _profile()
        + _trustpoint()
        + _ipsec()
        + _ospf_and_authorization()
    )
)
GRAMMAR = Grammar(COMMANDS)
