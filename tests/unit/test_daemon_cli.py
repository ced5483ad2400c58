"""frrdmvpnd's commands that systemd runs before anything else: ``configured`` (the units'
ExecCondition: 0 run, 1 skip, 255 fail; with ``--sync-charon-socket`` it places charon's
socket), ``guard check`` (before charon and FRR) and ``guard`` taking its addresses from the
configuration."""

from __future__ import annotations

import os
import stat
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from frrdmvpn.adapters import config_store
from frrdmvpn.adapters.guard import KernelGuard
from frrdmvpn.application.frrdmvpnd import _guard, build_parser, main
from frrdmvpn.config.charon_socket import DROPIN, render_dropin
from tests.fakes.world import spoke_sourced_by_address

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "debian/frrdmvpn.conf"  # the package's conffile: every line a comment


@pytest.fixture
def spoke(tmp_path: Path) -> Path:
    """A spoke whose tunnel source is an address (no interface lookup needed)."""
    return spoke_sourced_by_address(tmp_path)


@pytest.fixture
def bad(tmp_path: Path, spoke: Path) -> Path:
    """The spoke with a typo."""
    path = tmp_path / "bad.conf"
    path.write_text(spoke.read_text().replace(" tunnel key 42\n", " tunnel key forty-two\n"))
    return path


def test_the_packages_commented_example_configures_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["configured", "-c", str(EXAMPLE)]) == 1
    assert capsys.readouterr().out == f"frrdmvpnd: {EXAMPLE} configures no tunnel; nothing to do\n"
    # `guard check` (run before charon and FRR start) lets an unconfigured node be;
    # `guard install` refuses: there is nothing to guard.
    assert main(["guard", "check", "-c", str(EXAMPLE)]) == 0
    assert main(["guard", "install", "-c", str(EXAMPLE)]) == 1


def test_a_configured_tunnel_is_configured(spoke: Path) -> None:
    assert main(["configured", "-c", str(spoke)]) == 0


def test_a_missing_or_unreadable_file_fails_the_unit_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.conf"
    assert main(["configured", "-c", str(missing)]) == 255
    assert capsys.readouterr().err == f"frrdmvpnd: {missing}: no such file\n"
    assert main(["configured", "-c", str(tmp_path)]) == 255  # a directory
    assert capsys.readouterr().err == f"frrdmvpnd: cannot read {tmp_path}: Is a directory\n"


def test_an_invalid_configuration_fails_the_unit_with_its_findings(
    bad: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["configured", "-c", str(bad)]) == 255
    err = capsys.readouterr().err
    assert err.startswith(f"frrdmvpnd: {bad} is not valid:\n{bad}:")
    assert "forty-two" in err


