"""A peer may claim only what is bound to its own IKE identity (issue 14, holes 1 and 2).

Each test drives the code the way the proxy does, through interfaces main already had:
charon (scripted, over a real unix socket) answers ``list-conns`` and ``list-certs`` as
charon 5.9.8 does for the attack, :func:`with_certificates` completes the SAs, and
:func:`authorize` decides; or a configuration text goes through validation and
:func:`authorization_policy`. On main every one of these attacks was accepted.
"""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path

import pytest

from frrdmvpn.adapters.vici_client import with_certificates
from frrdmvpn.codec.nhrp_events import AuthorizeBinding
from frrdmvpn.codec.vici import Message, Packet, PacketType
from frrdmvpn.config.policy import authorization_policy
from frrdmvpn.config.validate import check
from frrdmvpn.core.authorize import ChildSa, Decision, Policy, PolicyMode, authorize
from tests.fakes.charon import scripted_charon
from tests.fakes.nhrp_events import authorize_binding
from tests.fakes.observations import child
from tests.unit.certgen import issue

pytestmark = pytest.mark.unit
T = PacketType
ip = ipaddress.ip_address
HUB, ROGUE = "198.51.100.1", "198.51.100.13"
SUBNET = ipaddress.ip_network("192.0.2.0/24")
EXAMPLES = Path(__file__).resolve().parents[3] / "docs" / "examples"

# The lab's certificates: every spoke's carries its own name and the shared role name.
SPOKE2 = issue(
    "O=Corp, CN=spoke2",
    ips=["192.0.2.12", "198.51.100.12"],
    dns=["spoke2.lab.example", "spokes.lab.example"],
    serial=3,
)
SPOKE3 = issue(
    "O=Corp, CN=spoke3",
    ips=["192.0.2.13", "198.51.100.13"],
    dns=["spoke3.lab.example", "spokes.lab.example"],
    serial=4,
)


def rogue_sa(identity: str) -> ChildSa:
    """The CHILD_SA charon lists for spoke3 (198.51.100.13) authenticated as ``identity``."""
    return child(
        ip(ROGUE),
        local=ip(HUB),
        ike_uniqueid=9,
        child_uniqueid=10,
        local_id="hub.lab.example",
        remote_id=identity,
        ike_name="dmvpn",
    )


def claim(address: str) -> AuthorizeBinding:
    """spoke3's registration claiming ``address`` (spoke2's is 192.0.2.12)."""
    return authorize_binding(eventid=1, local_nbma=HUB, remote_addr=address, remote_nbma=ROGUE)


def decide(
    tmp_path: Path,
    identity: str,
    rule: bytes | None,
    held: list[bytes],
    address: str = "192.0.2.12",
) -> Decision:
    """What the hub decides when charon's connection has remote.id ``rule`` (None: unset)
    and charon returns ``held`` for ``list-certs subject=identity``."""
    remote: Message = {"class": b"public key"}
    if rule is not None:
        remote["id"] = rule
    events = {
        "list-conns": [Packet(T.EVENT, "list-conn", {"dmvpn": {"remote-1": remote}})],
        "list-certs": [
            Packet(T.EVENT, "list-cert", {"type": b"X509", "flag": b"NONE", "data": der})
            for der in held
        ],
    }
    sock = tmp_path / "charon.vici"

    async def main() -> Decision:
        server = await scripted_charon(sock, events, [])
        try:
            sas = await with_certificates(sock, [rogue_sa(identity)], {ip(HUB), ip(ROGUE)})
        finally:
            server.close()
        return authorize(claim(address), sas, Policy(PolicyMode.CERTIFICATE, SUBNET))

    return asyncio.run(main())


# --- hole 1: certificate mode ---------------------------------------------------------


def test_a_wildcard_identity_gets_no_other_peers_certificate(tmp_path: Path) -> None:
    # charon matched IDi '*.lab.example' against every certificate under the domain.
    decision = decide(tmp_path, "*.lab.example", b"*.lab.example", [SPOKE2, SPOKE3])
    assert decision == Decision(
        False,
        "deny 192.0.2.12 via 198.51.100.13: policy certificate: IKE peer '*.lab.example' "
        "(CHILD_SA #10 (IKE_SA #9)) cannot be tied to a certificate: its identity is a "
        "wildcard pattern ('*'), not one identity",
        peer_identity="*.lab.example",
    )


@pytest.mark.parametrize(
    ("identity", "rule", "why"),
    [
        ("O=Corp, CN=*", b"O=Corp, CN=*", "its identity is a wildcard pattern ('*')"),
        ("198.51.100.0/24", b"198.51.100.0/16", "its identity is an IPv4 subnet, not one"),
        ("198.51.100.1-198.51.100.99", b"198.51.100.0/24", "its identity is an IPv4 range"),
        ("spoke?.lab.example", b"*.lab.example", "holds '?', charon's mark for an unprint"),
        ("%any", b"*.lab.example", "its identity stands for any identity, not one identity"),
        ("O=Corp, CN= spoke2", b"O=Corp, CN=*", "does not read back as charon prints it"),
        (
            "O=Corp, CN=spoke2, OU=x",
            b"O=Corp, CN=*",
            "is not one the remote identity 'O=Corp, CN=*' of charon's connection 'dmvpn' admits",
        ),
        ("spoke2.lab.example", b"O=Corp, CN=*", "is not one the remote identity"),
        ("@#0a0b", b"*.lab.example", "its identity is a key-id, which charon matches"),
        (
            "spoke2.lab.example",
            None,
            "charon's connection 'dmvpn' accepts any remote identity (remote.id unset), so the "
            "peer chose its identity's type",
        ),
        ("spoke2.lab.example", b"%any", "accepts any remote identity (remote.id unset)"),
        (
            "spoke2.lab.example",
            b"@#0a0b",
            "the remote identity '@#0a0b' of charon's "
            "connection 'dmvpn' is a key-id frrdmvpn does not tie to certificates",
        ),
    ],
)
def test_no_pattern_or_inexact_identity_is_tied_to_a_certificate(
    tmp_path: Path, identity: str, rule: bytes | None, why: str
) -> None:
    decision = decide(tmp_path, identity, rule, [SPOKE2])
    assert not decision.accept
    assert "cannot be tied to a certificate: " in decision.reason
    assert why in decision.reason


