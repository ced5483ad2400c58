"""charon's configuration through VICI: connections, shared secrets, private keys.

Uses the ``vici`` client library (strongSwan's own Python binding): configuration commands
are plain request/response exchanges it covers fully. Talks to charon's own socket, not
to frrdmvpn's proxy.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import vici
from vici.exception import CommandException, SessionException

from frrdmvpn.adapters.vici_proxy import DEFAULT_UPSTREAM

TIMEOUT = 10.0


class ViciConfigError(RuntimeError):
    """charon refused a configuration command, or could not be reached."""


class CharonConfig:
    """Load and unload what frrdmvpn configures in charon."""

    def __init__(self, path: Path = DEFAULT_UPSTREAM) -> None:
        self.path = path

    @contextmanager
    def _session(self) -> Iterator[Any]:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(TIMEOUT)
        try:
            sock.connect(str(self.path))
            yield vici.Session(sock)
        except (OSError, SessionException) as exc:
            raise ViciConfigError(f"charon at {self.path}: {exc}") from exc
        except CommandException as exc:
            raise ViciConfigError(f"charon refused: {exc}") from exc
        finally:
            sock.close()

    def loaded_conns(self) -> set[str]:
        with self._session() as s:
            return {_text(n) for n in s.get_conns().get("conns", [])}

    def loaded_shared(self) -> set[str]:
        with self._session() as s:
            return {_text(n) for n in s.get_shared().get("keys", [])}

    def load_conn(self, message: Mapping[str, Any]) -> None:
        with self._session() as s:
            s.load_conn(dict(message))

    def unload_conn(self, name: str) -> None:
        with self._session() as s:
            s.unload_conn({"name": name})

    def load_shared(self, message: Mapping[str, Any]) -> None:
        with self._session() as s:
            s.load_shared(dict(message))

    def unload_shared(self, ident: str) -> None:
        with self._session() as s:
            s.unload_shared({"id": ident})

    def load_key(self, path: str, data: bytes) -> str:
        """Load a private key: ``data``, the contents of the file at ``path`` (read through
        :mod:`frrdmvpn.adapters.trusted_files`); returns charon's key id."""
        try:
            with self._session() as s:
                return _text(s.load_key({"type": "any", "data": data}).get("id", b""))
        except ViciConfigError as exc:
            raise ViciConfigError(f"private-key {path}: {exc}") from exc


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
