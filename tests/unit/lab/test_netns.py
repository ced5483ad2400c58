"""How the lab enters a node: through its anchor's namespaces while the anchor lives, else by
building them; which processes live in which lab namespace (no `ip` spawned for either)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lab import netns
from lab import topology as topo
from lab.netns import ANCHOR_PID, Lab, program_name

pytestmark = pytest.mark.unit

SPOKE2 = topo.node("spoke2")


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Lab:
    """A lab whose named namespaces are links in ``tmp_path/netns`` (to this process's own)."""
    named = tmp_path / "netns"
    named.mkdir()
    monkeypatch.setattr(netns, "NETNS_DIR", named)
    the_lab = Lab(state_dir=tmp_path / "state")
    the_lab.node_dir(SPOKE2).mkdir(parents=True)
    return the_lab


def name_own_netns(lab: Lab, name: str) -> None:
    (netns.NETNS_DIR / name).symlink_to(f"/proc/{os.getpid()}/ns/net")


def test_a_live_anchor_in_the_nodes_netns_is_entered_with_nsenter(lab: Lab) -> None:
    name_own_netns(lab, SPOKE2.netns)
    (lab.node_dir(SPOKE2) / ANCHOR_PID).write_text(f"{os.getpid()}\n")
    argv = lab.argv("spoke2", ["vtysh", "-c", "show dmvpn"])
    assert argv == ["nsenter", "-t", str(os.getpid()), "-m", "-n", "--", *argv[-3:]]
    assert argv[-3:] == ["vtysh", "-c", "show dmvpn"]


@pytest.mark.parametrize(
    "pid_file", ["", "not a pid\n", "999999999\n"], ids=["empty", "garbage", "gone"]
)
def test_without_a_live_anchor_the_command_builds_the_namespaces(lab: Lab, pid_file: str) -> None:
    name_own_netns(lab, SPOKE2.netns)
    (lab.node_dir(SPOKE2) / ANCHOR_PID).write_text(pid_file)
    assert lab.argv("spoke2", ["true"])[:4] == ["ip", "netns", "exec", SPOKE2.netns]


def test_an_anchor_in_another_netns_is_not_entered(lab: Lab) -> None:
    (netns.NETNS_DIR / SPOKE2.netns).write_text("")  # a different inode than any netns
    (lab.node_dir(SPOKE2) / ANCHOR_PID).write_text(f"{os.getpid()}\n")
    assert lab.argv("spoke2", ["true"])[:4] == ["ip", "netns", "exec", SPOKE2.netns]


def test_pids_are_grouped_by_the_lab_namespace_they_live_in(lab: Lab) -> None:
    name_own_netns(lab, SPOKE2.netns)
    (netns.NETNS_DIR / "other-ns").symlink_to(f"/proc/{os.getpid()}/ns/net")
    (netns.NETNS_DIR / "frrdmvpn-empty").write_text("")
    assert lab.namespaces() == ["frrdmvpn-empty", SPOKE2.netns]
    found = lab.pids()
    assert set(found) == {"frrdmvpn-empty", SPOKE2.netns}
    assert found["frrdmvpn-empty"] == []
    assert os.getpid() in found[SPOKE2.netns]
    assert found[SPOKE2.netns] == sorted(found[SPOKE2.netns])


def test_program_name_reads_a_process_command_line() -> None:
    argv0 = Path(f"/proc/{os.getpid()}/cmdline").read_bytes().split(b"\0")[0].decode()
    me = os.path.basename(argv0)
    assert program_name(os.getpid(), {me}) == me
    assert program_name(os.getpid(), {"charon"}) is None
    assert program_name(2**22 + 7, {me}) is None  # no such process
