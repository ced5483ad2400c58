"""The lab on a kernel that has GRE and ESP: one network namespace and private mounts per node.

Every command for a node runs through :meth:`Lab.argv` in the node's namespaces: its network
namespace and a mount namespace with bind mounts of the node's own /etc/frr, /etc/swanctl,
/etc/strongswan.conf, /var/log and finally /run, so zebra, nhrpd, ospfd, charon, vtysh and
swanctl all run with their default paths and reach their own node's daemons. Each node keeps
one such mount namespace, held by an anchor process (``sleep infinity``, its pid in the node's
directory), and a command enters it with ``nsenter``: two programs per command instead of the
eight of ``ip netns exec`` + ``sh`` + five ``mount``s, which under TCG cost 2.0 s a command
(0.2 s with the anchor). Without a live anchor a command builds the namespace itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from frrdmvpn.adapters.vtysh import extract_json
from lab import pki
from lab import topology as topo
from lab.release import Userland, current_userland
from lab.topology import NODES, Node

NETNS_DIR = Path("/run/netns")  # where `ip netns add` names network namespaces
ANCHOR_PID = "anchor.pid"  # in a node's directory: the process holding its mount namespace
STATE_DIR = Path(os.environ.get("FRRDMVPN_LAB_DIR", "/var/tmp/frrdmvpn-lab/native"))
TIMEOUT = float(os.environ.get("LAB_TIMEOUT", "120"))
MODE = os.environ.get("FRRDMVPN_LAB_PROTECT", "frrdmvpn")
#: The frrdmvpn Debian package the lab installs and runs on its nodes; unset: this tree.
DEB = os.environ.get("FRRDMVPN_LAB_DEB", "")
PACKAGE_BIN = {
    "frrdmvpnd": "/usr/sbin/frrdmvpnd",
    "frrdmvpn-proxy": "/usr/sbin/frrdmvpn-proxy",
    "frrdmvpn-shell": "/usr/bin/frrdmvpn-shell",
}
FRR_DAEMONS = ("zebra", "nhrpd", "ospfd")
API_GROUP = "frrdmvpn"  # operators: may use frrdmvpnd's API socket
ADMIN_GROUP = "frrdmvpn-admin"  # administrators: may use its administrators' socket
SWANCTL_DIRS = (
    "conf.d",
    "x509",
    "x509ca",
    "x509aa",
    "x509ocsp",
    "x509crl",
    "x509ac",
    "pubkey",
    "private",
    "rsa",
    "ecdsa",
    "bliss",
    "pkcs8",
    "pkcs12",
)
# Bind /run last: it hides everything else under /run.
_BIND = (
    "set -e; d=$LAB_NODE_DIR; "
    "mount --bind $d/etc/frr /etc/frr; "
    "mount --bind $d/etc/swanctl /etc/swanctl; "
    "mount --bind $d/etc/strongswan.conf /etc/strongswan.conf; "
    "mount --bind $d/log /var/log; "
    "mount --bind $d/run /run; "
    'exec "$@"'
)


class LabError(RuntimeError):
    """The lab could not be built, reached or torn down."""


def wait_for(what: str, check: Callable[[], bool], timeout: float = TIMEOUT) -> float:
    """Poll ``check`` until true; returns seconds waited; raises LabError after ``timeout``."""
    t0 = time.monotonic()
    while True:
        if check():
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise LabError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.25)


def _sh(
    argv: Sequence[str], check: bool = True, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(argv), capture_output=True, text=True, check=False, input=input)
    if check and done.returncode != 0:
        raise LabError(f"{shlex.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return done


def _alive(pid: int) -> bool:
    """Running, not a zombie (a daemon the lab spawned is reaped here once it died)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _is_program(pid: int, program: str) -> bool:
    """True when process ``pid`` runs ``program`` (its argv[0]; not e.g. an nsenter for it)."""
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0]
    except OSError:
        return False
    return argv0.decode(errors="replace") == program


