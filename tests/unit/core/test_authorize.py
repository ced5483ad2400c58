"""Binding authorization: GRE protection by a CHILD_SA, identity per policy mode, reasons."""

from __future__ import annotations

import base64
import dataclasses
import ipaddress
import re
from types import MappingProxyType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from frrdmvpn.codec.x509 import (
    DerError,
    SubjectAltNames,
    certificate_names,
    flat,
    subject_alt_names,
)
from frrdmvpn.core.authorize import (
    ChildSa,
    Decision,
    Policy,
    PolicyMode,
    authorize,
    gre_protection_problem,
    protects_gre,
    reads_garbled,
)
from tests.fakes.nhrp_events import authorize_binding as event
from tests.fakes.observations import child
from tests.fuzzing import budget
from tests.unit.certgen import issue, tlv

pytestmark = pytest.mark.unit

ip = ipaddress.ip_address
net = ipaddress.ip_network

# Self-signed P-256 certificates made once with `openssl req -x509 -newkey ec ... -addext
# subjectAltName=...` (keys thrown away). Only their subjectAltNames matter here.
# CN=spoke1, subjectAltName IP:192.0.2.11, DNS:spoke1
CERT_SPOKE1 = base64.b64decode(
    "MIIBkTCCATigAwIBAgIUN2o12pNb5APfeCmqk48N/T+ziQ4wCgYIKoZIzj0EAwIwETEPMA0GA1UE"
    "AwwGc3Bva2UxMCAXDTI2MTEyODAyNDc1MloYDzIxMjYxMTA0MDI0NzUyWjARMQ8wDQYDVQQDDAZz"
    "cG9rZTEwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAATtoxz+nh3/qXOS9Vi8HXPsOVpKyWz42bcz"
    "B3VgJQItB3jZo46uQztosiDTlifVRuOUBVl9fCNHeLU5muM4mYQDo2wwajAdBgNVHQ4EFgQUsmBx"
    "jOzbx5ub/axpSMQz/3nQ+3wwHwYDVR0jBBgwFoAUsmBxjOzbx5ub/axpSMQz/3nQ+3wwDwYDVR0T"
    "AQH/BAUwAwEB/zAXBgNVHREEEDAOhwTAAAILggZzcG9rZTEwCgYIKoZIzj0EAwIDRwAwRAIgELeC"
    "vwhKj+1cxRhZni36KmZql+HQZFAa3Mh0/He2n5ECIEGSSVAO0CrZRqn1U1TJm54xjpFn8wD6RuwZ"
    "KMXRnI8Z"
)
# CN=spoke2, subjectAltName DNS:spoke2 only
CERT_SPOKE2_DNS_ONLY = base64.b64decode(
    "MIIBjDCCATKgAwIBAgIUfiNF3CbbO++7b7/pHZzBwUJ11YEwCgYIKoZIzj0EAwIwETEPMA0GA1UE"
    "AwwGc3Bva2UyMCAXDTI2MTEyODAyNDc1MloYDzIxMjYxMTA0MDI0NzUyWjARMQ8wDQYDVQQDDAZz"
    "cG9rZTIwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAARm0RhgtFkG2SxR5Y3v1s3gi1sqA5z7s4hf"
    "fnGBsrxzXNpHW8c+l6yVOiJY2/SpHJ6cwrLwZXlBHkjOxkvjLvNPo2YwZDAdBgNVHQ4EFgQUej0x"
    "JWbnQ7ETV+5F236i3CBDuPowHwYDVR0jBBgwFoAUej0xJWbnQ7ETV+5F236i3CBDuPowDwYDVR0T"
    "AQH/BAUwAwEB/zARBgNVHREECjAIggZzcG9rZTIwCgYIKoZIzj0EAwIDSAAwRQIhAL5vHsP3So1T"
    "5xB++0Lf+ekjW8c80IJ4cetJPnxjQJVfAiBhMJzBMNpyfhQmurQLseZEUs4K04G7z71Yx8t0V+Yj"
    "pA=="
)
# CN=spoke3, subjectAltName IP:192.0.2.13, IP:2001:db8:0:2::13
CERT_SPOKE3_V4_V6 = base64.b64decode(
    "MIIBnTCCAUKgAwIBAgIUXS+3JEAI5NL6x6T5gSvdJFGF3j0wCgYIKoZIzj0EAwIwETEPMA0GA1UE"
    "AwwGc3Bva2UzMCAXDTI2MTEyODAyNDc1MloYDzIxMjYxMTA0MDI0NzUyWjARMQ8wDQYDVQQDDAZz"
    "cG9rZTMwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAARB7WXBsxxEk0K93XlwFsYRJPqSMXWyXtjU"
    "9CzS2lpAfaASlLugkvadWbXaG8MG+fpTPLQm8QQQJkWP1yF7Ijrmo3YwdDAdBgNVHQ4EFgQU0wXD"
    "/hOrjT97/PpW2qpLMTpdQqcwHwYDVR0jBBgwFoAU0wXD/hOrjT97/PpW2qpLMTpdQqcwDwYDVR0T"
    "AQH/BAUwAwEB/zAhBgNVHREEGjAYhwTAAAINhxAgAQ24AAAAAgAAAAAAAAATMAoGCCqGSM49BAMC"
    "A0kAMEYCIQDB5qAGGGu3RGNlmbY8QOgsgKJ+nuK2ciT4LKt12j+SXAIhAL47v8AQGVfK68GlxM9e"
    "C2y3DjGl3h8mYgcFi7Dbk0KV"
)
# CN=nosan, no subjectAltName extension (other v3 extensions only)
CERT_NO_SAN = base64.b64decode(
    "MIIBdzCCAR2gAwIBAgIUJQdMiXr15TwMM67ad1v1uCNpseswCgYIKoZIzj0EAwIwEDEOMAwGA1UE"
    "AwwFbm9zYW4wIBcNMjYxMTI4MDI0NzUyWhgPMjEyNjExMDQwMjQ3NTJaMBAxDjAMBgNVBAMMBW5v"
    "c2FuMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEq9u0f6bnU/hoDmqco9BVkF9MjU+04Worj9kT"
    "67MtQyb+llZdDbbjspPssnPECaqeZ/CtcfRraaAsrxwPObAiGKNTMFEwHQYDVR0OBBYEFBU/TSlR"
    "YM2ea6bo9tRcNMf0mX+OMB8GA1UdIwQYMBaAFBU/TSlRYM2ea6bo9tRcNMf0mX+OMA8GA1UdEwEB"
    "/wQFMAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIgYq6uPMG97pAHNz8g2eHwWqH8AbIQCUb5A8/H7Pb6"
    "ZAYCIQDysxJG8SJMK3E17cDhRUG7NaATvBxIwHL1pa4qjz3Zpg=="
)

