"""NHRP (RFC 2332) packet codec with the Cisco/FRR DMVPN additions, plus GRE and IPv4. No I/O.

An NHRP packet is a 20-byte fixed header, an 8-byte head of the mandatory part, the
source NBMA address/subaddress and source/destination protocol addresses, a body and,
from ``ar$extoff``, extensions::

    fixed   ar$afn(2) ar$pro.type(2) ar$pro.snap(5) ar$hopcnt(1) ar$pktsz(2)
            ar$chksum(2) ar$extoff(2) ar$op.version(1) ar$op.type(1) ar$shtl(1) ar$sstl(1)
    head    ops 1-6: src proto len(1) dst proto len(1) flags(2) request id(4)
            op 7 (Error Indication): lens(2) unused(2) error code(2) error offset(2)
            op 8 (Traffic Indication): lens(2) unused(2) traffic code(2) unused(2)
    addrs   src NBMA (ar$shtl), src NBMA subaddress (ar$sstl), src proto, dst proto
    body    ops 1-6: Client Information Entries; op 7: the packet in error;
            op 8: the packet that triggered the indication (opaque here)
    exts    type(2, 0x8000 = compulsory) length(2) value, ..., End (type 0, length 0)

Three models cover the eight operations: :class:`NhrpPacket` (1-6), :class:`ErrorIndication`
(7) and :class:`TrafficIndication` (8); :data:`Packet` is their union.

Wire rules of this codec:

* Addresses are IPv4 or IPv6 (``ar$afn`` 1/2, ``ar$pro.type`` 0x0800/0x86DD); an address
  of length 0 is ``None``. Any other length, family or address type bit is rejected.
* :func:`encode` appends the End extension (0x8000, length 0, compulsory as RFC 2332
  §5.3.0 and FRR send it) if and only if there are extensions; with none, ``ar$extoff``
  is 0. :func:`decode` requires an extension area to end with exactly one End and
  nothing after it; it accepts End with or without the compulsory bit, and an area
  holding only End decodes to no extensions (so re-encoding drops that lone End).
* Fields RFC 2332 calls unused are sent as zero and ignored on receipt, so a decoded
  model does not carry them.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar, Final

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

IPPROTO_GRE: Final = 47
GRE_PROTO_NHRP: Final = 0x2001
NHRP_VERSION: Final = 1

AFN_IPV4: Final = 1
AFN_IPV6: Final = 2
ETHERTYPE_IPV4: Final = 0x0800
ETHERTYPE_IPV6: Final = 0x86DD

# Flags of the mandatory part (RFC 2332 §5.2; NAT is the Cisco/FRR addition).
FLAG_RESOLUTION_SOURCE_IS_ROUTER: Final = 0x8000  # Q
FLAG_RESOLUTION_AUTHORITATIVE: Final = 0x4000  # A
FLAG_RESOLUTION_DESTINATION_STABLE: Final = 0x2000  # D
FLAG_RESOLUTION_UNIQUE: Final = 0x1000  # U
FLAG_RESOLUTION_SOURCE_STABLE: Final = 0x0800  # S
FLAG_RESOLUTION_NAT: Final = 0x0002
FLAG_REGISTRATION_UNIQUE: Final = 0x8000  # U
FLAG_REGISTRATION_NAT: Final = 0x0002
FLAG_PURGE_NO_REPLY: Final = 0x8000  # N

EXT_COMPULSORY: Final = 0x8000
EXT_TYPE_MASK: Final = 0x7FFF
# Huawei DSVPN puts its own extensions in this range; 0x0401 carries the device identity.
HUAWEI_DSVPN_EXTENSIONS: Final = range(0x0400, 0x0404)
# Cisco's authentication extension: a 4-byte SPI (1 = cleartext) then the password.
CISCO_AUTH_CLEARTEXT: Final = 1
CISCO_AUTH_MAX_PASSWORD: Final = 8


class Op(IntEnum):
    """``ar$op.type``."""

    RESOLUTION_REQUEST = 1
    RESOLUTION_REPLY = 2
    REGISTRATION_REQUEST = 3
    REGISTRATION_REPLY = 4
    PURGE_REQUEST = 5
    PURGE_REPLY = 6
    ERROR_INDICATION = 7
    TRAFFIC_INDICATION = 8


class ExtType(IntEnum):
    """Extension types (without the compulsory bit)."""

    END = 0
    RESPONDER_ADDRESS = 3
    FORWARD_TRANSIT_NHS = 4
    REVERSE_TRANSIT_NHS = 5
    AUTHENTICATION = 7
    VENDOR_PRIVATE = 8
    NAT_ADDRESS = 9  # Cisco
    HUAWEI_DEVICE_IDENTITY = 0x0401


_OPS: Final = {int(op): op for op in Op}
MANDATORY_OPS: Final = frozenset(Op) - {Op.ERROR_INDICATION, Op.TRAFFIC_INDICATION}
# The types RFC 2332 (and Cisco, for authentication) send with the compulsory bit set.
COMPULSORY_BY_DEFAULT: Final = frozenset(
    {
        ExtType.RESPONDER_ADDRESS,
        ExtType.FORWARD_TRANSIT_NHS,
        ExtType.REVERSE_TRANSIT_NHS,
        ExtType.AUTHENTICATION,
    }
)

_OP_NAMES: Final = {
    Op.RESOLUTION_REQUEST: "Resolution Request",
    Op.RESOLUTION_REPLY: "Resolution Reply",
    Op.REGISTRATION_REQUEST: "Registration Request",
    Op.REGISTRATION_REPLY: "Registration Reply",
    Op.PURGE_REQUEST: "Purge Request",
    Op.PURGE_REPLY: "Purge Reply",
    Op.ERROR_INDICATION: "Error Indication",
    Op.TRAFFIC_INDICATION: "Traffic Indication",
}
_EXT_NAMES: Final[dict[int, str]] = {
    ExtType.RESPONDER_ADDRESS: "responder",
    ExtType.FORWARD_TRANSIT_NHS: "forward-transit",
    ExtType.REVERSE_TRANSIT_NHS: "reverse-transit",
    ExtType.AUTHENTICATION: "auth",
    ExtType.VENDOR_PRIVATE: "vendor",
    ExtType.NAT_ADDRESS: "nat",
    ExtType.HUAWEI_DEVICE_IDENTITY: "huawei-identity",
}

# Address length each ar$afn (NBMA) and ar$pro.type (protocol) implies.
_NBMA_SIZE: Final = {AFN_IPV4: 4, AFN_IPV6: 16}
_PROTOCOL_SIZE: Final = {ETHERTYPE_IPV4: 4, ETHERTYPE_IPV6: 16}

# Wire layouts, in the order of the RFC 2332 §5.2 diagrams.
# ar$afn ar$pro.type ar$pro.snap ar$hopcnt ar$pktsz ar$chksum ar$extoff
# ar$op.version ar$op.type ar$shtl ar$sstl
_FIXED: Final = struct.Struct("!HH5sBHHHBBBB")
_CHECKSUM_AT: Final = 12
# src proto len, dst proto len, flags, request id
_MANDATORY: Final = struct.Struct("!BBHI")
# src proto len, dst proto len, unused, then error code + error offset (op 7)
# or traffic code + unused (op 8)
_INDICATION: Final = struct.Struct("!BBHHH")
# code, prefix length, unused, MTU, holding time, client NBMA type/len,
# client NBMA subaddress type/len, client proto len, preference
_CIE: Final = struct.Struct("!BBHHHBBBB")
# type (with compulsory bit), length
_EXT: Final = struct.Struct("!HH")
_TL_LENGTH: Final = 0x3F  # type/length octets: low 6 bits length, bit 6 type, bit 7 reserved

_GRE_BASE: Final = struct.Struct("!HH")
_GRE_WORD: Final = struct.Struct("!I")
_GRE_CHECKSUM: Final = 0x8000
_GRE_ROUTING: Final = 0x4000
_GRE_KEY: Final = 0x2000
_GRE_SEQUENCE: Final = 0x1000
_GRE_RESERVED: Final = 0x0FF8
_GRE_VERSION: Final = 0x0007

# version/IHL, TOS, total length, id, flags/fragment offset, TTL, protocol, checksum, src, dst
_IPV4: Final = struct.Struct("!BBHHHBBH4s4s")
_IPV4_FRAGMENT: Final = 0x3FFF  # MF flag and fragment offset


class NhrpDecodeError(ValueError):
    """Malformed or unsupported NHRP, GRE or IPv4 bytes; the message says what and where."""


@dataclass(frozen=True)
class Cie:
    """Client Information Entry. ``nbma``/``proto`` are ``None`` when their length is 0."""

    code: int = 0
    prefix_length: int = 0
    mtu: int = 0
    holding_time: int = 0
    nbma: IPAddress | None = None
    proto: IPAddress | None = None
    preference: int = 0
    nbma_subaddress: bytes = b""


@dataclass(frozen=True)
class Extension:
    """One extension; ``type`` excludes the compulsory bit. End is implicit (see module)."""

    type: int
    compulsory: bool
    value: bytes = b""


@dataclass(frozen=True)
class NhrpPacket:
    """Resolution, Registration and Purge Requests and Replies (ops 1-6)."""

    op: Op
    hop_count: int
    src_nbma: IPAddress | None
    src_proto: IPAddress | None
    dst_proto: IPAddress | None
    request_id: int
    flags: int = 0
    cies: tuple[Cie, ...] = ()
    extensions: tuple[Extension, ...] = ()
    afn: int = AFN_IPV4
    protocol: int = ETHERTYPE_IPV4
    src_nbma_subaddress: bytes = b""


@dataclass(frozen=True)
class ErrorIndication:
    """Error Indication (op 7); ``body`` is the NHRP packet in error, as received."""

    op: ClassVar[Op] = Op.ERROR_INDICATION

    hop_count: int
    src_nbma: IPAddress | None
    src_proto: IPAddress | None
    dst_proto: IPAddress | None
    error_code: int
    error_offset: int
    body: bytes = b""
    extensions: tuple[Extension, ...] = ()
    afn: int = AFN_IPV4
    protocol: int = ETHERTYPE_IPV4
    src_nbma_subaddress: bytes = b""


@dataclass(frozen=True)
class TrafficIndication:
    """Traffic Indication (op 8, Cisco/FRR redirect); ``body`` is the triggering packet."""

    op: ClassVar[Op] = Op.TRAFFIC_INDICATION

    hop_count: int
    src_nbma: IPAddress | None
    src_proto: IPAddress | None
    dst_proto: IPAddress | None
    traffic_code: int = 0
    body: bytes = b""
    extensions: tuple[Extension, ...] = ()
    afn: int = AFN_IPV4
    protocol: int = ETHERTYPE_IPV4
    src_nbma_subaddress: bytes = b""


Packet = NhrpPacket | ErrorIndication | TrafficIndication


@dataclass(frozen=True)
class GreHeader:
    """GRE header (RFC 2784 with the RFC 2890 key and sequence number)."""

    protocol: int
    key: int | None = None
    sequence: int | None = None

    @classmethod
    def parse(cls, data: bytes) -> tuple[GreHeader, bytes]:
        """Split a GRE packet into header and payload; a present checksum is verified."""
        if len(data) < _GRE_BASE.size:
            raise NhrpDecodeError(f"truncated GRE header: need 4 bytes, have {len(data)}")
        flags, protocol = _GRE_BASE.unpack_from(data)
        if flags & _GRE_VERSION:
            raise NhrpDecodeError(f"unsupported GRE version {flags & _GRE_VERSION}")
        if flags & (_GRE_ROUTING | _GRE_RESERVED):
            raise NhrpDecodeError(f"unsupported GRE flags 0x{flags:04x} (routing or reserved)")
        offset = _GRE_BASE.size
        words: dict[int, int] = {}
        for flag, name in (
            (_GRE_CHECKSUM, "checksum"),
            (_GRE_KEY, "key"),
            (_GRE_SEQUENCE, "sequence number"),
        ):
            if flags & flag:
                if len(data) < offset + _GRE_WORD.size:
                    raise NhrpDecodeError(f"truncated GRE {name} at offset {offset}")
                (words[flag],) = _GRE_WORD.unpack_from(data, offset)
                offset += _GRE_WORD.size
        if flags & _GRE_CHECKSUM and internet_checksum(data) != 0:
            raise NhrpDecodeError("GRE checksum mismatch")
        header = cls(protocol, words.get(_GRE_KEY), words.get(_GRE_SEQUENCE))
        return header, bytes(data[offset:])

    def build(self, payload: bytes, *, checksum: bool = False) -> bytes:
        """The GRE packet carrying ``payload``; ``checksum`` adds the C field."""
        _check_uint("GRE protocol", self.protocol, 16)
        flags = 0
        words = b""
        if checksum:
            flags |= _GRE_CHECKSUM
            words += bytes(4)
        if self.key is not None:
            flags |= _GRE_KEY
            words += _GRE_WORD.pack(_check_uint("GRE key", self.key, 32))
        if self.sequence is not None:
            flags |= _GRE_SEQUENCE
            words += _GRE_WORD.pack(_check_uint("GRE sequence number", self.sequence, 32))
        out = bytearray(_GRE_BASE.pack(flags, self.protocol) + words + payload)
        if checksum:
            struct.pack_into("!H", out, _GRE_BASE.size, internet_checksum(out))
        return bytes(out)


def internet_checksum(data: bytes | bytearray) -> int:
    """RFC 1071 one's-complement checksum; an odd length is padded with a zero byte."""
    padded = bytes(data) + b"\0" * (len(data) % 2)
    total: int = sum(struct.unpack(f"!{len(padded) // 2}H", padded))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def parse_gre(data: bytes) -> tuple[int, int | None, bytes]:
    """``(protocol type, key or None, payload)`` of a GRE packet."""
    header, payload = GreHeader.parse(data)
    return header.protocol, header.key, payload


