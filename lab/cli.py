"""``frrdmvpn-lab``: bring the three-node DMVPN lab up and down, run commands and tests in it.

Where this kernel has GRE and ESP the lab runs directly in network namespaces; elsewhere
(e.g. a kernel without ip_gre/esp4) the same lab runs inside a QEMU VM booting Debian's
kernel on this machine's root filesystem, and every subcommand is relayed into it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from frrdmvpn import __version__
from lab import release as rel
from lab.kernel import native_capable
from lab.netns import Lab, LabError, wait_for
from lab.swarm import MAX_SPOKES, Swarm
from lab.topology import MODES, NODES
from lab.vm import LabVm, VmError, checkout_dir, prepare_guest, run_dir_for

VM_DIR = Path(os.environ.get("FRRDMVPN_LAB_VM_DIR", "/var/tmp/frrdmvpn-lab/vm"))
TEST_VM_DIR = VM_DIR.with_name("vm-test")


def _self_argv(vm: LabVm, *args: str) -> list[str]:
    return [vm.python, "-m", "lab.cli", *args]


def _lab_vm(base: Path = VM_DIR) -> LabVm:
    """The lab VM of the selected release (``FRRDMVPN_LAB_RELEASE``)."""
    release = rel.selected()
    return LabVm(run_dir_for(base, release), release)


def _guest_file(vm: LabVm, path: str) -> str:
    """``path`` as the guest sees it: on the host root as is; on a built root a file outside
    the shared checkout is copied into the (shared) run directory first."""
    if not path or rel.uses_host_root(vm.release):
        return path
    src = Path(path)
    if src.is_relative_to(checkout_dir()):
        return path
    dest = vm.run_dir / "files" / src.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dest)
    return str(dest)


def _guest_cwd(vm: LabVm) -> str:
    """The guest's working directory: this one on the host root, else the checkout."""
    return os.getcwd() if rel.uses_host_root(vm.release) else str(checkout_dir())


def _vm(base: Path = VM_DIR) -> LabVm:
    vm = _lab_vm(base)
    if not vm.running():
        raise VmError("the lab is not up (no lab VM running): run `frrdmvpn-lab up`")
    return vm


def cmd_prepare(_args: argparse.Namespace) -> int:
    if native_capable():
        print("frrdmvpn-lab: this kernel has GRE and ESP; the lab runs natively")
    else:
        t0 = time.monotonic()
        release = rel.selected()
        guest, k = prepare_guest(release)
        print(
            f"frrdmvpn-lab: {release} root {guest.root} and guest kernel {k.version} ready "
            f"({time.monotonic() - t0:.1f} s)"
        )
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    if native_capable():
        timings = Lab(mode=args.mode, deb=_abs(args.deb)).up()
        print(f"frrdmvpn-lab: lab up in {time.monotonic() - t0:.1f} s ({_fmt(timings)})")
    else:
        vm = _lab_vm()
        boot = vm.start()
        print(f"frrdmvpn-lab: VM booted in {boot:.1f} s")
        deb = _guest_file(vm, _abs(args.deb))
        rc = vm.run(
            _self_argv(vm, "up", "--no-shell", "--mode", args.mode, "--deb", deb),
            cwd=_guest_cwd(vm),
        )
        if rc != 0:
            print("frrdmvpn-lab: lab did not come up inside the VM; stopping it", file=sys.stderr)
            vm.stop()
            return rc
        # The lab's own line (inside the VM) said how long the nodes took; this is the total.
        print(
            f"frrdmvpn-lab: VM and lab up in {time.monotonic() - t0:.1f} s (VM boot {boot:.1f} s)"
        )
    if not args.no_shell and sys.stdin.isatty():
        return cmd_shell(argparse.Namespace(node="hub", bash=False))
    return 0


def cmd_down(_args: argparse.Namespace) -> int:
    if native_capable():
        Lab().down()
    else:
        vm = _lab_vm()
        if vm.running() and vm.run(_self_argv(vm, "down"), cwd=_guest_cwd(vm)) != 0:
            print("frrdmvpn-lab: the lab inside the VM did not come down cleanly", file=sys.stderr)
        vm.stop()
        print("frrdmvpn-lab: VM stopped")
        return 0
    print("frrdmvpn-lab: down")
    return 0


def cmd_status(_args: argparse.Namespace) -> int:
    if native_capable():
        print(json.dumps(Lab().status(), indent=1))
        return 0
    vm = _lab_vm()
    if not vm.running():
        print(json.dumps({"up": False, "vm": False}))
        return 0
    return vm.run(_self_argv(vm, "status"), cwd=_guest_cwd(vm))


