"""GetConfig's statement tree: keys, contexts and nesting as the language defines them."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from frrdmvpn.api.config_tree import MODE_OF, MODES, config_tree
from frrdmvpn.config.modes import Mode
from frrdmvpn.v1 import config_pb2

pytestmark = pytest.mark.unit

HUB = (Path(__file__).resolve().parents[3] / "docs" / "examples" / "lab-hub.conf").read_text()


def test_every_mode_has_an_api_mode_and_back() -> None:
    assert set(MODES) == set(Mode)
    assert {MODE_OF[v] for v in MODES.values()} == set(Mode)
    assert MODES[Mode.CONFIG] == config_pb2.CONFIG_MODE_GLOBAL


def test_blocks_hold_their_statements_with_keys_lines_and_contexts() -> None:
    tree = config_tree(HUB)
    lines = HUB.splitlines()
    top = {s.key: s for s in tree.statements}
    tunnel = top["interface Tunnel0"]
    assert tunnel.opens.mode == config_pb2.CONFIG_MODE_INTERFACE
    assert list(tunnel.opens.keys) == ["Tunnel0"]
    assert tunnel.opens.prompt == "config-if"
    holdtime = next(c for c in tunnel.children if c.key == "ip nhrp holdtime")
    assert holdtime.text == "ip nhrp holdtime 60"
    assert lines[holdtime.line - 1].strip() == holdtime.text
    assert holdtime.context.mode == config_pb2.CONFIG_MODE_INTERFACE
    assert not holdtime.HasField("opens")
    assert not holdtime.children
    # two levels: keyring -> peer -> its address and key
    (peer,) = top["crypto ikev2 keyring lab"].children
    assert peer.opens.mode == config_pb2.CONFIG_MODE_IKEV2_KEYRING_PEER
    assert list(peer.opens.keys) == ["lab", "any"]
    assert [c.text.split()[0] for c in peer.children] == ["address", "pre-shared-key"]
    assert all(s.context.mode == config_pb2.CONFIG_MODE_GLOBAL for s in tree.statements)
    count = sum(1 for raw in lines if raw.strip() and not raw.strip().startswith("!"))

    def total(statements: Iterable[config_pb2.ConfigStatement]) -> int:
        return sum(1 + total(s.children) for s in statements)

    assert total(tree.statements) == count


def test_a_line_that_does_not_apply_is_listed_without_children() -> None:
    tree = config_tree("hostname r1\ninterface Tunnel0\n bogus words\n ip mtu 1400\n")
    (_, tunnel) = tree.statements
    assert [c.key for c in tunnel.children] == ["bogus words", "ip mtu"]
    assert tunnel.children[0].line == 3
