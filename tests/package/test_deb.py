"""The built .deb as Debian sees it: lintian, its files, its units and its scripts."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.package

PROGRAMS = {"usr/sbin/frrdmvpnd": "8", "usr/sbin/frrdmvpn-proxy": "8",
            "usr/bin/frrdmvpn-shell": "1", "usr/bin/frrdmvpn-lab": "1"}  # fmt: skip
UNITS = ("frrdmvpn.service", "frrdmvpn-guard.service", "frrdmvpn-proxy.service")


def _contents(deb: Path) -> dict[str, str]:
    """Path (without the leading ./) → permissions, from ``dpkg-deb -c``."""
    out = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    found = {}
    for line in out.splitlines():
        fields = line.split()
        found[fields[5].removeprefix("./").rstrip("/")] = fields[0]
    return found


def _member(deb: Path, path: str, tmp_path: Path) -> str:
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp_path)], check=True)
    return (tmp_path / path).read_text()


def _control(deb: Path, name: str) -> str:
    return subprocess.run(["dpkg-deb", "-I", str(deb), name], capture_output=True, text=True,
                          check=True).stdout  # fmt: skip


def test_lintian_reports_no_error_and_no_warning(deb: Path) -> None:
    done = subprocess.run(["lintian", "--display-info", "--tag-display-limit", "0", str(deb)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    tags = [line for line in done.stdout.splitlines() if re.match(r"[EW]: ", line)]
    assert not tags, "\n".join(tags)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_programs_their_man_pages_and_the_shells_completion_are_installed(
    deb: Path,
) -> None:
    files = _contents(deb)
    for program, section in PROGRAMS.items():
        assert files[program].startswith("-rwxr-xr-x"), program
        name = program.rsplit("/", 1)[1]
        assert f"usr/share/man/man{section}/{name}.{section}.gz" in files
    assert "usr/share/bash-completion/completions/frrdmvpn-shell" in files
    # frrdmvpn's Python and the bundled libraries stay off the system's sys.path.
    assert "usr/share/frrdmvpn/frrdmvpn/daemon.py" in files
    assert "usr/share/frrdmvpn/cli/main.py" in files
    for lib in ("vici", "grpc_health", "grpc_reflection"):
        assert f"usr/share/frrdmvpn/vendor/{lib}/__init__.py" in files
    assert not [f for f in files if f.startswith("usr/lib/python3")]


def test_each_program_runs_its_module_from_the_private_directory(deb: Path, tmp_path: Path) -> None:
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp_path)], check=True)
    for program in PROGRAMS:
        text = (tmp_path / program).read_text()
        assert text.startswith("#!/usr/bin/python3\n"), program
        assert "@" not in text, f"{program}: a placeholder was left: {text}"
        paths = re.search(r"^_PATHS = \[(.*)\]$", text, re.M)
        assert paths is not None, text
        for path in re.findall(r'"([^"]+)"', paths.group(1)):
            assert (tmp_path / path.lstrip("/")).is_dir(), f"{program}: {path} is not shipped"
        module = re.search(r"^from (\S+) import main", text, re.M)
        assert module is not None, text
        dotted = module.group(1).replace(".", "/")
        assert (tmp_path / "usr/share/frrdmvpn" / f"{dotted}.py").is_file()


def test_the_configuration_is_the_only_conffile_and_ships_as_a_commented_example(
    deb: Path, tmp_path: Path
) -> None:
    assert _control(deb, "conffiles").split() == ["/etc/frrdmvpn/frrdmvpn.conf"]
    text = _member(deb, "etc/frrdmvpn/frrdmvpn.conf", tmp_path)
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines
    assert all(line.startswith("!") for line in lines)
    assert "! interface Tunnel0" in text


def test_units_order_the_guards_before_charon_and_nhrpd_and_notify_readiness(
    deb: Path, tmp_path: Path
) -> None:
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp_path)], check=True)
    units = tmp_path / "lib/systemd/system"
    for unit in UNITS:
        assert (units / unit).is_file(), unit
    guard = (units / "frrdmvpn-guard.service").read_text()
    assert "Type=oneshot" in guard
    assert "RemainAfterExit=yes" in guard
    assert "ExecStop" not in guard  # stopping it never removes the guards
    befores = " ".join(re.findall(r"^Before=(.*)$", guard, re.M)).split()
    assert {"strongswan.service", "frr.service", "frrdmvpn.service"} <= set(befores)
    daemon = (units / "frrdmvpn.service").read_text()
    for line in ("Type=notify", "WatchdogSec=30", "Restart=on-failure",
                 "ExecReload=/bin/kill -HUP $MAINPID"):  # fmt: skip
        assert line in daemon
    assert "Type=notify" in (units / "frrdmvpn-proxy.service").read_text()
    for other in ("frr", "strongswan", "strongswan-starter"):
        dropin = (units / f"{other}.service.d/frrdmvpn.conf").read_text()
        assert "After=frrdmvpn-guard.service" in dropin
        assert "ExecStartPre=/usr/sbin/frrdmvpnd guard check" in dropin
    done = subprocess.run(["systemd-analyze", "verify", "--man=no",
                           *[str(units / u) for u in UNITS]],
                          capture_output=True, text=True, check=False)  # fmt: skip
    problems = [line for line in done.stderr.splitlines() if "frrdmvpn" in line
                and "Command /usr/sbin" not in line]  # fmt: skip
    assert not problems, done.stderr


def test_maintainer_scripts_are_valid_sh_and_handle_the_group_and_charons_socket(
    deb: Path, tmp_path: Path
) -> None:
    subprocess.run(["dpkg-deb", "-e", str(deb), str(tmp_path)], check=True)
    for script in ("postinst", "prerm", "postrm"):
        subprocess.run(["sh", "-n", str(tmp_path / script)], check=True)
    postinst = (tmp_path / "postinst").read_text()
    assert "addgroup --system" in postinst
    assert "/etc/strongswan.d/frrdmvpn.conf" in postinst
    postrm = (tmp_path / "postrm").read_text()
    assert "delgroup" in postrm
    assert "rm -rf /etc/frrdmvpn" in postrm


def test_the_version_is_the_codes_version(deb: Path) -> None:
    from frrdmvpn import __version__  # noqa: PLC0415

    version = _control(deb, "control")
    assert re.search(rf"^Version: {re.escape(__version__)}$", version, re.M), version
