"""The validator knows what FRR, charon and Linux can take (issue 14, hole 9).

A 300-character IPsec profile name used to validate, then fail the apply with a
``struct.error`` from the VICI encoder; now each limit is a validation error at the token,
and whatever validates encodes for charon and fits FRR's vty.
"""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path

import pytest
import vici.protocol
from hypothesis import given, settings
from hypothesis import strategies as st

from frrdmvpn.config.diagnostics import Diagnostic
from frrdmvpn.config.frr import render_frr
from frrdmvpn.config.parse import parse, parse_strict
from frrdmvpn.config.swan import desired_swan
from frrdmvpn.config.validate import check

pytestmark = pytest.mark.unit

HUB = (Path(__file__).resolve().parents[3] / "docs" / "examples" / "lab-hub.conf").read_text()
ETH0 = {"eth0": IPv4Address("198.51.100.1")}
PSK = "frrdmvpn-lab-psk-not-for-production"
VICI_MESSAGE_MAX = 512 * 1024  # charon's VICI_MESSAGE_SIZE_MAX
VTY_BUFSIZ = 4096  # FRR: a vty line and its NUL must be shorter
CMD_ARGC_MAX = 256  # FRR: tokens a command may have, with the matcher's start token


def errors(text: str) -> list[Diagnostic]:
    return [d for d in check(text)[1] if d.is_error]


def with_profile(name: str) -> str:
    return HUB.replace(" profile dmvpn", f" profile {name}")


def test_a_300_character_ipsec_profile_name_is_a_validation_error() -> None:
    name = "p" * 300
    line = HUB.splitlines().index("crypto ipsec profile dmvpn") + 1
    message = (
        "IPsec profile names have at most 255 bytes, like every name (a name in charon's VICI "
        "has one length byte); this one has 300"
    )
    assert errors(with_profile(name)) == [
        Diagnostic(line, 22, name, message, "a name of 1-255 bytes", code="name-too-long")
    ]
    assert not errors(with_profile("p" * 255))
    (multibyte,) = errors(with_profile("é" * 128))
    assert multibyte.message.endswith("; this one has 256")


@pytest.mark.parametrize(
    ("old", "new", "message", "code", "token"),
    [
        (
            " peer any",
            " peer " + "x" * 256,
            "keyring peer names have at most 255 bytes, like every "
            "name (a name in charon's VICI has one length byte); this one has 256",
            "name-too-long",
            "x" * 256,
        ),
        (
            "hostname hub",
            "hostname " + "h" * 256,
            "a host name has at most 255 characters (FRR's limit); this one has 256",
            "hostname-invalid",
            "h" * 256,
        ),
        (
            "hostname hub",
            "hostname _hub",
            "a host name starts with a letter or a digit (FRR refuses '_')",
            "hostname-invalid",
            "_hub",
        ),
        (
            " ip mtu 1400",
            " description " + "d" * 241 + "\n ip mtu 1400",
            "a description has at most 240 characters; this one has 241",
            "description-too-long",
            "d" * 241,
        ),
        (
            PSK,
            "k" * 65536,
            "a pre-shared key has at most 65535 bytes (a VICI value has two length "
            "bytes); this one has 65536",
            "psk-too-long",
            "pre-shared-key",
        ),
    ],
)
def test_each_downstream_limit_has_its_error(
    old: str, new: str, message: str, code: str, token: str
) -> None:
    (found,) = errors(HUB.replace(old, new, 1))
    assert (found.message, found.code, found.token) == (message, code, token)
    assert PSK not in str(found)  # a key is never shown
    assert "k" * 100 not in str(found)


def test_a_path_longer_than_path_max_is_an_error() -> None:
    path = "/etc/frrdmvpn/" + "a" * 4082
    text = HUB + f"crypto pki trustpoint tp\n private-key {path}\n"
    (found,) = errors(text)
    assert found.message == "a path has at most 4095 bytes (Linux's PATH_MAX); this one has 4096"
    assert (found.code, found.token) == ("path-too-long", path)
    assert not errors(HUB + f"crypto pki trustpoint tp\n private-key {path[:-1]}\n")


def test_at_the_limits_the_configuration_is_valid() -> None:
    text = (
        HUB.replace(" profile dmvpn", " profile " + "p" * 255)
        .replace("hostname hub", "hostname " + "h" * 255)
        .replace(" ip mtu 1400", " description " + "d " * 119 + "d\n ip mtu 1400")
        .replace(PSK, "k" * 65535)
    )
    assert not errors(text)


# --- whatever validates, charon and FRR take ----------------------------------------------

names = st.text(st.sampled_from("aZ9_-.é東"), min_size=1, max_size=300)
descriptions = (
    st.text(st.sampled_from("ab é東"), min_size=1, max_size=300).map(str.strip).filter(bool)
)


@settings(max_examples=60, deadline=None)
@given(
    st.tuples(names, names, names, st.one_of(names, st.just("hub"))),
    descriptions,
    st.integers(1, 70000),
)
def test_what_validates_encodes_for_vici_and_fits_frr(
    named: tuple[str, str, str, str], description: str, psk_size: int
) -> None:
    profile, keyring, peer, hostname = named
    text = (
        HUB.replace(" profile dmvpn", f" profile {profile}")
        .replace("keyring lab", f"keyring {keyring}")
        .replace("keyring local lab", f"keyring local {keyring}")
        .replace(" peer any", f" peer {peer}")
        .replace("hostname hub", f"hostname {hostname}")
        .replace(" ip mtu 1400", f" description {description}\n ip mtu 1400")
        .replace(PSK, "k" * psk_size)
    )
    if errors(text):
        return
    config = parse_strict(text)
    swan = desired_swan(config, ETH0)
    for message in [*swan.conns.values(), *swan.shared.values()]:
        encoded = vici.protocol.Message.serialize(message)  # struct.error beyond a limit
        assert len(encoded) <= VICI_MESSAGE_MAX
    for daemon_text in render_frr(config).daemons().values():
        for line in daemon_text.splitlines():
            assert len(line.strip().encode()) + 1 < VTY_BUFSIZ
            assert len(line.split()) < CMD_ARGC_MAX
            if line.startswith("hostname "):
                assert len(line) - len("hostname ") <= 255
                first = line[len("hostname ")]
                assert first.isascii()
                assert first.isalnum()


@pytest.mark.parametrize(
    ("line", "column"),
    [
        (" ip nhrp holdtime ²", 19),  # "²".isdigit() is true; int("²") raises
        (" ip mtu ١٢٠٠", 9),  # Arabic-Indic digits are no number of the language
        (" tunnel key \uff13", 13),  # a fullwidth 3
    ],
)
def test_numbers_are_ascii_digits_or_an_error_at_the_token(line: str, column: int) -> None:
    result = parse(f"interface Tunnel0\n{line}\n")
    assert [(d.line, d.column, d.message) for d in result.diagnostics] == [
        (2, column, "invalid input")
    ]
