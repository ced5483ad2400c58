"""A stand-in FRR daemon behind ``<run_dir>/<name>.vty`` that speaks the real framing
(:mod:`frrdmvpn.codec.vty`), with the parts of a daemon's vty frrdmvpn relies on: VIEW node
until ``enable``, ``configure terminal`` ... ``end``, ``%`` refusals, a pid file. Tests make
it slow, silent, chatty or restart it."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from pathlib import Path

EMPTY_TABLE = '{\n  "attr":{\n    "entriesCount":0\n  },\n  "table":[\n  ]\n}\n'


@dataclass
class FakeDaemon:
    run_dir: Path
    name: str = "nhrpd"
    pid: int = 1000
    received: list[str] = field(default_factory=list)  # every command, in order
    configured: list[str] = field(default_factory=list)  # what configuration mode took
    refuse: set[str] = field(default_factory=set)  # config lines answered "% ..." and 13
    silent: set[str] = field(default_factory=set)  # commands never answered
    chatty: set[str] = field(default_factory=set)  # commands answered twice
    connections: int = 0
    version: str = "FRRouting 8.4.4 (fake) on Linux(6.1.0-57-amd64)."  # show version's line
    overlapped: bool = False  # a command came before the previous one was answered
    _server: asyncio.AbstractServer | None = None
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return self.run_dir / f"{self.name}.vty"

    async def start(self) -> None:
        self.path.unlink(missing_ok=True)
        (self.run_dir / f"{self.name}.pid").write_text(f"{self.pid}\n")
        self._server = await asyncio.start_unix_server(self._serve, str(self.path))

    async def stop(self) -> None:
        """Die: every client sees its connection end."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in self._writers:
            writer.close()
        self._writers.clear()
        await asyncio.sleep(0)

    async def restart(self, pid: int) -> None:
        """Come back as a new process with an empty configuration."""
        await self.stop()
        self.pid, self.configured = pid, []
        await self.start()

    def running_config(self) -> str:
        return "frr version 8.4.4\n!\n" + "".join(f"{line}\n" for line in self.configured)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        node = "view"
        buf = b""
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(4096):
                buf += data
                if buf.count(b"\0") > 1:
                    self.overlapped = True
                while b"\0" in buf:
                    raw, buf = buf.split(b"\0", 1)
                    line = raw.decode()
                    self.received.append(line)
                    if line in self.silent:
                        continue
                    text, status, node = self._answer(line, node)
                    out = text.encode() + bytes([0, 0, 0, status])
                    writer.write(out * 2 if line in self.chatty else out)
                    await writer.drain()
        writer.close()

    def _answer(self, line: str, node: str) -> tuple[str, int, str]:
        """(output, status, node after) for one command."""
        modes = {"enable": "enable", "end": "enable"}
        if node != "view":
            modes["configure terminal"] = "config"
        if line in modes:
            return "", 0, modes[line]
        if node not in ("view", "enable"):
            refused = line in self.refuse
            if not refused:
                self.configured.append(line)
            return (f"% [NHRP] cannot {line}\n", 13, node) if refused else ("", 0, node)
        shown = {
            "show ip nhrp cache json": (EMPTY_TABLE, 1),
            "show ip nhrp nhs json": (EMPTY_TABLE, 1),
            "show dmvpn json": ("[\n]\n", 0),
            "show version": (f"{self.version}\nCopyright 1996-2005 Kunihiro Ishiguro, et al.\n", 0),
        }
        if node == "enable":
            shown["show running-config"] = (self.running_config(), 0)
        if line.startswith("echo "):
            shown[line] = (line[5:] + "\n", 0)
        text, status = shown.get(line, (f"% [NHRP] Unknown command: {line}\n", 2))
        return text, status, node
