"""NFLOG over netlink (nfnetlink_log): the messages to bind a group and to decode what the
kernel logs. Pure: the socket lives in :mod:`frrdmvpn.adapters.nflog`."""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

NETLINK_NETFILTER = 12
NFNL_SUBSYS_ULOG = 4
NFULNL_MSG_PACKET = 0
NFULNL_MSG_CONFIG = 1
NFULA_CFG_CMD = 1
NFULA_CFG_MODE = 2
NFULNL_CFG_CMD_BIND = 1
NFULNL_CFG_CMD_UNBIND = 2
NFULNL_COPY_PACKET = 2
NFULA_IFINDEX_INDEV = 4
NFULA_IFINDEX_OUTDEV = 5
NFULA_PAYLOAD = 9
NFULA_PREFIX = 10
NLM_F_REQUEST = 1
NLM_F_ACK = 4
NLMSG_ERROR = 2
_NLMSGHDR = struct.Struct("=IHHII")
_NFGENMSG = struct.Struct("=BBH")  # family, version, res_id (big-endian group, packed by hand)
_NLA = struct.Struct("=HH")


class NflogError(ValueError):
    """A netlink message that is not what nfnetlink_log sends."""


def _align(n: int) -> int:
    return (n + 3) & ~3


def _attr(kind: int, value: bytes) -> bytes:
    length = _NLA.size + len(value)
    return _NLA.pack(length, kind) + value + b"\0" * (_align(length) - length)


def config_message(group: int, attrs: bytes, seq: int, family: int = socket.AF_UNSPEC) -> bytes:
    """One NFULNL_MSG_CONFIG request for ``group`` carrying ``attrs``."""
    if not 0 <= group <= 0xFFFF:
        raise ValueError(f"NFLOG group {group} is outside 0..65535")
    body = struct.pack("=BB", family, 0) + struct.pack(">H", group) + attrs
    kind = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG
    return (
        _NLMSGHDR.pack(_NLMSGHDR.size + len(body), kind, NLM_F_REQUEST | NLM_F_ACK, seq, 0) + body
    )


def bind_messages(group: int, copy_range: int = 0xFFFF) -> list[bytes]:
    """Messages that bind ``group`` to the socket and ask for whole packets."""
    return [
        config_message(group, _attr(NFULA_CFG_CMD, bytes([NFULNL_CFG_CMD_BIND])), seq=1),
        config_message(
            group,
            _attr(NFULA_CFG_MODE, struct.pack(">IBB", copy_range, NFULNL_COPY_PACKET, 0)),
            seq=2,
        ),
    ]


@dataclass(frozen=True)
class Logged:
    """One packet the kernel logged to our group."""

    prefix: str
    payload: bytes  # the IP packet, from its IP header
    indev: int | None = None
    outdev: int | None = None


def _attrs(data: bytes) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    pos = 0
    while pos + _NLA.size <= len(data):
        length, kind = _NLA.unpack_from(data, pos)
        if length < _NLA.size or pos + length > len(data):
            raise NflogError(f"attribute at {pos} has bad length {length}")
        out[kind & 0x7FFF] = data[pos + _NLA.size : pos + length]
        pos += _align(length)
    return out


def parse(datagram: bytes) -> tuple[list[Logged], list[int]]:
    """Logged packets and netlink error codes (0 = ACK) in one received datagram."""
    logged: list[Logged] = []
    errors: list[int] = []
    pos = 0
    while pos + _NLMSGHDR.size <= len(datagram):
        length, kind, _flags, _seq, _pid = _NLMSGHDR.unpack_from(datagram, pos)
        if length < _NLMSGHDR.size or pos + length > len(datagram):
            raise NflogError(f"netlink message at {pos} has bad length {length}")
        body = datagram[pos + _NLMSGHDR.size : pos + length]
        if kind == NLMSG_ERROR:
            errors.append(-struct.unpack_from("=i", body)[0] if len(body) >= 4 else -1)
        elif kind == (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET:
            attrs = _attrs(body[_NFGENMSG.size :])
            if NFULA_PAYLOAD in attrs:
                indev, outdev = attrs.get(NFULA_IFINDEX_INDEV), attrs.get(NFULA_IFINDEX_OUTDEV)
                logged.append(
                    Logged(
                        prefix=attrs.get(NFULA_PREFIX, b"").rstrip(b"\0").decode(errors="replace"),
                        payload=attrs[NFULA_PAYLOAD],
                        indev=struct.unpack(">I", indev)[0] if indev and len(indev) == 4 else None,
                        outdev=struct.unpack(">I", outdev)[0]
                        if outdev and len(outdev) == 4
                        else None,
                    )
                )
        pos += _align(length)
    return logged, errors
