"""The engine's parameter types: what each reads, refuses and lets begin."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from frrdmvpn.command_engine.params import (
    Choice,
    IntRange,
    Ipv4,
    Mask,
    Prefix,
    Tunnel,
    Whole,
    Wildcard,
)
from frrdmvpn.command_engine.tokens import Token, is_decimal, number, tokenize

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("text", ["²", "١٢", "\uff13", "1.5", "-1", "", "+1", " 1"])
def test_only_ascii_digits_are_numbers(text: str) -> None:
    assert not is_decimal(text)
    assert number(text) is None
    assert IntRange(0, 10**12).read(text) is None


def test_numbers_have_at_most_twelve_digits() -> None:
    assert number("9" * 12) == 10**12 - 1
    assert number("9" * 13) is None
    assert IntRange(0, 10).read_lenient("99") == 99  # for a validator to judge
    assert IntRange(0, 10).reason("99") == "99 is out of range 0-10"


def test_addresses_masks_and_prefixes() -> None:
    assert Ipv4().read("192.0.2.1") == IPv4Address("192.0.2.1")
    for bad in ("192.0.2", "192.0.2.256", "010.0.0.1", "\uff11.0.0.1"):
        assert Ipv4().read(bad) is None, bad
    assert Mask().read("255.255.255.0") == 24
    assert Mask().reason("255.0.255.0") == "255.0.255.0 is not a contiguous netmask"
    assert Wildcard().read("0.0.0.255") == 24
    assert Wildcard().reason("0.255.0.255") == "0.255.0.255 is not a contiguous wildcard mask"
    assert Prefix().read("192.0.2.0/24") == IPv4Network("192.0.2.0/24")
    assert (
        Prefix().reason("192.0.2.1/24")
        == "192.0.2.1/24 has host bits set (did you mean 192.0.2.0/24?)"
    )


def test_tunnels_and_choices() -> None:
    tunnel = Tunnel(99)
    assert [tunnel.read(t) for t in ("Tunnel7", "tu7", "TUNN07", "Tunnel100", "Tu")] == [
        7,
        7,
        7,
        None,
        None,
    ]
    assert tunnel.partial("Tun")
    assert not tunnel.partial("T1")
    assert not tunnel.partial("Eth")
    choice = Choice("esp-aes", "esp-gcm", "esp-null")
    assert choice.read("esp-g") == "esp-gcm"
    assert choice.read("esp-") is None
    assert choice.alternatives("esp-") == ("esp-aes", "esp-gcm", "esp-null")
    assert choice.longest == len("esp-null")
    assert Whole("domain").read("dom") is None  # whole words only


def test_tokens_keep_their_offsets() -> None:
    assert tokenize("  show\tip  ") == (Token("show", 2), Token("ip", 7))
    assert Token("ip", 7).column == 8
