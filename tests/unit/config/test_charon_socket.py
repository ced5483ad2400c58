"""The socket layout (frrdmvpn.config.charon_socket): which configuration relocates charon,
the file that does it, and what a typo or a deleted file does (nothing)."""

from __future__ import annotations

import re
from pathlib import Path, PurePath

import pytest

from frrdmvpn.adapters import vici_proxy
from frrdmvpn.config.charon_socket import (
    CHARON_SOCKET,
    DROPIN,
    MARKER,
    PROXY_SOCKET,
    SCALE_SETTINGS,
    Kind,
    Standing,
    Step,
    dropin_action,
    render_dropin,
    standing,
)

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = (ROOT / "debian/frrdmvpn.conf").read_text()
SPOKE = (ROOT / "docs/examples/lab-spoke1.conf").read_text()
BAD = SPOKE.replace(" tunnel key 42\n", " tunnel key forty-two\n")


def test_the_paths_are_inside_debians_apparmor_profiles() -> None:
    # swanctl (enforce) may use only /run/charon.vici; charon /run/charon.* (both releases)
    assert PurePath("/run/charon.vici") == PROXY_SOCKET
    assert PurePath(CHARON_SOCKET).match("/run/charon.*")
    assert PurePath(DROPIN).match("/etc/strongswan.d/*.conf")  # what charon and swanctl read
    # the proxy serves the first and relays to the second; frrdmvpnd talks to the second
    assert vici_proxy.DEFAULT_LISTEN == PROXY_SOCKET
    assert vici_proxy.DEFAULT_UPSTREAM == CHARON_SOCKET


def test_the_standing_of_each_kind_of_file() -> None:
    assert standing(SPOKE, "f.conf").kind is Kind.TUNNEL
    assert standing(SPOKE, "f.conf").reason == "f.conf configures Tunnel0"
    assert standing(EXAMPLE, "f.conf") == Standing(
        Kind.NO_TUNNEL, "f.conf configures no tunnel", standing(EXAMPLE, "f.conf").config
    )
    assert standing(None, "f.conf") == Standing(Kind.UNUSABLE, "f.conf: no such file")
    assert standing(None, "f.conf", "Permission denied") == Standing(
        Kind.UNUSABLE, "cannot read f.conf: Permission denied"
    )
    bad = standing(BAD, "f.conf")
    assert bad.kind is Kind.UNUSABLE
    assert bad.config is None
    assert bad.reason.startswith("f.conf is not valid:\nf.conf:")
    assert "forty-two" in bad.reason


def test_the_file_sets_charons_vici_socket_and_its_scale() -> None:
    text = render_dropin()
    assert text.startswith(MARKER + "\n")
    settings = [line.strip() for line in text.splitlines() if not line.strip().startswith("#")]
    assert settings == [
        "charon {",
        "ikesa_table_size = 1024",
        "ikesa_table_segments = 16",
        "plugins {",
        "vici {",
        "socket = unix:///run/charon.frrdmvpn.vici",
        "}",
        "}",
        "}",
    ]
    assert re.findall(r"unix://\S+", text) == [f"unix://{CHARON_SOCKET}"]
    # every setting follows its reason, and no comment holds a brace (charon's parser)
    for key, _, reason in SCALE_SETTINGS:
        above = text[: text.index(f"{key} =")].rstrip().splitlines()[-1].strip()
        assert above.startswith("# ")
        assert above[2:] in reason
    comments = [line for line in text.splitlines() if line.strip().startswith("#")]
    assert not [c for c in comments if "{" in c or "}" in c]


@pytest.mark.parametrize("current", [None, render_dropin(), "older text\n"])
def test_a_typo_or_a_deleted_file_never_moves_charon(current: str | None) -> None:
    for text in (BAD, None):
        action = dropin_action(standing(text, "f.conf"), current)
        assert action.step is Step.KEEP
        assert "the configuration cannot be used, so charon's socket does not move" in (
            action.message
        )


def test_an_older_file_with_the_socket_is_rewritten_with_the_new_settings() -> None:
    """An upgrade that changes SCALE_SETTINGS: charon already listens there."""
    older = render_dropin().replace("ikesa_table_size = 1024\n", "")
    action = dropin_action(standing(SPOKE, "f.conf"), older)
    assert (action.step, action.text) == (Step.WRITE, render_dropin())
    assert action.message == f"rewrote {DROPIN}: charon reads its new settings when it next starts"


def test_a_tunnel_writes_the_file_once() -> None:
    node = standing(SPOKE, "f.conf")
    for current in (None, "older text\n"):
        action = dropin_action(node, current)
        assert (action.step, action.text) == (Step.WRITE, render_dropin())
        assert action.message.startswith(f"wrote {DROPIN}: charon moves to {CHARON_SOCKET}")
    assert dropin_action(node, render_dropin()).step is Step.KEEP


def test_no_tunnel_removes_the_file_and_charon_keeps_its_own_socket() -> None:
    node = standing(EXAMPLE, "f.conf")
    action = dropin_action(node, render_dropin())
    assert action.step is Step.REMOVE
    assert action.message == (
        f"removed {DROPIN}: charon returns to {PROXY_SOCKET} when it next starts (no tunnel)"
    )
    assert dropin_action(node, None).step is Step.KEEP
