"""SECURITY: nhrpd never runs NHRP on an interface before that interface's authorization.

A restarted nhrpd has no configuration at all. If frrdmvpnd enabled NHRP on the tunnel
(``ip nhrp network-id``) before ``nhrp event socket`` was configured, nhrpd would accept
every binding by itself until the socket line arrived; before ``tunnel protection``, it
would run NHRP without asking charon for an SA. Apply must therefore send the event socket
first and each interface's protection before its network-id, from whatever nhrpd holds.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from frrdmvpn.apply import ApplyError, apply
from frrdmvpn.config import frrdiff
from frrdmvpn.config.frr import render_frr
from frrdmvpn.config.frrdiff import diff, nhrp_enabled_unauthorized
from frrdmvpn.config.model import Config
from frrdmvpn.config.parse import parse_strict
from tests.fakes.configs import configs
from tests.fakes.world import EXAMPLES, World

pytestmark = pytest.mark.unit

EXAMPLE_CONFIGS = {f.stem: parse_strict(f.read_text()) for f in sorted(EXAMPLES.glob("*.conf"))}
PROTECTED = [
    pytest.param(c, id=name)
    for name, c in EXAMPLE_CONFIGS.items()
    if any(t.protection_profile for t in c.interfaces)
]
CONFIGS: list[Config] = [p.values[0] for p in PROTECTED]  # type: ignore[misc]
# What `show running-config` of a freshly (re)started nhrpd prints (Debian's 8.4.4).
RESTARTED = "frr version 8.4.4\nfrr defaults traditional\n!\nhostname hub\n!\n!\n!\n"
SLOW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_every_example_with_protection_is_covered() -> None:
    assert len(PROTECTED) >= 5


@pytest.mark.parametrize("config", PROTECTED)
def test_a_restarted_nhrpd_gets_its_authorization_before_nhrp(config: Config) -> None:
    desired = render_frr(config).nhrpd
    lines = diff(RESTARTED, desired)
    assert nhrp_enabled_unauthorized(RESTARTED, lines, desired) == []
    socket = lines.index(next(x for x in lines if x.startswith("nhrp event socket")))
    enabling = [i for i, x in enumerate(lines) if x.startswith("ip nhrp network-id")]
    assert enabling
    assert all(socket < i for i in enabling)


@SLOW
@given(st.sampled_from(CONFIGS), st.data())
def test_whatever_part_of_the_configuration_was_lost(config: Config, data: st.DataObject) -> None:
    """A reload, a hand in vtysh or a partial replay may have left any subset of the lines."""
    desired = render_frr(config).nhrpd
    lines = desired.splitlines()
    kept = data.draw(st.lists(st.booleans(), min_size=len(lines), max_size=len(lines)))
    running = "\n".join(
        x
        for x, keep in zip(lines, kept, strict=True)
        if keep or x.startswith(("interface", "exit", "!"))
    )
    commands = diff(running, desired)
    assert nhrp_enabled_unauthorized(running, commands, desired) == []


@SLOW
@given(configs, configs)
def test_any_change_of_configuration(before: Config, after: Config) -> None:
    running, desired = render_frr(before).nhrpd, render_frr(after).nhrpd
    commands = diff(running, desired)
    assert nhrp_enabled_unauthorized(running, commands, desired) == []


def test_the_check_finds_each_wrong_order() -> None:
    desired = render_frr(CONFIGS[0]).nhrpd
    good = diff(RESTARTED, desired)
    socket = next(x for x in good if x.startswith("nhrp event socket"))
    late_socket = [x for x in good if x != socket]
    late_socket.insert(len(late_socket) - 1, socket)  # after the interfaces, before `end`
    found = nhrp_enabled_unauthorized(RESTARTED, late_socket, desired)
    assert [x.split(": ", 1)[1] for x in found] == [
        x for x in good if x.startswith("ip nhrp network-id")
    ]
    protection = next(x for x in good if x.startswith("tunnel protection"))
    late_protection = [x for x in good if x != protection]
    late_protection.insert(late_protection.index("exit"), protection)
    assert len(nhrp_enabled_unauthorized(RESTARTED, late_protection, desired)) == 1
    unprotected = [x for x in good if not x.startswith("no ")] + [
        "interface dmvpn0",
        "no tunnel protection",
        "ip nhrp network-id 9",
        "exit",
    ]
    assert nhrp_enabled_unauthorized(RESTARTED, unprotected, desired) == [
        "interface dmvpn0: ip nhrp network-id 9"
    ]


def test_apply_refuses_an_order_that_would_open_the_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The check also guards apply itself: nothing reaches nhrpd in a wrong order."""
    config = CONFIGS[0]
    world = World()
    world.frr["nhrpd"] = RESTARTED

    def socket_last(running: str, desired: str) -> list[str]:
        lines = diff(running, desired)
        socket = next(x for x in lines if x.startswith("nhrp event socket"))
        lines.remove(socket)
        return [*lines[:-1], socket, lines[-1]]

    monkeypatch.setattr(frrdiff, "diff", socket_last)
    with pytest.raises(ApplyError, match="refusing to enable NHRP before its authorization"):
        apply(config, None, world.ports(config))
    assert world.frr["nhrpd"] == RESTARTED
    assert not [x for x in world.log if x.startswith("vtysh")]