def test_an_address_printed_identity_with_remote_id_unset_is_refused(tmp_path: Path) -> None:
    # With remote.id unset an FQDN IDi '198.51.100.12' (printed like an address) makes
    # list-certs read an address: charon returns spoke2's certificate (IP SAN).
    decision = decide(tmp_path, "198.51.100.12", None, [SPOKE2])
    assert not decision.accept
    assert "accepts any remote identity (remote.id unset)" in decision.reason


def test_a_dns_name_several_certificates_carry_allows_only_what_all_allow(
    tmp_path: Path,
) -> None:
    decision = decide(tmp_path, "spokes.lab.example", b"*.lab.example", [SPOKE2, SPOKE3])
    assert decision == Decision(
        False,
        "deny 192.0.2.12 via 198.51.100.13: policy certificate: each certificate issued to "
        "the identity must allow the claim: certificate 2 of 2 charon holds for IKE peer "
        "'spokes.lab.example' (CHILD_SA #10 (IKE_SA #9)) may claim only 192.0.2.13, not "
        "192.0.2.12",
        peer_identity="spokes.lab.example",
    )


def test_an_identity_no_returned_certificate_carries_is_refused(tmp_path: Path) -> None:
    # relaxed/reordered DN matching or a case variant: charon returned spoke2's certificate
    # for a DN that is not exactly spoke2's.
    decision = decide(tmp_path, "O=Corp, CN=SPOKE2", b"O=Corp, CN=*", [SPOKE2])
    assert decision.reason == (
        "deny 192.0.2.12 via 198.51.100.13: policy certificate: IKE peer 'O=Corp, CN=SPOKE2' "
        "(CHILD_SA #10 (IKE_SA #9)): the 1 certificate(s) charon holds for it has no subject "
        "DN or subjectAltName equal to its identity, so none provably belongs to it"
    )


@pytest.mark.parametrize(
    ("identity", "rule"),
    [
        ("spoke3.lab.example", b"*.lab.example"),
        ("SPOKE3.lab.example", b"*.lab.example"),
        ("O=Corp, CN=spoke3", b"O=Corp, CN=*"),
        ("198.51.100.13", b"198.51.100.0/24"),
        ("spoke3.lab.example", b"spoke3.lab.example"),
    ],
)
def test_a_peer_claims_what_its_own_certificate_grants(
    tmp_path: Path, identity: str, rule: bytes
) -> None:
    assert decide(tmp_path, identity, rule, [SPOKE3], "192.0.2.13").accept
    assert not decide(tmp_path, identity, rule, [SPOKE3], "192.0.2.12").accept


# --- hole 2: psk-map with a shared key ------------------------------------------------


def _hub_naming_spoke2_by_fqdn() -> str:
    """The lab hub (group PSK for any peer) with spoke2 in its psk-map by FQDN."""
    text = (EXAMPLES / "lab-hub.conf").read_text()
    return text.replace(" identity 198.51.100.12 allow", " identity spoke2.lab.example allow")


def test_a_group_key_and_an_fqdn_identity_do_not_validate() -> None:
    text = _hub_naming_spoke2_by_fqdn()
    _, findings = check(text)
    assert [(f.code, f.line, f.column) for f in findings] == [("psk-map-shared-key", 55, 11)]
    assert findings[0].message.startswith(
        "IKE identity spoke2.lab.example is no address, and charon accepts the pre-shared "
        "key of keyring lab peer any for any identity"
    )


def test_a_group_member_presenting_spoke2s_fqdn_is_denied_at_run_time() -> None:
    # Defence in depth: the policy of that configuration (had it been applied) grants the
    # FQDN identity nothing, since its key is the group's.
    config, _ = check(_hub_naming_spoke2_by_fqdn())
    policy = authorization_policy(config)
    assert policy is not None
    sa = rogue_sa("spoke2.lab.example")
    decision = authorize(claim("192.0.2.12"), [sa], policy)
    assert decision == Decision(
        False,
        "deny 192.0.2.12 via 198.51.100.13: policy psk-map: IKE identity 'spoke2.lab.example' "
        "(CHILD_SA #10 (IKE_SA #9)) is no address and has no pre-shared key of its own (with "
        "a key shared with another identity, or one charon accepts for any identity, every "
        "holder can present it), so it may claim nothing",
        peer_identity="spoke2.lab.example",
    )


def test_an_address_identity_stays_tied_to_the_ike_address() -> None:
    config, _ = check((EXAMPLES / "lab-hub.conf").read_text())
    policy = authorization_policy(config)
    assert policy is not None
    assert not authorize(claim("192.0.2.12"), [rogue_sa("198.51.100.12")], policy).accept
    assert authorize(claim("192.0.2.13"), [rogue_sa("198.51.100.13")], policy).accept
