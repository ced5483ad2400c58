"""Round trips: parse(render(m)) == m for generated models; render(parse(t)) is canonical."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from frrdmvpn.config import commands as cmd
from frrdmvpn.config.canonical_text import render
from frrdmvpn.config.edit import apply_line
from frrdmvpn.config.frr import render_frr
from frrdmvpn.config.frrdiff import diff
from frrdmvpn.config.model import (
    Config,
)
from frrdmvpn.config.modes import ROOT
from frrdmvpn.config.parse import parse
from frrdmvpn.config.validate import validate
from tests.fakes.configs import configs
from tests.fuzzing import budget

pytestmark = pytest.mark.unit


FAST = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(configs)
def test_parse_of_render_is_the_model_and_render_is_canonical(config: Config) -> None:
    text = render(config)
    result = parse(text)
    assert result.diagnostics == (), text
    assert result.config == config, text
    assert render(result.config) == text


@FAST
@given(configs)
def test_typing_the_rendered_lines_in_a_shell_builds_the_same_model(config: Config) -> None:
    """apply_line, with ``exit`` where the indentation drops, means what the file means."""
    model, context, depth = Config(), ROOT, 0
    for raw in render(config).splitlines():
        line = raw.strip()
        indent = len(raw) - len(raw.lstrip())
        for _ in range(depth - indent):
            context = apply_line(model, context, "exit").context
        depth = indent
        result = apply_line(model, context, "end" if line == "!" else line)
        assert result.ok, (line, result.diagnostics)
        model, context = result.config, result.context
    assert model == config


def test_messy_input_renders_canonically() -> None:
    messy = """
! comment
interface tunnel0
   tunnel key 5
   ip nh nhs dyn nbma 198.51.100.1 multi
   ip   mtu   1400
interface Tunnel0
   description  two  spaces
router ospf
 network 10.0.0.0/8 area 0
 router-id 10.0.0.1
hostname   r
"""
    canonical = render(parse(messy).config)
    assert canonical == (
        "hostname r\n!\ninterface Tunnel0\n description two  spaces\n ip mtu 1400\n"
        " ip nhrp nhs dynamic nbma 198.51.100.1 multicast\n tunnel key 5\n!\n"
        "router ospf\n router-id 10.0.0.1\n network 10.0.0.0 0.255.255.255 area 0\n!\n"
    )
    assert render(parse(canonical).config) == canonical


def test_empty_config_renders_empty() -> None:
    assert render(Config()) == ""
    assert parse("").config == Config()


# --- garbage in, diagnostics out ---------------------------------------------------------------

VOCABULARY = sorted(
    {word for c in cmd.COMMANDS for word in c.syntax.replace("[", " ").replace("]", " ").split()}
    | {"no", "default", "exit", "end", "!", "Tunnel0", "0", "99999999999", "192.0.2.1", "-"}
)
garbage_lines = st.tuples(
    st.sampled_from(["", " ", "  ", "\t"]),
    st.lists(st.sampled_from(VOCABULARY) | st.text(max_size=6), max_size=7),
).map(lambda t: t[0] + " ".join(t[1]))


@pytest.mark.fuzz
@budget(150)
@given(st.lists(garbage_lines, max_size=12))
def test_any_text_gives_diagnostics_never_exceptions(lines: list[str]) -> None:
    text = "\n".join(lines)
    result = parse(text)
    validate(result.config)
    frr = render_frr(result.config)
    diff(text, frr.nhrpd)
    assert render(parse(render(result.config)).config) == render(result.config)
