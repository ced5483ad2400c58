"""Strict minimal DER reader for the names an X.509 certificate binds. No I/O.

The runtime has no X.509 library (``cryptography`` is a test dependency only), and binding
authorization needs exactly two things from a certificate: the names it is issued to (the
subject DN and the subjectAltNames, to prove the certificate belongs to the peer's IKE
identity) and the addresses it grants. This module walks only
``Certificate -> TBSCertificate -> subject`` and
``-> extensions [3] -> Extension 2.5.29.17 -> GeneralNames`` and returns the subject's
attributes, the ``iPAddress`` [7] (4 or 16 bytes), ``dNSName`` [2], ``rfc822Name`` [1] and
``directoryName`` [4] entries, plus the prefixes of an RFC 3779 IP address delegation
extension (``sbgp-ipAddrBlock``, 1.3.6.1.5.5.7.1.7): the networks a CA delegates to the
holder, e.g. a spoke's LAN.

It is strict on purpose: definite minimal-length DER only, low tag numbers, the RFC 5280
element order of Certificate and TBSCertificate, no trailing bytes at any level, no
duplicate extension, minimal object identifiers, SET OF in DER order, attribute values of
the X.520 string types with valid contents, an iPAddress of 4 or 16 bytes. Anything else
raises :class:`DerError` (a ``ValueError``), and nothing else is raised whatever the bytes.
It verifies nothing cryptographic: the certificate is trusted only because charon
authenticated the IKE peer with it.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Far above any real end-entity certificate; bounds work done on hostile input.
MAX_CERTIFICATE = 64 * 1024


class DerError(ValueError):
    """The certificate is not DER this reader accepts; the text says where and why."""


_BOOLEAN = 0x01
_INTEGER = 0x02
_BIT_STRING = 0x03
_OCTET_STRING = 0x04
_NULL = 0x05
_OID = 0x06
_SEQUENCE = 0x30
_SET = 0x31
_VERSION = 0xA0  # [0] EXPLICIT Version
_ISSUER_UID = 0x81  # [1] IMPLICIT UniqueIdentifier
_SUBJECT_UID = 0x82  # [2] IMPLICIT UniqueIdentifier
_EXTENSIONS = 0xA3  # [3] EXPLICIT Extensions
_V3 = b"\x02"

_SAN_OID = bytes((0x55, 0x1D, 0x11))  # 2.5.29.17
_ADDR_BLOCKS_OID = bytes((0x2B, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x07))  # 1.3.6.1.5.5.7.1.7
_AFI_BITS = {b"\x00\x01": 32, b"\x00\x02": 128}

# GeneralName choices (RFC 5280 4.2.1.6), as their DER identifier octets.
_GN_RFC822 = 0x81
_GN_DNS = 0x82
_GN_OTHER = 0xA0  # [0] otherName: SEQUENCE {type-id OID, [0] EXPLICIT value}
_GN_DIRECTORY = 0xA4  # [4] EXPLICIT Name
_GN_URI = 0x86
_GN_IP = 0x87
_GN_REGISTERED_ID = 0x88

# The string types of X.520 attribute values (RFC 5280 4.1.2.4 DirectoryString and the
# IA5String of emailAddress/domainComponent), with what their contents may be.
UTF8_STRING = 0x0C
NUMERIC_STRING = 0x12
PRINTABLE_STRING = 0x13
TELETEX_STRING = 0x14
IA5_STRING = 0x16
VISIBLE_STRING = 0x1A
UNIVERSAL_STRING = 0x1C
BMP_STRING = 0x1E
PRINTABLE_CHARACTERS = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 '()+,-./:=?"
)


@dataclass(frozen=True)
class Attribute:
    """One ``AttributeTypeAndValue`` of a Name: dotted OID, string type and raw contents."""

    oid: str
    tag: int
    value: bytes


#: A Name: its RDNs in order, each a set of one or more attributes.
Name = tuple[tuple[Attribute, ...], ...]


def flat(name: Name) -> tuple[Attribute, ...]:
    """The attributes of ``name`` in order, multi-valued RDNs flattened."""
    return tuple(a for rdn in name for a in rdn)


@dataclass(frozen=True)
class SubjectAltNames:
    """What a certificate's subjectAltName extension says (empty if it has none)."""

    present: bool
    ip_addresses: tuple[IPAddress, ...] = ()
    dns_names: tuple[str, ...] = ()
    other_names: int = 0
    address_blocks: tuple[IPNetwork, ...] = ()  # RFC 3779 delegations (inherit: none)
    rfc822_names: tuple[str, ...] = ()
    directory_names: tuple[Name, ...] = ()

    def describe(self) -> str:
        """Short human text, e.g. ``IP 192.0.2.11, DNS spoke1``."""
        blocks = [f"address block {n}" for n in self.address_blocks]
        if not self.present:
            return ", ".join(["no subjectAltName extension", *blocks])
        parts = [f"IP {a}" for a in self.ip_addresses]
        parts += [f"DNS {n}" for n in self.dns_names]
        parts += [f"email {n}" for n in self.rfc822_names]
        if self.directory_names:
            parts.append(f"{len(self.directory_names)} directory name(s)")
        if self.other_names:
            parts.append(f"{self.other_names} other name(s)")
        return ", ".join(parts + blocks)


