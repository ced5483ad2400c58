"""``show ip ospf neighbor``, in the IOS layout of the ntc-templates raw
``cisco_ios_show_ip_ospf_neighbor.raw`` (``'%-15s %3d   %-15s %-11s %-15s %s'``)."""

from __future__ import annotations

from cli.render.text import join
from cli.render.times import clock, seconds
from frrdmvpn.v1 import ospf_pb2, state_service_pb2

HEADER = "Neighbor ID     Pri   State           Dead Time   Address         Interface"
UNAVAILABLE = "% OSPF is not configured, or ospfd is not running"

_STATE = {
    ospf_pb2.OSPF_NEIGHBOR_STATE_DOWN: "DOWN",
    ospf_pb2.OSPF_NEIGHBOR_STATE_ATTEMPT: "ATTEMPT",
    ospf_pb2.OSPF_NEIGHBOR_STATE_INIT: "INIT",
    ospf_pb2.OSPF_NEIGHBOR_STATE_TWO_WAY: "2WAY",
    ospf_pb2.OSPF_NEIGHBOR_STATE_EXSTART: "EXSTART",
    ospf_pb2.OSPF_NEIGHBOR_STATE_EXCHANGE: "EXCHANGE",
    ospf_pb2.OSPF_NEIGHBOR_STATE_LOADING: "LOADING",
    ospf_pb2.OSPF_NEIGHBOR_STATE_FULL: "FULL",
}
_ROLE = {
    ospf_pb2.OSPF_NEIGHBOR_ROLE_DR: "DR",
    ospf_pb2.OSPF_NEIGHBOR_ROLE_BDR: "BDR",
    ospf_pb2.OSPF_NEIGHBOR_ROLE_DROTHER: "DROTHER",
}


def neighbor_state(n: ospf_pb2.OspfNeighbor) -> str:
    """IOS ``State`` column: ``FULL/DR``, ``2WAY/DROTHER``, ``FULL/  -``."""
    return f"{_STATE.get(n.state, 'UNKNOWN')}/{_ROLE.get(n.role, '  -')}"


def show_ip_ospf_neighbor(response: state_service_pb2.ListOspfNeighborsResponse) -> str:
    """``show ip ospf neighbor``: the header and one line per neighbour."""
    if not response.ospf_available:
        return join([UNAVAILABLE])
    lines = [HEADER]
    for n in response.neighbors:
        dead = clock(seconds(n.dead_time_remaining))
        lines.append(
            f"{n.neighbor_id:<15} {n.priority:>3}   {neighbor_state(n):<15} {dead:<11}"
            f" {n.address:<15} {n.interface}"
        )
    return join(lines)
