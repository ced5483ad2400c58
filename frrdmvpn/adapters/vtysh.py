"""nhrpd's view, read through vtysh (the only control path Debian's FRR 8.4 offers)."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import subprocess
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


async def show_json(command: str, daemon: str = "nhrpd") -> Any:
    """Run one ``show ... json`` command against ``daemon``."""
    try:
        proc = await asyncio.create_subprocess_exec(
            "vtysh", "-d", daemon, "-c", command,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
    except OSError as exc:
        raise VtyshError(f"cannot run vtysh: {exc}") from exc
    try:
        out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    except TimeoutError as exc:
        proc.kill()
        await proc.wait()
        raise VtyshError(f"vtysh -c {command!r} timed out") from exc
    if proc.returncode != 0:
        raise VtyshError(f"vtysh -c {command!r}: {err.decode().strip() or proc.returncode}")
    try:
        return extract_json(out.decode())
    except ValueError as exc:
        raise VtyshError(f"vtysh -c {command!r}: {exc}") from exc


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