HUB_NBMA = "198.51.100.1"
SPOKE1_NBMA = "198.51.100.11"
SPOKE1_ADDR = "192.0.2.11"
SUBNET = net("192.0.2.0/24")


# A CHILD_SA exactly as charon lists the one protecting hub <-> spoke1 GRE.
GOOD_SA = child(ip(SPOKE1_NBMA), local=ip(HUB_NBMA), ike_uniqueid=3, child_uniqueid=5)
CERT_SA = dataclasses.replace(
    GOOD_SA,
    remote_id="CN=spoke1",
    remote_auth="pubkey",
    remote_certs=(CERT_SPOKE1,),
    ike_name="dmvpn",
    conn_remote_id="CN=*",
)


def sa(**changes: object) -> ChildSa:
    return dataclasses.replace(GOOD_SA, **changes)  # type: ignore[arg-type]


def policy(mode: PolicyMode, **kwargs: object) -> Policy:
    return Policy(mode, SUBNET, **kwargs)  # type: ignore[arg-type]


ALL_POLICIES = (
    policy(PolicyMode.CERTIFICATE),
    policy(
        PolicyMode.PSK_MAP,
        psk_map={
            SPOKE1_NBMA: frozenset({net("192.0.2.11/32")}),
            "CN=spoke1": frozenset({net("192.0.2.11/32")}),
        },
        psk_own_key=frozenset({"CN=spoke1"}),
    ),
    policy(PolicyMode.ANY_AUTHENTICATED),
)


# --- protects_gre ------------------------------------------------------------------


def test_protecting_sa_is_recognised() -> None:
    assert protects_gre(GOOD_SA, ip(HUB_NBMA), ip(SPOKE1_NBMA))
    assert gre_protection_problem(GOOD_SA, ip(HUB_NBMA), ip(SPOKE1_NBMA)) is None


def test_numeric_gre_protocol_is_the_same_selector() -> None:
    # charon prints [47] when the host has no /etc/protocols entry for GRE.
    numeric = sa(local_ts=(f"{HUB_NBMA}/32[47]",), remote_ts=(f"{SPOKE1_NBMA}/32[47]",))
    assert protects_gre(numeric, ip(HUB_NBMA), ip(SPOKE1_NBMA))


def test_ipv6_host_selectors_need_128() -> None:
    local, remote = ip("2001:db8:ffff::1"), ip("2001:db8:ffff::11")
    good = sa(
        local_host=local,
        remote_host=remote,
        local_ts=("2001:db8:ffff::1/128[gre]",),
        remote_ts=("2001:db8:ffff:0::11/128[gre]",),
    )
    assert protects_gre(good, local, remote)
    wide = dataclasses.replace(good, remote_ts=("2001:db8:ffff::11/64[gre]",))
    assert not protects_gre(wide, local, remote)
    v4_prefix = dataclasses.replace(good, remote_ts=("2001:db8:ffff::11/32[gre]",))
    assert not protects_gre(v4_prefix, local, remote)


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"state": "CREATED"}, "state 'CREATED'"),
        ({"state": "REKEYED"}, "state 'REKEYED'"),
        ({"state": "INSTALLING"}, "state 'INSTALLING'"),
        ({"mode": "TUNNEL"}, "mode 'TUNNEL'"),
        ({"protocol": "AH"}, "protocol 'AH'"),
        (
            {"local_host": ip(SPOKE1_NBMA), "remote_host": ip(HUB_NBMA)},
            "hosts swapped 198.51.100.11<->198.51.100.1",
        ),
        ({"remote_host": ip("198.51.100.12")}, "between 198.51.100.1<->198.51.100.12"),
        ({"remote_ts": ()}, "no remote_ts"),
        ({"local_ts": ()}, "no local_ts"),
        ({"remote_ts": (f"{SPOKE1_NBMA}/32",)}, "remote_ts '198.51.100.11/32' is not"),
        ({"remote_ts": (f"{SPOKE1_NBMA}/32[gre/1234]",)}, "[gre/1234]"),
        ({"remote_ts": (f"{SPOKE1_NBMA}/32[gre/OPAQUE]",)}, "[gre/OPAQUE]"),
        ({"remote_ts": (f"{SPOKE1_NBMA}/32[tcp]",)}, "[tcp]"),
        ({"remote_ts": ("198.51.100.0/24[gre]",)}, "198.51.100.0/24[gre]"),
        ({"remote_ts": ("0.0.0.0/0[gre]",)}, "0.0.0.0/0[gre]"),
        ({"remote_ts": ("dynamic[gre]",)}, "dynamic[gre]"),
        ({"remote_ts": ("198.51.100.11..198.51.100.12[gre]",)}, ".."),
        ({"remote_ts": (f"{SPOKE1_NBMA}/032[gre]",)}, "/032"),
        ({"remote_ts": ("198.51.100.12/32[gre]",)}, "198.51.100.12/32[gre]"),
        ({"local_ts": (f"{SPOKE1_NBMA}/32[gre]",)}, "local_ts '198.51.100.11/32[gre]' is not"),
        (
            {"remote_ts": (f"{SPOKE1_NBMA}/32[gre]", "203.0.113.0/24")},
            "remote_ts '203.0.113.0/24' is not 198.51.100.11/32[gre]",
        ),
    ],
)
def test_sa_that_does_not_protect_gre(changes: dict[str, object], problem: str) -> None:
    bad = sa(**changes)
    assert not protects_gre(bad, ip(HUB_NBMA), ip(SPOKE1_NBMA))
    found = gre_protection_problem(bad, ip(HUB_NBMA), ip(SPOKE1_NBMA))
    assert found is not None
    assert problem in found