def cmd_exec(args: argparse.Namespace) -> int:
    if not args.cmd:
        raise SystemExit("frrdmvpn-lab exec: give a command to run")
    if native_capable():
        lab = Lab()
        if not lab.is_up():
            raise LabError("the lab is not up: run `frrdmvpn-lab up`")
        argv = lab.argv(args.node, args.cmd)
        return subprocess.run(argv, check=False).returncode
    vm = _vm()
    return vm.run(
        _self_argv(vm, "exec", args.node, "--", *args.cmd), interactive=True, cwd=_guest_cwd(vm)
    )


def cmd_shell(args: argparse.Namespace) -> int:
    if native_capable():
        lab = Lab()
        if not lab.is_up():
            raise LabError("the lab is not up: run `frrdmvpn-lab up`")
        if lab.mode == "frrdmvpn" and not args.bash:
            print(
                f"frrdmvpn lab, node {args.node}: frrdmvpn-shell (show dmvpn, show ip nhrp, "
                "show crypto session, configure terminal, ?); exit leaves; "
                f"`frrdmvpn-lab shell --bash {args.node}` for Linux"
            )
            shell = lab.program("frrdmvpn-shell")
            return subprocess.run(lab.argv(args.node, [shell]), check=False).returncode
        print(f"frrdmvpn lab, node {args.node}: vtysh, swanctl --list-sas, ping; exit leaves")
        prompt = f"PS1=[lab:{args.node}] \\w# "
        argv = lab.argv(args.node, ["env", prompt, "bash", "--norc", "-i"])
        return subprocess.run(argv, check=False).returncode
    extra = ["--bash"] if args.bash else []
    vm = _vm()
    return vm.run(_self_argv(vm, "shell", *extra, args.node), interactive=True, cwd=_guest_cwd(vm))


def cmd_swarm(args: argparse.Namespace) -> int:
    """Start, stop or report the spoke swarm against the hub (lab/swarm.py)."""
    if args.action == "start" and args.count is None:
        raise LabError("frrdmvpn-lab swarm start: give the number of spokes")
    if not native_capable():
        vm = _vm()
        extra = [str(args.count)] if args.action == "start" else []
        return vm.run(_self_argv(vm, "swarm", args.action, *extra), cwd=_guest_cwd(vm))
    lab = Lab()
    if not lab.is_up():
        raise LabError("the lab is not up: run `frrdmvpn-lab up`")
    swarm = Swarm(lab)
    if args.action == "stop":
        swarm.down()
        print("frrdmvpn-lab: swarm stopped")
        return 0
    if args.action == "start":
        t0 = time.monotonic()
        swarm.up(args.count)
        wait_for("the swarm registered", lambda: swarm.registered() == args.count, 900)
        print(
            f"frrdmvpn-lab: {args.count} spokes registered with the hub in "
            f"{time.monotonic() - t0:.1f} s (`frrdmvpn-lab swarm status`, `show dmvpn`)"
        )
        return 0
    status = swarm.status()
    print(json.dumps({k: v for k, v in status.items() if k != "spokes"} or {"running": False}))
    return 0


def lab_pytest_args(extra: list[str]) -> list[str]:
    """pytest's arguments for the lab tier: ``-m lab`` and, unless ``extra`` names test paths,
    only ``tests/lab`` (collecting the unit tier's modules costs a minute under TCG)."""
    named = any(a.startswith("tests") for a in extra)
    return ["-m", "lab", *extra, *([] if named else ["tests/lab"])]


def cmd_test(args: argparse.Namespace) -> int:
    """Run the lab test tier (inside one VM boot where the kernel needs it)."""
    junit = Path(args.junit).resolve() if args.junit else None
    artifacts = Path(args.artifacts).resolve()
    pytest_args = lab_pytest_args(args.pytest_args)
    env = {
        "FRRDMVPN_LAB_REQUIRED": "1",
        "LAB_TIMEOUT": os.environ.get("LAB_TIMEOUT", "120"),
        "FRRDMVPN_LAB_PROTECT": os.environ.get("FRRDMVPN_LAB_PROTECT", "frrdmvpn"),
        "FRRDMVPN_LAB_ARTIFACTS": str(artifacts),
        "FRRDMVPN_LAB_DEB": _abs(os.environ.get("FRRDMVPN_LAB_DEB", "")),
        "FRRDMVPN_LAB_DEB_NEXT": _abs(os.environ.get("FRRDMVPN_LAB_DEB_NEXT", "")),
    }
    if native_capable():
        extra = [f"--junitxml={junit}"] if junit else []
        cmd = [sys.executable, "-m", "pytest", *pytest_args, *extra]
        return subprocess.run(cmd, check=False, env=dict(os.environ, **env)).returncode
    vm = _lab_vm(TEST_VM_DIR)
    if vm.pid() is not None:
        vm.stop()
    t0 = time.monotonic()
    try:
        boot = vm.start()
        print(f"frrdmvpn-lab test: VM booted in {boot:.1f} s", flush=True)
        guest_junit = vm.run_dir / "junit-lab.xml"
        guest_artifacts = vm.run_dir / "artifacts"
        env["FRRDMVPN_LAB_ARTIFACTS"] = str(guest_artifacts)
        for var in ("FRRDMVPN_LAB_DEB", "FRRDMVPN_LAB_DEB_NEXT"):
            env[var] = _guest_file(vm, env[var])
        cmd = [vm.python, "-m", "pytest", *pytest_args, f"--junitxml={guest_junit}"]
        rc = vm.run(cmd, cwd=_guest_cwd(vm), env=env)
        if junit and guest_junit.exists():
            junit.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(guest_junit, junit)
        if guest_artifacts.exists():
            shutil.copytree(guest_artifacts, artifacts, dirs_exist_ok=True)
        for name in ("console.log", "agent.log"):
            if (vm.run_dir / name).exists():
                artifacts.mkdir(parents=True, exist_ok=True)
                shutil.copy(vm.run_dir / name, artifacts / name)
    except VmError as exc:
        print(f"frrdmvpn-lab test: {exc}", file=sys.stderr)
        rc = 3
    finally:
        vm.stop()
    print(f"frrdmvpn-lab test: VM run took {time.monotonic() - t0:.1f} s", flush=True)
    return rc


