"""``show frrdmvpn authorization``: frrdmvpn's own command (no IOS equivalent): the binding
authorization policy, its counters and latency, and recent decisions, IOS-flavoured."""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf.duration_pb2 import Duration

from cli.render.text import join
from cli.render.times import age, epoch, seconds
from frrdmvpn.v1 import authorization_pb2, state_service_pb2

DECISIONS_HEADER = (
    "  Id      Age       Verdict      Interface  Claimed          Peer NBMA        Identity"
)
WEAK_WARNING = "  WARNING: weak policy: any IKE-authenticated peer may claim any tunnel address"

_MODE = {
    authorization_pb2.AUTHORIZATION_MODE_PSK_MAP: "psk-map",
    authorization_pb2.AUTHORIZATION_MODE_CERTIFICATE: "certificate",
    authorization_pb2.AUTHORIZATION_MODE_ANY_AUTHENTICATED: "any-authenticated",
}


def _ms(d: Duration) -> str:
    return f"{seconds(d) * 1000:.2f} ms"


def _verdict(d: authorization_pb2.AuthorizationDecision) -> str:
    if d.verdict == authorization_pb2.AUTHORIZATION_VERDICT_ACCEPT:
        return "accept-weak" if d.weak else "accept"
    if d.verdict == authorization_pb2.AUTHORIZATION_VERDICT_DENY:
        return "deny"
    return "?"


def show_frrdmvpn_authorization(
    status: state_service_pb2.GetAuthorizationStatusResponse,
    decisions: Sequence[authorization_pb2.AuthorizationDecision],
    *,
    now: float,
) -> str:
    """``show frrdmvpn authorization``: policy, counters, latency, recent decisions."""
    policy, c, lat = status.policy, status.counters, status.latency
    lines = [
        f"Binding authorization: mode {_MODE.get(policy.mode, '(none)')},"
        f" tunnel subnet {policy.tunnel_subnet or '(none)'}"
    ]
    if policy.weak:
        lines.append(WEAK_WARNING)
    if policy.psk_map:
        width = max(20, *(len(e.identity) for e in policy.psk_map))
        lines += ["", "PSK map:", f"  {'Identity':<{width}}  May claim"]
        lines += [f"  {e.identity:<{width}}  {', '.join(e.prefixes)}" for e in policy.psk_map]
    since = age(epoch(c.counters_since), now) if c.HasField("counters_since") else "never"
    lines += [
        "",
        f"Decisions (counting for {since}): {c.accepted} accepted ({c.weak_accepted} weak),"
        f" {c.denied} denied, {c.malformed} malformed, {c.unknown} unknown",
    ]
    if lat.samples:
        lines.append(
            f"Latency over the last {lat.samples} decisions: p50 {_ms(lat.p50)},"
            f" p99 {_ms(lat.p99)}, max {_ms(lat.max)}"
        )
    lines += ["", f"Recent decisions (newest first, {status.decisions_kept} kept):"]
    if not decisions:
        lines.append("  none")
        return join(lines)
    lines.append(DECISIONS_HEADER)
    for d in decisions:
        when = age(epoch(d.decided_at), now) if d.HasField("decided_at") else "never"
        lines += [
            f"  {d.id:<7} {when:<9} {_verdict(d):<12} {d.interface or '-':<10}"
            f" {d.claimed_address or '-':<16} {d.remote_nbma or '-':<16}"
            f" {d.peer_identity or '-'}",
            f"{'':10}{d.reason}",
        ]
    return join(lines)