def test_anything_unexpected_fails_the_unit_instead_of_skipping_it(
    spoke: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(path: Path) -> None:
        raise RuntimeError(f"cannot decide about {path}")

    monkeypatch.setattr(config_store, "read_standing", broken)
    assert main(["configured", "-c", str(spoke)]) == 255
    assert capsys.readouterr().err == f"frrdmvpnd: RuntimeError: cannot decide about {spoke}\n"


def test_guard_check_lets_charon_and_frr_start_without_a_usable_configuration(
    tmp_path: Path, bad: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for path in (tmp_path / "missing.conf", bad):
        assert main(["guard", "check", "-c", str(path)]) == 0
        err = capsys.readouterr().err
        assert err.startswith(f"frrdmvpnd: warning: {path}")
        assert err.endswith(
            "frrdmvpnd: warning: guards not checked; DMVPN stays off until the "
            "configuration is fixed\n"
        )


def test_guard_check_fails_only_when_a_configured_nodes_guards_are_missing(
    spoke: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    installed = [False]
    asked: list[bool] = []

    def fake_installed(_self: KernelGuard, *, covering: bool = False) -> bool:
        asked.append(covering)
        return installed[0]

    monkeypatch.setattr(KernelGuard, "installed", fake_installed)
    check = ["guard", "check", "-c", str(spoke), "--running", str(tmp_path / "running.conf")]
    assert main(check) == 1
    assert capsys.readouterr().err == (
        "frrdmvpnd: the guards for 198.51.100.11 are missing: GRE could leave in clear text "
        "(start frrdmvpn-guard.service)\n"
    )
    installed[0] = True
    assert main(check) == 0
    assert asked == [True, True]  # guards wider than the file's (a change under way) will do


def test_sync_charon_socket_writes_removes_or_keeps_the_strongswan_file(
    tmp_path: Path, spoke: Path, bad: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dropin = tmp_path / "strongswan.d/frrdmvpn.conf"
    dropin.parent.mkdir()

    def sync(config: Path) -> int:
        return main(
            ["configured", "--sync-charon-socket", "--dropin", str(dropin), "-c", str(config)]
        )

    assert sync(EXAMPLE) == 1  # no tunnel, no file: nothing moves
    assert not dropin.exists()
    old = os.umask(0o077)  # the units' umask
    try:
        assert sync(spoke) == 0
    finally:
        os.umask(old)
    assert dropin.read_text() == render_dropin()
    assert stat.S_IMODE(dropin.stat().st_mode) == 0o644  # charon and swanctl read it
    assert f"wrote {DROPIN}" in capsys.readouterr().out
    # a typo or a deleted file leaves charon where it is
    for unusable in (bad, tmp_path / "missing.conf"):
        assert sync(unusable) == 255
        assert dropin.read_text() == render_dropin()
    assert sync(EXAMPLE) == 1  # the tunnel is gone: charon returns to its own socket
    assert not dropin.exists()
    assert f"removed {DROPIN}" in capsys.readouterr().out


def test_sync_charon_socket_failing_to_write_fails_the_unit(
    tmp_path: Path, spoke: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dropin = tmp_path / "no-such-dir" / "frrdmvpn.conf"
    (tmp_path / "no-such-dir").write_text("a file where the directory should be")
    argv = ["configured", "--sync-charon-socket", "--dropin", str(dropin), "-c", str(spoke)]
    assert main(argv) == 255
    assert capsys.readouterr().err.startswith("frrdmvpnd: NotADirectoryError: ")


def test_the_guard_takes_the_tunnel_source_from_the_configuration(
    spoke: Path, tmp_path: Path
) -> None:
    none = str(tmp_path / "running.conf")  # nothing applied yet
    guard = _guard(
        build_parser().parse_args(["guard", "status", "-c", str(spoke), "--running", none])
    )
    assert guard is not None
    assert guard.spec.nbma == (IPv4Address("198.51.100.11"),)
    given = build_parser().parse_args(["guard", "status", "--nbma", "192.0.2.7", "-c", "/none"])
    assert _guard(given).spec.nbma == (IPv4Address("192.0.2.7"),)  # type: ignore[union-attr]


def test_the_guard_takes_the_tunnel_source_that_runs(spoke: Path, tmp_path: Path) -> None:
    """Issue 14 hole 4: a tunnel source changed live (applied, not saved) is what the guards
    must cover when `guard install` runs again (an nftables reload) or `guard check` asks."""
    running = tmp_path / "running.conf"
    running.write_text(
        spoke.read_text().replace(
            " tunnel source 198.51.100.11\n", " tunnel source 198.51.100.111\n"
        )
    )
    args = ["guard", "check", "-c", str(spoke), "--running", str(running)]
    guard = _guard(build_parser().parse_args(args))
    assert guard is not None
    assert guard.spec.nbma == (IPv4Address("198.51.100.111"),)
    running.write_text("hostname spoke1\n")  # applied, and defines no tunnel: the saved file
    guard = _guard(build_parser().parse_args(args))
    assert guard is not None
    assert guard.spec.nbma == (IPv4Address("198.51.100.11"),)