def build_gre(protocol: int, key: int | None, payload: bytes) -> bytes:
    """A GRE packet without checksum or sequence number; the K bit iff ``key`` is given."""
    return GreHeader(protocol, key).build(payload)


def parse_ipv4(
    data: bytes,
) -> tuple[ipaddress.IPv4Address, ipaddress.IPv4Address, int, bytes]:
    """``(src, dst, protocol, payload)`` of an IPv4 packet.

    Honours IHL (options are skipped) and the total length (trailing bytes dropped).
    Fragments are rejected; the header checksum is not checked (the kernel did).
    """
    if len(data) < _IPV4.size:
        raise NhrpDecodeError(f"truncated IPv4 header: need 20 bytes, have {len(data)}")
    ver_ihl, _tos, total, _ident, frag, _ttl, proto, _csum, src, dst = _IPV4.unpack_from(data)
    if ver_ihl >> 4 != 4:
        raise NhrpDecodeError(f"IP version {ver_ihl >> 4} is not IPv4")
    header_len = (ver_ihl & 0x0F) * 4
    if header_len < _IPV4.size:
        raise NhrpDecodeError(f"IPv4 IHL {header_len // 4} is below 5")
    if len(data) < header_len:
        raise NhrpDecodeError(f"truncated IPv4 options: need {header_len} bytes, have {len(data)}")
    if not header_len <= total <= len(data):
        raise NhrpDecodeError(
            f"IPv4 total length {total} outside {header_len}..{len(data)} (bytes given)"
        )
    if frag & _IPV4_FRAGMENT:
        raise NhrpDecodeError("IPv4 fragment: reassemble before decoding")
    payload = bytes(data[header_len:total])
    return ipaddress.IPv4Address(src), ipaddress.IPv4Address(dst), proto, payload