@dataclass(frozen=True)
class CertificateNames:
    """The subject DN and subjectAltNames of one certificate."""

    subject: Name
    alt_names: SubjectAltNames


def _element(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """Identifier octet, content start and content end of the element at ``pos``."""
    if end - pos < 2:
        raise DerError(f"DER truncated at offset {pos}")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise DerError(f"multi-byte DER tag at offset {pos}")
    first = data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    elif first == 0x80:
        raise DerError(f"indefinite length at offset {pos - 2} (BER, not DER)")
    else:
        size = first & 0x7F
        if size > 4 or end - pos < size:
            raise DerError(f"bad length-of-length {size} at offset {pos - 2}")
        raw = data[pos : pos + size]
        length = int.from_bytes(raw, "big")
        if raw[0] == 0 or length < 0x80:
            raise DerError(f"non-minimal length at offset {pos - 2} (not DER)")
        pos += size
    if length > end - pos:
        raise DerError(f"element at offset {pos} overruns its container by {length - (end - pos)}")
    return tag, pos, pos + length


def _elements(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(start, identifier octet, content start, end) of each element in ``[start, end)``."""
    pos = start
    while pos < end:
        tag, content, stop = _element(data, pos, end)
        yield pos, tag, content, stop
        pos = stop


def _children(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    for _, tag, content, stop in _elements(data, start, end):
        yield tag, content, stop


def _single(data: bytes, start: int, end: int, tag: int, what: str) -> tuple[int, int]:
    """Content bounds of the one element of type ``tag`` that fills ``[start, end)``."""
    found, content, stop = _element(data, start, end)
    if found != tag:
        raise DerError(f"{what}: expected tag 0x{tag:02x}, found 0x{found:02x}")
    if stop != end:
        raise DerError(f"{what}: {end - stop} trailing byte(s)")
    return content, stop


def _oid(raw: bytes) -> str:
    """Dotted text of a minimal OBJECT IDENTIFIER encoding."""
    if not raw or raw[-1] & 0x80:
        raise DerError("object identifier is empty or truncated")
    arcs: list[int] = []
    value = 0
    start = True
    for byte in raw:
        if start and byte == 0x80:
            raise DerError("object identifier arc is not minimally encoded")
        value = (value << 7) | (byte & 0x7F)
        start = not byte & 0x80
        if start:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in (first, arcs[0] - 40 * first, *arcs[1:]))


# TeletexString (T.61) is read as UTF-8 as python3-cryptography does: others are refused.
_TEXT_CODECS = {
    UTF8_STRING: "utf-8",
    TELETEX_STRING: "utf-8",
    BMP_STRING: "utf-16-be",
    UNIVERSAL_STRING: "utf-32-be",
}
_CHARACTER_SETS = {
    PRINTABLE_STRING: PRINTABLE_CHARACTERS,
    IA5_STRING: frozenset(range(0x80)),
    NUMERIC_STRING: frozenset(b"0123456789 "),
    VISIBLE_STRING: frozenset(range(0x20, 0x7F)),
}


def _string_problem(tag: int, value: bytes) -> str | None:
    """Why ``value`` is no valid content of string type ``tag`` (``None``: it is)."""
    codec = _TEXT_CODECS.get(tag)
    if codec is not None:
        try:
            value.decode(codec)  # Python's codecs refuse surrogates too
        except UnicodeDecodeError:
            return f"is not valid {codec}"
        return None
    allowed = _CHARACTER_SETS.get(tag)
    if allowed is None:
        return f"is of type 0x{tag:02x}, no string type"
    if not set(value) <= allowed:
        return f"holds characters its type (0x{tag:02x}) does not allow"
    return None


def _name(data: bytes, start: int, end: int, what: str) -> Name:
    """A Name (SEQUENCE OF RelativeDistinguishedName) filling ``[start, end)``."""
    content, _ = _single(data, start, end, _SEQUENCE, what)
    rdns: list[tuple[Attribute, ...]] = []
    for tag, rstart, rend in _children(data, content, end):
        if tag != _SET:
            raise DerError(f"{what}: 0x{tag:02x} is no RelativeDistinguishedName (SET)")
        members: list[Attribute] = []
        encodings: list[bytes] = []
        pos = rstart
        for atag, astart, aend in _children(data, rstart, rend):
            encodings.append(data[pos:aend])
            pos = aend
            if atag != _SEQUENCE:
                raise DerError(f"{what}: attribute is no SEQUENCE")
            fields = list(_children(data, astart, aend))
            if len(fields) != 2 or fields[0][0] != _OID:
                raise DerError(f"{what}: attribute is not {{type, value}}")
            oid = _oid(data[fields[0][1] : fields[0][2]])
            vtag, vstart, vend = fields[1]
            value = data[vstart:vend]
            problem = _string_problem(vtag, value)
            if problem is not None:
                raise DerError(f"{what}: value of attribute {oid} {problem}")
            members.append(Attribute(oid, vtag, value))
        if not members:
            raise DerError(f"{what}: empty RelativeDistinguishedName")
        if encodings != sorted(encodings):
            raise DerError(f"{what}: RelativeDistinguishedName not in DER (SET OF) order")
        rdns.append(tuple(members))
    return tuple(rdns)


def _tbs_parts(
    data: bytes, der_tbs: tuple[int, int]
) -> tuple[tuple[int, int], tuple[int, int] | None]:
    """Bounds of the subject Name and of the Extensions SEQUENCE (if any) in TBSCertificate."""
    elements = list(_elements(data, *der_tbs))
    parts = [(tag, content, stop) for _, tag, content, stop in elements]
    tags = [tag for tag, _, _ in parts]
    i = 1 if tags[:1] == [_VERSION] else 0
    if tags[i : i + 6] != [_INTEGER] + [_SEQUENCE] * 5:
        raise DerError("TBSCertificate lacks serial, signature, issuer, validity, subject, key")
    subject = (elements[i + 4][0], elements[i + 4][3])
    i += 6
    for optional in (_ISSUER_UID, _SUBJECT_UID):
        if i < len(tags) and tags[i] == optional:
            i += 1
    if i == len(tags):
        return subject, None
    if tags[i] != _EXTENSIONS or i + 1 != len(tags):
        raise DerError(f"unexpected element 0x{tags[i]:02x} in TBSCertificate")
    if tags[0] != _VERSION:
        raise DerError("extensions in a certificate without version (v1)")
    _, vstart, vend = parts[0]
    version, _ = _single(data, vstart, vend, _INTEGER, "version")
    if data[version:vend] != _V3:
        raise DerError("extensions in a certificate that is not v3")
    _, start, end = parts[i]
    return subject, _single(data, start, end, _SEQUENCE, "extensions")


def _other_name(data: bytes, tag: int, start: int, end: int) -> None:
    """Check a GeneralName this reader does not interpret: a URI, a registeredID or an
    otherName, well-formed; x400Address, ediPartyName and anything else are refused."""
    if tag == _GN_URI:
        if any(c > 0x7F for c in data[start:end]):
            raise DerError("subjectAltName: uniformResourceIdentifier is not ASCII")
    elif tag == _GN_REGISTERED_ID:
        _oid(data[start:end])
    elif tag == _GN_OTHER:
        fields = list(_children(data, start, end))
        if [t for t, _, _ in fields] != [_OID, 0xA0]:
            raise DerError("subjectAltName: otherName is not {type-id, [0] value}")
        _oid(data[fields[0][1] : fields[0][2]])
        _element_filling(data, fields[1][1], fields[1][2], "subjectAltName: otherName value")
    else:
        raise DerError(f"subjectAltName: 0x{tag:02x} is no GeneralName this reader accepts")


def _element_filling(data: bytes, start: int, end: int, what: str) -> None:
    """``[start, end)`` holds exactly one element."""
    _, _, stop = _element(data, start, end)
    if stop != end:
        raise DerError(f"{what}: {end - stop} trailing byte(s)")


def _general_names(data: bytes, start: int, end: int) -> SubjectAltNames:
    names, _ = _single(data, start, end, _SEQUENCE, "subjectAltName")
    ips: list[IPAddress] = []
    dns: list[str] = []
    mail: list[str] = []
    dirs: list[Name] = []
    other = 0
    for tag, content, stop in _children(data, names, end):
        value = data[content:stop]
        if tag == _GN_IP:
            if len(value) == 4:
                ips.append(ipaddress.IPv4Address(value))
            elif len(value) == 16:
                ips.append(ipaddress.IPv6Address(value))
            else:
                raise DerError(f"subjectAltName: iPAddress of {len(value)} bytes, not 4 or 16")
        elif tag in (_GN_DNS, _GN_RFC822):
            # Printable ASCII without space: what a host name or mailbox can hold, and safe
            # to log.
            kind = "dNSName" if tag == _GN_DNS else "rfc822Name"
            if not value or any(not 0x21 <= c <= 0x7E for c in value):
                raise DerError(f"subjectAltName: {kind} is empty or not printable ASCII")
            (dns if tag == _GN_DNS else mail).append(value.decode("ascii"))
        elif tag == _GN_DIRECTORY:
            dirs.append(_name(data, content, stop, "subjectAltName directoryName"))
        else:
            _other_name(data, tag, content, stop)
            other += 1
    if not (ips or dns or mail or dirs or other):
        raise DerError("subjectAltName: empty GeneralNames")
    return SubjectAltNames(True, tuple(ips), tuple(dns), other, (), tuple(mail), tuple(dirs))


def _bits(data: bytes, start: int, end: int, width: int, fill: int) -> tuple[int, int]:
    """An RFC 3779 IPAddress BIT STRING: (address with the missing bits set to ``fill``,
    number of significant bits)."""
    if end - start < 1:
        raise DerError("address block: empty BIT STRING")
    unused, octets = data[start], data[start + 1 : end]
    if unused > 7 or (unused and not octets) or len(octets) * 8 > width:
        raise DerError("address block: malformed or oversized BIT STRING")
    if octets and octets[-1] & ((1 << unused) - 1):
        raise DerError("address block: unused bits are not zero (not DER)")
    significant = len(octets) * 8 - unused
    value = int.from_bytes(octets, "big") >> unused if octets else 0
    rest = width - significant
    return (value << rest) | (((1 << rest) - 1) if fill else 0), significant


def _address_blocks(data: bytes, start: int, end: int) -> tuple[IPNetwork, ...]:
    blocks_start, _ = _single(data, start, end, _SEQUENCE, "address blocks")
    out: list[IPNetwork] = []
    for tag, fstart, fend in _children(data, blocks_start, end):
        if tag != _SEQUENCE:
            raise DerError("address blocks: entry is no IPAddressFamily")
        fields = list(_children(data, fstart, fend))
        if len(fields) != 2 or fields[0][0] != _OCTET_STRING:
            raise DerError("IPAddressFamily is not {addressFamily, ipAddressChoice}")
        afi = data[fields[0][1] : fields[0][2]]
        width = _AFI_BITS.get(afi[:2])
        if width is None or len(afi) not in (2, 3):
            raise DerError(f"address block: unknown address family {afi.hex()}")
        choice, cstart, cend = fields[1]
        if choice == _NULL:
            continue  # inherit from the issuer: delegates nothing by itself
        if choice != _SEQUENCE:
            raise DerError("address block: ipAddressChoice is neither inherit nor a list")
        make = ipaddress.IPv4Address if width == 32 else ipaddress.IPv6Address
        for item, istart, iend in _children(data, cstart, cend):
            if item == _BIT_STRING:
                value, length = _bits(data, istart, iend, width, 0)
                out.append(ipaddress.ip_network((make(value), length)))
            elif item == _SEQUENCE:
                ends = list(_children(data, istart, iend))
                if [t for t, _, _ in ends] != [_BIT_STRING, _BIT_STRING]:
                    raise DerError("address block: range is not {min, max}")
                low, _ = _bits(data, ends[0][1], ends[0][2], width, 0)
                high, _ = _bits(data, ends[1][1], ends[1][2], width, 1)
                if low > high:
                    raise DerError("address block: range min above max")
                out += ipaddress.summarize_address_range(make(low), make(high))
            else:
                raise DerError(f"address block: 0x{item:02x} is no IPAddressOrRange")
    return tuple(out)


def certificate_names(der: bytes) -> CertificateNames:
    """The subject and subjectAltName entries of a DER certificate; :class:`DerError` if
    it is malformed."""
    if not der:
        raise DerError("empty certificate")
    if len(der) > MAX_CERTIFICATE:
        raise DerError(f"certificate of {len(der)} bytes exceeds {MAX_CERTIFICATE}")
    cert, end = _single(der, 0, len(der), _SEQUENCE, "Certificate")
    parts = list(_children(der, cert, end))
    if [tag for tag, _, _ in parts] != [_SEQUENCE, _SEQUENCE, _BIT_STRING]:
        raise DerError("Certificate is not {tbsCertificate, signatureAlgorithm, signature}")
    _, tbs_start, tbs_end = parts[0]
    (subject_start, subject_end), extensions = _tbs_parts(der, (tbs_start, tbs_end))
    subject = _name(der, subject_start, subject_end, "subject")
    found = SubjectAltNames(False)
    if extensions is None:
        return CertificateNames(subject, found)
    seen: set[bytes] = set()
    for tag, start, stop in _children(der, *extensions):
        if tag != _SEQUENCE:
            raise DerError(f"extensions: 0x{tag:02x} is no Extension")
        fields = list(_children(der, start, stop))
        tags = [t for t, _, _ in fields]
        if tags not in ([_OID, _OCTET_STRING], [_OID, _BOOLEAN, _OCTET_STRING]):
            raise DerError("Extension is not {extnID, [critical], extnValue}")
        if len(fields) == 3 and der[fields[1][1] : fields[1][2]] != b"\xff":
            raise DerError("Extension: critical must be encoded only as TRUE (0xff)")
        oid = der[fields[0][1] : fields[0][2]]
        _oid(oid)
        if oid in seen:
            raise DerError(f"extension {oid.hex()} appears twice")
        seen.add(oid)
        _, value_start, value_end = fields[-1]
        if oid == _SAN_OID:
            found = dataclasses.replace(
                _general_names(der, value_start, value_end), address_blocks=found.address_blocks
            )
        elif oid == _ADDR_BLOCKS_OID:
            blocks = _address_blocks(der, value_start, value_end)
            found = dataclasses.replace(found, address_blocks=blocks)
    if not seen:
        raise DerError("extensions: empty Extensions")
    return CertificateNames(subject, found)


def subject_alt_names(der: bytes) -> SubjectAltNames:
    """The subjectAltName entries of a DER certificate; :class:`DerError` if it is malformed."""
    return certificate_names(der).alt_names