def program_name(pid: int, watched: Collection[str]) -> str | None:
    """Which of the ``watched`` programs process ``pid`` is, by the first words of its
    command line (``charon-systemd`` counts as ``charon``); None for anything else."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    for arg in argv[:3]:
        base = os.path.basename(arg.decode(errors="replace")).removesuffix("-systemd")
        if base in watched:
            return base
    return None


def _frr_config(daemon: str, first: Sequence[str]) -> list[str]:
    """A daemon's ``-f`` option: FRR 10's mgmtd has none (it holds no configuration here)."""
    return [] if daemon in first else ["-f", f"/etc/frr/{daemon}.conf"]


def _batch(netns: str, commands: list[str]) -> None:
    _sh(["ip", "-n", netns, "-batch", "-"], input="\n".join(commands) + "\n")


class Lab:
    """The three-node DMVPN lab in this kernel's network namespaces."""

    def __init__(
        self, state_dir: Path = STATE_DIR, mode: str | None = None, deb: str = DEB
    ) -> None:
        self.state_dir = state_dir
        self._mode = mode
        self._deb = deb
        self._package: str | None = None
        self._userland: Userland | None = None

    @property
    def userland(self) -> Userland:
        """How this root's release runs charon and FRR (``lab.release``)."""
        if self._userland is None:
            self._userland = current_userland()
        return self._userland

    @property
    def mode(self) -> str:
        """The IPsec mode: as asked, else as the running lab was built, else the default."""
        if self._mode is None:
            try:
                self._mode = str(json.loads(self.state_file.read_text())["mode"])
            except (OSError, ValueError, KeyError):
                self._mode = MODE
        if self._mode not in topo.MODES:
            raise LabError(f"unknown lab mode {self._mode!r} (modes: {', '.join(topo.MODES)})")
        return self._mode

    @property
    def package(self) -> str:
        """The frrdmvpn package version the nodes run ("" when they run this source tree)."""
        if self._package is None:
            self._package = str(self._state().get("package", ""))
        return self._package

    def program(self, name: str) -> str:
        """Path of frrdmvpn's program ``name`` as the nodes run it: the installed package's,
        else this tree's (the console scripts beside this Python)."""
        beside = Path(sys.executable).parent / name
        if self.package or not beside.exists():  # not run from a virtualenv's console script
            return PACKAGE_BIN[name]
        return str(beside)

    def _install_package(self) -> None:
        """Install the frrdmvpn .deb on this machine (inside the lab VM: its throw-away root),
        as an operator would; package scripts start no service here (policy-rc.d)."""
        deb = Path(self._deb).resolve()
        fields = [
            _sh(["dpkg-deb", "-f", str(deb), field]).stdout.strip()
            for field in ("Package", "Version")
        ]
        if fields[0] != "frrdmvpn":
            raise LabError(f"{deb} is not the frrdmvpn package")
        if "frrdmvpn.run=" in Path("/proc/cmdline").read_text():
            # The lab VM's root is throw-away and its /usr a 9p share: man-db's index
            # rebuild (its trigger) would take minutes there for nothing.
            Path("/var/lib/man-db/auto-update").unlink(missing_ok=True)
        policy = Path("/usr/sbin/policy-rc.d")
        created = not policy.exists()
        if created:
            policy.write_text("#!/bin/sh\nexit 101\n")
            policy.chmod(0o755)
        try:
            env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
            done = subprocess.run(
                ["dpkg", "-i", str(deb)], capture_output=True, text=True, check=False, env=env
            )
        finally:
            if created:
                policy.unlink()
        if done.returncode != 0:
            raise LabError(f"dpkg -i {deb} failed: {(done.stderr or done.stdout).strip()}")
        self._package = fields[1]

    # -- node access ---------------------------------------------------------------------
    def node_dir(self, n: Node) -> Path:
        return self.state_dir / "nodes" / n.name

    def argv(self, name: str, cmd: Sequence[str]) -> list[str]:
        """argv that runs ``cmd`` inside node ``name`` (netns + private mounts)."""
        n = topo.node(name)
        anchor = self._anchor(n)
        if anchor is not None:
            return ["nsenter", "-t", str(anchor), "-m", "-n", "--", *cmd]
        return self._namespaced_argv(n, cmd)

    def _namespaced_argv(self, n: Node, cmd: Sequence[str]) -> list[str]:
        """argv that enters ``n``'s network namespace and builds its mount namespace."""
        return [
            "ip",
            "netns",
            "exec",
            n.netns,
            "env",
            f"LAB_NODE_DIR={self.node_dir(n)}",
            "sh",
            "-c",
            _BIND,
            "sh",
            *cmd,
        ]

    def _anchor(self, n: Node) -> int | None:
        """The pid of node ``n``'s anchor, if it lives in ``n``'s network namespace."""
        try:
            pid = int((self.node_dir(n) / ANCHOR_PID).read_text())
            held = os.stat(f"/proc/{pid}/ns/net")
            own = os.stat(NETNS_DIR / n.netns)
        except (OSError, ValueError):
            return None
        return pid if (held.st_dev, held.st_ino) == (own.st_dev, own.st_ino) else None

    def _start_anchor(self, n: Node) -> None:
        """Node ``n``'s anchor: a process that holds the node's mount namespace."""
        proc = subprocess.Popen(
            self._namespaced_argv(n, ["sleep", "infinity"]),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )

        def ready() -> bool:  # the mounts are made once the shell has become `sleep`
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise LabError(f"{n.name}'s anchor exited ({proc.returncode}): {err.strip()}")
            with contextlib.suppress(OSError):
                return Path(f"/proc/{proc.pid}/comm").read_text().strip() == "sleep"
            return False

        wait_for(f"{n.name}'s anchor", ready, 60)
        (self.node_dir(n) / ANCHOR_PID).write_text(f"{proc.pid}\n")

    def run(
        self, name: str, cmd: Sequence[str], check: bool = True, timeout: float = TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """Run ``cmd`` in node ``name`` and capture its output."""
        done = subprocess.run(
            self.argv(name, cmd), capture_output=True, text=True, check=False, timeout=timeout
        )
        if check and done.returncode != 0:
            raise LabError(
                f"[{name}] {shlex.join(cmd)} failed ({done.returncode}): "
                f"{(done.stderr or done.stdout).strip()}"
            )
        return done

    def vtysh(self, name: str, command: str) -> str:
        return self.run(name, ["vtysh", "-c", command]).stdout

    def vtysh_json(self, name: str, command: str) -> Any:
        return extract_json(self.vtysh(name, command))

    def vici_socket(self, name: str) -> Path:
        """Path, seen from outside the node, of the node's charon VICI socket."""
        return self.node_dir(topo.node(name)) / "run" / "charon.vici"

    # -- lifecycle -----------------------------------------------------------------------
    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    def is_up(self) -> bool:
        return self.state_file.exists()

    def namespaces(self) -> list[str]:
        """The lab's named network namespaces (as ``ip netns list`` finds them)."""
        with contextlib.suppress(FileNotFoundError):
            return sorted(p.name for p in NETNS_DIR.iterdir() if p.name.startswith(topo.NS_PREFIX))
        return []

    def up(self) -> dict[str, float]:
        """Build the lab; returns timings of its phases (seconds)."""
        if self.is_up() or self.namespaces():
            raise LabError("the lab is already (partly) up: run `frrdmvpn-lab down` first")
        timings: dict[str, float] = {}
        t0 = time.monotonic()
        self._package = ""
        if self._deb and self.mode == "frrdmvpn":
            self._install_package()
            timings["package"] = time.monotonic() - t0
        try:
            self._write_files()
            self._build_network()
            timings["network"] = time.monotonic() - t0
            if self.mode == "frrdmvpn":
                self._install_guards()
                timings["guards"] = time.monotonic() - t0
            self._start_charon()
            timings["charon"] = time.monotonic() - t0
            if self.mode == "frrdmvpn":
                self._start_proxy()
                timings["proxy"] = time.monotonic() - t0
            self._start_frr()
            timings["frr"] = time.monotonic() - t0
            if self.mode == "frrdmvpn":
                self._start_supervisors(NODES)  # each applies its node's frrdmvpn.conf
                timings["applied"] = time.monotonic() - t0
        except BaseException:
            self.down()
            raise
        self._save_state(
            {"mode": self.mode, "auth": self.auth, "package": self.package, "timings": timings}
        )
        return timings

    def _save_state(self, state: dict[str, Any]) -> None:
        self.state_file.write_text(json.dumps(state, indent=1))

    def _state(self) -> dict[str, Any]:
        try:
            state = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}
        return state if isinstance(state, dict) else {}

    @property
    def auth(self) -> str:
        """IKE authentication the nodes use: ``psk`` (lab default) or ``cert``."""
        return str(self._state().get("auth", "psk"))

    @property
    def nodes(self) -> tuple[Node, ...]:
        """The three lab nodes and any added with :meth:`add_node`."""
        return NODES + tuple(n for n in topo.EXTRA_NODES if self.node_dir(n).exists())

    def config_path(self, n: Node) -> Path:
        """Node ``n``'s ``frrdmvpn.conf`` (the same path inside and outside the node)."""
        return self.node_dir(n) / "etc/frrdmvpn/frrdmvpn.conf"

    def apply(self, name: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``frrdmvpnd apply`` node ``name``'s ``frrdmvpn.conf``."""
        n = topo.node(name)
        argv = [self.program("frrdmvpnd"), "apply", "-c", str(self.config_path(n))]
        done = self.run(name, argv, check=False)
        with open(self.node_dir(n) / "log" / "frrdmvpn-apply.log", "a") as log:
            log.write(f"$ {shlex.join(argv)}\n{done.stdout}{done.stderr}(exit {done.returncode})\n")
        if check and done.returncode != 0:
            raise LabError(
                f"[{name}] frrdmvpnd apply failed: {(done.stderr or done.stdout).strip()}"
            )
        return done

    def _write_swanctl(self, n: Node) -> None:
        swanctl = self.node_dir(n) / "etc/swanctl"
        if self.mode == "frrdmvpn":
            conf = self.config_path(n)
            conf.parent.mkdir(parents=True, exist_ok=True)
            conf.write_text(topo.frrdmvpn_conf(n, self.auth))
        if self.auth == "cert":
            ca_dir = self.state_dir / "pki"
            ident = pki.Identity(
                n.name, (n.entitled_overlay.ip, n.nbma.ip), (n.lan.network,), topo.cert_dns_names(n)
            )
            serial = 2 + [x.name for x in NODES + topo.EXTRA_NODES].index(n.name)
            cert, key = pki.issue(ca_dir, ident, serial)
            shutil.copy(cert, swanctl / "x509" / cert.name)
            shutil.copy(key, swanctl / "private" / key.name)
            shutil.copy(ca_dir / "ca.pem", swanctl / "x509ca" / "ca.pem")
        if self.mode == "frrdmvpn":  # charon is configured over VICI only
            (swanctl / "swanctl.conf").write_text("# frrdmvpn configures charon over VICI\n")
        else:
            (swanctl / "swanctl.conf").write_text(topo.swanctl_conf(n, self.auth))

    def set_auth(self, auth: str) -> None:
        """Switch every node's IKE authentication (``psk`` or ``cert``) in the running lab:
        new credentials and connection in charon, the proxies restarted with the matching
        authorization policy, IKE_SAs re-established with the new credentials."""
        if auth not in topo.AUTHS:
            raise LabError(f"unknown IKE authentication {auth!r} (one of {topo.AUTHS})")
        state = self._state()
        state["auth"] = auth
        self._save_state(state)
        uri = f"unix://{self.charon_socket}"
        for n in self.nodes:
            self._write_swanctl(n)
            if self.mode == "frrdmvpn":
                self.apply(n.name)  # which also has the proxy re-read its policy
            else:
                self.run(n.name, ["swanctl", "--load-all", "--noprompt", "--uri", uri])
        for n in self.nodes:
            if not n.is_hub:
                self.run(
                    n.name,
                    [
                        "swanctl",
                        "--terminate",
                        "--ike",
                        "dmvpn",
                        "--force",
                        "--timeout",
                        "10",
                        "--uri",
                        uri,
                    ],
                    check=False,
                )

    def add_node(self, n: Node) -> None:
        """Bring one of ``topo.EXTRA_NODES`` up in the running lab, like ``up`` does."""
        if self.node_dir(n).exists():
            raise LabError(f"{n.name} is already in the lab")
        self._write_node_files(n)
        self.build_node(n)
        self._start_anchor(n)
        if self.mode == "frrdmvpn":
            self._install_guards((n,))
        self._start_charon((n,))
        if self.mode == "frrdmvpn":
            self._start_proxy((n,))
        self._start_frr((n,))
        if self.mode == "frrdmvpn":
            self._start_supervisors((n,))

    def add_bare_node(self, n: Node, files: Mapping[str, str]) -> None:
        """A node with its namespaces and ``files`` (paths in its directory) but no daemon:
        what runs there is the caller's (:mod:`lab.swarm`). ``remove_node`` takes it out."""
        d = self.node_dir(n)
        if d.exists():
            raise LabError(f"{n.name} is already in the lab")
        for sub in ("etc/frr", "log", "run", *(f"etc/swanctl/{s}" for s in SWANCTL_DIRS)):
            (d / sub).mkdir(parents=True)
        for path, text in files.items():
            (d / path).write_text(text)
        self.build_node(n)
        self._start_anchor(n)

    def batch(self, name: str, commands: list[str]) -> None:
        """``ip -batch`` ``commands`` in node ``name``'s network namespace."""
        _batch(topo.node(name).netns, commands)

    def spawn(
        self, name: str, cmd: list[str], log_name: str | None, env: Mapping[str, str] | None = None
    ) -> None:
        """Start ``cmd`` in node ``name`` in the background (its output to ``log_name`` in the
        node's log directory, or nowhere)."""
        self._spawn(topo.node(name), cmd, log_name, env)

    def remove_node(self, n: Node) -> None:
        """Take an added node out again: its processes, namespace, veth and files."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = self.pids().get(n.netns, [])
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            with contextlib.suppress(LabError):
                wait_for(f"{n.name}'s processes to exit", lambda: not self.pids().get(n.netns), 10)
                break
        if n.netns in self.namespaces():
            _sh(["ip", "netns", "delete", n.netns])
        _sh(["ip", "-n", topo.UNDERLAY_NS, "link", "delete", n.name], check=False)
        shutil.rmtree(self.node_dir(n), ignore_errors=True)

    def _write_files(self) -> None:
        if self.state_dir.exists():
            shutil.rmtree(self.state_dir)
        for n in NODES:
            self._write_node_files(n)

    def _write_node_files(self, n: Node) -> None:
        d = self.node_dir(n)
        for sub in ("etc/frr", "log/frr", "run/frr"):
            (d / sub).mkdir(parents=True)
        for sub in SWANCTL_DIRS:
            (d / "etc/swanctl" / sub).mkdir(parents=True)
        for fname, text in topo.frr_files(n, self.mode).items():
            (d / "etc/frr" / fname).write_text(text)
        self._write_swanctl(n)
        (d / "etc/strongswan.conf").write_text(topo.strongswan_conf(n, self.mode))
        (d / "etc/swanctl/private").chmod(0o700)
        for sub in ("etc/frr", "log/frr", "run/frr"):
            shutil.chown(d / sub, "frr", "frr")
            for f in (d / sub).iterdir():
                shutil.chown(f, "frr", "frr")

    def _build_network(self) -> None:
        ul = topo.UNDERLAY_NS
        _sh(["ip", "netns", "add", ul])
        _batch(ul, topo.underlay_commands())
        for n in NODES:
            self.build_node(n)
            self._start_anchor(n)

    def build_node(self, n: Node) -> None:
        """Node ``n``'s namespace, its veth on the underlay bridge, addresses and LAN."""
        ul = topo.UNDERLAY_NS
        _sh(["ip", "netns", "add", n.netns])
        _batch(
            ul,
            [
                f"link add {n.name} type veth peer name eth0 netns {n.netns}",
                f"link set {n.name} master {topo.BRIDGE} up",
            ],
        )
        _batch(n.netns, topo.node_commands(n, self.mode))
        if self.mode == "frrdmvpn":
            return  # the tunnel, its sysctls and nhrpd's hooks come from `frrdmvpnd apply`
        sysctls = [f"{k}={v}" for k, v in topo.SYSCTLS]
        _sh(["ip", "netns", "exec", n.netns, "sysctl", "-q", "-w", *sysctls])
        _sh(["ip", "-n", n.netns, "link", "set", "gre1", "up"])
        rules = "*filter\n" + "".join(" ".join(r) + "\n" for r in topo.iptables_rules(n))
        _sh(
            ["ip", "netns", "exec", n.netns, "iptables-restore", "--noflush"],
            input=rules + "COMMIT\n",
        )

    def _start_charon(self, nodes: tuple[Node, ...] = NODES) -> None:
        """charon first, config loaded, before any GRE can be sent (lab notes gotcha 6)."""
        for n in nodes:
            self._spawn_charon(n)
        for n in nodes:
            sock = self.node_dir(n) / "run" / Path(self.charon_socket).name
            wait_for(f"charon's VICI socket on {n.name}", sock.exists)
        if self.mode == "frrdmvpn":
            return  # connections and credentials come from `frrdmvpnd apply`
        for n in nodes:
            self.run(
                n.name,
                ["swanctl", "--load-all", "--noprompt", "--uri", f"unix://{self.charon_socket}"],
            )

    @property
    def charon_socket(self) -> str:
        """charon's own VICI socket inside a node (relocated behind the proxy in frrdmvpn mode)."""
        return topo.CHARON_VICI if self.mode == "frrdmvpn" else "/var/run/charon.vici"

    def _spawn_charon(self, n: Node) -> None:
        """charon-systemd, as the package runs it; its stdio is /dev/null, not a file of the
        lab's (AppArmor revalidates inherited files at exec into its profile: file_inherit)."""
        self._spawn(n, [topo.CHARON], None)

    def _spawn(
        self, n: Node, cmd: list[str], log_name: str | None, env: Mapping[str, str] | None = None
    ) -> None:
        if log_name is None:
            subprocess.Popen(
                self.argv(n.name, cmd),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                env=env,
            )
            return
        with open(self.node_dir(n) / "log" / log_name, "ab") as log:
            subprocess.Popen(
                self.argv(n.name, cmd),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
            )

    def charon_pid(self, name: str) -> int | None:
        """charon's pid on node ``name`` (charon-systemd writes no pid file: found by program)."""
        for pid in self.find(name, topo.CHARON):
            if _alive(pid) and _is_program(pid, topo.CHARON):
                return pid
        return None

    def stop_charon(self, name: str, sig: int = signal.SIGTERM) -> None:
        """Stop node ``name``'s charon (SIGTERM: clean stop, it flushes its policies)."""
        pid = self.charon_pid(name)
        if pid is None:
            raise LabError(f"charon is not running on {name}")
        os.kill(pid, sig)
        wait_for(f"charon on {name} to exit", lambda: self.charon_pid(name) is None, 30)

    def start_charon(self, name: str) -> None:
        """Start node ``name``'s charon and load its configuration (in frrdmvpn mode,
        frrdmvpnd loads it when it sees charon back)."""
        n = topo.node(name)
        sock = self.node_dir(n) / "run" / Path(self.charon_socket).name
        with contextlib.suppress(FileNotFoundError):
            sock.unlink()
        self._spawn_charon(n)
        wait_for(f"charon's VICI socket on {name}", sock.exists)
        if self.mode == "frrdmvpn":
            return  # swanctl --load-all would even unload what frrdmvpnd loads meanwhile
        self.run(
            name, ["swanctl", "--load-all", "--noprompt", "--uri", f"unix://{self.charon_socket}"]
        )

    def add_host(self, name: str, address: str) -> str:
        """A bare host on the underlay (no IPsec, no FRR), e.g. an attacker; returns its netns.
        `down` removes it with the rest."""
        ns = topo.NS_PREFIX + name
        _sh(["ip", "netns", "add", ns])
        _batch(
            topo.UNDERLAY_NS,
            [
                f"link add {name} type veth peer name eth0 netns {ns}",
                f"link set {name} master {topo.BRIDGE} up",
            ],
        )
        _batch(ns, ["link set lo up", f"addr add {address} dev eth0", "link set eth0 up"])
        return ns

    def set_psk(self, name: str, psk: str) -> None:
        """Replace node ``name``'s IKE pre-shared key (e.g. a wrong one, to make IKE fail)."""
        if self.mode == "frrdmvpn":
            conf = self.config_path(topo.node(name))
            text = conf.read_text()
            start = text.index("pre-shared-key ") + len("pre-shared-key ")
            conf.write_text(text[:start] + psk + text[text.index("\n", start) :])
            self.apply(name)
            return
        conf = self.node_dir(topo.node(name)) / "etc/swanctl/swanctl.conf"
        text = conf.read_text()
        start = text.index('secret = "') + len('secret = "')
        conf.write_text(text[:start] + psk + text[text.index('"', start) :])
        self.run(
            name,
            [
                "swanctl",
                "--load-creds",
                "--clear",
                "--noprompt",
                "--uri",
                f"unix://{self.charon_socket}",
            ],
        )

    def find(self, name: str, needle: str) -> list[int]:
        """Pids in node ``name`` whose command line contains ``needle``."""
        found = []
        for pid in self.pids().get(topo.node(name).netns, []):
            with contextlib.suppress(OSError):
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
                if needle.encode() in cmdline:
                    found.append(pid)
        return found

    def kill(self, name: str, needle: str, sig: int = signal.SIGKILL) -> None:
        """Kill node ``name``'s processes matching ``needle`` and wait until they are gone."""
        pids = self.find(name, needle)
        if not pids:
            raise LabError(f"no process matching {needle!r} on {name}")
        for pid in pids:
            os.kill(pid, sig)
        wait_for(f"{needle} on {name} to exit", lambda: not self.find(name, needle), 30)

    def _proxy_argv(self, n: Node) -> list[str]:
        if self.mode == "frrdmvpn":  # the policy of what frrdmvpnd applied (SIGHUP on apply)
            return topo.proxy_argv_config(
                self.program("frrdmvpn-proxy"), "/run/frrdmvpn/running.conf"
            )
        return topo.proxy_argv(self.program("frrdmvpn-proxy"), self.auth)

    def start_proxy(self, name: str, argv: list[str] | None = None) -> None:
        """Start node ``name``'s frrdmvpn-proxy (``argv``: another command line, e.g. a
        policy given on it instead of the applied configuration's)."""
        n = topo.node(name)
        self._spawn(n, argv or self._proxy_argv(n), "frrdmvpn-proxy.log")
        sock = self.node_dir(n) / "run" / "charon.vici"
        wait_for(
            f"frrdmvpn-proxy on {name}",
            lambda: bool(self.find(name, "frrdmvpn-proxy")) and sock.exists(),
        )

    def start_supervisor(self, name: str) -> None:
        """Start node ``name``'s frrdmvpnd (in frrdmvpn mode it applies the node's config)."""
        n = topo.node(name)
        config = str(self.config_path(n)) if self.mode == "frrdmvpn" else None
        argv = topo.supervisor_argv(self.program("frrdmvpnd"), n, config)
        self._spawn(n, argv, "frrdmvpnd.log")

    def _install_guards(self, nodes: tuple[Node, ...] = NODES) -> None:
        """frrdmvpn's fail-closed guards, before charon or nhrpd can send anything (the nodes
        at once: each is a Python program's start-up, seconds under TCG)."""
        running = {
            n.name: subprocess.Popen(
                self.argv(n.name, topo.guard_argv(self.program("frrdmvpnd"), n)),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for n in nodes
        }
        failed = {}
        for name, proc in running.items():
            out, err = proc.communicate(timeout=TIMEOUT)
            if proc.returncode != 0:
                failed[name] = f"({proc.returncode}): {(err or out).strip()}"
        if failed:
            raise LabError(f"frrdmvpnd guard install failed: {failed}")

    def _start_proxy(self, nodes: tuple[Node, ...] = NODES) -> None:
        """frrdmvpn's enforcement process: nhrpd's VICI proxy and event socket."""
        for n in nodes:
            self._spawn(n, self._proxy_argv(n), "frrdmvpn-proxy.log")
        for n in nodes:
            for sock in ("charon.vici", "frrdmvpn/nhrp-events.sock"):
                path = self.node_dir(n) / "run" / sock
                wait_for(f"frrdmvpn-proxy's {sock} on {n.name}", path.exists)

    def api_socket(self, name: str) -> Path:
        """Node ``name``'s gRPC API socket (/run/frrdmvpn/frrdmvpn.sock inside the node)."""
        return self.node_dir(topo.node(name)) / "run" / "frrdmvpn" / "frrdmvpn.sock"

    def api_admin_socket(self, name: str) -> Path:
        """Node ``name``'s gRPC API socket for administrators
        (/run/frrdmvpn/frrdmvpn-admin.sock inside the node)."""
        return self.node_dir(topo.node(name)) / "run" / "frrdmvpn" / "frrdmvpn-admin.sock"

    def _start_supervisors(self, nodes: tuple[Node, ...]) -> None:
        """frrdmvpnd on each node: it applies the node's frrdmvpn.conf, then supervises."""
        # The API's groups (the Debian package creates them; the lab's host may not have them).
        for group in (API_GROUP, ADMIN_GROUP):
            known = subprocess.run(["getent", "group", group], capture_output=True, check=False)
            if known.returncode:
                subprocess.run(["groupadd", "--system", group], check=True)
        for n in nodes:
            (self.node_dir(n) / "run/frrdmvpn/running.conf").unlink(missing_ok=True)
            self.start_supervisor(n.name)
        for n in nodes:
            running = self.node_dir(n) / "run/frrdmvpn/running.conf"
            wait_for(f"frrdmvpnd to apply {n.name}'s frrdmvpn.conf", running.exists, 120)
            sock = self.api_socket(n.name)
            wait_for(f"frrdmvpnd's API on {n.name}", sock.exists, 60)

    def start_frr(self, name: str, daemons: Sequence[str] = FRR_DAEMONS) -> None:
        """Start node ``name``'s zebra, nhrpd and ospfd (or only ``daemons`` of them)."""
        self._start_frr((topo.node(name),), daemons)

    def _start_frr(
        self, nodes: tuple[Node, ...] = NODES, only: Sequence[str] = FRR_DAEMONS
    ) -> None:
        first = tuple(d for d in self.userland.frr_first if Path(f"/usr/lib/frr/{d}").exists())
        for stage in (first, ("zebra",), ("nhrpd", "ospfd")):
            # a release's earlier daemons (FRR 10: mgmtd) come with zebra
            daemons = [d for d in stage if d in only or ("zebra" in only and d in first)]
            started = [
                (n, d, self._frr_stderr(n, d))
                for d in daemons
                for n in nodes
                if d != "ospfd" or n.ospf
            ]
            procs = [
                subprocess.Popen(
                    self.argv(
                        n.name, [f"/usr/lib/frr/{d}", "-d", "-P", "0", *_frr_config(d, first)]
                    ),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE if err is None else err,
                )
                for n, d, err in started
            ]
            for p, (_, _, err_file) in zip(procs, started, strict=True):
                _, err = p.communicate(timeout=TIMEOUT)
                if err_file is not None:
                    err_file.close()
                    err = Path(err_file.name).read_bytes()
                if p.returncode != 0:
                    raise LabError(f"{p.args!r}: {err.decode().strip()}")
            for d in daemons:
                for n in nodes:
                    if d == "ospfd" and not n.ospf:
                        continue
                    vty = self.node_dir(n) / "run" / "frr" / f"{d}.vty"
                    wait_for(f"{d} on {n.name}", vty.exists)

    def _frr_stderr(self, n: Node, daemon: str) -> BinaryIO | None:
        """Where a starting FRR daemon's stderr goes: a pipe read until the daemon detaches
        (FRR 8), or a file (FRR 10 daemons keep their stdio until the end of configuration,
        which only ``vtysh -b`` announces: a pipe would never close)."""
        if not self.userland.frr_stdio_file:
            return None
        return open(self.node_dir(n) / "log" / "frr" / f"{daemon}.stderr", "wb")

    def pids(self) -> dict[str, list[int]]:
        """Processes living in each lab namespace (as ``ip netns pids`` finds them: the
        process's network namespace is the named one, same device and inode)."""
        names: dict[tuple[int, int], str] = {}
        for ns in self.namespaces():
            with contextlib.suppress(OSError):
                st = os.stat(NETNS_DIR / ns)
                names[(st.st_dev, st.st_ino)] = ns
        found: dict[str, list[int]] = {ns: [] for ns in names.values()}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                st = os.stat(f"/proc/{entry.name}/ns/net")
                held = names.get((st.st_dev, st.st_ino))
                if held is not None:
                    found[held].append(int(entry.name))
        return {ns: sorted(pids) for ns, pids in found.items()}

    def down(self) -> None:
        """Kill the lab's processes (only those in its namespaces), delete namespaces and files."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pids in self.pids().values():
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, sig)
            with contextlib.suppress(LabError):
                wait_for("lab processes to exit", lambda: not any(self.pids().values()), 10)
                break
        leftover = {ns: p for ns, p in self.pids().items() if p}
        if leftover:
            raise LabError(f"processes survived SIGKILL: {leftover}")
        for ns in self.namespaces():
            _sh(["ip", "netns", "delete", ns])
        if self.state_dir.exists():
            shutil.rmtree(self.state_dir)

    def collect_logs(self, dest: Path) -> None:
        """Copy every node's logs (FRR, charon) to ``dest/<node>/``."""
        for n in self.nodes:
            src = self.node_dir(n) / "log"
            if src.exists():
                shutil.copytree(src, dest / n.name, dirs_exist_ok=True)
            run_log = self.node_dir(n) / "run" / Path(topo.CHARON_LOG).name
            if run_log.exists():
                (dest / n.name).mkdir(parents=True, exist_ok=True)
                shutil.copy(run_log, dest / n.name / run_log.name)

    def status(self) -> dict[str, Any]:
        """What is running, per node."""
        pids = self.pids()
        result: dict[str, Any] = {"up": self.is_up(), "nodes": {}}
        for n in NODES:
            names = []
            anchor = self._anchor(n)
            for pid in pids.get(n.netns, []):
                if pid == anchor:
                    continue
                with contextlib.suppress(OSError):
                    names.append(Path(f"/proc/{pid}/comm").read_text().strip())
            result["nodes"][n.name] = sorted(names)
        return result