@pytest.mark.parametrize(
    ("changes", "garbled"),
    [
        ({}, False),  # reads as GRE: nothing garbled
        ({"remote_ts": (f"{SPOKE1_NBMA}/32[ip]",)}, True),
        ({"local_ts": (f"{HUB_NBMA}/32[# Updated from http://www.iana.org/]",)}, True),
        ({"remote_ts": (f"{SPOKE1_NBMA}/32",)}, False),  # no protocol part: not a host's
        ({"remote_ts": ("198.51.100.0/24[ip]",)}, False),  # wider than the host
        ({"remote_ts": ("198.51.100.12/32[ip]",)}, False),  # another host
        ({"remote_ts": ()}, False),
        ({"remote_ts": (f"{SPOKE1_NBMA}/32[ip]",), "state": "REKEYED"}, False),
        ({"remote_ts": (f"{SPOKE1_NBMA}/32[ip]",), "mode": "TUNNEL"}, False),
        ({"remote_ts": (f"{SPOKE1_NBMA}/32[ip]",), "protocol": "AH"}, False),
    ],
)
def test_a_garbled_reading_is_a_host_to_host_sa_not_read_as_gre(
    changes: dict[str, object], garbled: bool
) -> None:
    assert reads_garbled(sa(**changes)) is garbled


def test_all_problems_of_one_sa_are_named() -> None:
    found = gre_protection_problem(
        sa(state="CREATED", mode="TUNNEL", protocol="AH"), ip(HUB_NBMA), ip(SPOKE1_NBMA)
    )
    assert found == "state 'CREATED', mode 'TUNNEL', protocol 'AH'"


# --- event fields and the claimed address ------------------------------------------


@pytest.mark.parametrize("pol", ALL_POLICIES, ids=lambda p: p.mode.value)
@pytest.mark.parametrize("missing", ["remote_addr", "local_nbma", "remote_nbma"])
def test_missing_field_denies(pol: Policy, missing: str) -> None:
    decision = authorize(event(**{missing: None}), [CERT_SA], pol)  # type: ignore[arg-type]
    assert not decision.accept
    assert f"lacks {missing}" in decision.reason
    assert "event 7 on gre1" in decision.reason


def test_all_missing_fields_are_listed() -> None:
    decision = authorize(event(remote_addr=None, remote_nbma=None), [GOOD_SA], ALL_POLICIES[2])
    assert decision.reason.startswith(
        "deny ? via ?: event 7 on gre1 lacks remote_addr, remote_nbma"
    )


@pytest.mark.parametrize("claimed", ["10.9.9.9", "192.0.3.11", "2001:db8::11"])
def test_certificate_claim_outside_tunnel_subnet_denies(claimed: str) -> None:
    pol = next(p for p in ALL_POLICIES if p.mode is PolicyMode.CERTIFICATE)
    decision = authorize(event(remote_addr=claimed), [CERT_SA], pol)
    assert decision == Decision(
        False,
        f"deny {claimed} via 198.51.100.11: policy certificate: certificate of IKE peer "
        f"'CN=spoke1' (CHILD_SA #5 (IKE_SA #3)) from charon may claim only 192.0.2.11, not "
        f"{claimed}",
        peer_identity="CN=spoke1",
    )


# CN=spoke4 from a lab CA: subjectAltName IP 192.0.2.14 (tunnel) and 198.51.100.14 (NBMA);
# RFC 3779 address blocks 203.0.113.48/28, 203.0.113.100-203.0.113.103 and 2001:db8:14::/48.
CERT_SPOKE4_BLOCKS = base64.b64decode(
    "MIIBxjCCAWugAwIBAgIBCTAKBggqhkjOPQQDAjAxMRUwEwYDVQQKDAxmcnJkbXZwbiBsYWIxGDAW"
    "BgNVBAMMD2ZycmRtdnBuIGxhYiBDQTAgFw0yNjExMjgwNTAxMTlaGA8yMTI2MTEwNDA1MDExOVow"
    "ETEPMA0GA1UEAwwGc3Bva2U0MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEHt4R89KXVa3vs+aH"
    "rksbstMfIg/rrK/n8VnEKJ8r26cm895Y3P9zupcszMlbY0mQosGJ0rUaa/gQ/3s2f9FXmKOBkTCB"
    "jjAVBgNVHREEDjAMhwTAAAIOhwTGM2QOMDUGCCsGAQUFBwEHBCkwJzAUBAIAATAOAwUEywBxMAMF"
    "AssAcWQwDwQCAAIwCQMHACABDbgAFDAdBgNVHQ4EFgQUTbiu9Aql1FbXtcFnMzI+dXknf4gwHwYD"
    "VR0jBBgwFoAUgzDQnGlUvSUNbR6XRdjONuBlKdowCgYIKoZIzj0EAwIDSQAwRgIhAKqjPoxvvjzw"
    "TijSLyWiRPLTP/VfRwos+Gys5uP8jCH8AiEA9MAk21thaIfB0JB4eootfTJfugmwWF15gMLSQ03b"
    "Op4="
)
SPOKE4_SA = dataclasses.replace(
    CERT_SA,
    remote_host=ip("198.51.100.14"),
    remote_ts=("198.51.100.14/32[gre]",),
    remote_id="CN=spoke4",
    remote_certs=(CERT_SPOKE4_BLOCKS,),
)