def decode_from_ip(
    ip_packet: bytes, verify_checksum: bool = True
) -> tuple[ipaddress.IPv4Address, ipaddress.IPv4Address, int | None, Packet]:
    """``(outer src, outer dst, GRE key or None, packet)`` of NHRP in GRE in IPv4.

    This is what NFLOG hands over: the whole outer IP packet.
    """
    src, dst, proto, gre = parse_ipv4(ip_packet)
    if proto != IPPROTO_GRE:
        raise NhrpDecodeError(f"IP protocol {proto} is not GRE ({IPPROTO_GRE})")
    protocol, key, payload = parse_gre(gre)
    if protocol != GRE_PROTO_NHRP:
        raise NhrpDecodeError(f"GRE protocol 0x{protocol:04x} is not NHRP (0x{GRE_PROTO_NHRP:04x})")
    return src, dst, key, decode(payload, verify_checksum)


# --- encoding ---------------------------------------------------------------------------


def _check_uint(name: str, value: int, bits: int) -> int:
    if not 0 <= value < 1 << bits:
        raise ValueError(f"{name} {value} does not fit {bits} bits")
    return value


def _address_size(table: dict[int, int], what: str, number: int) -> int:
    size = table.get(number)
    if size is None:
        raise ValueError(f"unsupported {what} 0x{number:04x}")
    return size


