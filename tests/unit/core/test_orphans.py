"""Kernel IPsec state a crashed charon left behind."""

from __future__ import annotations

import ipaddress

import pytest

from frrdmvpn.core.authorize import ChildSa
from frrdmvpn.core.orphans import KernelPolicy, KernelSa, orphan_policies, orphan_sas
from tests.fakes import observations
from tests.fakes.observations import IPAddress

pytestmark = pytest.mark.unit
ip, net = ipaddress.ip_address, ipaddress.ip_network
ME, HUB, S2 = ip("198.51.100.11"), ip("198.51.100.1"), ip("198.51.100.12")


def child(remote: IPAddress, spi_in: int, spi_out: int) -> ChildSa:
    return observations.child(remote, local_ts=(), remote_ts=(), spi_in=spi_in, spi_out=spi_out)


def test_sas_unknown_to_charon_are_orphans_larval_ones_are_not() -> None:
    kernel = [
        KernelSa(HUB, ME, "esp", 0xC1),  # inbound, known
        KernelSa(ME, HUB, "esp", 0xC2),  # outbound, known
        KernelSa(S2, ME, "esp", 0xD1),  # left by the crash
        KernelSa(ME, S2, "esp", 0xD2),
        KernelSa(ME, S2, "esp", 0),  # larval: FlushLarval's business
    ]
    assert orphan_sas(kernel, [child(HUB, 0xC1, 0xC2)]) == kernel[2:4]
    assert orphan_sas(kernel, []) == kernel[:4]


def test_only_per_peer_gre_policies_without_an_sa_are_orphans() -> None:
    def pol(
        d: str, src: str, dst: str, *, action: str = "allow", prio: int = 366975, proto: str = "gre"
    ) -> KernelPolicy:
        return KernelPolicy(d, net(src), net(dst), proto, action, prio)

    kernel = [
        pol("out", f"{ME}/32", f"{HUB}/32"),
        pol("in", f"{HUB}/32", f"{ME}/32"),
        pol("out", f"{ME}/32", f"{S2}/32"),  # orphan
        pol("in", f"{S2}/32", f"{ME}/32"),  # orphan
        pol("fwd", f"{S2}/32", f"{ME}/32"),  # orphan
        pol("out", "0.0.0.0/0", "0.0.0.0/0", prio=399744),  # charon's wildcard trap
        pol("out", f"{ME}/32", "0.0.0.0/0", action="block", prio=1_000_000),  # our guard
        pol("out", f"{ME}/32", f"{S2}/32", proto="tcp"),  # not GRE: not ours to judge
        pol("out", f"{HUB}/32", f"{S2}/32"),  # not about our address
    ]
    assert orphan_policies(kernel, [child(HUB, 1, 2)], [ME]) == kernel[2:5]