@pytest.mark.parametrize(
    ("claimed", "accept", "why"),
    [
        ("192.0.2.14", True, "has IP subjectAltName 192.0.2.14"),
        ("203.0.113.49", True, "delegates address block 203.0.113.48/28 (RFC 3779)"),
        ("203.0.113.103", True, "delegates address block 203.0.113.100/30 (RFC 3779)"),
        ("2001:db8:14::7", True, "delegates address block 2001:db8:14::/48"),
        # The NBMA address is a SAN (for the IKE identity) but outside the tunnel subnet.
        ("198.51.100.14", False, "may claim only 192.0.2.14, 203.0.113.48/28, 203.0.113.100/30"),
        ("203.0.113.104", False, "not 203.0.113.104"),
        ("192.0.2.12", False, "not 192.0.2.12"),
    ],
)
def test_certificate_address_blocks(claimed: str, accept: bool, why: str) -> None:
    claim = event(remote_addr=claimed, remote_nbma="198.51.100.14")
    decision = authorize(claim, [SPOKE4_SA], CERT_POLICY)
    assert decision.accept is accept
    assert why in decision.reason


def test_several_certificates_for_the_identity_allow_only_what_all_allow() -> None:
    # charon may hold two certificates for one identity (a renewal, or a CA that issued
    # the identity twice): either could have authenticated the peer, so each may veto.
    old = issue("CN=spoke4", ips=["192.0.2.14"], blocks=["203.0.113.48/28"])
    new = issue("CN=spoke4", ips=["192.0.2.14"], blocks=["203.0.113.48/29"], serial=3)
    both = dataclasses.replace(SPOKE4_SA, remote_certs=(old, new))
    inside = authorize(
        event(remote_addr="203.0.113.50", remote_nbma="198.51.100.14"), [both], CERT_POLICY
    )
    assert inside == Decision(
        True,
        "accept 203.0.113.50 via 198.51.100.14: all 2 certificates charon holds for IKE peer "
        "'CN=spoke4' (CHILD_SA #5 (IKE_SA #3)) allow it",
        peer_identity="CN=spoke4",
    )
    claim = event(remote_addr="203.0.113.60", remote_nbma="198.51.100.14")
    assert authorize(claim, [dataclasses.replace(both, remote_certs=(old,))], CERT_POLICY).accept
    assert authorize(claim, [both], CERT_POLICY) == Decision(
        False,
        "deny 203.0.113.60 via 198.51.100.14: policy certificate: each certificate issued to "
        "the identity must allow the claim: certificate 2 of 2 charon holds for IKE peer "
        "'CN=spoke4' (CHILD_SA #5 (IKE_SA #3)) may claim only 192.0.2.14, 203.0.113.48/29, "
        "not 203.0.113.60",
        peer_identity="CN=spoke4",
    )


@pytest.mark.parametrize("pol", ALL_POLICIES, ids=lambda p: p.mode.value)
def test_claiming_our_own_tunnel_address_denies(pol: Policy) -> None:
    decision = authorize(event(local_addr=SPOKE1_ADDR), [CERT_SA], pol)
    assert not decision.accept
    assert "own tunnel address" in decision.reason


# --- GRE protection ------------------------------------------------------------------


@pytest.mark.parametrize("pol", ALL_POLICIES, ids=lambda p: p.mode.value)
def test_no_sa_at_all_denies(pol: Policy) -> None:
    decision = authorize(event(), [], pol)
    assert decision == Decision(
        False,
        "deny 192.0.2.11 via 198.51.100.11: no INSTALLED ESP transport CHILD_SA protects GRE "
        "198.51.100.1<->198.51.100.11; charon reported no CHILD_SA at all",
    )


@pytest.mark.parametrize("pol", ALL_POLICIES, ids=lambda p: p.mode.value)
@pytest.mark.parametrize(
    "changes",
    [
        {"mode": "TUNNEL"},
        {"state": "REKEYED"},
        {"state": "CREATED"},
        {"local_host": ip(SPOKE1_NBMA), "remote_host": ip(HUB_NBMA)},
        {"remote_ts": ("198.51.100.0/24[gre]",)},
        {"protocol": "AH"},
    ],
)
def test_sa_not_protecting_gre_denies_in_every_mode(
    pol: Policy, changes: dict[str, object]
) -> None:
    bad = dataclasses.replace(CERT_SA, **changes)  # type: ignore[arg-type]
    decision = authorize(event(remote_cert=CERT_SPOKE1), [bad], pol)
    assert not decision.accept
    assert not decision.weak
    assert decision.reason.startswith(
        "deny 192.0.2.11 via 198.51.100.11: no INSTALLED ESP transport CHILD_SA protects GRE "
        "198.51.100.1<->198.51.100.11; seen: CHILD_SA #5 (IKE_SA #3) "
    )


def test_wrong_nbma_denies_and_lists_what_was_seen() -> None:
    elsewhere = sa(
        remote_host=ip("198.51.100.66"),
        remote_ts=("198.51.100.66/32[gre]",),
        child_uniqueid=9,
        ike_uniqueid=8,
    )
    rekeyed = sa(state="REKEYED")
    swapped = sa(local_host=ip(SPOKE1_NBMA), remote_host=ip(HUB_NBMA), child_uniqueid=6)
    decision = authorize(event(), [elsewhere, rekeyed, swapped], ALL_POLICIES[2])
    assert decision.reason == (
        "deny 192.0.2.11 via 198.51.100.11: no INSTALLED ESP transport CHILD_SA protects GRE "
        "198.51.100.1<->198.51.100.11; seen: CHILD_SA #5 (IKE_SA #3) state 'REKEYED'; "
        "CHILD_SA #6 (IKE_SA #3) hosts swapped 198.51.100.11<->198.51.100.1; "
        "CHILD_SA #9 (IKE_SA #8) between 198.51.100.1<->198.51.100.66"
    )


