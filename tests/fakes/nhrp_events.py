"""nhrpd's events as the codec models them, for the tests that need one."""

from __future__ import annotations

import ipaddress

from frrdmvpn.codec.nhrp_events import AuthorizeBinding


def authorize_binding(*, remote_cert: bytes = b"") -> AuthorizeBinding:
    """spoke1 (192.0.2.11 at 198.51.100.11) registering with the hub on gre1: event 7 as
    nhrpd 8.4.4 sends it, carrying ``remote_cert``."""
    return AuthorizeBinding(
        eventid=7,
        type="dynamic",
        old_type="invalid",
        num_nhs=0,
        interface="gre1",
        local_addr=ipaddress.ip_address("192.0.2.1"),
        vc_initiated=False,
        local_nbma=ipaddress.ip_address("198.51.100.1"),
        local_cert=b"",
        remote_addr=ipaddress.ip_address("192.0.2.11"),
        remote_nbma=ipaddress.ip_address("198.51.100.11"),
        remote_cert=remote_cert,
    )
