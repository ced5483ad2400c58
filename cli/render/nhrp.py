"""``show ip nhrp [detail]``, ``show ip nhrp brief``, ``show ip nhrp nhs [detail]`` and
``show ip nhrp traffic``.

Layouts: ``show ip nhrp [detail]`` the genieparser goldens ``ShowIpNhrp`` and
``ShowIpNhrpDetail`` (IOS XE); ``brief`` two IOSv lab captures in public notes;
``nhs [detail]`` the genieparser goldens ``ShowIpNhrpNhs`` and ``ShowIpNhrpNhsDetail``;
``traffic`` the genieparser golden ``ShowIpNhrpTraffic/golden_output_2``. Lines IOS
prints from state frrdmvpn does not have (``Preference``, ``Requester``, ``Current
Request ID``, ``Max-send limit``) are replaced by what frrdmvpn knows (claimed NBMA
address, IKE identity, peer state).
"""

from __future__ import annotations

from collections.abc import Sequence

from cli.render import names
from cli.render.text import join
from cli.render.times import NEVER, age, cisco_age, epoch
from frrdmvpn.v1 import nhrp_pb2, node_pb2, state_service_pb2

BRIEF_HEADER = (
    "*" * 76,
    "    NOTE: Link-Local, No-socket and Incomplete entries are not displayed",
    "*" * 76,
    "Legend: Type --> S - Static, D - Dynamic",
    "        Flags --> u - unique, r - registered, e - temporary, c - claimed",
    "        a - authoritative, t - route",
    "=" * 76,
    "",
    "Intf     NextHop Address                                    NBMA Address",
    "         Target Network                              T/Flag",
    "-------- ------------------------------------------- ------ ----------------",
)
NHS_LEGEND = "Legend: E=Expecting replies, R=Responding, W=Waiting, D=Dynamic"
TRAFFIC_UNAVAILABLE = "NHRP message counters are not available: nhrpd does not report them"

_BRIEF_HIDDEN = (
    nhrp_pb2.NHRP_CACHE_TYPE_INVALID,
    nhrp_pb2.NHRP_CACHE_TYPE_INCOMPLETE,
    nhrp_pb2.NHRP_CACHE_TYPE_NEGATIVE,
    nhrp_pb2.NHRP_CACHE_TYPE_LOCAL,
)


def flags(entry: nhrp_pb2.NhrpCacheEntry) -> list[str]:
    """IOS ``Flags:`` words of a cache entry."""
    words = []
    if entry.type == nhrp_pb2.NHRP_CACHE_TYPE_DYNAMIC:
        words.append("registered")
    if entry.type == nhrp_pb2.NHRP_CACHE_TYPE_CACHED:
        words.append("router")
    if entry.type == nhrp_pb2.NHRP_CACHE_TYPE_NEGATIVE:
        words.append("negative")
    if entry.type == nhrp_pb2.NHRP_CACHE_TYPE_LOCAL:
        words.append("local")
    if entry.used:
        words.append("used")
    if entry.natted:
        words.append("nat")
    return words


def _created(entry: nhrp_pb2.NhrpCacheEntry, now: float) -> str:
    return age(epoch(entry.created_at), now) if entry.HasField("created_at") else "unknown"


def _expire(entry: nhrp_pb2.NhrpCacheEntry, now: float) -> str:
    if not entry.HasField("expires_at"):
        return "never expire"
    return f"expire {cisco_age(epoch(entry.expires_at) - now)}"


def show_ip_nhrp(
    entries: Sequence[nhrp_pb2.NhrpCacheEntry], *, detail: bool = False, now: float
) -> str:
    """``show ip nhrp [detail]``: four to seven lines per cache entry."""
    lines: list[str] = []
    for e in entries:
        lines += [
            f"{e.protocol_address}/{e.prefix_length} via {e.via or e.protocol_address}",
            f"   {e.interface} created {_created(e, now)}, {_expire(e, now)}",
            f"   Type: {names.cache_type(e.type)}, Flags: {' '.join(flags(e))}",
            f"   NBMA address: {e.nbma_address or '(unresolved)'}",
        ]
        if e.claimed_nbma_address and e.claimed_nbma_address != e.nbma_address:
            lines.append(f"    (Claimed NBMA address: {e.claimed_nbma_address})")
        if detail:
            lines.append(f"   IKE identity: {e.identity or '(none)'}")
            if e.peer_state:
                lines.append(f"   Peer state: {names.peer_state(e.peer_state)}")
            if e.authorizing:
                lines.append("    (authorization pending)")
    return join(lines)


