"""IKE identities as charon 5.9 reads and prints them, and which certificate carries one. Pure.

charon reports identities only as text: ``remote-id`` of VICI ``list-sas`` and ``id`` of
``list-conns`` are its printed form (``%Y``), and ``list-certs`` reads the ``subject`` it
is given back from text. Printing loses the identity's type and, for some values, bytes,
so this module reads text the way charon does (``identification_create_from_string``),
prints the way it prints, and matches the way it matches with ``rdn_matching = strict``
(its default), so that the proxy can tell when the text is *exactly* one identity:

- text charon types from its shape: ``=`` somewhere: a DN (``C=CH, O=Corp, CN=x``; a
  string that is no valid DN is a key-id); ``@`` inside: an RFC 822 address; an address
  (``192.0.2.1``, ``2001:db8::1``), a subnet (``A/M``) or a range (``A-B``); otherwise an
  FQDN; ``""``, ``%any``, ``*``, ``0.0.0.0``, ``::`` mean any identity; ``fqdn:``-style
  and ``{N}:`` prefixes force a type (charon never prints them);
- printing: a DN as ``NAME=value`` joined by ``", "``, every byte outside printable ASCII
  of a DN value, FQDN or RFC 822 address becomes ``?``; at most 511 characters;
- matching: a DN pattern needs the same attributes in the same order, a value ``*``
  matches any; an FQDN or RFC 822 pattern ``*suffix`` matches names ending in ``suffix``
  (letter case ignored, as for equality); a subnet or range matches the addresses inside.

The DN attributes understood are those charon reads from text (``CN``, ``O``, ``OU``,
``C``, ``DC``, ``E``, ...); a DN with any other attribute is never tied to a certificate.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass

from frrdmvpn.codec.x509 import (
    IA5_STRING,
    PRINTABLE_CHARACTERS,
    PRINTABLE_STRING,
    UTF8_STRING,
    Attribute,
    CertificateNames,
    flat,
)

#: charon prints identities into a 512-byte buffer: text this long may have been cut.
PRINT_LIMIT = 511


class Kind(enum.Enum):
    """The identity types charon gives text (ID_* of its identification_t)."""

    ANY = "any identity"
    DN = "DN"
    FQDN = "FQDN"
    RFC822 = "RFC 822 address"
    KEY_ID = "key-id"
    IPV4 = "IPv4 address"
    IPV6 = "IPv6 address"
    IPV4_SUBNET = "IPv4 subnet"
    IPV6_SUBNET = "IPv6 subnet"
    IPV4_RANGE = "IPv4 range"
    IPV6_RANGE = "IPv6 range"
    TYPED = "type-prefixed identity"


_ADDRESS_KINDS = {
    4: (Kind.IPV4, Kind.IPV4_SUBNET, Kind.IPV4_RANGE),
    6: (Kind.IPV6, Kind.IPV6_SUBNET, Kind.IPV6_RANGE),
}
#: Kinds that stand for more than one identity.
PATTERN_KINDS = frozenset(
    {Kind.ANY, Kind.IPV4_SUBNET, Kind.IPV6_SUBNET, Kind.IPV4_RANGE, Kind.IPV6_RANGE}
)
_EMAIL = "1.2.840.113549.1.9.1"
_PRINTABLE, _IA5 = "printable", "ia5"
# The names charon reads in a DN (case-insensitively), the attribute's OID, the name it
# prints for that OID and the string type it encodes a value read from text with.
_DN_NAMES: tuple[tuple[str, str, str, str], ...] = (
    ("ND", "0.2.262.1.10.7.20", "ND", _PRINTABLE),
    ("UID", "0.9.2342.19200300.100.1.1", "UID", _PRINTABLE),
    ("DC", "0.9.2342.19200300.100.1.25", "DC", _PRINTABLE),
    ("CN", "2.5.4.3", "CN", _PRINTABLE),
    ("SN", "2.5.4.4", "SN", _PRINTABLE),
    ("serialNumber", "2.5.4.5", "serialNumber", _PRINTABLE),
    ("C", "2.5.4.6", "C", _PRINTABLE),
    ("L", "2.5.4.7", "L", _PRINTABLE),
    ("ST", "2.5.4.8", "ST", _PRINTABLE),
    ("STREET", "2.5.4.9", "STREET", _PRINTABLE),
    ("O", "2.5.4.10", "O", _PRINTABLE),
    ("OU", "2.5.4.11", "OU", _PRINTABLE),
    ("T", "2.5.4.12", "T", _PRINTABLE),
    ("D", "2.5.4.13", "D", _PRINTABLE),
    ("postalAddress", "2.5.4.16", "postalAddress", _PRINTABLE),
    ("postalCode", "2.5.4.17", "postalCode", _PRINTABLE),
    ("N", "2.5.4.41", "N", _PRINTABLE),
    ("G", "2.5.4.42", "G", _PRINTABLE),
    ("I", "2.5.4.43", "I", _PRINTABLE),
    ("ID", "2.5.4.45", "ID", _PRINTABLE),
    ("dnQualifier", "2.5.4.46", "dnQualifier", _PRINTABLE),
    ("dmdName", "2.5.4.54", "dmdName", _PRINTABLE),
    ("pseudonym", "2.5.4.65", "pseudonym", _PRINTABLE),
    ("EN", "2.16.840.1.113730.3.1.3", "employeeNumber", _PRINTABLE),
    ("employeeNumber", "2.16.840.1.113730.3.1.3", "employeeNumber", _PRINTABLE),
    ("E", _EMAIL, "E", _IA5),
    ("Email", _EMAIL, "E", _IA5),
    ("emailAddress", _EMAIL, "E", _IA5),
    ("UN", "1.2.840.113549.1.9.2", "unstructuredName", _IA5),
    ("unstructuredName", "1.2.840.113549.1.9.2", "unstructuredName", _IA5),
    ("UA", "1.2.840.113549.1.9.8", "unstructuredAddress", _PRINTABLE),
    ("unstructuredAddress", "1.2.840.113549.1.9.8", "unstructuredAddress", _PRINTABLE),
)
_BY_NAME = {name.lower(): (oid, kind) for name, oid, _, kind in _DN_NAMES}
_PRINT_NAME = {oid: printed for _, oid, printed, _ in reversed(_DN_NAMES)}
_RDN_MAX = 20  # charon's atodn refuses more
_CHARON_ONLY_NAMES = frozenset({"tcgid"})  # charon reads it; this module does not compare it
_TYPE_PREFIXES = (
    "ipv4:",
    "ipv6:",
    "ipv4net:",
    "ipv6net:",
    "ipv4range:",
    "ipv6range:",
    "rfc822:",
    "email:",
    "userfqdn:",
    "fqdn:",
    "dns:",
    "asn1dn:",
    "asn1gn:",
    "xmppaddr:",
    "keyid:",
)
_ANY_TEXTS = frozenset({"", "%any", "%any6", "0.0.0.0", "*", "::", "0::0"})  # noqa: S104


@dataclass(frozen=True)
class Identity:
    """One identity as charon reads it from ``text`` (for an FQDN: the name, ``@`` cut).

    ``rdns``: a DN's attributes in order (``None`` for a DN with an attribute this module
    does not know); ``low``/``high``: the addresses an address kind covers.
    """

    kind: Kind
    text: str
    rdns: tuple[Attribute, ...] | None = ()
    low: int = 0
    high: int = 0
    version: int = 0


def _read_dn(text: str) -> tuple[Attribute, ...] | bool | None:
    """charon's reading of a DN from text: its attributes, ``None`` for a valid DN with
    an attribute not in :data:`_DN_NAMES`, ``False`` for no valid DN (then a key-id)."""
    rdns: list[Attribute] = []
    unknown = False
    separator = ""
    i, n = 0, len(text)
    while True:
        while i < n and text[i] == " ":
            i += 1
        if i == n:
            break
        if not separator:
            separator = "/" if text[i] == "/" else ","
            if separator == "/":
                i += 1
                continue
        start = i
        i += 1  # the first character belongs to the name, whatever it is
        while i < n and text[i] not in " =":
            i += 1
        if i == n:
            return False  # an attribute name without "=": charon's INVALID_ARG
        name = text[start:i].lower()
        found = _BY_NAME.get(name)
        if found is None and name not in _CHARON_ONLY_NAMES:
            return False  # charon knows no such attribute: NOT_SUPPORTED
        while i < n and text[i] in " =":
            i += 1
        end = text.find(separator, i)
        end = n if end < 0 else end
        value = text[i:end].rstrip(" ")
        i = end + 1
        if found is None:
            unknown = True
        else:
            oid, kind = found
            raw = value.encode("utf-8")
            if kind == _IA5:
                tag = IA5_STRING
            else:
                tag = PRINTABLE_STRING if set(raw) <= PRINTABLE_CHARACTERS else UTF8_STRING
            rdns.append(Attribute(oid, tag, raw))
        if len(rdns) > _RDN_MAX:
            return False
        if end >= n:
            break
    if unknown:
        return None
    return tuple(rdns) if rdns else False


def _atoi(text: str) -> int:
    """C's atoi(): leading whitespace, a sign, the digits that follow (0 if none)."""
    text = text.lstrip(" \t\n\r\f\v")
    sign = -1 if text[:1] == "-" else 1
    text = text[1:] if text[:1] in "+-" else text
    digits = text[: len(text) - len(text.lstrip("0123456789"))]
    return sign * int(digits) if digits else 0


