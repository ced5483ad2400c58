"""frrdiff: the vtysh commands turning a running FRR config into the desired one.

The property tests apply the commands to a small model of how nhrpd/ospfd 8.4 treat
configuration commands (written here independently of frrdiff) and compare the result with
the desired config.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings

from frrdmvpn.config.frr import render_frr
from frrdmvpn.config.frrdiff import commands, diff, no_form, parse_tree
from frrdmvpn.config.model import Config
from tests.fakes.configs import configs

pytestmark = pytest.mark.unit

RUNNING = """frr version 8.4.4
frr defaults traditional
hostname hub
log file /var/log/frr/nhrpd.log
debug nhrp common
!
nhrp event socket /run/frrdmvpn/nhrp-events.sock
nhrp nflog-group 1
nhrp multicast-nflog-group 2
!
interface dmvpn0
 tunnel protection vici profile dmvpn
 tunnel source eth0
 ip nhrp network-id 1
 ip nhrp holdtime 60
 ip nhrp registration no-unique
 ip nhrp nhs dynamic nbma 198.51.100.1
 ip nhrp nhs 192.0.2.2 nbma 198.51.100.2
 ip nhrp map multicast 198.51.100.1
exit
!
interface eth0
exit
!
interface lo
exit
!
router ospf
 ospf router-id 192.0.2.11
 network 192.0.2.0/24 area 0
