"""Strict minimal DER reader for the subjectAltNames of an X.509 certificate. No I/O.

The project has no X.509 library (``cryptography`` is not a dependency), and binding
authorization needs exactly one thing from a certificate: its subjectAltName
(OID 2.5.29.17) entries. This module walks only
``Certificate -> TBSCertificate -> extensions [3] -> Extension 2.5.29.17 -> GeneralNames``
and returns the ``iPAddress`` [7] (4 or 16 bytes) and ``dNSName`` [2] entries, plus the
prefixes of an RFC 3779 IP address delegation extension (``sbgp-ipAddrBlock``,
1.3.6.1.5.5.7.1.7): the networks a CA delegates to the holder, e.g. a spoke's LAN.

It is strict on purpose: definite minimal-length DER only, low tag numbers, the RFC 5280
element order of Certificate and TBSCertificate, no trailing bytes at any level, no
duplicate extension, an iPAddress of 4 or 16 bytes. Anything else raises ``ValueError``.
It verifies nothing cryptographic: the certificate is trusted only because charon
authenticated the IKE peer with it.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Far above any real end-entity certificate; bounds work done on hostile input.
MAX_CERTIFICATE = 64 * 1024

_BOOLEAN = 0x01
_INTEGER = 0x02
_BIT_STRING = 0x03
_OCTET_STRING = 0x04
_OID = 0x06
_SEQUENCE = 0x30
_VERSION = 0xA0  # [0] EXPLICIT Version
_ISSUER_UID = 0x81  # [1] IMPLICIT UniqueIdentifier
_SUBJECT_UID = 0x82  # [2] IMPLICIT UniqueIdentifier
_EXTENSIONS = 0xA3  # [3] EXPLICIT Extensions
_V3 = b"\x02"

_SAN_OID = bytes((0x55, 0x1D, 0x11))  # 2.5.29.17
_ADDR_BLOCKS_OID = bytes((0x2B, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x07))  # 1.3.6.1.5.5.7.1.7
_NULL = 0x05
_AFI_BITS = {b"\x00\x01": 32, b"\x00\x02": 128}
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# GeneralName choices (RFC 5280 4.2.1.6), as their DER identifier octets.
_GN_DNS = 0x82
_GN_IP = 0x87
_GENERAL_NAME_TAGS = frozenset({0xA0, 0x81, _GN_DNS, 0xA3, 0xA4, 0xA5, 0x86, _GN_IP, 0x88})


@dataclass(frozen=True)
class SubjectAltNames:
    """What a certificate's subjectAltName extension says (empty if it has none)."""

    present: bool
    ip_addresses: tuple[IPAddress, ...] = ()
    dns_names: tuple[str, ...] = ()
    other_names: int = 0
    address_blocks: tuple[IPNetwork, ...] = ()  # RFC 3779 delegations (inherit: none)

    def describe(self) -> str:
        """Short human text, e.g. ``IP 192.0.2.11, DNS spoke1``."""
        blocks = [f"address block {n}" for n in self.address_blocks]
        if not self.present:
            return ", ".join(["no subjectAltName extension", *blocks])
        parts = [f"IP {a}" for a in self.ip_addresses]
        parts += [f"DNS {n}" for n in self.dns_names]
        if self.other_names:
            parts.append(f"{self.other_names} other name(s)")
        return ", ".join(parts + blocks)


