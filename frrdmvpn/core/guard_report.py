"""What the guards dropped: counts per direction and the last offenders, decoded. Pure."""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import asdict, dataclass
from typing import Any

from frrdmvpn.codec.nhrp import (
    NhrpDecodeError,
    NhrpPacket,
    decode_from_ip,
    describe,
    parse_gre,
    parse_ipv4,
)

IN_PREFIX = "frrdmvpn-guard-in"
OUT_PREFIX = "frrdmvpn-guard-out"


@dataclass(frozen=True)
class Offender:
    """One dropped cleartext GRE packet, as far as it could be decoded."""

    at: float
    direction: str  # "in" or "out"
    src: str
    dst: str
    gre_key: int | None
    summary: str
    claimed_proto: str | None = None  # NHRP source protocol (tunnel) address
    claimed_nbma: str | None = None  # NHRP source NBMA address


def decode_offender(direction: str, packet: bytes, at: float) -> Offender:
    """Decode one logged IP packet; whatever cannot be decoded is said so, never raised."""
    try:
        src, dst, proto, payload = parse_ipv4(packet)
    except NhrpDecodeError as exc:
        return Offender(at, direction, "?", "?", None, f"undecodable IP packet: {exc}")
    try:
        gre_proto, key, _ = parse_gre(payload)
    except NhrpDecodeError as exc:
        return Offender(at, direction, str(src), str(dst), None, f"IP proto {proto}: {exc}")
    if gre_proto != 0x2001:
        return Offender(
            at, direction, str(src), str(dst), key, f"GRE carrying protocol 0x{gre_proto:04x}"
        )
    try:
        _, _, _, nhrp = decode_from_ip(packet, verify_checksum=False)
    except NhrpDecodeError as exc:
        return Offender(at, direction, str(src), str(dst), key, f"malformed NHRP: {exc}")
    claimed = nhrp if isinstance(nhrp, NhrpPacket) else None
    return Offender(
        at,
        direction,
        str(src),
        str(dst),
        key,
        f"NHRP {describe(nhrp)}",
        claimed_proto=str(claimed.src_proto) if claimed and claimed.src_proto else None,
        claimed_nbma=str(claimed.src_nbma) if claimed and claimed.src_nbma else None,
    )


class GuardReport:
    """Counts and the most recent offenders (bounded)."""

    def __init__(self, keep: int = 32) -> None:
        self.counts: Counter[str] = Counter()
        self.last: deque[Offender] = deque(maxlen=keep)

    def add(self, prefix: str, packet: bytes, at: float) -> Offender | None:
        """Record one NFLOG'd packet; None if it is not one of the guard's."""
        if prefix.startswith(IN_PREFIX):
            direction = "in"
        elif prefix.startswith(OUT_PREFIX):
            direction = "out"
        else:
            return None
        offender = decode_offender(direction, packet, at)
        self.counts[direction] += 1
        if offender.claimed_proto:
            self.counts[f"{direction}_nhrp"] += 1
        self.last.append(offender)
        return offender

    def as_dict(self) -> dict[str, Any]:
        return {"counts": dict(self.counts), "last": [asdict(o) for o in self.last]}
