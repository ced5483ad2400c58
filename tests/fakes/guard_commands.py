"""The nft and ip the guard adapter runs, faked: scripted replies and the tables nft would list."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path


def _table_json(elements: Sequence[str] = ("198.51.100.11", "198.51.100.12")) -> str:
    """`nft -j list table inet frrdmvpn_guard` as nftables 1.0.6 printed the rendered table
    (fixtures/guard/rendered-two.json), with the NBMA set holding elements."""
    doc = json.loads(
        (
            Path(__file__).resolve().parents[1] / "unit/adapters/fixtures/rendered-two.json"
        ).read_text()
    )
    for item in doc["nftables"]:
        if "set" in item:
            item["set"]["elem"] = list(elements)
    return json.dumps(doc)


# `ip xfrm policy show` (iproute2 6.1) with charon's SA and trap policies, socket bypass
# policies, and the guard's block policies for both addresses.
POLICIES_TEXT = """\
src 198.51.100.11/32 dst 198.51.100.12/32 proto gre 
\tdir out priority 366975 ptype main 
\ttmpl src 198.51.100.11 dst 198.51.100.12
\t\tproto esp spi 0xc1d2e3f4 reqid 2 mode transport
src 0.0.0.0/0 dst 0.0.0.0/0 proto gre 
\tdir out priority 399744 ptype main 
\ttmpl src 0.0.0.0 dst 0.0.0.0
\t\tproto esp reqid 1 mode transport
src 0.0.0.0/0 dst 198.51.100.11/32 proto gre 
\tdir in action block priority 1000000 ptype main 
src 198.51.100.11/32 dst 0.0.0.0/0 proto gre 
\tdir out action block priority 1000000 ptype main 
src 0.0.0.0/0 dst 198.51.100.12/32 proto gre 
\tdir in action block priority 1000000 ptype main 
src 198.51.100.12/32 dst 0.0.0.0/0 proto gre 
\tdir out action block priority 1000000 ptype main 
src 0.0.0.0/0 dst 0.0.0.0/0 
\tsocket in priority 0 ptype main 
src ::/0 dst ::/0 
\tsocket out priority 0 ptype main 
"""  # noqa: W291 - iproute2 ends these lines with a space

NFT_ENOENT = "Error: No such file or directory\nlist table inet frrdmvpn_guard\n"

Reply = tuple[int, str, str]  # returncode, stdout, stderr


@dataclass
class FakeRun:
    """Records every command; answers from a function of argv (default: success, no output)."""

    answer: Callable[[tuple[str, ...]], Reply] = lambda _argv: (0, "", "")
    calls: list[tuple[tuple[str, ...], str | None]] = field(default_factory=list)

    def __call__(
        self,
        args: Sequence[str],
        *,
        input: str | None,
        capture_output: bool,
        text: bool,
        check: bool,
        timeout: float | None,
    ) -> subprocess.CompletedProcess[str]:
        assert capture_output
        assert text
        assert not check
        assert timeout
        argv = tuple(args)
        self.calls.append((argv, input))
        rc, out, err = self.answer(argv)
        return subprocess.CompletedProcess(list(argv), rc, out, err)

    @property
    def argvs(self) -> list[list[str]]:
        return [list(argv) for argv, _ in self.calls]


def _installed_answer(table: Reply, policies: str = POLICIES_TEXT) -> Callable[..., Reply]:
    def answer(argv: tuple[str, ...]) -> Reply:
        if argv == ("nft", "-j", "list", "table", "inet", "frrdmvpn_guard"):
            return table
        if argv == ("ip", "xfrm", "policy", "show"):
            return (0, policies, "")
        raise AssertionError(f"unexpected command {argv}")

    return answer