def test_many_unrelated_sas_are_summarised() -> None:
    others = [
        sa(remote_host=ip(f"198.51.100.{100 + i}"), child_uniqueid=100 + i) for i in range(20)
    ]
    decision = authorize(event(), others, ALL_POLICIES[2])
    assert not decision.accept
    assert decision.reason.endswith("; and 12 more")
    assert decision.reason.count("CHILD_SA #") == 8


@pytest.mark.parametrize("pol", ALL_POLICIES, ids=lambda p: p.mode.value)
def test_duplicate_sas_accept_if_one_qualifies(pol: Policy) -> None:
    old = dataclasses.replace(CERT_SA, state="REKEYED", child_uniqueid=4)
    tunnel = dataclasses.replace(CERT_SA, mode="TUNNEL", ike_uniqueid=2, child_uniqueid=2)
    decision = authorize(event(), iter([old, tunnel, CERT_SA]), pol)
    assert decision.accept


# --- CERTIFICATE ---------------------------------------------------------------------

CERT_POLICY = policy(PolicyMode.CERTIFICATE)


def test_certificate_from_event_with_matching_ip_san_accepts() -> None:
    peer = dataclasses.replace(CERT_SA, remote_certs=())
    decision = authorize(event(remote_cert=CERT_SPOKE1), [peer], CERT_POLICY)
    assert decision == Decision(
        True,
        "accept 192.0.2.11 via 198.51.100.11: certificate of IKE peer 'CN=spoke1' "
        "(CHILD_SA #5 (IKE_SA #3)) from nhrpd has IP subjectAltName 192.0.2.11",
        peer_identity="CN=spoke1",
    )


def test_certificate_from_charon_is_used_when_event_has_none() -> None:
    decision = authorize(event(), [CERT_SA], CERT_POLICY)
    assert decision.accept
    assert not decision.weak


def test_event_certificate_takes_precedence() -> None:
    # charon holds spoke1's certificate; nhrpd names the one the peer presented.
    peer = dataclasses.replace(CERT_SA, remote_id="CN=spoke2")
    decision = authorize(event(remote_cert=CERT_SPOKE2_DNS_ONLY), [peer], CERT_POLICY)
    assert not decision.accept
    assert (
        "from nhrpd has no IP subjectAltName inside the tunnel subnet 192.0.2.0/24 and no "
        "address block (DNS spoke2)" in decision.reason
    )


def test_event_certificate_must_be_issued_to_the_identity_too() -> None:
    decision = authorize(
        event(remote_cert=CERT_SPOKE1),
        [dataclasses.replace(CERT_SA, remote_id="CN=spoke2")],
        CERT_POLICY,
    )
    assert decision.reason == (
        "deny 192.0.2.11 via 198.51.100.11: policy certificate: IKE peer 'CN=spoke2' "
        "(CHILD_SA #5 (IKE_SA #3)): the certificate from nhrpd has no subject DN or "
        "subjectAltName equal to its identity, so none provably belongs to it"
    )


def test_certificate_san_for_another_address_denies() -> None:
    decision = authorize(event(remote_addr="192.0.2.66"), [CERT_SA], CERT_POLICY)
    assert decision == Decision(
        False,
        "deny 192.0.2.66 via 198.51.100.11: policy certificate: certificate of IKE peer "
        "'CN=spoke1' (CHILD_SA #5 (IKE_SA #3)) from charon may claim only 192.0.2.11, not "
        "192.0.2.66",
        peer_identity="CN=spoke1",
    )


def test_certificate_with_only_dns_san_denies() -> None:
    peer = dataclasses.replace(CERT_SA, remote_id="CN=spoke2", remote_certs=(CERT_SPOKE2_DNS_ONLY,))
    decision = authorize(event(), [peer], CERT_POLICY)
    assert not decision.accept
    assert decision.peer_identity == "CN=spoke2"
    assert "'CN=spoke2'" in decision.reason
    assert "and no address block (DNS spoke2), so it may claim nothing" in decision.reason


def test_certificate_without_san_extension_denies() -> None:
    peer = dataclasses.replace(CERT_SA, remote_id="CN=nosan", remote_certs=(CERT_NO_SAN,))
    decision = authorize(event(), [peer], CERT_POLICY)
    assert not decision.accept
    assert "no subjectAltName extension" in decision.reason


@pytest.mark.parametrize(
    "garbage",
    [b"\x00", b"not a certificate", CERT_SPOKE1[:-1], CERT_SPOKE1 + b"\x00", b"\x30\x80\x00\x00"],
)
def test_malformed_certificate_denies_with_reason(garbage: bytes) -> None:
    decision = authorize(event(remote_cert=garbage), [CERT_SA], CERT_POLICY)
    assert not decision.accept
    assert "certificate of IKE peer 'CN=spoke1' (CHILD_SA #5 (IKE_SA #3)) from nhrpd" in (
        decision.reason
    )
    assert "is malformed (" in decision.reason


def test_missing_certificate_denies() -> None:
    peer = dataclasses.replace(CERT_SA, remote_certs=())
    decision = authorize(event(), [peer], CERT_POLICY)
    assert not decision.accept
    assert "no certificate known for IKE peer 'CN=spoke1'" in decision.reason


def test_certificate_policy_needs_pubkey_authentication() -> None:
    peer = dataclasses.replace(CERT_SA, remote_auth="psk")
    decision = authorize(event(remote_cert=CERT_SPOKE1), [peer], CERT_POLICY)
    assert not decision.accept
    assert "authenticated with 'psk', not a certificate" in decision.reason


def test_certificate_duplicate_sas_where_second_qualifies() -> None:
    other = dataclasses.replace(
        CERT_SA, ike_uniqueid=2, remote_id="CN=spoke2", remote_certs=(CERT_SPOKE2_DNS_ONLY,)
    )
    decision = authorize(event(), [other, CERT_SA], CERT_POLICY)
    assert decision.accept
    assert decision.peer_identity == "CN=spoke1"
    no_cert = dataclasses.replace(CERT_SA, remote_certs=())
    denied = authorize(event(), [other, no_cert], CERT_POLICY)
    assert not denied.accept
    assert "'CN=spoke2'" in denied.reason
    assert "no certificate known for IKE peer 'CN=spoke1'" in denied.reason