def _address(text: str, version: int) -> Identity | None:  # noqa: PLR0911 - one per form
    """An address, subnet (``A/M``) or range (``A-B``) as charon reads it, or ``None``."""
    kinds = _ADDRESS_KINDS[version]
    parse = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
    width = 32 if version == 4 else 128
    head, slash, bits = text.partition("/")
    if "%" in text:
        return None  # a scope: Python reads it, charon's inet_pton does not
    try:
        if slash:
            prefix = _atoi(bits)
            if not 0 <= prefix <= width:
                return None
            net = ipaddress.ip_network(f"{parse(head)}/{prefix}", strict=False)
            return Identity(
                kinds[1],
                text,
                low=int(net.network_address),
                high=int(net.broadcast_address),
                version=version,
            )
        low_text, dash, high_text = text.partition("-")
        low = int(parse(low_text))
        if dash:
            high = int(parse(high_text))
            if low > high:
                return None
            return Identity(kinds[2], text, low=low, high=high, version=version)
    except ValueError:
        return None
    return Identity(kinds[0], text, low=low, high=low, version=version)


def parse(text: str) -> Identity:  # noqa: PLR0911 - one exit per charon rule reads clearest
    """The identity charon reads from ``text`` (its kind decided as charon decides it)."""
    lowered = text.lower()
    if lowered.startswith(_TYPE_PREFIXES) or (text.startswith("{") and "}:" in text):
        return Identity(Kind.TYPED, text)
    if "=" in text:
        rdns = _read_dn(text)
        if rdns is False:
            return Identity(Kind.KEY_ID, text)
        return Identity(Kind.DN, text, rdns=rdns if isinstance(rdns, tuple) else None)
    if "@" not in text:
        if text in _ANY_TEXTS:
            return Identity(Kind.ANY, text)
        if ":" not in text:
            return _address(text, 4) or Identity(Kind.FQDN, text)
        return _address(text, 6) or Identity(Kind.KEY_ID, text)
    if text.startswith("@#"):
        return Identity(Kind.KEY_ID, text)
    if text.startswith("@@"):
        return Identity(Kind.TYPED, text)  # charon's user FQDN from text, never printed so
    if text.startswith("@"):
        return Identity(Kind.FQDN, text[1:])
    return Identity(Kind.RFC822, text)