def _element(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """Identifier octet, content start and content end of the element at ``pos``."""
    if end - pos < 2:
        raise ValueError(f"DER truncated at offset {pos}")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise ValueError(f"multi-byte DER tag at offset {pos}")
    first = data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    elif first == 0x80:
        raise ValueError(f"indefinite length at offset {pos - 2} (BER, not DER)")
    else:
        size = first & 0x7F
        if size > 4 or end - pos < size:
            raise ValueError(f"bad length-of-length {size} at offset {pos - 2}")
        raw = data[pos : pos + size]
        length = int.from_bytes(raw, "big")
        if raw[0] == 0 or length < 0x80:
            raise ValueError(f"non-minimal length at offset {pos - 2} (not DER)")
        pos += size
    if length > end - pos:
        raise ValueError(
            f"element at offset {pos} overruns its container by {length - (end - pos)}"
        )
    return tag, pos, pos + length


def _children(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    pos = start
    while pos < end:
        tag, content, pos = _element(data, pos, end)
        yield tag, content, pos


def _single(data: bytes, start: int, end: int, tag: int, what: str) -> tuple[int, int]:
    """Content bounds of the one element of type ``tag`` that fills ``[start, end)``."""
    found, content, stop = _element(data, start, end)
    if found != tag:
        raise ValueError(f"{what}: expected tag 0x{tag:02x}, found 0x{found:02x}")
    if stop != end:
        raise ValueError(f"{what}: {end - stop} trailing byte(s)")
    return content, stop


def _extensions(data: bytes, der_tbs: tuple[int, int]) -> tuple[int, int] | None:
    """Bounds of the Extensions SEQUENCE inside TBSCertificate, if any."""
    parts = list(_children(data, *der_tbs))
    tags = [tag for tag, _, _ in parts]
    i = 1 if tags[:1] == [_VERSION] else 0
    if tags[i : i + 6] != [_INTEGER] + [_SEQUENCE] * 5:
        raise ValueError("TBSCertificate lacks serial, signature, issuer, validity, subject, key")
    i += 6
    for optional in (_ISSUER_UID, _SUBJECT_UID):
        if i < len(tags) and tags[i] == optional:
            i += 1
    if i == len(tags):
        return None
    if tags[i] != _EXTENSIONS or i + 1 != len(tags):
        raise ValueError(f"unexpected element 0x{tags[i]:02x} in TBSCertificate")
    if tags[0] != _VERSION:
        raise ValueError("extensions in a certificate without version (v1)")
    _, vstart, vend = parts[0]
    version, _ = _single(data, vstart, vend, _INTEGER, "version")
    if data[version:vend] != _V3:
        raise ValueError("extensions in a certificate that is not v3")
    _, start, end = parts[i]
    return _single(data, start, end, _SEQUENCE, "extensions")


def _general_names(data: bytes, start: int, end: int) -> SubjectAltNames:
    names, _ = _single(data, start, end, _SEQUENCE, "subjectAltName")
    ips: list[IPAddress] = []
    dns: list[str] = []
    other = 0
    for tag, content, stop in _children(data, names, end):
        value = data[content:stop]
        if tag not in _GENERAL_NAME_TAGS:
            raise ValueError(f"subjectAltName: 0x{tag:02x} is no GeneralName")
        if tag == _GN_IP:
            if len(value) == 4:
                ips.append(ipaddress.IPv4Address(value))
            elif len(value) == 16:
                ips.append(ipaddress.IPv6Address(value))
            else:
                raise ValueError(f"subjectAltName: iPAddress of {len(value)} bytes, not 4 or 16")
        elif tag == _GN_DNS:
            # Printable ASCII without space: what a host name can hold, and safe to log.
            if not value or any(not 0x21 <= c <= 0x7E for c in value):
                raise ValueError("subjectAltName: dNSName is empty or not printable ASCII")
            dns.append(value.decode("ascii"))
        else:
            other += 1
    if not (ips or dns or other):
        raise ValueError("subjectAltName: empty GeneralNames")
    return SubjectAltNames(True, tuple(ips), tuple(dns), other)


def _bits(data: bytes, start: int, end: int, width: int, fill: int) -> tuple[int, int]:
    """An RFC 3779 IPAddress BIT STRING: (address with the missing bits set to ``fill``,
    number of significant bits)."""
    if end - start < 1:
        raise ValueError("address block: empty BIT STRING")
    unused, octets = data[start], data[start + 1 : end]
    if unused > 7 or (unused and not octets) or len(octets) * 8 > width:
        raise ValueError("address block: malformed or oversized BIT STRING")
    if octets and octets[-1] & ((1 << unused) - 1):
        raise ValueError("address block: unused bits are not zero (not DER)")
    significant = len(octets) * 8 - unused
    value = int.from_bytes(octets, "big") >> unused if octets else 0
    rest = width - significant
    return (value << rest) | (((1 << rest) - 1) if fill else 0), significant


def _address_blocks(data: bytes, start: int, end: int) -> tuple[IPNetwork, ...]:
    blocks_start, _ = _single(data, start, end, _SEQUENCE, "address blocks")
    out: list[IPNetwork] = []
    for tag, fstart, fend in _children(data, blocks_start, end):
        if tag != _SEQUENCE:
            raise ValueError("address blocks: entry is no IPAddressFamily")
        fields = list(_children(data, fstart, fend))
        if len(fields) != 2 or fields[0][0] != _OCTET_STRING:
            raise ValueError("IPAddressFamily is not {addressFamily, ipAddressChoice}")
        afi = data[fields[0][1] : fields[0][2]]
        width = _AFI_BITS.get(afi[:2])
        if width is None or len(afi) not in (2, 3):
            raise ValueError(f"address block: unknown address family {afi.hex()}")
        choice, cstart, cend = fields[1]
        if choice == _NULL:
            continue  # inherit from the issuer: delegates nothing by itself
        if choice != _SEQUENCE:
            raise ValueError("address block: ipAddressChoice is neither inherit nor a list")
        make = ipaddress.IPv4Address if width == 32 else ipaddress.IPv6Address
        for item, istart, iend in _children(data, cstart, cend):
            if item == _BIT_STRING:
                value, length = _bits(data, istart, iend, width, 0)
                out.append(ipaddress.ip_network((make(value), length)))
            elif item == _SEQUENCE:
                ends = list(_children(data, istart, iend))
                if [t for t, _, _ in ends] != [_BIT_STRING, _BIT_STRING]:
                    raise ValueError("address block: range is not {min, max}")
                low, _ = _bits(data, ends[0][1], ends[0][2], width, 0)
                high, _ = _bits(data, ends[1][1], ends[1][2], width, 1)
                if low > high:
                    raise ValueError("address block: range min above max")
                out += ipaddress.summarize_address_range(make(low), make(high))
            else:
                raise ValueError(f"address block: 0x{item:02x} is no IPAddressOrRange")
    return tuple(out)


def subject_alt_names(der: bytes) -> SubjectAltNames:
    """The subjectAltName entries of a DER certificate; ``ValueError`` if it is malformed."""
    if not der:
        raise ValueError("empty certificate")
    if len(der) > MAX_CERTIFICATE:
        raise ValueError(f"certificate of {len(der)} bytes exceeds {MAX_CERTIFICATE}")
    cert, end = _single(der, 0, len(der), _SEQUENCE, "Certificate")
    parts = list(_children(der, cert, end))
    if [tag for tag, _, _ in parts] != [_SEQUENCE, _SEQUENCE, _BIT_STRING]:
        raise ValueError("Certificate is not {tbsCertificate, signatureAlgorithm, signature}")
    _, tbs_start, tbs_end = parts[0]
    extensions = _extensions(der, (tbs_start, tbs_end))
    if extensions is None:
        return SubjectAltNames(False)
    seen: set[bytes] = set()
    found = SubjectAltNames(False)
    for tag, start, stop in _children(der, *extensions):
        if tag != _SEQUENCE:
            raise ValueError(f"extensions: 0x{tag:02x} is no Extension")
        fields = list(_children(der, start, stop))
        tags = [t for t, _, _ in fields]
        if tags not in ([_OID, _OCTET_STRING], [_OID, _BOOLEAN, _OCTET_STRING]):
            raise ValueError("Extension is not {extnID, [critical], extnValue}")
        if len(fields) == 3 and der[fields[1][1] : fields[1][2]] != b"\xff":
            raise ValueError("Extension: critical must be encoded only as TRUE (0xff)")
        oid = der[fields[0][1] : fields[0][2]]
        if oid in seen:
            raise ValueError(f"extension {oid.hex()} appears twice")
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
        raise ValueError("extensions: empty Extensions")
    return found