def _pack_address(name: str, address: IPAddress | None, size: int) -> bytes:
    if address is None:
        return b""
    if len(address.packed) != size:
        raise ValueError(f"{name} {address} is not a {size}-byte address of the packet's family")
    return address.packed


def _check_subaddress(name: str, subaddress: bytes) -> bytes:
    if len(subaddress) > _TL_LENGTH:
        raise ValueError(f"{name} of {len(subaddress)} bytes exceeds {_TL_LENGTH}")
    return subaddress


def _pack_cie(cie: Cie, nbma_size: int, proto_size: int) -> bytes:
    nbma = _pack_address("CIE NBMA address", cie.nbma, nbma_size)
    sub = _check_subaddress("CIE NBMA subaddress", cie.nbma_subaddress)
    proto = _pack_address("CIE protocol address", cie.proto, proto_size)
    head = _CIE.pack(
        _check_uint("CIE code", cie.code, 8),
        _check_uint("CIE prefix length", cie.prefix_length, 8),
        0,
        _check_uint("CIE MTU", cie.mtu, 16),
        _check_uint("CIE holding time", cie.holding_time, 16),
        len(nbma),
        len(sub),
        len(proto),
        _check_uint("CIE preference", cie.preference, 8),
    )
    return head + nbma + sub + proto