def test_certificate_ipv6_san() -> None:
    local, remote = ip("2001:db8:ffff::1"), ip("2001:db8:ffff::13")
    peer = dataclasses.replace(
        CERT_SA,
        local_host=local,
        remote_host=remote,
        local_ts=("2001:db8:ffff::1/128[gre]",),
        remote_ts=("2001:db8:ffff::13/128[gre]",),
        remote_id="CN=spoke3",
        remote_certs=(CERT_SPOKE3_V4_V6,),
    )
    v6 = Policy(PolicyMode.CERTIFICATE, net("2001:db8:0:2::/64"))
    claim = event(
        remote_addr="2001:db8:0:2::13",
        local_nbma=str(local),
        remote_nbma=str(remote),
        local_addr="2001:db8:0:2::1",
    )
    assert authorize(claim, [peer], v6).accept
    other = dataclasses.replace(claim, remote_addr=ip("2001:db8:0:2::14"))
    decision = authorize(other, [peer], v6)
    assert not decision.accept
    # 192.0.2.13 is a SAN too, but outside this policy's (IPv6) tunnel subnet.
    assert "may claim only 2001:db8:0:2::13, not 2001:db8:0:2::14" in decision.reason


def test_authorize_never_raises_on_mutated_certificates() -> None:
    # The SA carries no certificate, so only the (mutated) one from the event counts.
    peer = dataclasses.replace(CERT_SA, remote_certs=())
    san_ip = CERT_SPOKE1.index(bytes.fromhex("8704c000020b")) + 2
    for i in range(len(CERT_SPOKE1)):
        for cut in (CERT_SPOKE1[:i], CERT_SPOKE1[:i] + CERT_SPOKE1[i + 1 :]):
            assert not authorize(event(remote_cert=cut), [peer], CERT_POLICY).accept
        for flip in (0x00, 0x80, 0xFF ^ CERT_SPOKE1[i]):
            mutated = bytearray(CERT_SPOKE1)
            mutated[i] = flip
            decision = authorize(event(remote_cert=bytes(mutated)), [peer], CERT_POLICY)
            try:
                names = certificate_names(bytes(mutated))
            except DerError:
                expected = False
            else:
                cn = [(a.oid, a.value) for a in flat(names.subject)] == [("2.5.4.3", b"spoke1")]
                expected = cn and ip(SPOKE1_ADDR) in names.alt_names.ip_addresses
            assert decision.accept == expected
            assert decision.reason.startswith("accept " if expected else "deny ")
            if san_ip <= i < san_ip + 4 and mutated != CERT_SPOKE1:
                assert not decision.accept


@pytest.mark.fuzz
@budget(300)
@given(st.binary(max_size=600))
def test_authorize_never_raises_on_garbage_certificate(garbage: bytes) -> None:
    for sas in ([CERT_SA], [dataclasses.replace(CERT_SA, remote_certs=(garbage,))]):
        decision = authorize(event(remote_cert=garbage), sas, CERT_POLICY)
        assert isinstance(decision, Decision)
        if garbage:
            assert not decision.accept or subject_alt_names(garbage).ip_addresses


# --- PSK_MAP -------------------------------------------------------------------------

PSK_POLICY = policy(
    PolicyMode.PSK_MAP,
    psk_map={
        SPOKE1_NBMA: frozenset({net("192.0.2.11/32")}),
        "spoke-lan.example": frozenset({net("192.0.2.128/25"), net("192.0.2.64/30")}),
    },
    psk_own_key=frozenset({"spoke-lan.example"}),
)


def test_psk_map_identity_with_address_accepts() -> None:
    decision = authorize(event(), [GOOD_SA], PSK_POLICY)
    assert decision == Decision(
        True,
        "accept 192.0.2.11 via 198.51.100.11: IKE identity '198.51.100.11' "
        "(CHILD_SA #5 (IKE_SA #3)) may claim 192.0.2.11/32 per the PSK authorization map",
        peer_identity=SPOKE1_NBMA,
    )


def test_psk_map_network_membership() -> None:
    peer = sa(remote_id="spoke-lan.example")
    assert authorize(event(remote_addr="192.0.2.200"), [peer], PSK_POLICY).accept
    assert authorize(event(remote_addr="192.0.2.66"), [peer], PSK_POLICY).accept
    decision = authorize(event(remote_addr="192.0.2.68"), [peer], PSK_POLICY)
    assert decision.reason == (
        "deny 192.0.2.68 via 198.51.100.11: policy psk-map: IKE identity 'spoke-lan.example' "
        "(CHILD_SA #5 (IKE_SA #3)) may claim only 192.0.2.128/25, 192.0.2.64/30, "
        "not 192.0.2.68"
    )


def test_psk_map_address_of_another_peer_denies() -> None:
    decision = authorize(event(remote_addr="192.0.2.66"), [GOOD_SA], PSK_POLICY)
    assert not decision.accept
    assert decision.peer_identity == SPOKE1_NBMA
    assert "may claim only 192.0.2.11/32, not 192.0.2.66" in decision.reason


def test_psk_map_unknown_identity_denies() -> None:
    decision = authorize(event(), [sa(remote_id="spoke9.example")], PSK_POLICY)
    assert decision == Decision(
        False,
        "deny 192.0.2.11 via 198.51.100.11: policy psk-map: IKE identity 'spoke9.example' "
        "(CHILD_SA #5 (IKE_SA #3)) is not in the PSK authorization map, so it may claim nothing",
        peer_identity="spoke9.example",
    )


