"""The built .deb as Debian sees it: lintian, its files, its units and its scripts; and the
build itself, which must not need the network."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from lab.release import RELEASES
from tests.package.roots import release_root

pytestmark = pytest.mark.package

ROOT = Path(__file__).resolve().parents[2]

PROGRAMS = {
    "usr/sbin/frrdmvpnd": "8",
    "usr/sbin/frrdmvpn-proxy": "8",
    "usr/bin/frrdmvpn-shell": "1",
}
UNITS = ("frrdmvpn.service", "frrdmvpn-guard.service", "frrdmvpn-proxy.service")


def _contents(deb: Path) -> dict[str, str]:
    """Path (without the leading ./) → permissions, from ``dpkg-deb -c``."""
    out = subprocess.run(
        ["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True
    ).stdout
    found = {}
    for line in out.splitlines():
        fields = line.split()
        found[fields[5].removeprefix("./").rstrip("/")] = fields[0]
    return found


def _member(deb: Path, path: str, tmp_path: Path) -> str:
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp_path)], check=True)
    return (tmp_path / path).read_text()


def _control(deb: Path, name: str) -> str:
    return subprocess.run(
        ["dpkg-deb", "-I", str(deb), name], capture_output=True, text=True, check=True
    ).stdout


def _lintian(deb: Path, release: str) -> subprocess.CompletedProcess[str]:
    """lintian of ``release`` on ``deb``: this machine's (Debian 12), or the one in the lab's
    built root of that release (run in a chroot, the package's directory bound in)."""
    argv = ["lintian", "--display-info", "--display-experimental", "--tag-display-limit", "0"]
    root = release_root(release, "usr/bin/lintian")
    if root == Path("/"):
        return subprocess.run([*argv, str(deb)], capture_output=True, text=True, check=False)
    script = (
        f"mount --bind {shlex.quote(str(deb.parent))} {shlex.quote(str(root / 'mnt'))} && "
        f"exec chroot {shlex.quote(str(root))} {shlex.join(argv)} /mnt/{shlex.quote(deb.name)}"
    )
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("release", RELEASES)
def test_lintian_reports_no_error_and_no_warning(deb: Path, release: str) -> None:
    done = _lintian(deb, release)
    tags = [line for line in done.stdout.splitlines() if re.match(r"[EW]: ", line)]
    assert not tags, "\n".join(tags)
    # experimental, so not an error or a warning: every unit is hardened
    assert "systemd-service-file-missing-hardening-features" not in done.stdout
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
    assert "usr/share/frrdmvpn/frrdmvpn/application/frrdmvpnd.py" in files
    assert "usr/share/frrdmvpn/cli/main.py" in files
    # nothing bundled: the standard gRPC services are frrdmvpn's own
    assert "usr/share/frrdmvpn/frrdmvpn/grpc_std/health_pb2.py" in files
    assert not [f for f in files if f.startswith("usr/share/frrdmvpn/vendor")]
    assert not [f for f in files if f.startswith("usr/lib/python3")]


def test_the_lab_and_the_doc_generator_are_not_shipped(deb: Path) -> None:
    # development and build tools run from the source tree (docs/lab.md, docs/package.md):
    # routers need no QEMU tooling, and the manual pages are generated at build time
    files = _contents(deb)
    assert not [f for f in files if "frrdmvpn-lab" in f or f.startswith("usr/share/frrdmvpn/lab")]
    assert not [f for f in files if f.startswith("usr/share/frrdmvpn/docgen")]
    for gone in ("frrdmvpn/lab", "frrdmvpn/manpage", "frrdmvpn/roff", "cli/manual"):
        assert not [f for f in files if f.startswith(f"usr/share/frrdmvpn/{gone}")], gone


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


def test_no_conffile_the_example_is_copied_by_the_postinst(deb: Path, tmp_path: Path) -> None:
    # an edited conffile prompts on every upgrade (and stalls unattended upgrades): the
    # configuration is the operator's file, the package ships only the example
    listed = subprocess.run(
        ["dpkg-deb", "-I", str(deb), "conffiles"], capture_output=True, text=True, check=False
    )
    assert listed.returncode != 0, listed.stdout  # no conffiles member at all
    files = _contents(deb)
    assert not [f for f in files if f.startswith("etc")]
    text = _member(deb, "usr/share/frrdmvpn/frrdmvpn.conf", tmp_path)
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines
    assert all(line.startswith("!") for line in lines)
    assert "! interface Tunnel0" in text
    assert (tmp_path / "usr/share/doc/frrdmvpn/examples/frrdmvpn.conf").read_text() == text


#: Where the units are, on Debian 12 and 13 alike (both read it; 13's /lib is an alias).
UNIT_DIR = "usr/lib/systemd/system"


def _settings(text: str) -> dict[str, list[str]]:
    """Each ``Key=value`` line of a unit, every value of a key in order."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith(("#", "[")):
            out.setdefault(key, []).append(value)
    return out


def test_units_order_the_guards_before_charon_and_nhrpd_and_notify_readiness(
    deb: Path, tmp_path: Path
) -> None:
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp_path)], check=True)
    units = tmp_path / UNIT_DIR
    assert not (tmp_path / "lib").exists()  # nothing in /lib: aliased-location on Debian 13
    for unit in UNITS:
        assert (units / unit).is_file(), unit
    guard = _settings((units / "frrdmvpn-guard.service").read_text())
    assert guard["Type"] == ["oneshot"]
    assert guard["RemainAfterExit"] == ["yes"]
    assert "ExecStop" not in guard  # stopping it never removes the guards
    befores = " ".join(guard["Before"]).split()
    assert {"strongswan.service", "frr.service", "frrdmvpn.service"} <= set(befores)
    assert guard["ExecCondition"] == ["/usr/sbin/frrdmvpnd configured --sync-charon-socket"]
    # nftables' restart (Debian's nftables.conf flushes the ruleset) and reload reinstall
    assert guard["PartOf"] == guard["ReloadPropagatedFrom"] == ["nftables.service"]
    assert guard["ExecReload"] == guard["ExecStart"] == ["/usr/sbin/frrdmvpnd guard install"]
    daemon = _settings((units / "frrdmvpn.service").read_text())
    assert (daemon["Type"], daemon["WatchdogSec"]) == (["notify"], ["30"])
    assert daemon["ExecCondition"] == ["/usr/sbin/frrdmvpnd configured"]
    # restarted when it dies or raises, not when its configuration cannot be used: a failed
    # ExecCondition (255) is no abnormal end, and its status is no main process's
    assert (daemon["Restart"], daemon["RestartForceExitStatus"]) == (["on-abnormal"], ["1"])
    proxy = _settings((units / "frrdmvpn-proxy.service").read_text())
    assert proxy["Type"] == ["notify"]
    # the proxy runs whenever charon is relocated, whatever the configuration's state
    assert proxy["ConditionPathExists"] == ["/etc/strongswan.d/frrdmvpn.conf"]
    assert "ExecCondition" not in proxy
    assert {"strongswan.service", "frr.service"} <= set(" ".join(proxy["Before"]).split())
    for found in (daemon, proxy):  # no procps (kill) on a minimal system
        assert found["ExecReload"] == ["/bin/sh -c 'kill -HUP \"$MAINPID\"'"]
    for other in ("frr", "strongswan", "strongswan-starter"):
        dropin = _settings((units / f"{other}.service.d/frrdmvpn.conf").read_text())
        assert dropin["After"] == ["frrdmvpn-guard.service frrdmvpn-proxy.service"]
        assert dropin["ExecStartPre"] == ["/usr/sbin/frrdmvpnd guard check"]
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *[str(units / u) for u in UNITS]],
        capture_output=True,
        text=True,
        check=False,
    )
    problems = [
        line
        for line in done.stderr.splitlines()
        if "frrdmvpn" in line and "Command /usr/sbin" not in line
    ]
    assert not problems, done.stderr


#: The sandbox every unit runs in, and what differs between them.
HARDENING = {
    "NoNewPrivileges": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectHome": "yes",
    "ProtectSystem": "strict",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "ProtectClock": "yes",
    "ProtectHostname": "yes",
    "RestrictNamespaces": "yes",
    "RestrictRealtime": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
    "SystemCallArchitectures": "native",
    "SystemCallFilter": "@system-service",
    "UMask": "0077",
    "RestrictAddressFamilies": "AF_UNIX AF_NETLINK AF_INET AF_INET6",
}
SANDBOXES = {
    # nft and ip xfrm; it writes only /etc/strongswan.d/frrdmvpn.conf
    "frrdmvpn-guard.service": {
        "CapabilityBoundingSet": "CAP_NET_ADMIN",
        "ReadWritePaths": "-/etc/strongswan.d",
    },
    # /run/charon.vici, sockets chowned to group frr, the raw GRE kick, XFRM over netlink
    "frrdmvpn-proxy.service": {
        "CapabilityBoundingSet": "CAP_NET_ADMIN CAP_NET_RAW CAP_CHOWN",
        "ReadWritePaths": "/run",
    },
    # links, XFRM, nft, iptables, the API socket's group, vtysh (groups frrvty and frr),
    # ending an nhrpd hung on its way out, the tunnel's sysctls, the saved configuration
    "frrdmvpn.service": {
        "CapabilityBoundingSet": "CAP_NET_ADMIN CAP_NET_RAW CAP_CHOWN CAP_KILL",
        "SupplementaryGroups": "frrvty frr",
        "ReadWritePaths": "-/etc/frrdmvpn /run/frrdmvpn /proc/sys/net /run/xtables.lock",
    },
}


def test_every_unit_runs_in_a_sandbox_with_only_the_capabilities_it_needs(
    deb: Path, tmp_path: Path
) -> None:
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp_path)], check=True)
    units = tmp_path / UNIT_DIR
    assert not (tmp_path / "lib").exists()  # nothing in /lib: aliased-location on Debian 13
    for unit, own in SANDBOXES.items():
        found = _settings((units / unit).read_text())
        for key, value in {**HARDENING, **own}.items():
            assert found.get(key) == [value], (unit, key, found.get(key))
    # the run-time directory the proxy and frrdmvpnd share exists from boot: neither
    # creates it under the read-only /run of ProtectSystem=strict
    tmpfiles = (tmp_path / "usr/lib/tmpfiles.d/frrdmvpn.conf").read_text()
    assert "d /run/frrdmvpn 0751 root frr -" in tmpfiles.splitlines()
    assert "f /run/xtables.lock 0600 root root -" in tmpfiles.splitlines()  # iptables-legacy


def test_maintainer_scripts_are_valid_sh_and_leave_charon_alone_on_install(
    deb: Path, tmp_path: Path
) -> None:
    subprocess.run(["dpkg-deb", "-e", str(deb), str(tmp_path)], check=True)
    for script in ("postinst", "prerm", "postrm"):
        subprocess.run(["sh", "-n", str(tmp_path / script)], check=True)
    prerm = (tmp_path / "prerm").read_text()
    stop = "deb-systemd-invoke stop frrdmvpn.service frrdmvpn-proxy.service"
    assert stop in prerm  # removal stops the units
    postinst = (tmp_path / "postinst").read_text()
    assert "addgroup --system" in postinst
    # installing never moves charon's socket nor restarts it (nor FRR), and starts none of
    # frrdmvpn's units (the proxy would take /run/charon.vici from a charon not yet moved);
    # an upgrade restarts those that run
    assert "strongswan.service" not in postinst
    assert "ln -s /usr/share" not in postinst
    assert "_dh_action" not in postinst
    assert "systemctl --system daemon-reload" in postinst  # the drop-ins are known at once
    assert "deb-systemd-invoke try-restart frrdmvpn-guard.service frrdmvpn-proxy.service" in (
        postinst
    )
    assert 'install -m 0600 -o root -g root "$example" "$conf"' in postinst
    assert 'for kept in "$conf" "$conf.prev"; do' in postinst
    assert 'chmod go-rwx "$kept"' in postinst
    # operators and administrators, each a group of its own, gone on purge
    assert "for group in frrdmvpn frrdmvpn-admin; do" in postinst
    postrm = (tmp_path / "postrm").read_text()
    purge = postrm.split("purge)", 1)[1].split(";;", 1)[0]
    assert "for group in frrdmvpn frrdmvpn-admin; do" in purge
    assert 'delgroup --system --quiet "$group"' in purge
    assert "rm -rf /etc/frrdmvpn" in postrm
    # removal from a configured node: the file goes, charon restarts after the reload
    remove = postrm.split("remove)", 1)[1].split(";;", 1)[0]
    assert 'rm -f "$dropin"' in remove
    assert postrm.index("daemon-reload") < postrm.index('try-restart "$unit"')


def test_the_build_uses_no_network(root_user: None, tmp_path: Path) -> None:
    """scripts/build-deb with no network at all (an unshared, empty network namespace)."""
    done = subprocess.run(
        ["unshare", "-n", str(ROOT / "scripts/build-deb"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert list(tmp_path.glob("frrdmvpn_*_all.deb"))


def test_the_version_is_the_codes_version(deb: Path) -> None:
    from frrdmvpn import __version__  # noqa: PLC0415

    version = _control(deb, "control")
    assert re.search(rf"^Version: {re.escape(__version__)}$", version, re.M), version