def _address_sizes(afn: int, protocol: int) -> tuple[int, int]:
    """The NBMA and protocol address sizes of ``afn`` and ``protocol`` (encoding side)."""
    return (
        _address_size(_NBMA_SIZE, "ar$afn", afn),
        _address_size(_PROTOCOL_SIZE, "ar$pro.type", protocol),
    )


def _pack_cies(cies: Iterable[Cie], nbma_size: int, proto_size: int) -> bytes:
    return b"".join(_pack_cie(cie, nbma_size, proto_size) for cie in cies)


def pack_cies(cies: Iterable[Cie], *, afn: int = AFN_IPV4, protocol: int = ETHERTYPE_IPV4) -> bytes:
    """CIEs on the wire, as in the mandatory part or a Responder/Transit/NAT extension."""
    return _pack_cies(cies, *_address_sizes(afn, protocol))


def _pack_extensions(extensions: tuple[Extension, ...]) -> bytes:
    out = bytearray()
    for ext in extensions:
        if not 0 < ext.type <= EXT_TYPE_MASK:
            raise ValueError(
                f"extension type {ext.type} outside 1..0x7fff (encode appends End itself)"
            )
        flag = EXT_COMPULSORY if ext.compulsory else 0
        length = _check_uint("extension length", len(ext.value), 16)
        out += _EXT.pack(ext.type | flag, length) + ext.value
    out += _EXT.pack(EXT_COMPULSORY | ExtType.END, 0)
    return bytes(out)


def encode(pkt: Packet) -> bytes:
    """Wire bytes of ``pkt``; computes ``ar$pktsz``, ``ar$extoff`` and ``ar$chksum``.

    Raises ``ValueError`` for a model that cannot be put on the wire.
    """
    nbma_size, proto_size = _address_sizes(pkt.afn, pkt.protocol)
    src_nbma = _pack_address("source NBMA address", pkt.src_nbma, nbma_size)
    src_sub = _check_subaddress("source NBMA subaddress", pkt.src_nbma_subaddress)
    src_proto = _pack_address("source protocol address", pkt.src_proto, proto_size)
    dst_proto = _pack_address("destination protocol address", pkt.dst_proto, proto_size)
    if isinstance(pkt, NhrpPacket):
        if pkt.op not in MANDATORY_OPS:
            raise ValueError(f"op {pkt.op!r} needs ErrorIndication or TrafficIndication")
        head = _MANDATORY.pack(
            len(src_proto),
            len(dst_proto),
            _check_uint("flags", pkt.flags, 16),
            _check_uint("request id", pkt.request_id, 32),
        )
        body = _pack_cies(pkt.cies, nbma_size, proto_size)
    elif isinstance(pkt, ErrorIndication):
        head = _INDICATION.pack(
            len(src_proto),
            len(dst_proto),
            0,
            _check_uint("error code", pkt.error_code, 16),
            _check_uint("error offset", pkt.error_offset, 16),
        )
        body = pkt.body
    else:
        head = _INDICATION.pack(
            len(src_proto), len(dst_proto), 0, _check_uint("traffic code", pkt.traffic_code, 16), 0
        )
        body = pkt.body
    rest = head + src_nbma + src_sub + src_proto + dst_proto + body
    extensions = _pack_extensions(pkt.extensions) if pkt.extensions else b""
    extoff = _FIXED.size + len(rest) if extensions else 0
    size = _FIXED.size + len(rest) + len(extensions)
    if size > 0xFFFF:
        raise ValueError(f"packet of {size} bytes exceeds ar$pktsz's 65535")
    fixed = _FIXED.pack(
        pkt.afn,
        pkt.protocol,
        bytes(5),
        _check_uint("hop count", pkt.hop_count, 8),
        size,
        0,
        extoff,
        NHRP_VERSION,
        pkt.op,
        len(src_nbma),
        len(src_sub),
    )
    out = bytearray(fixed + rest + extensions)
    struct.pack_into("!H", out, _CHECKSUM_AT, internet_checksum(out))
    return bytes(out)


