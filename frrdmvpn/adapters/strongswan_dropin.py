"""The strongSwan configuration fragment frrdmvpnd owns (``/etc/strongswan.d/frrdmvpn.conf``):
read, written and removed as :mod:`frrdmvpn.config.charon_socket` decides."""

from __future__ import annotations

import os
from pathlib import Path

from frrdmvpn.adapters.config_store import atomic_write
from frrdmvpn.config.charon_socket import DROPIN, DropinAction, Step

MODE = 0o644  # charon and swanctl read it; it holds no secret


def read(path: Path = DROPIN) -> str | None:
    """The fragment's text; None when there is none (a dangling link counts as none)."""
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


def carry_out(action: DropinAction, path: Path = DROPIN) -> None:
    """Write or remove ``path`` as ``action`` says (a link there is replaced, not followed)."""
    if action.step is Step.WRITE:
        atomic_write(path, action.text, mode=MODE)
        os.chmod(path, MODE)  # whatever the umask (the units run with 0077)
    elif action.step is Step.REMOVE:
        path.unlink(missing_ok=True)
