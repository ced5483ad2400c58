"""``frrdmvpnd guard check``: what charon's and FRR's units run first (ExecStartPre). On a
node whose configuration defines a tunnel it must fail while the guards for the tunnel
source are missing, incomplete or tampered with, so neither starts and sends GRE.

First against nft and ip as tests/unit/adapters/test_guard.py records them, then against the real
kernel in a network namespace of its own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from frrdmvpn.adapters.guard import KernelGuard
from frrdmvpn.application import frrdmvpnd
from frrdmvpn.core.guard_rules import GuardSpec
from tests.fakes.guard_commands import (
    NFT_ENOENT,
    POLICIES_TEXT,
    FakeRun,
    Reply,
    _installed_answer,
    _table_json,
)
from tests.fakes.world import spoke_sourced_by_address

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
MISSING = "frrdmvpnd: the guards for 198.51.100.11 are missing: GRE could leave in clear text"


@pytest.fixture
def spoke(tmp_path: Path) -> Path:
    """A valid spoke whose tunnel source is 198.51.100.11 (no interface lookup)."""
    path = spoke_sourced_by_address(tmp_path)
    assert frrdmvpnd.main(["validate", "-c", str(path)]) == 0
    return path


def check_with(
    monkeypatch: pytest.MonkeyPatch, spoke: Path, answer: Callable[[tuple[str, ...]], Reply]
) -> int:
    """``frrdmvpnd guard check -c spoke``, its nft and ip answering ``answer``. The NFLOG
    group is that of test_guard.py's recorded table."""
    run = FakeRun(answer)

    def guard(spec: GuardSpec) -> KernelGuard:
        assert spec == GuardSpec((IPv4Address("198.51.100.11"),), nflog_group=5)
        return KernelGuard(spec, run)

    monkeypatch.setattr(frrdmvpnd, "KernelGuard", guard)
    code = frrdmvpnd.main(["guard", "check", "-c", str(spoke), "--nflog-group", "5"])
    assert run.calls, "the kernel was asked"
    return code


def test_a_configured_node_whose_guards_are_missing_fails_the_check(
    spoke: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    whole = _table_json(["198.51.100.11"])
    lines = POLICIES_TEXT.splitlines(keepends=True)
    cut = lines.index("src 198.51.100.11/32 dst 0.0.0.0/0 proto gre \n")  # its outbound block
    one_block_gone = "".join(lines[:cut] + lines[cut + 2 :])
    cases = {
        "no table": _installed_answer((1, "", NFT_ENOENT)),
        "no block policy": _installed_answer((0, whole, ""), policies=""),
        "one block policy gone": _installed_answer((0, whole, ""), policies=one_block_gone),
        "the table guards another address": _installed_answer(
            (0, _table_json(["198.51.100.12"]), "")
        ),
        "nft cannot tell": _installed_answer((1, "", "Error: Operation not permitted")),
    }
    codes = {name: check_with(monkeypatch, spoke, answer) for name, answer in cases.items()}
    assert codes == dict.fromkeys(cases, 1)
    err = capsys.readouterr().err
    assert err.count(MISSING) == 4
    assert "Operation not permitted" in err  # the last: fails closed, and says why
    # the control: the same node with its guards in place passes
    assert check_with(monkeypatch, spoke, _installed_answer((0, whole, ""))) == 0


# Run in a network namespace of its own: each step, then `guard check`'s exit status.
IN_NETNS = """
import json, subprocess, sys
from frrdmvpn.application.frrdmvpnd import main
config = sys.argv[1]
def check():
    return main(["guard", "check", "-c", config])
def kernel(*argv):
    subprocess.run(argv, check=True, capture_output=True)
codes = {"nothing installed": check()}
assert main(["guard", "install", "-c", config]) == 0
codes["installed"] = check()
kernel("ip", "xfrm", "policy", "delete", "src", "198.51.100.11/32", "dst", "0.0.0.0/0",
       "proto", "gre", "dir", "out")
codes["outbound block policy deleted"] = check()
assert main(["guard", "install", "-c", config]) == 0
codes["installed again"] = check()
kernel("nft", "insert", "rule", "inet", "frrdmvpn_guard", "output", "accept")
codes["accept before the drop"] = check()
kernel("nft", "delete", "table", "inet", "frrdmvpn_guard")
codes["table deleted"] = check()
print(json.dumps(codes))
"""


@pytest.mark.timeout(60)
@pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(c) for c in ("unshare", "nft", "ip")),
    reason="needs root, unshare, nft and ip",
)
def test_against_the_kernel_the_check_fails_until_the_guards_are_whole(spoke: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT), LC_ALL="C")
    argv = ["unshare", "--net", "--", sys.executable, "-c", IN_NETNS, str(spoke)]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False, timeout=50)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {
        "nothing installed": 1,
        "installed": 0,
        "outbound block policy deleted": 1,
        "installed again": 0,
        "accept before the drop": 1,
        "table deleted": 1,
    }
    assert done.stderr.count(MISSING) == 4
