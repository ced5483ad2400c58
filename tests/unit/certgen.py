"""Certificates for unit tests, made with python3-cryptography (a dev dependency).

Ed25519 signs deterministically, so the same arguments give the same bytes. Only the names
and address grants matter to frrdmvpn; nothing here is verified cryptographically.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

KEY = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
CA = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "frrdmvpn test CA")])
NOT_BEFORE = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
_ADDR_BLOCKS = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.7")
_NAMES = {
    "O": NameOID.ORGANIZATION_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "CN": NameOID.COMMON_NAME,
    "C": NameOID.COUNTRY_NAME,
}


def dn(text: str) -> x509.Name:
    """``O=Corp, CN=spoke2`` as a Name (PrintableString values where they fit)."""
    attributes = []
    for part in text.split(", "):
        key, _, value = part.partition("=")
        attributes.append(x509.NameAttribute(_NAMES[key], value))
    return x509.Name(attributes)


def tlv(tag: int, content: bytes) -> bytes:
    """One DER element (definite, minimal length)."""
    n = len(content)
    if n < 0x80:
        return bytes((tag, n)) + content
    size = (n.bit_length() + 7) // 8
    return bytes((tag, 0x80 | size)) + n.to_bytes(size, "big") + content


def _blocks(networks: Sequence[str]) -> bytes:
    """An RFC 3779 IPAddrBlocks value of IPv4 prefixes."""
    prefixes = []
    for text in networks:
        net = ipaddress.IPv4Network(text)
        octets = (net.prefixlen + 7) // 8
        unused = octets * 8 - net.prefixlen
        prefixes.append(tlv(0x03, bytes((unused,)) + net.network_address.packed[:octets]))
    family = tlv(0x30, tlv(0x04, b"\x00\x01") + tlv(0x30, b"".join(prefixes)))
    return tlv(0x30, family)


def certificate(
    subject: x509.Name,
    sans: Sequence[x509.GeneralName] | None,
    *,
    blocks: Sequence[str] = (),
    serial: int = 2,
) -> bytes:
    """DER of a certificate for ``subject`` with these subjectAltNames (``None``: no
    extension) and RFC 3779 address blocks."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(CA)
        .public_key(KEY.public_key())
        .serial_number(serial)
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_BEFORE + datetime.timedelta(days=3650))
    )
    if sans is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if blocks:
        value = x509.UnrecognizedExtension(_ADDR_BLOCKS, _blocks(blocks))
        builder = builder.add_extension(value, critical=True)
    return builder.sign(KEY, None).public_bytes(Encoding.DER)


def issue(
    subject: str = "O=Corp, CN=spoke",
    *,
    ips: Sequence[str] = (),
    dns: Sequence[str] = (),
    emails: Sequence[str] = (),
    dirs: Sequence[str] = (),
    blocks: Sequence[str] = (),
    serial: int = 2,
) -> bytes:
    """DER of a certificate for ``subject`` with these subjectAltNames and address blocks."""
    sans: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(a)) for a in ips]
    sans += [x509.DNSName(n) for n in dns]
    sans += [x509.RFC822Name(e) for e in emails]
    sans += [x509.DirectoryName(dn(d)) for d in dirs]
    return certificate(dn(subject), sans or None, blocks=blocks, serial=serial)
