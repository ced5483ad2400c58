"""Strict minimal DER reader for the subjectAltNames of an X.509 certificate. No I/O.

The project has no X.509 library (``cryptography`` is not a dependency), and binding
authorization needs exactly one thing from a certificate: its subjectAltName
(OID 2.5.29.17) entries. This module walks only
``Certificate -> TBSCertificate -> extensions [3] -> Extension 2.5.29.17 -> GeneralNames``
and returns the ``iPAddress`` [7] (4 or 16 bytes) and ``dNSName`` [2] entries.

It is strict on purpose: definite minimal-length DER only, low tag numbers, the RFC 5280
element order of Certificate and TBSCertificate, no trailing bytes at any level, no
duplicate extension, an iPAddress of 4 or 16 bytes. Anything else raises ``ValueError``.
It verifies nothing cryptographic: the certificate is trusted only because charon
authenticated the IKE peer with it.
"""

from __future__ import annotations

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

    def describe(self) -> str:
        """Short human text, e.g. ``IP 192.0.2.11, DNS spoke1``."""
        if not self.present:
            return "no subjectAltName extension"
        parts = [f"IP {a}" for a in self.ip_addresses]
        parts += [f"DNS {n}" for n in self.dns_names]
        if self.other_names:
            parts.append(f"{self.other_names} other name(s)")
        return ", ".join(parts)


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
        if oid == _SAN_OID:
            _, value_start, value_end = fields[-1]
            found = _general_names(der, value_start, value_end)
    if not seen:
        raise ValueError("extensions: empty Extensions")
    return found