# --- decoding ---------------------------------------------------------------------------


class _Reader:
    """Cursor over ``data[pos:end]`` whose errors name the field and its absolute offset."""

    def __init__(self, data: bytes, pos: int, end: int) -> None:
        self.data = data
        self.pos = pos
        self.end = end

    @property
    def left(self) -> int:
        return self.end - self.pos

    def take(self, size: int, what: str) -> bytes:
        if size > self.left:
            raise NhrpDecodeError(
                f"truncated {what}: need {size} bytes at offset {self.pos}, {self.left} left"
            )
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def unpack(self, layout: struct.Struct, what: str) -> tuple[int, ...]:
        values: tuple[int, ...] = layout.unpack(self.take(layout.size, what))
        return values


def _length(type_length: int, what: str) -> int:
    if type_length & ~_TL_LENGTH:
        raise NhrpDecodeError(f"unsupported {what} type bits in type/length 0x{type_length:02x}")
    return type_length


def _check_length(what: str, length: int, size: int, field: str) -> None:
    if length not in (0, size):
        raise NhrpDecodeError(f"{what} length {length} unsupported for {field} (want 0 or {size})")


def _address(raw: bytes) -> IPAddress | None:
    return ipaddress.ip_address(raw) if raw else None


def _unpack_cies(reader: _Reader, nbma_size: int, proto_size: int) -> tuple[Cie, ...]:
    cies: list[Cie] = []
    while reader.left:
        code, prefix, _unused, mtu, holding, nbma_tl, sub_tl, proto_len, pref = reader.unpack(
            _CIE, "CIE header"
        )
        nbma_len = _length(nbma_tl, "CIE NBMA address")
        sub_len = _length(sub_tl, "CIE NBMA subaddress")
        _check_length("CIE NBMA address", nbma_len, nbma_size, "ar$afn")
        _check_length("CIE protocol address", proto_len, proto_size, "ar$pro.type")
        nbma = reader.take(nbma_len, "CIE NBMA address")
        sub = reader.take(sub_len, "CIE NBMA subaddress")
        proto = reader.take(proto_len, "CIE protocol address")
        cies.append(Cie(code, prefix, mtu, holding, _address(nbma), _address(proto), pref, sub))
    return tuple(cies)


def unpack_cies(
    data: bytes, *, afn: int = AFN_IPV4, protocol: int = ETHERTYPE_IPV4
) -> tuple[Cie, ...]:
    """CIEs filling ``data`` exactly, e.g. a Responder, Transit NHS or NAT extension value."""
    nbma_size = _NBMA_SIZE.get(afn)
    proto_size = _PROTOCOL_SIZE.get(protocol)
    if nbma_size is None or proto_size is None:
        raise NhrpDecodeError(f"unsupported ar$afn {afn} or ar$pro.type 0x{protocol:04x}")
    return _unpack_cies(_Reader(bytes(data), 0, len(data)), nbma_size, proto_size)


def _unpack_extensions(reader: _Reader) -> tuple[Extension, ...]:
    extensions: list[Extension] = []
    while True:
        if not reader.left:
            raise NhrpDecodeError(
                f"extensions not terminated by an End extension at offset {reader.pos}"
            )
        at = reader.pos
        raw_type, length = reader.unpack(_EXT, "extension header")
        if length > reader.left:
            raise NhrpDecodeError(
                f"extension 0x{raw_type:04x} at offset {at}: length {length} exceeds "
                f"the {reader.left} bytes left"
            )
        value = reader.take(length, "extension value")
        ext_type = raw_type & EXT_TYPE_MASK
        if ext_type == ExtType.END:
            if length:
                raise NhrpDecodeError(f"End extension at offset {at} has length {length}")
            if reader.left:
                raise NhrpDecodeError(f"{reader.left} bytes after the End extension at offset {at}")
            return tuple(extensions)
        extensions.append(Extension(ext_type, bool(raw_type & EXT_COMPULSORY), value))


