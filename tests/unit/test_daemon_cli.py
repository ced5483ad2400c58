"""frrdmvpnd's commands that systemd runs before anything else: ``configured`` (the units'
ExecCondition) and ``guard`` taking its addresses from the configuration."""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path

import pytest

from frrdmvpn.daemon import _guard, build_parser, main

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "debian/frrdmvpn.conf"  # the package's conffile: every line a comment
SPOKE = ROOT / "docs/examples/lab-spoke1.conf"


@pytest.fixture
def spoke(tmp_path: Path) -> Path:
    """A spoke whose tunnel source is an address (no interface lookup needed)."""
    path = tmp_path / "frrdmvpn.conf"
    text = SPOKE.read_text()
    assert " tunnel source eth0\n" in text
    path.write_text(text.replace(" tunnel source eth0\n", " tunnel source 198.51.100.11\n"))
    return path


def test_the_packages_commented_example_configures_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["configured", "-c", str(EXAMPLE)]) == 1
    assert "configures no tunnel" in capsys.readouterr().out
    # `guard check` (run before charon and FRR start) lets an unconfigured node be;
    # `guard install` refuses: there is nothing to guard.
    assert main(["guard", "check", "-c", str(EXAMPLE)]) == 0
    assert main(["guard", "install", "-c", str(EXAMPLE)]) == 1


def test_a_configured_tunnel_is_configured(spoke: Path) -> None:
    assert main(["configured", "-c", str(spoke)]) == 0
    assert main(["configured", "-c", str(spoke.with_name("missing.conf"))]) == 1


def test_an_invalid_configuration_is_an_error_with_its_findings(
    tmp_path: Path, spoke: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.conf"
    bad.write_text(spoke.read_text().replace(" tunnel key 42\n", " tunnel key forty-two\n"))
    assert main(["configured", "-c", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "is not valid" in err
    assert "forty-two" in err


def test_the_guard_takes_the_tunnel_source_from_the_configuration(spoke: Path) -> None:
    guard = _guard(build_parser().parse_args(["guard", "status", "-c", str(spoke)]))
    assert guard is not None
    assert guard.spec.nbma == (IPv4Address("198.51.100.11"),)
    given = build_parser().parse_args(["guard", "status", "--nbma", "192.0.2.7", "-c", "/none"])
    assert _guard(given).spec.nbma == (IPv4Address("192.0.2.7"),)  # type: ignore[union-attr]
