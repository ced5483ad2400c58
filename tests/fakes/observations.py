"""Observations the supervisor steps on: a hub, a spoke, charon's CHILD_SAs."""

from __future__ import annotations

import dataclasses
import ipaddress
from typing import Any

from frrdmvpn.core.authorize import ChildSa
from frrdmvpn.core.supervisor import (
    IkeSa,
    NhrpBinding,
    Observation,
)

ip = ipaddress.ip_address
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ME, HUB, S2 = ip("198.51.100.11"), ip("198.51.100.1"), ip("198.51.100.12")


def child(remote: IPAddress, *, local: IPAddress = ME, **kw: Any) -> ChildSa:
    """The installed GRE CHILD_SA ``local -> remote`` as charon lists it (IKE_SA 1, CHILD_SA
    2, the addresses as IKE identities), with the fields ``kw`` instead."""
    sa = ChildSa(
        ike_uniqueid=1,
        child_uniqueid=2,
        local_host=local,
        remote_host=remote,
        local_id=str(local),
        remote_id=str(remote),
        state="INSTALLED",
        mode="TRANSPORT",
        protocol="ESP",
        local_ts=(f"{local}/32[gre]",),
        remote_ts=(f"{remote}/32[gre]",),
    )
    return dataclasses.replace(sa, **kw)


def obs(
    *,
    charon: bool = True,
    children: tuple[ChildSa, ...] = (),
    ike: tuple[IkeSa, ...] = (),
    nhrp: tuple[NhrpBinding, ...] = (),
    sas: dict[tuple[object, object], int] | None = None,
) -> Observation:
    return Observation(charon, ike, children, nhrp, sas or {})  # type: ignore[arg-type]


UP_HUB = obs(
    children=(child(HUB),),
    nhrp=(NhrpBinding(ip("192.0.2.1"), HUB, "nhs"),),
    sas={(ME, HUB): 1},
)
