"""nhrpd's view, read through vtysh (the only control path Debian's FRR 8.4 offers)."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import subprocess
from dataclasses import dataclass
from typing import Any

from frrdmvpn.core.supervisor import NhrpBinding, PeerKey

TIMEOUT = 10.0


class VtyshError(RuntimeError):
    """vtysh failed or printed something that is not the JSON asked for."""


def extract_json(text: str) -> Any:
    """Parse vtysh JSON output, skipping text some FRR 8.4 commands print before it
    (``show ip nhrp shortcut json`` prints its table header first)."""
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    if not starts:
        raise ValueError(f"no JSON in vtysh output: {text[:200]!r}")
    return json.loads(text[min(starts) :])


async def _run(commands: list[str], daemon: str) -> str:
    """vtysh's output for ``commands`` sent to ``daemon`` in one run."""
    argv = ["vtysh", "-d", daemon]
    for command in commands:
        argv += ["-c", command]
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
    except OSError as exc:
        raise VtyshError(f"cannot run vtysh: {exc}") from exc
    try:
        out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    except TimeoutError as exc:
        proc.kill()
        await proc.wait()
        raise VtyshError(f"vtysh {commands} timed out") from exc
    if proc.returncode != 0:
        raise VtyshError(f"vtysh {commands}: {err.decode().strip() or proc.returncode}")
    return out.decode()


async def show_json(command: str, daemon: str = "nhrpd") -> Any:
    """Run one ``show ... json`` command against ``daemon``."""
    out = await _run([command], daemon)
    try:
        return extract_json(out)
    except ValueError as exc:
        raise VtyshError(f"vtysh -c {command!r}: {exc}") from exc


async def run_command(command: str, daemon: str = "nhrpd") -> str:
    """An exec-mode command (``clear ip nhrp cache``); VtyshError if vtysh says ``%``."""
    out = await _run([command], daemon)
    refused = [line for line in out.splitlines() if line.startswith("%")]
    if refused:
        raise VtyshError(f"vtysh -c {command!r}: {'; '.join(refused)}")
    return out


def bindings_from_cache(data: Any) -> list[NhrpBinding]:
    """Peer bindings from ``show ip nhrp cache json`` (local entries are not peers)."""
    out = []
    table = data.get("table", []) if isinstance(data, dict) else []
    for e in table if isinstance(table, list) else []:
        if not isinstance(e, dict) or e.get("type") in ("local", "incomplete", "negative"):
            continue
        try:
            out.append(NhrpBinding(ipaddress.ip_address(e["protocol"]),
                                   ipaddress.ip_address(e["nbma"]), str(e["type"]),
                                   str(e.get("interface", ""))))  # fmt: skip
        except (KeyError, ValueError):
            continue
    return out


def sas_from_dmvpn(data: Any) -> dict[PeerKey, int]:
    """nhrpd's SA count per NBMA pair from ``show dmvpn json``."""
    out: dict[PeerKey, int] = {}
    for e in data if isinstance(data, list) else []:
        try:
            key = (ipaddress.ip_address(e["src"]), ipaddress.ip_address(e["dst"]))
            out[key] = int(e["sas"])
        except (KeyError, ValueError, TypeError):
            continue
    return out


async def nhrp_view() -> tuple[list[NhrpBinding], dict[PeerKey, int]]:
    """nhrpd's bindings and its SA counts."""
    cache = await show_json("show ip nhrp cache json")
    dmvpn = await show_json("show dmvpn json")
    return bindings_from_cache(cache), sas_from_dmvpn(dmvpn)


@dataclass(frozen=True)
class NhrpTables:
    """nhrpd's cache, SA counts and NHS list from one vtysh run."""

    bindings: list[NhrpBinding]
    sas: dict[PeerKey, int]
    cache: list[dict[str, Any]]
    nhs: list[dict[str, Any]]


def split_json(text: str, count: int) -> list[Any]:
    """``count`` JSON documents printed one after another (one vtysh run, several -c)."""
    decoder = json.JSONDecoder()
    out: list[Any] = []
    pos = 0
    while len(out) < count:
        starts = [i for i in (text.find("{", pos), text.find("[", pos)) if i >= 0]
        if not starts:
            raise ValueError(f"expected {count} JSON documents, found {len(out)}")
        value, pos = decoder.raw_decode(text, min(starts))
        out.append(value)
    return out


def _table(data: Any) -> list[dict[str, Any]]:
    table = data.get("table", []) if isinstance(data, dict) else []
    return [e for e in table if isinstance(e, dict)] if isinstance(table, list) else []


async def nhrp_tables() -> NhrpTables:
    """Cache, ``show dmvpn`` and NHS list in one vtysh process (each costs a fork)."""
    commands = ["show ip nhrp cache json", "show dmvpn json", "show ip nhrp nhs json"]
    out = await _run(commands, "nhrpd")
    try:
        cache, dmvpn, nhs = split_json(out, 3)
    except ValueError as exc:
        raise VtyshError(f"vtysh {commands}: {exc}") from exc
    return NhrpTables(bindings_from_cache(cache), sas_from_dmvpn(dmvpn), _table(cache),
                      _table(nhs))  # fmt: skip


def _vtysh(args: list[str]) -> str:
    try:
        done = subprocess.run(["vtysh", *args], capture_output=True, text=True, check=False,
                              timeout=TIMEOUT)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise VtyshError(f"vtysh: {exc}") from exc
    # vtysh reports a refused line with "% ..." (and, depending on the error, exit 0).
    refused = [line for line in (done.stdout + done.stderr).splitlines() if line.startswith("%")]
    if done.returncode != 0 or refused:
        detail = "; ".join(refused) or done.stderr.strip() or f"exit {done.returncode}"
        raise VtyshError(f"vtysh refused the configuration: {detail}")
    return done.stdout


def running_config(daemon: str) -> str:
    """``show running-config`` of one FRR daemon."""
    return _vtysh(["-d", daemon, "-c", "show running-config"])


def configure(lines: list[str]) -> None:
    """Send configuration lines (``configure terminal`` … ``end``) in one vtysh session."""
    if lines:
        args: list[str] = []
        for line in lines:
            args += ["-c", line]
        _vtysh(args)