def _printable(value: bytes) -> str:
    return "".join(chr(c) if 0x20 <= c <= 0x7E else "?" for c in value)


def print_dn(attributes: tuple[Attribute, ...]) -> str | None:
    """A DN as charon prints it (``None`` if it has an attribute this module does not know)."""
    parts = []
    for a in attributes:
        name = _PRINT_NAME.get(a.oid)
        if name is None:
            return None
        parts.append(f"{name}={_printable(a.value)}")
    return ", ".join(parts)


def printed(identity: Identity) -> str | None:
    """``identity`` as charon prints it; ``None`` for kinds this module does not print."""
    if identity.kind is Kind.DN:
        return None if identity.rdns is None else print_dn(identity.rdns)
    if identity.kind in (Kind.FQDN, Kind.RFC822):
        return identity.text
    if identity.kind is Kind.IPV4:
        return str(ipaddress.IPv4Address(identity.low))
    if identity.kind is Kind.IPV6:
        return str(ipaddress.IPv6Address(identity.low))
    return None


def _same_value(a: Attribute, b: Attribute) -> bool:
    if len(a.value) != len(b.value):
        return False
    if a.tag == b.tag and (a.tag == PRINTABLE_STRING or (a.tag == IA5_STRING and a.oid == _EMAIL)):
        return a.value.lower() == b.value.lower()
    return a.value == b.value