def _abs(path: str) -> str:
    """``path`` made absolute (the VM sees this machine's paths, not its working directory)."""
    return str(Path(path).resolve()) if path else ""


def _fmt(timings: dict[str, float]) -> str:
    return ", ".join(f"{k} at {v:.1f} s" for k, v in timings.items())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="frrdmvpn-lab", description=__doc__)
    parser.add_argument("--version", action="version", version=f"frrdmvpn-lab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("prepare", help="fetch what the lab needs (the guest kernel, if any)")
    up = sub.add_parser("up", help="bring the lab up, then open a shell on the hub")
    up.add_argument("--no-shell", action="store_true", help="do not open a shell on the hub")
    up.add_argument(
        "--mode",
        choices=MODES,
        default=os.environ.get("FRRDMVPN_LAB_PROTECT", "frrdmvpn"),
        help="IPsec: frrdmvpn's enforcement (default), or stock charon's trap alone",
    )
    up.add_argument(
        "--deb",
        default=os.environ.get("FRRDMVPN_LAB_DEB", ""),
        metavar="FILE",
        help="install this frrdmvpn .deb and run it on the nodes (default: "
        "$FRRDMVPN_LAB_DEB; none: run this source tree)",
    )
    sub.add_parser("down", help="remove everything the lab created")
    sub.add_parser("status", help="show what runs on each node")
    names = [n.name for n in NODES]
    ex = sub.add_parser("exec", help="run a command on a node")
    ex.add_argument("node", choices=names, help="the node")
    ex.add_argument("cmd", nargs=argparse.REMAINDER, help="the command and its arguments")
    sh = sub.add_parser("shell", help="open the operator shell (frrdmvpn-shell) on a node")
    sh.add_argument("--bash", action="store_true", help="a Linux shell on the node instead")
    sh.add_argument("node", choices=names, help="the node")
    sw = sub.add_parser(
        "swarm", help=f"up to {MAX_SPOKES} more spokes (one charon, NHRP from a script)"
    )
    sw.add_argument("action", choices=("start", "stop", "status"))
    sw.add_argument("count", type=int, nargs="?", help="spokes to start (start)")
    te = sub.add_parser("test", help="run the lab test tier (pytest -m lab) in the lab")
    te.add_argument("--junit", help="write the junit XML here")
    te.add_argument(
        "--artifacts",
        default="build/lab-artifacts",
        metavar="DIR",
        help="node logs, measured results and VM logs land here",
    )
    te.add_argument("pytest_args", nargs=argparse.REMAINDER, help="extra pytest arguments")
    return parser


COMMANDS = {
    "prepare": cmd_prepare,
    "up": cmd_up,
    "down": cmd_down,
    "status": cmd_status,
    "exec": cmd_exec,
    "shell": cmd_shell,
    "swarm": cmd_swarm,
    "test": cmd_test,
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``frrdmvpn-lab``."""
    args = build_parser().parse_args(argv)
    if getattr(args, "cmd", None) and args.cmd[0] == "--":
        args.cmd = args.cmd[1:]
    if getattr(args, "pytest_args", None) and args.pytest_args[0] == "--":
        args.pytest_args = args.pytest_args[1:]
    if os.geteuid() != 0 and args.command != "prepare":
        print("frrdmvpn-lab: must run as root (namespaces, mounts, QEMU)", file=sys.stderr)
        return 2
    try:
        return COMMANDS[args.command](args)
    except (LabError, VmError, rel.ReleaseError) as exc:
        print(f"frrdmvpn-lab: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # output piped into e.g. head
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    raise SystemExit(main())