def show_ip_nhrp_brief(entries: Sequence[nhrp_pb2.NhrpCacheEntry], *, now: float) -> str:
    """``show ip nhrp brief``: two lines per entry; incomplete and local entries hidden.

    ``now`` is accepted for symmetry with the other NHRP views; the brief form prints no
    times.
    """
    del now
    lines = list(BRIEF_HEADER)
    for e in entries:
        if e.type in _BRIEF_HIDDEN:
            continue
        letters = "r" if e.type == nhrp_pb2.NHRP_CACHE_TYPE_DYNAMIC else ""
        if e.via and e.via != e.protocol_address:
            letters += "t"
        tflag = f"{names.cache_letter(e.type)}/{letters}"
        lines += [
            f"{names.short_interface(e.interface):<8} {e.via or e.protocol_address:<43}"
            f" {'':<6} {e.nbma_address}",
            f"{'':<8} {e.protocol_address + '/' + str(e.prefix_length):<43} {tflag:<6}",
        ]
    return join(lines)


def nhs_letters(nhs: nhrp_pb2.Nhs) -> str:
    """IOS NHS status letters: ``RE`` responding, ``E`` expecting replies, ``W`` waiting;
    ``D`` appended for a dynamic NHS."""
    letters = {
        nhrp_pb2.NHS_STATE_WAITING: "W",
        nhrp_pb2.NHS_STATE_REGISTERING: "E",
        nhrp_pb2.NHS_STATE_RESPONDING: "RE",
    }.get(nhs.state, "?")
    return letters + ("D" if nhs.dynamic else "")


def show_ip_nhrp_nhs(
    node: node_pb2.NodeSummary,
    nhs: Sequence[nhrp_pb2.Nhs],
    *,
    detail: bool = False,
    now: float,
) -> str:
    """``show ip nhrp nhs [detail]``: the NHS per tunnel, tunnels in the node's order."""
    order = [t.name for t in node.tunnels]
    order += sorted({n.interface for n in nhs} - set(order))
    lines = [NHS_LEGEND]
    for name in order:
        members = [n for n in nhs if n.interface == name]
        if not members:
            continue
        lines.append(f"{name}:")
        for n in members:
            lines += _nhs(n, detail=detail, now=now)
        lines.append("")
    return join(lines)


def _nhs(n: nhrp_pb2.Nhs, *, detail: bool, now: float) -> list[str]:
    nbma = n.nbma_address or n.configured_nbma
    line = f"{n.protocol_address or '(dynamic)'}  {nhs_letters(n):>2}  "
    if nbma:
        line += f"NBMA Address: {nbma} "
    line += f"priority = {n.priority} cluster = 0"
    if not detail:
        return [line]
    if n.HasField("counters"):
        c = n.counters
        line += (
            f"  req-sent {c.requests_sent}  req-failed {c.requests_failed}"
            f"  repl-recv {c.replies_received}"
        )
        if c.HasField("last_reply_at"):
            line += f" ({age(epoch(c.last_reply_at), now)} ago)"
    since = age(epoch(n.state_since), now) if n.HasField("state_since") else NEVER
    lines = [line]
    if not n.HasField("counters"):
        lines.append(" Registration counters: not reported by nhrpd")
    if n.configured_nbma and n.configured_nbma != n.nbma_address:
        lines.append(f" Configured NBMA: {n.configured_nbma}")
    lines += [
        f" State since: {since}",
        f" Reachable: {'TRUE' if n.reachable else 'FALSE'}",
        f" Peer state: {names.peer_state(n.peer_state)}",
        f" Multicast: {'TRUE' if n.multicast else 'FALSE'}",
    ]
    return lines


def show_ip_nhrp_traffic(response: state_service_pb2.GetNhrpTrafficResponse) -> str:
    """``show ip nhrp traffic``: message counters per tunnel, or a note when the node
    cannot count them."""
    lines: list[str] = []
    for t in response.tunnels:
        if not t.available:
            lines.append(f"{t.interface}: {TRAFFIC_UNAVAILABLE}")
            continue
        lines.append(f"{t.interface}:")
        for label, c in (("Sent", t.sent), ("Rcvd", t.received)):
            total = (
                c.resolution_requests
                + c.resolution_replies
                + c.registration_requests
                + c.registration_replies
                + c.purge_requests
                + c.purge_replies
                + c.error_indications
                + c.traffic_indications
                + c.other
            )
            lines += [
                f"   {label}: Total {total}",
                f"         {c.resolution_requests} Resolution Request"
                f"  {c.resolution_replies} Resolution Reply"
                f"  {c.registration_requests} Registration Request",
                f"         {c.registration_replies} Registration Reply"
                f"  {c.purge_requests} Purge Request  {c.purge_replies} Purge Reply",
                f"         {c.error_indications} Error Indication"
                f"  {c.traffic_indications} Traffic Indication  {c.other} Other",
            ]
    return join(lines)
