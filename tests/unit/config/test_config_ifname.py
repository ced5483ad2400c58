"""The length of a Linux interface name (L4): at most 15 characters (``IFNAMSIZ`` 16 with
its NUL). A name of 16 valid characters is refused at its token wherever the configuration
names an interface; 15 are accepted; and Linux itself takes what validates and refuses
what is one character too long (the loopback of a network namespace of its own, renamed).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from frrdmvpn.config.diagnostics import Diagnostic
from frrdmvpn.config.grammar import is_ifname
from frrdmvpn.config.parse import parse
from frrdmvpn.config.validate import check, validate

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
HUB = (ROOT / "docs" / "examples" / "lab-hub.conf").read_text()
# Every character the grammar allows, 15 and 16 of them.
NAME_15 = "eth0.100_a@b-C9"
NAME_16 = NAME_15 + "x"
REASON = "is not a Linux interface name (1-15 characters of letters, digits, '_', '.', '@', '-')"


def errors(text: str) -> list[Diagnostic]:
    return [d for d in check(text)[1] if d.is_error]


def naming(name: str) -> dict[str, str]:
    """The hub's configuration with ``name`` as each interface name it may hold."""
    assert " tunnel source eth0\n" in HUB
    assert "router ospf 1\n" in HUB
    return {
        " tunnel source ": HUB.replace(" tunnel source eth0\n", f" tunnel source {name}\n"),
        " passive-interface ": HUB.replace(
            "router ospf 1\n", f"router ospf 1\n passive-interface {name}\n"
        ),
    }


def test_an_interface_name_of_16_characters_is_refused_and_15_accepted() -> None:
    assert (len(NAME_15), len(NAME_16)) == (15, 16)
    for text in naming(NAME_15).values():
        assert errors(text) == []
    for where, text in naming(NAME_16).items():
        lines = text.splitlines()
        line = next(i for i, t in enumerate(lines, 1) if t.startswith(where))
        assert [(d.line, d.column, d.token, d.message) for d in errors(text)] == [
            (line, len(where) + 1, NAME_16, f"{NAME_16!r} {REASON}")
        ]


def test_a_16_character_source_in_a_model_is_a_validation_error_too() -> None:
    """A configuration that did not come from text (an API tree) is checked the same way."""
    config = parse(HUB).config
    for name, refused in ((NAME_15, False), (NAME_16, True)):
        tunnel = dataclasses.replace(config.interfaces[0], source=name)
        found = [
            d for d in validate(dataclasses.replace(config, interfaces=(tunnel,))) if d.is_error
        ]
        assert [(d.code, d.token) for d in found] == (
            [("tunnel-source-ifname", NAME_16)] if refused else []
        )


# Rename the namespace's loopback to each name; print what the kernel answered.
RENAME = """
import json, sys
from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError
answers = []
with IPRoute() as ipr:
    index = ipr.link_lookup(ifname="lo")[0]
    for name in json.loads(sys.argv[1]):
        try:
            ipr.link("set", index=index, ifname=name)
            answers.append("ok")
        except NetlinkError as exc:
            answers.append(exc.code)
print(json.dumps(answers))
"""


@pytest.mark.timeout(60)
@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="needs root and unshare for a network namespace",
)
def test_linux_takes_what_validates_and_refuses_one_character_more() -> None:
    accepted = [NAME_15, "a", "x" * 15, *(c * 15 for c in "_.@-"), "A1", ".a", "..."]
    too_long = [NAME_16, "x" * 16, "x" * 32]
    assert all(is_ifname(n) for n in accepted)
    assert not any(is_ifname(n) for n in too_long)
    names = accepted + too_long
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        ["unshare", "--net", "--", sys.executable, "-c", RENAME, json.dumps(names)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=50,
    )
    assert done.returncode == 0, done.stderr
    answers = dict(zip(names, json.loads(done.stdout), strict=True))
    erange = 34  # the kernel's answer to a name longer than IFNAMSIZ - 1
    assert answers == {**dict.fromkeys(accepted, "ok"), **dict.fromkeys(too_long, erange)}