def test_psk_map_address_identity_must_be_the_peers_own() -> None:
    """With a group PSK, spoke1 (198.51.100.11) could present spoke2's address as its id."""
    spoofed = authorize(event(), [sa(remote_id="198.51.100.12")], LAN_POLICY)
    assert not spoofed.accept
    assert "an address other than the peer's own (198.51.100.11)" in spoofed.reason


def test_psk_map_identity_is_quoted_in_reasons() -> None:
    decision = authorize(event(), [sa(remote_id="evil\nline")], PSK_POLICY)
    assert "\n" not in decision.reason
    assert "'evil\\nline'" in decision.reason


def test_psk_map_duplicate_sas_where_one_identity_qualifies() -> None:
    stranger = sa(remote_id="stranger", ike_uniqueid=1)
    assert authorize(event(), [stranger, GOOD_SA], PSK_POLICY).accept
    assert not authorize(event(), [stranger], PSK_POLICY).accept


def test_psk_map_empty_map_denies() -> None:
    decision = authorize(event(), [GOOD_SA], policy(PolicyMode.PSK_MAP))
    assert not decision.accept
    assert "not in the PSK authorization map" in decision.reason


# --- ANY_AUTHENTICATED ---------------------------------------------------------------

ANY_POLICY = policy(PolicyMode.ANY_AUTHENTICATED)


def test_any_authenticated_accepts_weakly() -> None:
    decision = authorize(event(remote_addr="192.0.2.66"), [GOOD_SA], ANY_POLICY)
    assert decision.accept
    assert decision.weak
    assert decision.peer_identity == SPOKE1_NBMA
    assert decision.reason.startswith("accept 192.0.2.66 via 198.51.100.11: WEAK")
    assert "any authenticated peer may claim any address" in decision.reason


def test_any_authenticated_still_needs_an_sa_but_not_the_subnet() -> None:
    no_sa = authorize(event(), [sa(state="CREATED")], ANY_POLICY)
    assert not no_sa.accept
    assert not no_sa.weak
    lan = authorize(event(remote_addr="203.0.113.5"), [GOOD_SA], ANY_POLICY)
    assert lan.accept
    assert lan.weak


LAN_POLICY = policy(
    PolicyMode.PSK_MAP,
    psk_map={
        SPOKE1_NBMA: frozenset({net("192.0.2.11/32"), net("203.0.113.16/28")}),
        "198.51.100.12": frozenset({net("192.0.2.12/32"), net("203.0.113.32/28")}),
    },
)


def test_psk_map_grants_routed_prefixes_behind_a_peer() -> None:
    """A shortcut's resolution binds an address of the peer's LAN, outside the tunnel subnet."""
    mine = authorize(event(remote_addr="203.0.113.17"), [GOOD_SA], LAN_POLICY)
    assert mine.accept
    assert not mine.weak
    theirs = authorize(event(remote_addr="203.0.113.33"), [GOOD_SA], LAN_POLICY)
    assert not theirs.accept
    assert "198.51.100.11" in theirs.reason


@pytest.mark.parametrize("pol", ALL_POLICIES[:2], ids=lambda p: p.mode.value)
def test_strong_modes_are_not_weak(pol: Policy) -> None:
    decision = authorize(event(), [CERT_SA, GOOD_SA], pol)
    assert decision.accept
    assert not decision.weak


# --- Policy --------------------------------------------------------------------------


def test_policy_freezes_its_map() -> None:
    source = {"a": {net("192.0.2.0/28")}}
    pol = Policy(PolicyMode.PSK_MAP, SUBNET, source)  # type: ignore[arg-type]
    source["a"].add(net("192.0.2.16/28"))
    source["b"] = {net("192.0.2.32/28")}
    assert dict(pol.psk_map) == {"a": frozenset({net("192.0.2.0/28")})}
    assert isinstance(pol.psk_map, MappingProxyType)
    assert len(Policy(PolicyMode.CERTIFICATE, SUBNET).psk_map) == 0


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("certificate", SUBNET, {}), TypeError),
        ((PolicyMode.PSK_MAP, "192.0.2.0/24", {}), TypeError),
        ((PolicyMode.PSK_MAP, SUBNET, {"": frozenset()}), ValueError),
        ((PolicyMode.PSK_MAP, SUBNET, {"a": frozenset({"192.0.2.0/28"})}), TypeError),
    ],
)
def test_policy_rejects_bad_configuration(args: tuple[object, ...], error: type[Exception]) -> None:
    with pytest.raises(error):
        Policy(*args)  # type: ignore[arg-type]


# --- the DER reader ------------------------------------------------------------------


def test_san_of_fixture_certificates() -> None:
    assert subject_alt_names(CERT_SPOKE1) == SubjectAltNames(True, (ip("192.0.2.11"),), ("spoke1",))
    assert subject_alt_names(CERT_SPOKE2_DNS_ONLY) == SubjectAltNames(True, (), ("spoke2",))
    assert subject_alt_names(CERT_SPOKE3_V4_V6).ip_addresses == (
        ip("192.0.2.13"),
        ip("2001:db8:0:2::13"),
    )
    assert subject_alt_names(CERT_NO_SAN) == SubjectAltNames(False)
    assert subject_alt_names(CERT_SPOKE1).describe() == "IP 192.0.2.11, DNS spoke1"


def seq(*parts: bytes) -> bytes:
    return tlv(0x30, b"".join(parts))


SAN_OID = tlv(0x06, bytes.fromhex("551d11"))


def extension(oid: bytes, value: bytes, critical: bytes = b"") -> bytes:
    return seq(oid, critical, tlv(0x04, value))


def certificate(*extensions: bytes, version: bytes = b"\x02") -> bytes:
    names = seq(tlv(0x31, seq(tlv(0x06, b"\x55\x04\x03"), tlv(0x0C, b"x"))))
    tbs = [
        tlv(0xA0, tlv(0x02, version)),
        tlv(0x02, b"\x01"),
        seq(tlv(0x06, b"\x2a\x86\x48\xce\x3d\x04\x03\x02")),
        names,
        seq(tlv(0x17, b"260101000000Z"), tlv(0x17, b"360101000000Z")),
        names,
        seq(seq(tlv(0x06, b"\x2a")), tlv(0x03, b"\x00\x01")),
    ]
    if extensions:
        tbs.append(tlv(0xA3, seq(*extensions)))
    return seq(seq(*tbs), seq(tlv(0x06, b"\x2a")), tlv(0x03, b"\x00\x01"))