def matches(identity: Identity, pattern: Identity) -> bool:  # noqa: PLR0911 - one per kind
    """Whether charon matches ``identity`` against the configured ``pattern``."""
    if pattern.kind is Kind.ANY:
        return True
    if identity.kind is Kind.DN and pattern.kind is Kind.DN:
        ours, theirs = identity.rdns, pattern.rdns
        if ours is None or theirs is None or len(ours) != len(theirs):
            return False
        return all(
            a.oid == p.oid and (p.value == b"*" or _same_value(a, p))
            for a, p in zip(ours, theirs, strict=True)
        )
    if identity.kind in (Kind.FQDN, Kind.RFC822) and identity.kind is pattern.kind:
        name, wanted = identity.text.lower(), pattern.text.lower()
        if name == wanted and "\0" not in name:
            return True
        if not wanted.startswith("*") or len(name) < len(wanted):
            return False
        return wanted == "*" or name.endswith(wanted[1:])
    if identity.version and identity.version == pattern.version:
        return pattern.low <= identity.low and identity.high <= pattern.high
    return False


def carries(names: CertificateNames, identity: Identity) -> bool:
    """Whether the certificate is issued to exactly ``identity``: it equals the subject DN,
    a directoryName, a dNSName, an rfc822Name (letter case ignored, as charon compares
    them) or an iPAddress of the certificate."""
    alt = names.alt_names
    if identity.kind is Kind.DN and identity.rdns is not None:
        wanted = [(a.oid, a.value) for a in identity.rdns]
        dns = (names.subject, *alt.directory_names)
        return any([(a.oid, a.value) for a in flat(dn)] == wanted for dn in dns)
    if identity.kind is Kind.FQDN:
        return identity.text.lower() in (n.lower() for n in alt.dns_names)
    if identity.kind is Kind.RFC822:
        return identity.text.lower() in (n.lower() for n in alt.rfc822_names)
    if identity.kind in (Kind.IPV4, Kind.IPV6):
        return any(
            a.version == identity.version and int(a) == identity.low for a in alt.ip_addresses
        )
    return False


def certificate_identity(  # noqa: PLR0911 - one exit per refusal reads clearest
    remote_id: str, rule: str | None, conn: str
) -> Identity | str:
    """The peer's identity ``remote_id`` if a certificate can be tied to it, else why not.

    ``rule`` is the ``remote.id`` of charon's connection ``conn`` (``None``: unset). It
    must be typed (not any): charon then only admits identities of that type, so the text
    charon prints is read back as the type it was. The identity itself must be one
    identity (no ``*``, no range or subnet, no key-id, not any), known exactly (no ``?``,
    shorter than :data:`PRINT_LIMIT`, printed again as it reads) and admitted by the rule.
    """
    pattern = parse(rule) if rule is not None else Identity(Kind.ANY, "")
    if pattern.kind is Kind.ANY:
        return (
            f"charon's connection {conn!r} accepts any remote identity (remote.id unset), so "
            "the peer chose its identity's type"
        )
    if pattern.kind in (Kind.KEY_ID, Kind.TYPED) or (pattern.kind is Kind.DN and not pattern.rdns):
        return (
            f"the remote identity {rule!r} of charon's connection {conn!r} is a "
            f"{pattern.kind.value} frrdmvpn does not tie to certificates"
        )
    if len(remote_id) >= PRINT_LIMIT:
        return f"its identity is {len(remote_id)} characters long: charon may have cut it"
    if "*" in remote_id:
        return "its identity is a wildcard pattern ('*'), not one identity"
    if "?" in remote_id:
        return "its identity holds '?', charon's mark for an unprintable byte: not known exactly"
    identity = parse(remote_id)
    if identity.kind is Kind.ANY:
        return "its identity stands for any identity, not one identity"
    if identity.kind in PATTERN_KINDS:
        return f"its identity is {_article(identity.kind)}, not one identity"
    if identity.kind is Kind.KEY_ID:
        return (
            "its identity is a key-id, which charon matches against certificate hashes, "
            "key identifiers and serial numbers, not a name a certificate is issued to"
        )
    if identity.kind is Kind.DN and identity.rdns is None:
        return "its identity is a DN with attributes frrdmvpn does not compare"
    if printed(identity) != remote_id:
        return "its identity does not read back as charon prints it: not known exactly"
    if not matches(identity, pattern):
        return (
            f"its identity is not one the remote identity {rule!r} of charon's connection "
            f"{conn!r} admits, so charon's text of it is not faithful"
        )
    return identity


def _article(kind: Kind) -> str:
    return ("an " if kind.value[0] in "aeiouAEIOU" else "a ") + kind.value
