"""charon's configuration through VICI: connections, shared secrets, private keys, and the
IKE_SAs a moved connection leaves behind.

Plain request/response commands over frrdmvpn's own client
(:func:`frrdmvpn.adapters.vici_client.command`), blocking: the apply step runs in a worker
thread (the streamed ``list-sas`` and ``terminate`` run the asyncio client to completion
there). Talks to charon's own socket, not to frrdmvpn's proxy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from frrdmvpn.adapters.vici_client import ViciError, command, list_sa_messages
from frrdmvpn.adapters.vici_client import terminate_ike as terminate_ike_sa
from frrdmvpn.adapters.vici_proxy import DEFAULT_UPSTREAM
from frrdmvpn.codec.vici import Message, ViciWireError, message_from, text, texts
from frrdmvpn.config.swan import LocalEnd

TIMEOUT = 10.0


class ViciConfigError(RuntimeError):
    """charon refused a configuration command, or could not be reached."""


class CharonConfig:
    """Load and unload what frrdmvpn configures in charon."""

    def __init__(self, path: Path = DEFAULT_UPSTREAM) -> None:
        self.path = path

    def _call(self, name: str, message: Mapping[str, Any] | None = None) -> Message:
        try:
            return command(self.path, name, message_from(message or {}), TIMEOUT)
        except (ViciError, ViciWireError) as exc:
            raise ViciConfigError(f"charon at {self.path}: {exc}") from exc

    def _confirmed(self, name: str, message: Mapping[str, Any]) -> Message:
        """``name``'s answer, which must say ``success = yes``."""
        answer = self._call(name, message)
        try:
            if text(answer.get("success"), "no") != "yes":
                reason = text(answer.get("errmsg"), "no reason given")
                raise ViciConfigError(f"charon refused {name}: {reason}")
        except ViciWireError as exc:
            raise ViciConfigError(f"charon's answer to {name}: {exc}") from exc
        return answer

    def _names(self, name: str, key: str) -> set[str]:
        try:
            return set(texts(self._call(name).get(key)))
        except ViciWireError as exc:
            raise ViciConfigError(f"charon's answer to {name}: {exc}") from exc

    def loaded_conns(self) -> set[str]:
        return self._names("get-conns", "conns")

    def loaded_shared(self) -> set[str]:
        return self._names("get-shared", "keys")

    def load_conn(self, message: Mapping[str, Any]) -> None:
        self._confirmed("load-conn", message)

    def unload_conn(self, name: str) -> None:
        self._confirmed("unload-conn", {"name": name})

    def load_shared(self, message: Mapping[str, Any]) -> None:
        self._confirmed("load-shared", message)

    def unload_shared(self, ident: str) -> None:
        self._confirmed("unload-shared", {"id": ident})

    def load_key(self, path: str, data: bytes) -> str:
        """Load a private key: ``data``, the contents of the file at ``path`` (read through
        :mod:`frrdmvpn.adapters.trusted_files`); returns charon's key id."""
        try:
            answer = self._confirmed("load-key", {"type": "any", "data": data})
            return text(answer.get("id"), "")
        except ViciWireError as exc:
            raise ViciConfigError(
                f"private-key {path}: charon's answer to load-key: {exc}"
            ) from exc
        except ViciConfigError as exc:
            raise ViciConfigError(f"private-key {path}: {exc}") from exc

    def ike_sas(self) -> list[LocalEnd]:
        """Every IKE_SA: its connection, local address and local identity."""
        try:
            messages = asyncio.run(list_sa_messages(self.path))
            return [
                local_end(name, ike)
                for msg in messages
                for name, ike in msg.items()
                if isinstance(ike, dict)
            ]
        except (ViciError, ViciWireError, ValueError) as exc:
            raise ViciConfigError(f"charon at {self.path}: list-sas: {exc}") from exc

    def terminate_ike(self, uniqueid: int) -> None:
        """Close one IKE_SA and its CHILD_SAs, without waiting for the peer's answer."""
        try:
            asyncio.run(terminate_ike_sa(self.path, uniqueid))
        except ViciError as exc:
            raise ViciConfigError(str(exc)) from exc


def local_end(conn: str, ike: Message) -> LocalEnd:
    """One IKE_SA of a ``list-sa`` event (ValueError or ViciWireError if malformed)."""
    return LocalEnd(
        int(text(ike.get("uniqueid"))),
        conn,
        text(ike.get("local-host")),
        text(ike.get("local-id"), ""),
    )
