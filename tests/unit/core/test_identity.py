"""IKE identities read, printed and matched as charon does (frrdmvpn/core/identity.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from frrdmvpn.codec.x509 import IA5_STRING, PRINTABLE_STRING, UTF8_STRING, certificate_names
from frrdmvpn.core.identity import (
    PRINT_LIMIT,
    Identity,
    Kind,
    carries,
    certificate_identity,
    matches,
    parse,
    print_dn,
    printed,
)
from tests.fuzzing import budget
from tests.unit.certgen import issue

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("O=Corp, CN=spoke2", Kind.DN),
        ("/O=Corp/CN=spoke2", Kind.DN),
        ("cn=x", Kind.DN),
        ("role=x", Kind.KEY_ID),  # charon knows no attribute "role": atodn fails
        ("CN", Kind.FQDN),
        ("CN=x, OU", Kind.KEY_ID),  # an attribute name without "="
        ("TCGID=x", Kind.DN),
        ("spoke2.corp.example", Kind.FQDN),
        ("@spoke2.corp.example", Kind.FQDN),
        ("@#0a0b", Kind.KEY_ID),
        ("@@user@corp.example", Kind.TYPED),
        ("user@corp.example", Kind.RFC822),
        ("192.0.2.1", Kind.IPV4),
        ("192.0.2.01", Kind.FQDN),  # inet_pton refuses leading zeros
        ("192.0.2.0/24", Kind.IPV4_SUBNET),
        ("192.0.2.0/ 24", Kind.IPV4_SUBNET),  # atoi()
        ("192.0.2.0/33", Kind.FQDN),
        ("192.0.2.1-192.0.2.9", Kind.IPV4_RANGE),
        ("192.0.2.9-192.0.2.1", Kind.FQDN),
        ("2001:db8::1", Kind.IPV6),
        ("2001:db8::/32", Kind.IPV6_SUBNET),
        ("fe80::1%eth0", Kind.KEY_ID),
        ("ab:cd", Kind.KEY_ID),
        ("fqdn:spoke2", Kind.TYPED),
        ("{2}:spoke2", Kind.TYPED),
        ("", Kind.ANY),
        ("%any", Kind.ANY),
        ("*", Kind.ANY),
        ("0.0.0.0", Kind.ANY),
        ("::", Kind.ANY),
    ],
)
def test_charon_reads_the_type_from_the_text(text: str, kind: Kind) -> None:
    assert parse(text).kind is kind


def test_dn_values_are_read_as_atodn_reads_them() -> None:
    dn = parse("  O = Corp ,CN=spoke_2 , E=a@b")
    assert dn.rdns is not None
    assert [(a.oid, a.tag, a.value) for a in dn.rdns] == [
        ("2.5.4.10", PRINTABLE_STRING, b"Corp"),
        ("2.5.4.3", UTF8_STRING, b"spoke_2"),  # "_" is no PrintableString character
        ("1.2.840.113549.1.9.1", IA5_STRING, b"a@b"),
    ]
    assert printed(dn) == "O=Corp, CN=spoke_2, E=a@b"
    assert parse("TCGID=x").rdns is None  # a DN with an attribute frrdmvpn does not compare
    assert parse(", ".join(["CN=x"] * 20)).kind is Kind.DN
    assert parse(", ".join(["CN=x"] * 21)).kind is Kind.KEY_ID  # charon's RDN_MAX


@pytest.mark.parametrize(
    ("identity", "pattern", "match"),
    [
        ("O=Corp, CN=spoke2", "O=Corp, CN=*", True),
        ("O=corp, CN=spoke2", "O=Corp, CN=*", True),  # PrintableString: case ignored
        ("O=Corp, CN=spoke2", "CN=*, O=Corp", False),  # strict: order matters
        ("O=Corp, CN=spoke2, OU=x", "O=Corp, CN=*", False),
        ("O=Corp", "O=Corp, CN=*", False),
        ("spoke2.lab.example", "*.lab.example", True),
        ("SPOKE2.LAB.example", "*.lab.example", True),
        ("lab.example", "*.lab.example", False),
        (".lab.example", "*.lab.example", False),
        ("spoke2.lab.example", "spoke2.lab.example", True),
        ("spoke2.lab.example", "O=Corp, CN=*", False),
        ("user@lab.example", "*@lab.example", True),
        ("user@lab.example", "*.lab.example", False),
        ("198.51.100.12", "198.51.100.0/24", True),
        ("198.51.100.12", "198.51.100.10-198.51.100.12", True),
        ("198.51.101.12", "198.51.100.0/24", False),
        ("2001:db8::1", "198.51.100.0/24", False),
        ("anything", "%any", True),
    ],
)
def test_matching_against_the_remote_identity(identity: str, pattern: str, match: bool) -> None:
    assert matches(parse(identity), parse(pattern)) is match


CERT = certificate_names(
    issue(
        "O=Corp, CN=spoke2",
        ips=["192.0.2.12"],
        dns=["spoke2.lab.example"],
        emails=["ops@lab.example"],
        dirs=["O=Corp, OU=routers, CN=spoke2"],
    )
)


@pytest.mark.parametrize(
    ("identity", "carried"),
    [
        ("O=Corp, CN=spoke2", True),
        ("O=Corp, OU=routers, CN=spoke2", True),  # a directoryName
        ("O=Corp, CN=SPOKE2", False),  # exactly: no case folding in a DN
        ("CN=spoke2", False),
        ("spoke2.lab.example", True),
        ("Spoke2.Lab.Example", True),  # DNS names ignore case (charon: strcasecmp)
        ("spoke3.lab.example", False),
        ("ops@lab.example", True),
        ("192.0.2.12", True),
        ("192.0.2.13", False),
        ("2001:db8::12", False),
    ],
)
def test_a_certificate_carries_exactly_its_names(identity: str, carried: bool) -> None:
    assert carries(CERT, parse(identity)) is carried


def test_an_identity_too_long_to_be_printed_whole_is_refused() -> None:
    name = "a" * (PRINT_LIMIT - len(".lab.example")) + ".lab.example"
    assert certificate_identity(name, "*.lab.example", "dmvpn") == (
        f"its identity is {PRINT_LIMIT} characters long: charon may have cut it"
    )
    assert isinstance(certificate_identity(name[1:], "*.lab.example", "dmvpn"), Identity)


_NAMES = st.sampled_from(["CN", "O", "OU", "C", "L", "ST", "DC", "E", "UID", "serialNumber"])
_VALUES = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=",*?/"), max_size=10
)


@pytest.mark.fuzz
@budget(300)
@given(st.lists(st.tuples(_NAMES, _VALUES), min_size=1, max_size=5))
def test_a_dn_charon_printed_reads_back_to_the_same_attributes(
    parts: list[tuple[str, str]],
) -> None:
    text = ", ".join(f"{name}={value.lstrip('=')}" for name, value in parts)
    dn = parse(text)
    assert dn.kind is Kind.DN
    assert dn.rdns is not None
    assert parse(print_dn(dn.rdns) or "").rdns == dn.rdns


@pytest.mark.fuzz
@budget(1000)
@given(
    st.text(max_size=60),
    st.sampled_from([None, "*.lab.example", "O=Corp, CN=*", "198.51.100.0/24", "%any", "@#00"]),
)
def test_any_text_is_an_identity_or_a_reason(text: str, rule: str | None) -> None:
    found = certificate_identity(text, rule, "dmvpn")
    if isinstance(found, Identity):
        assert "*" not in text
        assert "?" not in text
        assert printed(found) == text
        assert found.kind in (Kind.DN, Kind.FQDN, Kind.RFC822, Kind.IPV4, Kind.IPV6)
        assert rule is not None
        assert matches(found, parse(rule))
    else:
        assert found
