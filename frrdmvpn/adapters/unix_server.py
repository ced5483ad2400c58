"""A unix-socket listener only root and one group may use (VICI controls charon; the
event socket decides NHRP bindings)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def listen_restricted(
    path: Path, handler: Handler, group: str | None, own_dir: bool = False
) -> asyncio.AbstractServer:
    """Listen on ``path`` (replacing a stale socket), mode 0660, owned by ``group``.
    With ``own_dir`` the parent directory is created and opened to the group too."""
    if own_dir:
        path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    server = await asyncio.start_unix_server(handler, path=str(path))
    os.chmod(path, 0o660)
    if group:
        with contextlib.suppress(LookupError, OSError):
            shutil.chown(path, group=group)
            if own_dir:
                shutil.chown(path.parent, group=group)
                # the group lists it; others (the API's clients, group frrdmvpn) may only pass
                # through to a socket whose own mode admits them
                os.chmod(path.parent, 0o751)  # noqa: S103
    return server
