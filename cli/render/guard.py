"""``show frrdmvpn guard``: frrdmvpn's own command (no IOS equivalent), laid out like an
IOS status display: a verdict line, tables with a header line, ages as IOS prints them."""

from __future__ import annotations

from cli.render.text import join
from cli.render.times import age, epoch
from frrdmvpn.v1 import guard_pb2, types_pb2

LAYERS_HEADER = "  Layer                 State      Checked   Problem"
DROPS_HEADER = "  Direction  Packets      Bytes          Logged     NHRP"
OFFENDERS_HEADER = "  Age       Dir  Source           Destination      GRE key     Summary"

_LAYER = {
    guard_pb2.GUARD_LAYER_KIND_CHARON_TRAP: "charon trap",
    guard_pb2.GUARD_LAYER_KIND_XFRM_BLOCK: "XFRM block policies",
    guard_pb2.GUARD_LAYER_KIND_NFTABLES: "nftables table",
}
_DIRECTION = {types_pb2.DIRECTION_INBOUND: "in", types_pb2.DIRECTION_OUTBOUND: "out"}


def show_frrdmvpn_guard(guard: guard_pb2.GuardStatus, *, now: float) -> str:
    """``show frrdmvpn guard``: layers, drop counters, kernel XFRM statistics, offenders."""
    if guard.installed:
        lines = ["Guards: INSTALLED, the node is fail-closed"]
    else:
        lines = ["Guards: NOT INSTALLED, cleartext GRE is not blocked"]
    lines += ["", LAYERS_HEADER]
    if not guard.layers:
        lines.append("  none reported")
    for layer in guard.layers:
        checked = age(epoch(layer.checked_at), now) if layer.HasField("checked_at") else "never"
        state = "installed" if layer.installed else "MISSING"
        name = _LAYER.get(layer.kind, "unknown")
        lines.append(f"  {name:<21} {state:<10} {checked:<9} {layer.problem}")
    c = guard.counters
    since = age(epoch(c.counters_since), now) if c.HasField("counters_since") else "never"
    lines += ["", f"Cleartext GRE dropped (counting for {since}):", DROPS_HEADER]
    for word, drops, logged, nhrp in (
        ("inbound", c.dropped_in, c.logged_in, c.nhrp_in),
        ("outbound", c.dropped_out, c.logged_out, c.nhrp_out),
    ):
        lines.append(f"  {word:<10} {drops.packets:<12} {drops.bytes:<14} {logged:<10} {nhrp}")
    if guard.log_rate_limit_per_second:
        lines.append(
            f"  NFLOG logs and decodes at most {guard.log_rate_limit_per_second} drops per second"
        )
    if c.xfrm_stats:
        lines += ["", "Kernel XFRM statistics (not reset by clear counters):"]
        width = max(len(k) for k in c.xfrm_stats)
        lines += [f"  {k:<{width}}  {c.xfrm_stats[k]}" for k in sorted(c.xfrm_stats)]
    lines += ["", f"Last offenders (newest first, {guard.offenders_kept} kept):"]
    if not guard.last_offenders:
        lines.append("  none")
        return join(lines)
    lines.append(OFFENDERS_HEADER)
    for o in guard.last_offenders:
        when = age(epoch(o.at), now) if o.HasField("at") else "never"
        key = str(o.gre_key) if o.HasField("gre_key") else "-"
        lines.append(
            f"  {when:<9} {_DIRECTION.get(o.direction, '?'):<4} {o.source or '?':<16}"
            f" {o.destination or '?':<16} {key:<11} {o.summary}"
        )
        if o.claimed_protocol_address or o.claimed_nbma_address:
            lines.append(
                f"{'':12}claims protocol address {o.claimed_protocol_address or '-'},"
                f" NBMA address {o.claimed_nbma_address or '-'}"
            )
    return join(lines)
