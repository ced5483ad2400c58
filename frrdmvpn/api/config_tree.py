"""A configuration text as the API's statement tree (``GetConfig.tree``). Pure: no I/O.

Each line is applied in the context its block opened, exactly as the file parser and the
shell apply it (:func:`frrdmvpn.config.edit.apply_line`), so the statement's key and
context are the language's own; block headers hold their statements as children.
"""

from __future__ import annotations

import functools
from typing import Any

from frrdmvpn.config.edit import apply_line
from frrdmvpn.config.model import Config
from frrdmvpn.config.modes import ROOT, Context, Mode
from frrdmvpn.config.text import lines
from frrdmvpn.v1 import config_pb2

# Mode <-> the API's ConfigMode (CONFIG is CONFIG_MODE_GLOBAL; the others share names).
MODES: dict[Mode, config_pb2.ConfigMode.ValueType] = {
    m: getattr(config_pb2, "CONFIG_MODE_" + m.name) for m in Mode if m is not Mode.CONFIG
}
MODES[Mode.CONFIG] = config_pb2.CONFIG_MODE_GLOBAL
MODE_OF: dict[int, Mode] = {v: k for k, v in MODES.items()}


def context_message(ctx: Context) -> config_pb2.ConfigContext:
    """``Context(INTERFACE, ("Tunnel0",))`` as the API's ConfigContext."""
    return config_pb2.ConfigContext(
        mode=MODES[ctx.mode], keys=list(ctx.keys), prompt=str(ctx.mode.prompt)
    )


def config_tree(text: str) -> config_pb2.ConfigTree:
    """Statements of ``text`` (comments and ``!`` skipped; a line that does not apply is
    listed with its own text as key and no children); the caller's own copy of a tree
    remembered for the same text (every ``GetConfig`` of an unchanged configuration)."""
    tree = config_pb2.ConfigTree()
    tree.CopyFrom(_tree(text))
    return tree


@functools.lru_cache(maxsize=4)
def _tree(text: str) -> config_pb2.ConfigTree:
    tree = config_pb2.ConfigTree()
    config = Config()
    # (indentation, where statements go, the context they apply in)
    stack: list[tuple[int, Any, Context]] = [(-1, tree.statements, ROOT)]
    for number, raw in enumerate(lines(text), start=1):
        line = raw.strip()
        if not line or line.startswith("!"):
            continue
        indent = len(raw) - len(raw.lstrip())
        while stack[-1][0] >= indent:
            stack.pop()
        _, container, ctx = stack[-1]
        result = apply_line(config, ctx, line, line_number=number)
        statement = container.add(text=line, key=result.key or line, line=number)
        statement.context.CopyFrom(context_message(ctx))
        if result.diagnostics:
            continue
        config = result.config
        if result.context != ctx and result.context.mode is not Mode.CONFIG:
            statement.opens.CopyFrom(context_message(result.context))
            stack.append((indent, statement.children, result.context))
    return tree
