"""Pure text renderers of the operator shell's show commands (no I/O, deterministic).

Each function takes API messages (and ``now``, epoch seconds, where it prints ages) and
returns the command's output, every line without trailing blanks, ending in a newline.
The IOS layouts follow real IOS samples named in each module's docstring.
"""

from cli.render.authorization import show_frrdmvpn_authorization
from cli.render.crypto import show_crypto_ikev2_sa, show_crypto_ipsec_sa, show_crypto_session
from cli.render.dmvpn import show_dmvpn
from cli.render.guard import show_frrdmvpn_guard
from cli.render.nhrp import (
    show_ip_nhrp,
    show_ip_nhrp_brief,
    show_ip_nhrp_nhs,
    show_ip_nhrp_traffic,
)
from cli.render.ospf import show_ip_ospf_neighbor
from cli.render.structured import as_json

__all__ = [
    "as_json",
    "show_crypto_ikev2_sa",
    "show_crypto_ipsec_sa",
    "show_crypto_session",
    "show_dmvpn",
    "show_frrdmvpn_authorization",
    "show_frrdmvpn_guard",
    "show_ip_nhrp",
    "show_ip_nhrp_brief",
    "show_ip_nhrp_nhs",
    "show_ip_nhrp_traffic",
    "show_ip_ospf_neighbor",
]
