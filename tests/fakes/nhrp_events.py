"""nhrpd's events as the codec models them, for the tests that need one."""

from __future__ import annotations

import ipaddress

from frrdmvpn.codec.nhrp_events import AuthorizeBinding, IPAddress


def authorize_binding(
    *,
    eventid: int = 7,
    local_addr: str | None = "192.0.2.1",
    local_nbma: str | None = "198.51.100.1",
    remote_addr: str | None = "192.0.2.11",
    remote_nbma: str | None = "198.51.100.11",
    remote_cert: bytes = b"",
) -> AuthorizeBinding:
    """spoke1 (192.0.2.11 at 198.51.100.11) registering with the hub on gre1: event 7 as
    nhrpd 8.4.4 sends it, carrying ``remote_cert``. Each keyword replaces its part (an
    address None: nhrpd sent it empty or "(unspec)")."""

    def addr(value: str | None) -> IPAddress | None:
        return None if value is None else ipaddress.ip_address(value)

    return AuthorizeBinding(
        eventid=eventid,
        type="dynamic",
        old_type="invalid",
        num_nhs=0,
        interface="gre1",
        local_addr=addr(local_addr),
        vc_initiated=False,
        local_nbma=addr(local_nbma),
        local_cert=b"",
        remote_addr=addr(remote_addr),
        remote_nbma=addr(remote_nbma),
        remote_cert=remote_cert,
    )
