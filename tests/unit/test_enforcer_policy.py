"""frrdmvpn-proxy's authorization policy: from the applied frrdmvpn.conf or the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from frrdmvpn.adapters import config_store
from frrdmvpn.application.proxy import build_parser
from frrdmvpn.core.authorize import PolicyMode
from frrdmvpn.enforcement import (
    PolicyError,
    Settings,
    _initial_policy,
    load_policy,
    load_profiles,
)

pytestmark = pytest.mark.unit
EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


def test_policy_comes_from_the_configuration_file() -> None:
    args = build_parser().parse_args(["--config", str(EXAMPLES / "lab-hub.conf")])
    policy = load_policy(args)
    assert policy.mode is PolicyMode.PSK_MAP
    assert str(policy.tunnel_subnet) == "192.0.2.0/24"
    assert {str(n) for n in policy.psk_map["198.51.100.12"]} == {"192.0.2.12/32", "203.0.113.32/28"}


def test_invalid_configuration_is_refused_with_its_findings(tmp_path: Path) -> None:
    bad = tmp_path / "running.conf"
    bad.write_text((EXAMPLES / "lab-hub.conf").read_text().replace("tunnel key 42", "tunnel key x"))
    args = build_parser().parse_args(["--config", str(bad)])
    with pytest.raises(PolicyError, match=r"running\.conf:\d+:\d+: error"):
        load_policy(args)
    assert _initial_policy(args) is None  # at start: deny everything until a valid apply


def test_without_configuration_nothing_is_applied_yet(tmp_path: Path) -> None:
    args = build_parser().parse_args(["--config", str(tmp_path / "running.conf")])
    assert _initial_policy(args) is None
    with pytest.raises(PolicyError, match="give --config"):
        load_policy(build_parser().parse_args([]))


def test_command_line_policy_still_works() -> None:
    argv = [
        "--tunnel-subnet",
        "192.0.2.0/24",
        "--auth",
        "psk-map",
        "--psk-map",
        "198.51.100.11=192.0.2.11/32",
    ]
    policy = load_policy(build_parser().parse_args(argv))
    assert policy.mode is PolicyMode.PSK_MAP
    assert list(policy.psk_map) == ["198.51.100.11"]


def test_nhrpd_may_use_the_running_profiles_and_those_being_applied(tmp_path: Path) -> None:
    """Issue 14, hole 3: the IPsec profiles the proxy lets nhrpd initiate and terminate."""
    running = tmp_path / "running.conf"
    running.write_text((EXAMPLES / "lab-hub.conf").read_text())
    args = build_parser().parse_args(["--config", str(running)])
    settings = Settings.initial(args)
    assert settings.running == {"dmvpn"}
    assert load_profiles(args, settings.running) == {"dmvpn"}
    config_store.announce(running, frozenset({"dmvpn2"}))  # frrdmvpnd applies a new one
    assert load_profiles(args, settings.running) == {"dmvpn", "dmvpn2"}
    config_store.announce(running, frozenset())
    running.write_text("interface Tunnel0\n tunnel key x\n")  # invalid: nothing changes
    settings.reload(args)
    assert load_profiles(args, settings.running) == {"dmvpn"}
    running.write_text("hostname hub\n")  # valid, without a tunnel: no policy, no profile
    settings.reload(args)
    assert load_profiles(args, settings.running) == frozenset()
    argv = ["--tunnel-subnet", "192.0.2.0/24", "--profile", "dmvpn", "--profile", "b"]
    assert load_profiles(build_parser().parse_args(argv), frozenset()) == {"dmvpn", "b"}
    assert load_profiles(build_parser().parse_args(argv[:2]), frozenset()) == set()


def test_the_audit_period_is_a_number_of_seconds_in_range(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert build_parser().parse_args([]).sa_audit == 60.0
    assert build_parser().parse_args(["--sa-audit", "5"]).sa_audit == 5.0
    for bad, why in (
        ("0", "0 s is not between 1 and 86400"),
        ("86401", "86401 s is not between 1 and 86400"),
        ("nan", "nan s is not between 1 and 86400"),
        ("inf", "inf s is not between 1 and 86400"),
        ("5s", "'5s' is not a number of seconds"),
    ):
        with pytest.raises(SystemExit) as exited:
            build_parser().parse_args(["--sa-audit", bad])
        assert exited.value.code == 2
        assert f"argument --sa-audit: {why}" in capsys.readouterr().err