def decode(data: bytes, verify_checksum: bool = True) -> Packet:
    """Parse one NHRP packet filling ``data`` exactly; raises :class:`NhrpDecodeError`."""
    data = bytes(data)
    if len(data) < _FIXED.size:
        raise NhrpDecodeError(f"truncated fixed header: need 20 bytes, have {len(data)}")
    afn, protocol, snap, hops, size, checksum, extoff, version, op_type, shtl, sstl = (
        _FIXED.unpack_from(data)
    )
    if version != NHRP_VERSION:
        raise NhrpDecodeError(f"unsupported ar$op.version {version} (want {NHRP_VERSION})")
    if size != len(data):
        raise NhrpDecodeError(f"ar$pktsz {size} does not match the {len(data)} bytes given")
    if verify_checksum:
        computed = internet_checksum(data[:_CHECKSUM_AT] + b"\0\0" + data[_CHECKSUM_AT + 2 :])
        if computed != checksum:
            raise NhrpDecodeError(
                f"checksum mismatch: ar$chksum 0x{checksum:04x}, computed 0x{computed:04x}"
            )
    op = _OPS.get(op_type)
    if op is None:
        raise NhrpDecodeError(f"unsupported ar$op.type {op_type}")
    nbma_size = _NBMA_SIZE.get(afn)
    if nbma_size is None:
        raise NhrpDecodeError(f"unsupported ar$afn {afn}")
    proto_size = _PROTOCOL_SIZE.get(protocol)
    if proto_size is None:
        raise NhrpDecodeError(f"unsupported ar$pro.type 0x{protocol:04x}")
    if any(snap):
        raise NhrpDecodeError(f"unsupported non-zero ar$pro.snap {snap.hex()}")
    nbma_len = _length(shtl, "source NBMA address")
    sub_len = _length(sstl, "source NBMA subaddress")
    _check_length("source NBMA address", nbma_len, nbma_size, "ar$afn")
    if extoff > size:
        raise NhrpDecodeError(f"ar$extoff {extoff} beyond the end of the {size}-byte packet")

    reader = _Reader(data, _FIXED.size, size)
    src_len, dst_len, word, high, low = reader.unpack(_INDICATION, "mandatory part header")
    _check_length("source protocol address", src_len, proto_size, "ar$pro.type")
    _check_length("destination protocol address", dst_len, proto_size, "ar$pro.type")
    addresses_end = reader.pos + nbma_len + sub_len + src_len + dst_len
    if extoff:
        if extoff < addresses_end:
            raise NhrpDecodeError(
                f"ar$extoff {extoff} points into the mandatory part (ends at {addresses_end})"
            )
        reader.end = extoff
    src_nbma = _address(reader.take(nbma_len, "source NBMA address"))
    src_sub = reader.take(sub_len, "source NBMA subaddress")
    src_proto = _address(reader.take(src_len, "source protocol address"))
    dst_proto = _address(reader.take(dst_len, "destination protocol address"))
    # The body (CIEs or a quoted packet) precedes the extensions; parse in wire order.
    body = data[reader.pos : reader.end]
    cies = _unpack_cies(reader, nbma_size, proto_size) if op in MANDATORY_OPS else ()
    extensions = _unpack_extensions(_Reader(data, extoff, size)) if extoff else ()
    if op == Op.ERROR_INDICATION:
        return ErrorIndication(
            hop_count=hops,
            src_nbma=src_nbma,
            src_proto=src_proto,
            dst_proto=dst_proto,
            error_code=high,
            error_offset=low,
            body=body,
            extensions=extensions,
            afn=afn,
            protocol=protocol,
            src_nbma_subaddress=src_sub,
        )
    if op == Op.TRAFFIC_INDICATION:
        return TrafficIndication(
            hop_count=hops,
            src_nbma=src_nbma,
            src_proto=src_proto,
            dst_proto=dst_proto,
            traffic_code=high,
            body=body,
            extensions=extensions,
            afn=afn,
            protocol=protocol,
            src_nbma_subaddress=src_sub,
        )
    return NhrpPacket(
        op=op,
        hop_count=hops,
        src_nbma=src_nbma,
        src_proto=src_proto,
        dst_proto=dst_proto,
        request_id=high << 16 | low,
        flags=word,
        cies=cies,
        extensions=extensions,
        afn=afn,
        protocol=protocol,
        src_nbma_subaddress=src_sub,
    )


# --- builders and presentation ---------------------------------------------------------


def extension(ext_type: int, value: bytes = b"") -> Extension:
    """An extension with the compulsory bit RFC 2332/Cisco/FRR use for its type."""
    return Extension(ext_type, ext_type in COMPULSORY_BY_DEFAULT, value)


