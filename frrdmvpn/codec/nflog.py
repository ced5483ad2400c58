"""NFLOG over netlink (nfnetlink_log): the messages to bind a group and to decode what the
kernel logs. Pure: the socket lives in :mod:`frrdmvpn.adapters.nflog_listener`."""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from frrdmvpn.codec.netlink import (
    NLM_F_ACK,
    NLM_F_REQUEST,
    NLMSG_ERROR,
    NetlinkError,
    attr,
    attrs,
    message,
    messages,
)

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
_NFGENMSG = struct.Struct("=BBH")  # family, version, res_id (big-endian group, packed by hand)

#: A netlink message that is not what nfnetlink_log sends.
NflogError = NetlinkError


def config_message(group: int, attrs: bytes, seq: int, family: int = socket.AF_UNSPEC) -> bytes:
    """One NFULNL_MSG_CONFIG request for ``group`` carrying ``attrs``."""
    if not 0 <= group <= 0xFFFF:
        raise ValueError(f"NFLOG group {group} is outside 0..65535")
    body = struct.pack("=BB", family, 0) + struct.pack(">H", group) + attrs
    kind = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG
    return message(kind, NLM_F_REQUEST | NLM_F_ACK, seq, body)


def bind_messages(group: int, copy_range: int = 0xFFFF) -> list[bytes]:
    """Messages that bind ``group`` to the socket and ask for whole packets."""
    return [
        config_message(group, attr(NFULA_CFG_CMD, bytes([NFULNL_CFG_CMD_BIND])), seq=1),
        config_message(
            group,
            attr(NFULA_CFG_MODE, struct.pack(">IBB", copy_range, NFULNL_COPY_PACKET, 0)),
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


def parse(datagram: bytes) -> tuple[list[Logged], list[int]]:
    """Logged packets and netlink error codes (0 = ACK) in one received datagram."""
    logged: list[Logged] = []
    errors: list[int] = []
    for msg in messages(datagram):
        if msg.kind == NLMSG_ERROR:
            errors.append(msg.error)
        elif msg.kind == (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET:
            found = attrs(msg.body[_NFGENMSG.size :])
            if NFULA_PAYLOAD in found:
                indev, outdev = found.get(NFULA_IFINDEX_INDEV), found.get(NFULA_IFINDEX_OUTDEV)
                logged.append(
                    Logged(
                        prefix=found.get(NFULA_PREFIX, b"").rstrip(b"\0").decode(errors="replace"),
                        payload=found[NFULA_PAYLOAD],
                        indev=struct.unpack(">I", indev)[0] if indev and len(indev) == 4 else None,
                        outdev=struct.unpack(">I", outdev)[0]
                        if outdev and len(outdev) == 4
                        else None,
                    )
                )
    return logged, errors