def test_synthetic_certificate_parses() -> None:
    der = certificate(
        extension(tlv(0x06, b"\x55\x1d\x13"), seq(), critical=tlv(0x01, b"\xff")),
        extension(
            SAN_OID,
            seq(
                tlv(0x87, bytes(16)),
                tlv(0x86, b"https://x"),
                tlv(0x87, bytes((192, 0, 2, 1))),
                tlv(0x82, b"a" * 200),  # long-form length
            ),
        ),
    )
    assert subject_alt_names(der) == SubjectAltNames(
        True, (ip("::"), ip("192.0.2.1")), ("a" * 200,), other_names=1
    )


@pytest.mark.parametrize(
    ("der", "message"),
    [
        (b"", "empty"),
        (b"\x30", "truncated"),
        (b"\x30\x80" + CERT_SPOKE1[4:], "indefinite"),
        (b"\x30\x82\x00\x05" + bytes(5), "non-minimal"),
        (b"\x30\x81\x05" + bytes(5), "non-minimal"),
        (b"\x30\x85\x00\x00\x00\x00\x05", "length-of-length"),
        (b"\x3f\x01\x00", "multi-byte"),
        (CERT_SPOKE1 + b"\x00", "trailing"),
        (CERT_SPOKE1[:-1], "overruns"),
        (bytes(70 * 1024), "exceeds"),
        (seq(seq(), seq()), "Certificate is not"),
        (certificate(extension(SAN_OID, seq(tlv(0x87, b"\xc0\x00\x02")))), "3 bytes"),
        (certificate(extension(SAN_OID, seq())), "empty GeneralNames"),
        (certificate(extension(SAN_OID, seq(tlv(0x04, b"x")))), "no GeneralName"),
        (certificate(extension(SAN_OID, seq(tlv(0x82, b"\xc3\xa9")))), "not printable"),
        (certificate(extension(SAN_OID, seq(tlv(0x82, b"a\nb")))), "not printable"),
        (certificate(extension(SAN_OID, seq(tlv(0x82, b"")))), "empty"),
        (certificate(extension(SAN_OID, seq(tlv(0x82, b"a"))) + b"\x00"), "truncated"),
        (certificate(extension(SAN_OID, seq(tlv(0x82, b"a")) + b"\x00")), "trailing"),
        (
            certificate(
                extension(SAN_OID, seq(tlv(0x82, b"a"))), extension(SAN_OID, seq(tlv(0x82, b"b")))
            ),
            "twice",
        ),
        (
            certificate(extension(SAN_OID, seq(tlv(0x82, b"a")), critical=tlv(0x01, b"\x00"))),
            "critical",
        ),
        (certificate(seq(SAN_OID)), "Extension is not"),
        (certificate(tlv(0x04, b"")), "no Extension"),
        (certificate(extension(SAN_OID, seq(tlv(0x82, b"a"))), version=b"\x00"), "not v3"),
        (seq(seq(tlv(0x02, b"\x01")), seq(), tlv(0x03, b"\x00")), "TBSCertificate lacks"),
    ],
)
def test_malformed_der_raises_value_error(der: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        subject_alt_names(der)


BLOCKS_OID = tlv(0x06, bytes.fromhex("2b06010505070107"))


def blocks_cert(*families: bytes) -> bytes:
    return certificate(extension(BLOCKS_OID, seq(*families)))


def family(afi: bytes, choice: bytes) -> bytes:
    return seq(tlv(0x04, afi), choice)


def test_address_blocks_prefix_range_and_inherit() -> None:
    v4 = family(
        b"\x00\x01",
        seq(
            tlv(0x03, b"\x04\xcb\x00\x71\x30"),  # 203.0.113.48/28
            seq(tlv(0x03, b"\x00\x0a"), tlv(0x03, b"\x00\x0a\x00\x00\x01")),  # 10.0.0.0-10.0.0.1
        ),
    )
    inherit = family(b"\x00\x02", tlv(0x05, b""))
    names = subject_alt_names(blocks_cert(v4, inherit))
    assert not names.present
    assert [str(n) for n in names.address_blocks] == ["203.0.113.48/28", "10.0.0.0/31"]
    assert names.describe() == (
        "no subjectAltName extension, address block 203.0.113.48/28, address block 10.0.0.0/31"
    )


@pytest.mark.parametrize(
    ("families", "error"),
    [
        ((family(b"\x00\x03", seq()),), "unknown address family 0003"),
        ((family(b"\x00\x01", seq(tlv(0x03, b"\x04\xcb\x00\x71\x31"))),), "unused bits"),
        ((family(b"\x00\x01", seq(tlv(0x03, b"\x00" + b"\x01" * 5))),), "oversized"),
        ((family(b"\x00\x01", seq(tlv(0x03, b""))),), "empty BIT STRING"),
        ((family(b"\x00\x01", seq(tlv(0x02, b"\x01"))),), "no IPAddressOrRange"),
        ((family(b"\x00\x01", tlv(0x02, b"\x01")),), "neither inherit nor a list"),
        (
            (family(b"\x00\x01", seq(seq(tlv(0x03, b"\x00\x0b"), tlv(0x03, b"\x00\x0a")))),),
            "min above max",
        ),
        ((seq(tlv(0x04, b"\x00\x01")),), "not {addressFamily, ipAddressChoice}"),
    ],
)
def test_malformed_address_blocks_raise(families: tuple[bytes, ...], error: str) -> None:
    with pytest.raises(ValueError, match=re.escape(error)):
        subject_alt_names(blocks_cert(*families))