exit
!
end
"""


def changed(old: str, new: str) -> str:
    assert old in RUNNING, old
    return RUNNING.replace(old, new, 1)


def body(running: str, desired: str) -> list[str]:
    out = diff(running, desired)
    if not out:
        return out
    assert (out[0], out[-1]) == ("configure terminal", "end")
    return out[1:-1]


def test_identical_configs_need_nothing() -> None:
    assert diff(RUNNING, RUNNING) == []


def test_layout_and_unmanaged_lines_are_ignored() -> None:
    desired = "\n".join(
        line
        for line in RUNNING.splitlines()
        if not line.startswith(("frr ", "log ", "debug ", "hostname"))
        and line not in ("interface eth0", "interface lo")
    )
    assert diff(RUNNING, desired) == []


def test_single_valued_statement_is_overwritten_not_removed_first() -> None:
    desired = changed(" ip nhrp holdtime 60", " ip nhrp holdtime 120")
    assert diff(RUNNING, desired) == [
        "configure terminal",
        "interface dmvpn0",
        "ip nhrp holdtime 120",
        "exit",
        "end",
    ]


def test_removed_statements_use_the_no_form_frr_accepts() -> None:
    desired = changed(" tunnel protection vici profile dmvpn\n", "")
    desired = desired.replace(" tunnel source eth0\n", "").replace(" ip nhrp holdtime 60\n", "")
    assert body(RUNNING, desired) == [
        "interface dmvpn0",
        "no tunnel protection",
        "no tunnel source",
        "no ip nhrp holdtime 60",
        "exit",
    ]


def test_removing_an_nhs_entry() -> None:
    desired = changed(" ip nhrp nhs 192.0.2.2 nbma 198.51.100.2\n", "")
    assert body(RUNNING, desired) == [
        "interface dmvpn0",
        "no ip nhrp nhs 192.0.2.2 nbma 198.51.100.2",
        "exit",
    ]


def test_adding_a_lan_to_ospf() -> None:
    desired = changed(
        " network 192.0.2.0/24 area 0\n",
        " network 192.0.2.0/24 area 0\n network 203.0.113.16/28 area 0\n",
    )
    assert body(RUNNING, desired) == ["router ospf", "network 203.0.113.16/28 area 0", "exit"]


def test_moving_a_network_to_another_area_removes_it_first() -> None:
    desired = changed(" network 192.0.2.0/24 area 0", " network 192.0.2.0/24 area 1")
    assert body(RUNNING, desired) == [
        "router ospf",
        "no network 192.0.2.0/24 area 0",
        "network 192.0.2.0/24 area 1",
        "exit",
    ]


def test_ordered_nhs_list_keeps_the_common_leading_part() -> None:
    a = " ip nhrp nhs dynamic nbma 198.51.100.1\n"
    b = " ip nhrp nhs 192.0.2.2 nbma 198.51.100.2\n"
    c = " ip nhrp nhs 192.0.2.3 nbma 198.51.100.3\n"
    running = changed(a + b, a + b + c)
    swapped = changed(a + b, a + c + b)
    assert body(running, swapped) == [
        "interface dmvpn0",
        "no ip nhrp nhs 192.0.2.2 nbma 198.51.100.2",
        "ip nhrp nhs 192.0.2.2 nbma 198.51.100.2",
        "exit",
    ]
    reversed_ = changed(a + b, b + a)
    assert body(RUNNING, reversed_) == [
        "interface dmvpn0",
        "no ip nhrp nhs dynamic nbma 198.51.100.1",
        "ip nhrp nhs dynamic nbma 198.51.100.1",
        "exit",
    ]
    appended = changed(a + b, a + b + c)
    assert body(RUNNING, appended) == [
        "interface dmvpn0",
        "ip nhrp nhs 192.0.2.3 nbma 198.51.100.3",
        "exit",
    ]


def test_a_vanished_interface_is_cleared_and_a_vanished_router_removed() -> None:
    desired = RUNNING[: RUNNING.index("interface dmvpn0")]
    assert body(RUNNING, desired) == [
        "interface dmvpn0",
        "no tunnel protection",
        "no tunnel source",
        "no ip nhrp network-id 1",
        "no ip nhrp holdtime 60",
        "no ip nhrp registration no-unique",
        "no ip nhrp nhs dynamic nbma 198.51.100.1",
        "no ip nhrp nhs 192.0.2.2 nbma 198.51.100.2",
        "no ip nhrp map multicast 198.51.100.1",
        "exit",
        "no router ospf",
    ]


def test_new_blocks_are_entered_and_left() -> None:
    desired = RUNNING + "interface lan0\n ip ospf passive\nexit\n!\n"
    assert body(RUNNING, desired) == ["interface lan0", "ip ospf passive", "exit"]
    assert body("", "router ospf\n network 10.0.0.0/8 area 0\n") == [
        "router ospf",
        "network 10.0.0.0/8 area 0",
        "exit",
    ]


def test_top_level_statements_and_hostname() -> None:
    desired = changed("nhrp nflog-group 1\n", "").replace("hostname hub", "hostname hub2")
    assert body(RUNNING, desired) == ["no nhrp nflog-group 1", "hostname hub2"]
    # A hostname the desired config does not set is not frrdmvpn's.
    assert diff(RUNNING, RUNNING.replace("hostname hub\n", "")) == []


def test_no_forms() -> None:
    assert no_form("ip ospf network point-to-point dmvpn") == "no ip ospf network"
    assert no_form("ip ospf dead-interval 8") == "no ip ospf dead-interval"
    assert no_form("description core link") == "no description"
    assert no_form("ip nhrp map multicast dynamic") == "no ip nhrp map multicast dynamic"
    assert no_form("no ip ospf mtu-ignore") == "ip ospf mtu-ignore"


def test_parse_tree_nests_by_indentation() -> None:
    tree = parse_tree(
        "router bgp 1\n address-family ipv4 unicast\n  network 10.0.0.0/8\n"
        " exit-address-family\nexit\n"
    )
    assert tree[0].line == "router bgp 1"
    assert tree[0].children[0].children[0].line == "network 10.0.0.0/8"
    assert commands(
        "router bgp 1\n address-family ipv4 unicast\n  network 10.0.0.0/8\n",
        "router bgp 1\n address-family ipv4 unicast\n  network 10.1.0.0/16\n",
    ) == [
        "router bgp 1",
        "address-family ipv4 unicast",
        "no network 10.0.0.0/8",
        "network 10.1.0.0/16",
        "exit",
        "exit",
    ]


# --- a model of FRR applying configuration commands --------------------------------------------

SINGLE = (
    "hostname",
    "nhrp event socket",
    "nhrp nflog-group",
    "nhrp multicast-nflog-group",
    "description",
    "tunnel protection",
    "tunnel source",
    "ip nhrp network-id",
    "ip nhrp holdtime",
    "ip ospf network",
    "ip ospf hello-interval",
    "ip ospf dead-interval",
    "ip ospf priority",
    "ospf router-id",
    "timers throttle spf",
    "timers throttle lsa all",
    "timers lsa min-arrival",
)
ORDERED = ("ip nhrp nhs", "ip nhrp map multicast")
BARE_NO = (
    "tunnel protection",
    "tunnel source",
    "ip ospf network",
    "ip ospf dead-interval",
    "description",
)
BLOCKS = ("interface ", "router ")


def _family(line: str, families: tuple[str, ...]) -> str | None:
    return next((f for f in families if line == f or line.startswith(f + " ")), None)


@dataclass
class Block:
    lines: list[str] = field(default_factory=list)
    blocks: dict[str, Block] = field(default_factory=dict)

    def set(self, line: str) -> None:
        family = _family(line, SINGLE)
        if family is not None:
            self.lines = [x for x in self.lines if _family(x, SINGLE) != family]
        if line not in self.lines:
            self.lines.append(line)

    def unset(self, line: str) -> None:
        if line in self.blocks:
            assert not line.startswith("interface "), "FRR refuses to delete an interface"
            del self.blocks[line]
        elif line in BARE_NO:
            kept = [x for x in self.lines if _family(x, (line,)) is None]
            assert len(kept) < len(self.lines), f"no {line}: nothing to remove"
            self.lines = kept
        else:
            assert line in self.lines, f"no {line}: not configured"
            self.lines.remove(line)

    def canonical(self) -> object:
        ordered = {f: [x for x in self.lines if _family(x, (f,))] for f in ORDERED}
        rest = frozenset(x for x in self.lines if _family(x, ORDERED) is None)
        blocks = {k: b.canonical() for k, b in self.blocks.items() if b.lines or b.blocks}
        return rest, ordered, blocks


def load(text: str) -> Block:
    root = Block()
    for node in parse_tree(text):
        if node.line.startswith(("frr ", "log ", "debug ")):
            continue
        if node.children or node.line.startswith(BLOCKS):
            block = root.blocks.setdefault(node.line, Block())
            for child in node.children:
                block.set(child.line)
        else:
            root.set(node.line)
    return root


def run(block: Block, vtysh: list[str]) -> Block:
    if not vtysh:
        return block
    assert (vtysh[0], vtysh[-1]) == ("configure terminal", "end")
    current = block
    for command in vtysh[1:-1]:
        if command == "exit":
            current = block
        elif command.startswith("no "):
            current.unset(command[3:])
        elif current is block and command.startswith(BLOCKS):
            current = block.blocks.setdefault(command, Block())
        else:
            current.set(command)
    return block


def _frr(config: Config) -> tuple[str, str]:
    rendered = render_frr(config)
    return rendered.nhrpd, rendered.ospfd


SLOW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SLOW
@given(configs, configs)
def test_applying_the_diff_reaches_the_desired_config(before: Config, after: Config) -> None:
    # A hostname the desired config does not set is left as it is.
    unmanaged = ("hostname",) if after.hostname is None else ()
    for running, desired in zip(_frr(before), _frr(after), strict=True):
        result = run(load(running), diff(running, desired))
        if unmanaged:
            kept = [x for x in result.lines if x.startswith(unmanaged)]
            assert kept == ([f"hostname {before.hostname}"] if before.hostname else [])
            result.lines = [x for x in result.lines if not x.startswith(unmanaged)]
        assert result.canonical() == load(desired).canonical()
        assert diff(desired, desired) == []


def test_example_edits_from_the_issue() -> None:
    """Holdtime change, a spoke's LAN added to OSPF, an NHS entry removed (issue 4)."""
    for old, new in (
        (" ip nhrp holdtime 60", " ip nhrp holdtime 90"),
        (
            " network 192.0.2.0/24 area 0\n",
            " network 192.0.2.0/24 area 0\n network 203.0.113.32/28 area 0\n",
        ),
        (" ip nhrp nhs 192.0.2.2 nbma 198.51.100.2\n", ""),
    ):
        desired = changed(old, new)
        result = run(load(RUNNING), diff(RUNNING, desired))
        assert result.canonical() == load(desired).canonical()
        assert diff(desired, desired) == []