def cisco_authentication(password: bytes) -> Extension:
    """Cisco cleartext authentication (``ip nhrp authentication``): SPI 1 + password."""
    if not 0 < len(password) <= CISCO_AUTH_MAX_PASSWORD:
        raise ValueError(f"password must be 1..{CISCO_AUTH_MAX_PASSWORD} bytes")
    return extension(ExtType.AUTHENTICATION, _GRE_WORD.pack(CISCO_AUTH_CLEARTEXT) + password)


def parse_cisco_authentication(value: bytes) -> tuple[int, bytes]:
    """``(SPI, secret)`` of an authentication extension value."""
    if len(value) < _GRE_WORD.size:
        raise NhrpDecodeError(f"truncated authentication SPI: {len(value)} of 4 bytes")
    (spi,) = _GRE_WORD.unpack_from(value)
    return spi, bytes(value[_GRE_WORD.size :])


def _ip(address: str | IPAddress) -> IPAddress:
    return ipaddress.ip_address(address) if isinstance(address, str) else address


def registration_request(
    src_nbma: str | IPAddress,
    src_proto: str | IPAddress,
    dst_proto: str | IPAddress,
    *,
    holding_time: int = 600,
    mtu: int = 1400,
    request_id: int = 1,
    unique: bool = False,
    hop_count: int = 64,
    extensions: tuple[Extension, ...] = (),
) -> NhrpPacket:
    """A Registration Request with one CIE for ``src_proto`` at ``src_nbma``.

    The CIE names the client's own addresses with a host prefix; ``unique`` sets the U
    flag and, as FRR does, CIE prefix length 0xff.
    """
    nbma, proto, dst = _ip(src_nbma), _ip(src_proto), _ip(dst_proto)
    if proto.version != dst.version:
        raise ValueError(f"protocol addresses {proto} and {dst} differ in family")
    host_prefix = 32 if proto.version == 4 else 128
    cie = Cie(
        prefix_length=0xFF if unique else host_prefix,
        mtu=mtu,
        holding_time=holding_time,
        nbma=nbma,
        proto=proto,
    )
    return NhrpPacket(
        op=Op.REGISTRATION_REQUEST,
        hop_count=hop_count,
        src_nbma=nbma,
        src_proto=proto,
        dst_proto=dst,
        request_id=request_id,
        flags=FLAG_REGISTRATION_UNIQUE if unique else 0,
        cies=(cie,),
        extensions=extensions,
        afn=AFN_IPV4 if nbma.version == 4 else AFN_IPV6,
        protocol=ETHERTYPE_IPV4 if proto.version == 4 else ETHERTYPE_IPV6,
    )


def _show(address: IPAddress | None) -> str:
    return "-" if address is None else str(address)


def _describe_extensions(extensions: tuple[Extension, ...]) -> str:
    if not extensions:
        return ""
    names = [_EXT_NAMES.get(ext.type, f"0x{ext.type:04x}") for ext in extensions]
    return ", ext " + " ".join(names)


def _inner_addresses(body: bytes) -> str | None:
    """``src -> dst`` of the (possibly truncated) IPv4 packet a Traffic Indication quotes."""
    if len(body) < _IPV4.size or body[0] >> 4 != 4:
        return None
    src, dst = ipaddress.IPv4Address(body[12:16]), ipaddress.IPv4Address(body[16:20])
    return f"{src} -> {dst}"


def describe(pkt: Packet) -> str:
    """One line for logs, e.g. ``Registration Request 192.0.2.66 (nbma 198.51.100.66) ->
    192.0.2.1, 1 CIE, holding 600 s``."""
    line = (
        f"{_OP_NAMES[pkt.op]} {_show(pkt.src_proto)} (nbma {_show(pkt.src_nbma)})"
        f" -> {_show(pkt.dst_proto)}"
    )
    if isinstance(pkt, NhrpPacket):
        count = len(pkt.cies)
        line += f", {count} CIE{'' if count == 1 else 's'}"
        if pkt.cies:
            first = pkt.cies[0]
            line += f", holding {first.holding_time} s"
            if first.code:
                line += f", code {first.code}"
        if pkt.op in (Op.REGISTRATION_REQUEST, Op.REGISTRATION_REPLY) and (
            pkt.flags & FLAG_REGISTRATION_UNIQUE
        ):
            line += ", unique"
    elif isinstance(pkt, ErrorIndication):
        line += f", error {pkt.error_code} at offset {pkt.error_offset}"
    else:
        inner = _inner_addresses(pkt.body)
        line += f", traffic {inner}" if inner else f", {len(pkt.body)}-byte body"
    return line + _describe_extensions(pkt.extensions)
