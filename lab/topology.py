"""The lab's topology and the daemon configuration each node gets (pure: no I/O).

Hub and two spokes on one underlay bridge; mGRE ``gre1`` with a key; /32 overlay addresses;
a LAN per node; NHRP with redirect/shortcut; OSPF over the overlay through nhrpd's NFLOG
multicast; IPsec as a wildcard transport-mode trap in charon (so no GRE leaves in clear
while charon runs). Only documentation ranges are used.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass

from frrdmvpn.config.charon_socket import CHARON_SOCKET, render_scale_settings

UNDERLAY = ipaddress.ip_network("198.51.100.0/24")
OVERLAY = ipaddress.ip_network("192.0.2.0/24")
LANS = ipaddress.ip_network("203.0.113.0/24")
GRE_KEY = 42
GRE_MTU = 1400
NHRP_NETWORK_ID = 1
NHRP_HOLDTIME = 60
NFLOG_REDIRECT = 1
NFLOG_MULTICAST = 2
PSK = "frrdmvpn-lab-psk-not-for-production"
GRE_REQID = 1
IKE_PROPOSALS = "aes128gcm16-prfsha256-x25519"
ESP_PROPOSALS = "aes128gcm16"
BRIDGE = "nbma0"
CHARON_PLUGINS = (
    "random",
    "nonce",
    "aes",
    "sha1",
    "sha2",
    "md5",
    "hmac",
    "gcm",
    "x509",
    "revocation",
    "constraints",
    "pubkey",
    "pkcs1",
    "pkcs7",
    "pkcs8",
    "pkcs12",
    "pem",
    "openssl",
    "curve25519",
    "kdf",
    "kernel-netlink",
    "socket-default",
    "vici",
    "updown",
    "counters",
)
NS_PREFIX = "frrdmvpn-"
UNDERLAY_NS = NS_PREFIX + "underlay"
#: IPsec modes: "frrdmvpn" = nhrpd's tunnel protection through frrdmvpn's proxy, event socket
#: and guards on stock strongSwan; "trap" = the best stock setup (charon's wildcard trap only).
MODES = ("frrdmvpn", "trap")
#: IKE authentication in the lab: a group PSK (with frrdmvpn's identity map) or certificates.
AUTHS = ("psk", "cert")
VICI_PROFILE = "dmvpn"
#: With certificates every node's IKE identity is ``NAME.lab.example`` (a dNSName of its
#: certificate); every node admits any identity under the domain (``*.lab.example``).
LAB_DOMAIN = "lab.example"
#: A dNSName every spoke's certificate carries besides its own (a role name, as some CAs
#: issue): several certificates share it, so it must never bind an address by itself.
SPOKES_DNS = f"spokes.{LAB_DOMAIN}"
EVENT_SOCKET = "/run/frrdmvpn/nhrp-events.sock"
CHARON_VICI = str(CHARON_SOCKET)  # as on a configured node (DROPIN relocates it there)
#: charon as the package runs it on both releases (Debian 13 has no strongswan-charon); it
#: writes no pid file.
CHARON = "/usr/sbin/charon-systemd"
#: charon's file log inside a node: under /run/charon.*, which its AppArmor profiles allow.
CHARON_LOG = "/run/charon.log"


@dataclass(frozen=True)
class Node:
    """One lab router."""

    name: str
    role: str  # "hub" or "spoke"
    nbma: ipaddress.IPv4Interface
    overlay: ipaddress.IPv4Interface
    lan: ipaddress.IPv4Interface
    # The tunnel address its credentials entitle it to, when it configures another one (a
    # rogue node claiming someone else's address); None: the one it configures.
    entitled: ipaddress.IPv4Interface | None = None
    # Whether it runs ospfd. The rogue does not: with spoke2's address it would also be
    # spoke2's OSPF router-id, and GRE from any IPsec peer reaches ospfd (binding
    # authorization covers NHRP, not the routing protocol; see docs/enforcement.md).
    ospf: bool = True

    @property
    def entitled_overlay(self) -> ipaddress.IPv4Interface:
        return self.entitled or self.overlay

    @property
    def fqdn(self) -> str:
        """Its IKE identity with certificates (a dNSName of its certificate)."""
        return f"{self.name}.{LAB_DOMAIN}"

    @property
    def netns(self) -> str:
        return NS_PREFIX + self.name

    @property
    def is_hub(self) -> bool:
        return self.role == "hub"


NODES: tuple[Node, ...] = (
    Node(
        "hub",
        "hub",
        ipaddress.IPv4Interface("198.51.100.1/24"),
        ipaddress.IPv4Interface("192.0.2.1/32"),
        ipaddress.IPv4Interface("203.0.113.1/28"),
    ),
    Node(
        "spoke1",
        "spoke",
        ipaddress.IPv4Interface("198.51.100.11/24"),
        ipaddress.IPv4Interface("192.0.2.11/32"),
        ipaddress.IPv4Interface("203.0.113.17/28"),
    ),
    Node(
        "spoke2",
        "spoke",
        ipaddress.IPv4Interface("198.51.100.12/24"),
        ipaddress.IPv4Interface("192.0.2.12/32"),
        ipaddress.IPv4Interface("203.0.113.33/28"),
    ),
)


#: Nodes the lab adds only for a test (``Lab.add_node``). spoke3 has valid IKE credentials
#: for 192.0.2.13 (PSK map entry, certificate) but configures spoke2's tunnel address.
ROGUE = Node(
    "spoke3",
    "spoke",
    ipaddress.IPv4Interface("198.51.100.13/24"),
    ipaddress.IPv4Interface("192.0.2.12/32"),
    ipaddress.IPv4Interface("203.0.113.49/28"),
    entitled=ipaddress.IPv4Interface("192.0.2.13/32"),
    ospf=False,
)
#: spoke4 boots under systemd from the installed package (:mod:`lab.container`).
SYSTEMD_NODE = Node(
    "spoke4",
    "spoke",
    ipaddress.IPv4Interface("198.51.100.14/24"),
    ipaddress.IPv4Interface("192.0.2.14/32"),
    ipaddress.IPv4Interface("203.0.113.65/28"),
)
EXTRA_NODES: tuple[Node, ...] = (ROGUE, SYSTEMD_NODE)
#: The spoke swarm's namespace (:mod:`lab.swarm`): one charon for many spokes, no FRR; its
#: own addresses are only the namespace's; the spokes' are in ``lab.swarm.spokes``.
SWARM = Node(
    "swarm",
    "spoke",
    ipaddress.IPv4Interface("198.51.100.99/24"),
    ipaddress.IPv4Interface("192.0.2.99/32"),
    ipaddress.IPv4Interface("203.0.113.241/28"),
    ospf=False,
)


def node(name: str) -> Node:
    """The node called ``name``; raises KeyError with the valid names."""
    for n in NODES + EXTRA_NODES + (SWARM,):
        if n.name == name:
            return n
    raise KeyError(f"no lab node {name!r} (nodes: {', '.join(n.name for n in NODES)})")


def hub() -> Node:
    return next(n for n in NODES if n.is_hub)


def _wildcard(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    return f"{net.network_address} {net.hostmask}"


def frrdmvpn_conf(
    n: Node,
    auth: str = "psk",
    more: tuple[tuple[ipaddress.IPv4Address, ipaddress.IPv4Address], ...] = (),
) -> str:
    """Node ``n``'s ``frrdmvpn.conf``: everything DMVPN about it (tunnel, NHRP, OSPF, IKE,
    binding authorization), in the canonical form ``frrdmvpnd`` renders. The lab writes
    nothing else for FRR or strongSwan in ``frrdmvpn`` mode. ``more``: (NBMA, tunnel
    address) of further peers the psk-map admits (the swarm's spokes)."""
    if auth not in AUTHS:
        raise ValueError(f"unknown lab IKE authentication {auth!r} (one of {', '.join(AUTHS)})")
    lines = [f"hostname {n.name}", "!"]
    if auth == "cert":
        lines += [
            "crypto pki trustpoint lab",
            f" certificate /etc/swanctl/x509/{n.name}.pem",
            f" private-key /etc/swanctl/private/{n.name}.key",
            " ca-certificate /etc/swanctl/x509ca/ca.pem",
            "!",
        ]
    lines += [
        "crypto ikev2 proposal lab",
        " encryption aes-gcm-128",
        " prf sha256",
        " group 31",
        "!",
    ]
    if auth == "psk":
        lines += [
            "crypto ikev2 keyring lab",
            " peer any",
            "  address 0.0.0.0 0.0.0.0",
            f"  pre-shared-key {PSK}",
            "!",
        ]
    lines.append("crypto ikev2 profile lab")
    if auth == "psk":
        lines += [
            " match identity remote address 0.0.0.0",
            " authentication local pre-share",
            " authentication remote pre-share",
            " keyring local lab",
        ]
    else:  # certificate authorization needs a typed remote identity (issue 14, hole 1)
        lines += [
            f" match identity remote fqdn domain {LAB_DOMAIN}",
            f" identity local fqdn {n.fqdn}",
            " authentication local ecdsa-sig",
            " authentication remote ecdsa-sig",
            " pki trustpoint lab",
        ]
    lines += [
        " dpd 10 2 periodic",
        "!",
        "crypto ipsec transform-set lab esp-gcm 128",
        " mode transport",
        "!",
        f"crypto ipsec profile {VICI_PROFILE}",
        " set transform-set lab",
        " set ikev2-profile lab",
        "!",
    ]
    lines += [
        "interface Tunnel0",
        f" ip address {n.overlay.ip} {OVERLAY.netmask}",
        f" ip mtu {GRE_MTU}",
        f" ip nhrp network-id {NHRP_NETWORK_ID}",
        f" ip nhrp holdtime {NHRP_HOLDTIME}",
    ]
    if n.is_hub:
        lines += [
            " ip nhrp map multicast dynamic",
            " ip nhrp registration no-unique",
            " ip nhrp redirect",
        ]
    else:
        lines += [
            f" ip nhrp nhs dynamic nbma {hub().nbma.ip} multicast",
            " ip nhrp registration no-unique",
            " ip nhrp shortcut",
        ]
    if n.ospf:
        net_type = "point-to-multipoint" if n.is_hub else "point-to-point"
        lines += [
            f" ip ospf network {net_type}",
            " ip ospf hello-interval 2",
            " ip ospf dead-interval 8",
            " ip ospf mtu-ignore",
        ]
    lines += [
        " tunnel source eth0",
        " tunnel mode gre multipoint",
        f" tunnel key {GRE_KEY}",
        f" tunnel protection ipsec profile {VICI_PROFILE}",
        "!",
    ]
    if n.ospf:
        lines += [
            "router ospf 1",
            f" router-id {n.overlay.ip}",
            " timers throttle spf 50 100 1000",
            " timers throttle lsa all 100",
            " timers lsa arrival 50",
            f" network {_wildcard(OVERLAY)} area 0",
            f" network {_wildcard(n.lan.network)} area 0",
            "!",
        ]
    if auth == "cert":
        lines += ["frrdmvpn authorization certificate", "!"]
    else:
        lines.append("frrdmvpn authorization psk-map")
        for other in NODES + EXTRA_NODES:
            lines.append(
                f" identity {other.nbma.ip} allow {other.entitled_overlay.ip}/32 "
                f"{other.lan.network}"
            )
        lines += [f" identity {nbma} allow {overlay}/32" for nbma, overlay in more]
        lines.append("!")
    return "\n".join(lines) + "\n"


def zebra_conf(n: Node) -> str:
    return f"hostname {n.name}\nlog file /var/log/frr/zebra.log\nlog timestamp precision 3\n!\n"


def nhrpd_conf(n: Node, mode: str = "frrdmvpn") -> str:
    lines = [
        f"hostname {n.name}",
        "log file /var/log/frr/nhrpd.log",
        "log timestamp precision 3",
        "debug nhrp common",
        "debug nhrp kernel",
        "debug nhrp vici",
        "debug nhrp event",
        "!",
    ]
    if mode == "frrdmvpn":
        lines.append(f"nhrp event socket {EVENT_SOCKET}")
    if n.is_hub:
        lines.append(f"nhrp nflog-group {NFLOG_REDIRECT}")
    lines.append(f"nhrp multicast-nflog-group {NFLOG_MULTICAST}")
    lines += [
        "interface gre1",
        f" ip nhrp network-id {NHRP_NETWORK_ID}",
        f" ip nhrp holdtime {NHRP_HOLDTIME}",
        " ip nhrp registration no-unique",
    ]
    if n.is_hub:
        lines += [" ip nhrp redirect", " ip nhrp map multicast dynamic"]
    else:
        h = hub()
        lines += [
            f" ip nhrp nhs dynamic nbma {h.nbma.ip}",
            f" ip nhrp map multicast {h.nbma.ip}",
            " ip nhrp shortcut",
        ]
    if mode == "frrdmvpn":
        lines.append(f" tunnel protection vici profile {VICI_PROFILE}")
    lines += [" tunnel source eth0", "!"]
    return "\n".join(lines) + "\n"


def ospfd_conf(n: Node) -> str:
    net_type = "point-to-multipoint" if n.is_hub else "point-to-point dmvpn"
    return (
        "\n".join(
            [
                f"hostname {n.name}",
                "log file /var/log/frr/ospfd.log",
                "log timestamp precision 3",
                "!",
                "interface gre1",
                f" ip ospf network {net_type}",
                " ip ospf hello-interval 2",
                " ip ospf dead-interval 8",
                " ip ospf mtu-ignore",
                "!",
                "router ospf",
                f" ospf router-id {n.overlay.ip}",
                " timers throttle spf 50 100 1000",
                # Re-originate and accept LSAs at once: with RFC 2328's 5 s MinLSInterval a
                # spoke back from an IPsec outage waits seconds for its router LSA to flood.
                " timers throttle lsa all 100",
                " timers lsa min-arrival 50",
                f" network {OVERLAY} area 0",
                f" network {n.lan.network} area 0",
                "!",
            ]
        )
        + "\n"
    )


def _auth_blocks(n: Node, auth: str) -> tuple[str, str]:
    """swanctl ``local``/``remote`` bodies: a group PSK with address identities, or the lab
    CA's certificates (identity ``NAME.lab.example``, see :mod:`lab.pki`)."""
    if auth == "psk":
        return f"auth = psk\n            id = {n.nbma.ip}", "auth = psk"
    if auth == "cert":
        indent = "\n            "
        return (
            f"auth = pubkey{indent}certs = {n.name}.pem{indent}id = fqdn:{n.fqdn}",
            f"auth = pubkey{indent}cacerts = ca.pem{indent}id = fqdn:*.{LAB_DOMAIN}",
        )
    raise ValueError(f"unknown lab IKE authentication {auth!r} (one of {', '.join(AUTHS)})")


def cert_subject(n: Node) -> str:
    """The subject DN of node ``n``'s lab certificate (its IKE identity is :attr:`Node.fqdn`)."""
    return f"O=frrdmvpn lab, CN={n.name}"


def cert_dns_names(n: Node) -> tuple[str, ...]:
    """The dNSNames of node ``n``'s lab certificate: its FQDN, and for spokes the shared
    :data:`SPOKES_DNS`."""
    return (n.fqdn,) if n.is_hub else (n.fqdn, SPOKES_DNS)


def swanctl_conf(n: Node, auth: str = "psk") -> str:
    """The wildcard transport-mode GRE trap: outbound GRE triggers IKE, cleartext is dropped."""
    local, remote = _auth_blocks(n, auth)
    return f"""connections {{
    dmvpn {{
        version = 2
        local_addrs = {n.nbma.ip}
        remote_addrs = %any
        proposals = {IKE_PROPOSALS}
        dpd_delay = 10s
        local {{
            {local}
        }}
        remote {{
            {remote}
        }}
        children {{
            dmvpn {{
                mode = transport
                local_ts = dynamic[gre]
                remote_ts = dynamic[gre]
                esp_proposals = {ESP_PROPOSALS}
                start_action = trap
                dpd_action = trap
                # One reqid for every GRE CHILD_SA: when both ends initiate at once (a
                # shortcut), the duplicate SAs share it and the policy check accepts
                # either; with one reqid each, traffic is dropped both ways.
                reqid = {GRE_REQID}
            }}
        }}
    }}
}}
secrets {{
    ike-dmvpn {{
        secret = "{PSK}"
    }}
}}
"""


def strongswan_conf(n: Node, mode: str = "frrdmvpn") -> str:
    """A node's strongswan.conf."""
    vici = f"vici {{ socket = unix://{CHARON_VICI} }}" if mode == "frrdmvpn" else ""
    return f"""# lab node {n.name}
charon {{
    # Only what the lab uses: plugin loading dominates charon's start-up under emulation.
    load = {" ".join(CHARON_PLUGINS)}
    install_routes = no
{render_scale_settings()}    plugins {{
        include strongswan.d/charon/*.conf
        {vici}
    }}
    filelog {{
        lab {{
            path = {CHARON_LOG}
            time_format = %b %e %T
            default = 1
            ike = 2
            flush_line = yes
        }}
    }}
}}
include strongswan.d/*.conf
"""


def underlay_commands() -> list[str]:
    """``ip -batch`` lines for the underlay namespace (the bridge)."""
    return [f"link add {BRIDGE} type bridge", f"link set {BRIDGE} up", "link set lo up"]


def node_commands(n: Node, mode: str = "trap") -> list[str]:
    """``ip -batch`` lines that build node ``n`` once its veth ``eth0`` is in its namespace:
    underlay and LAN; in ``trap`` mode the mGRE link too (``frrdmvpnd apply`` makes it)."""
    machine = [
        "link set lo up",
        f"addr add {n.nbma} dev eth0",
        "link set eth0 up",
        "link add lan0 type dummy",
        f"addr add {n.lan} dev lan0",
        "link set lan0 up",
    ]
    if mode == "frrdmvpn":
        return machine
    return [
        *machine,
        f"link add gre1 type gre key {GRE_KEY} ttl 64 local {n.nbma.ip} dev eth0",
        f"link set gre1 mtu {GRE_MTU}",
        f"addr add {n.overlay} dev gre1",
    ]


SYSCTLS = (
    ("net.ipv4.ip_forward", "1"),
    ("net.ipv4.conf.all.rp_filter", "0"),
    ("net.ipv4.conf.default.rp_filter", "0"),
    ("net.ipv4.conf.gre1.rp_filter", "0"),
    ("net.ipv6.conf.gre1.disable_ipv6", "1"),
)


def iptables_rules(n: Node) -> list[list[str]]:
    """nhrpd's NFLOG hooks: multicast (OSPF) interception; on the hub, redirect triggers."""
    rules = [
        [
            "-A",
            "OUTPUT",
            "-d",
            "224.0.0.0/24",
            "-o",
            "gre1",
            "-j",
            "NFLOG",
            "--nflog-group",
            str(NFLOG_MULTICAST),
        ],
        ["-A", "OUTPUT", "-d", "224.0.0.0/24", "-o", "gre1", "-j", "DROP"],
    ]
    if n.is_hub:
        rules.append(
            [
                "-A",
                "FORWARD",
                "-i",
                "gre1",
                "-o",
                "gre1",
                "-m",
                "hashlimit",
                "--hashlimit-upto",
                "4/minute",
                "--hashlimit-burst",
                "1",
                "--hashlimit-mode",
                "srcip,dstip",
                "--hashlimit-srcmask",
                "32",
                "--hashlimit-dstmask",
                "32",
                "--hashlimit-name",
                "nhrp-redirect",
                "-j",
                "NFLOG",
                "--nflog-group",
                str(NFLOG_REDIRECT),
                "--nflog-size",
                "128",
            ]
        )
    return rules


# The lab audits the proxies' SA tables every 5 s, not every 60 as a router does: under the
# tests' churn (SAs terminated, charon and nhrpd restarted) each audit is a chance to catch
# a table that drifted (tests/lab/test_sa_table.py reads their logs at the end).
SA_AUDIT = 5


def sa_audit() -> int:
    """:data:`SA_AUDIT`, or ``FRRDMVPN_LAB_SA_AUDIT`` (bench/idle_cpu.py measures a
    router's default)."""
    return int(os.environ.get("FRRDMVPN_LAB_SA_AUDIT") or SA_AUDIT)


def proxy_argv_config(proxy: str, config: str) -> list[str]:
    """frrdmvpn's enforcement process (the ``frrdmvpn-proxy`` program at path ``proxy``)
    taking its authorization policy from ``config``; its SA table audited every
    :func:`sa_audit` seconds."""
    return [proxy, "--config", config, "--sa-audit", str(sa_audit())]


def proxy_argv(proxy: str, auth: str = "psk") -> list[str]:
    """frrdmvpn's enforcement process on a node: VICI proxy + event socket. With a PSK each
    IKE identity (the NBMA address) may claim its tunnel address and its LAN (shortcut
    resolutions); with certificates, what its certificate says (see :mod:`lab.pki`).
    nhrpd may use the lab's IPsec profile."""
    argv = [proxy, "--tunnel-subnet", str(OVERLAY), "--profile", VICI_PROFILE]
    argv += ["--sa-audit", str(sa_audit())]
    if auth == "cert":
        return [*argv, "--auth", "certificate"]
    argv += ["--auth", "psk-map"]
    for other in NODES + EXTRA_NODES:
        claims = f"{other.entitled_overlay.ip}/32,{other.lan.network}"
        argv += ["--psk-map", f"{other.nbma.ip}={claims}"]
    return argv


def supervisor_argv(frrdmvpnd: str, n: Node, config: str | None = None) -> list[str]:
    """frrdmvpnd's supervisor on a node; spokes keep their NHS SA up. With ``config`` it
    applies that file first, and again whenever charon comes back."""
    argv = [frrdmvpnd, "run", "--nbma", str(n.nbma.ip)]
    if not n.is_hub:
        argv += ["--nhs", str(hub().nbma.ip)]
    if config is not None:
        argv += ["--config", config]
    return argv


def guard_argv(frrdmvpnd: str, n: Node) -> list[str]:
    """Install frrdmvpn's nftables + XFRM block guards for the node's NBMA address."""
    return [frrdmvpnd, "guard", "install", "--nbma", str(n.nbma.ip)]


def frr_files(n: Node, mode: str = "frrdmvpn") -> dict[str, str]:
    """Files of the node's private /etc/frr. In ``frrdmvpn`` mode only logging: the DMVPN
    configuration comes from ``frrdmvpn.conf`` through ``frrdmvpnd apply`` (vtysh)."""
    if mode == "frrdmvpn":
        logging = [f"hostname {n.name}", "log timestamp precision 3"]
        nhrpd = [
            *logging,
            "log file /var/log/frr/nhrpd.log",
            "debug nhrp common",
            "debug nhrp kernel",
            "debug nhrp vici",
            "debug nhrp event",
        ]
        return {
            "zebra.conf": "\n".join([*logging, "log file /var/log/frr/zebra.log"]) + "\n",
            "nhrpd.conf": "\n".join(nhrpd) + "\n",
            "ospfd.conf": "\n".join([*logging, "log file /var/log/frr/ospfd.log"]) + "\n",
            "vtysh.conf": f"hostname {n.name}\n",
        }
    return {
        "zebra.conf": zebra_conf(n),
        "nhrpd.conf": nhrpd_conf(n, mode),
        "ospfd.conf": ospfd_conf(n),
        "vtysh.conf": f"hostname {n.name}\n",
    }
