"""FRR's daemons over their vty sockets: the protocol vtysh speaks, without a vtysh process.

One persistent connection per daemon (``/run/frr/<daemon>.vty``, framing in
:mod:`frrdmvpn.codec.vty`): ``enable`` once, then one command at a time, each answered
before the next is sent; configuration goes through the same session (``configure
terminal``, the lines, ``end``). A ``% ...`` line or a failing status is a
:class:`VtyshError` carrying the daemon's words.

A daemon that stops or crashes closes its connection: :class:`VtySession` reports the loss
at once, and the next connection reports the daemon's pid (``/run/frr/<daemon>.pid``), so a
restarted daemon is told from a connection that merely broke (:class:`VtyEvent`).
:meth:`Frr.keep` reconnects after a short back-off.

Blocking callers (apply runs in a thread; ``frrdmvpnd apply`` has no event loop) go
through :class:`SyncFrr`. The API's few ``show ... json`` calls use the process-wide
:func:`default` sessions.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from frrdmvpn.codec.vty import Reply, ReplyDecoder, VtyWireError, encode_command, table
from frrdmvpn.config.frr import FRR_8_4, FrrVersion, frr_version, shown
from frrdmvpn.core.supervisor import Backoff, NhrpBinding, PeerKey

RUN_DIR = Path("/run/frr")
TIMEOUT = 10.0
#: Connecting and ``enable``: a daemon answers in milliseconds unless it is hung or stopping.
CONNECT_TIMEOUT = 5.0
#: Daemons whose restarts frrdmvpnd watches (watchfrr: `systemctl reload frr` restarts it).
WATCHED = ("zebra", "nhrpd", "ospfd", "watchfrr")
_RECONNECT = Backoff(base=0.1, cap=1.0, jitter=0.0)
_QUICK_ATTEMPTS = 60  # about a minute of tries a second; then every RECONNECT_SLOW seconds
RECONNECT_SLOW = 5.0
T = TypeVar("T")


class VtyshError(RuntimeError):
    """A daemon could not be asked, or refused what it was sent (its ``%`` lines quoted)."""


@dataclass(frozen=True)
class VtyEvent:
    """A session connected (``pid``: the daemon's now, ``previous``: at the connection
    before, None the first time) or lost its connection (``pid``: the daemon's then)."""

    daemon: str
    connected: bool
    pid: int | None
    previous: int | None = None
    reason: str = ""

    @property
    def restarted(self) -> bool:
        """Connected to another process than at the connection before."""
        return self.connected and self.previous is not None and self.pid != self.previous


def read_pid(path: Path) -> int | None:
    """The pid an FRR daemon wrote to its pid file; None if there is none."""
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def reconnect_delay(attempt: int) -> float:
    """Seconds before reconnection attempt ``attempt`` (1, 2, ...): quick for about a minute
    after a loss (a restarted daemon is back within seconds), then slow (not running here)."""
    if attempt > _QUICK_ATTEMPTS:
        return RECONNECT_SLOW
    return _RECONNECT.delay(attempt, 0.5)


class VtySession:
    """One daemon's vty connection; commands are serialised (one in flight at a time)."""

    def __init__(
        self,
        daemon: str,
        run_dir: Path = RUN_DIR,
        *,
        timeout: float = TIMEOUT,
        on_event: Callable[[VtyEvent], None] | None = None,
    ) -> None:
        self.daemon = daemon
        self.path = run_dir / f"{daemon}.vty"
        self.pid_path = run_dir / f"{daemon}.pid"
        self.timeout = timeout
        self.connect_timeout = min(timeout, CONNECT_TIMEOUT)
        self.on_event = on_event
        self.pid: int | None = None  # at the latest connection
        self.ready = False  # connected and enabled
        self._writer: asyncio.StreamWriter | None = None
        self._reading: asyncio.Task[None] | None = None
        self._waiting: asyncio.Future[Reply] | None = None
        self._lock = asyncio.Lock()
        self._lost = asyncio.Event()
        self._lost.set()

    async def command(self, line: str, *, connect: bool = True) -> Reply:
        """Send one command and return its reply; connect first if need be, unless
        ``connect`` is False (then VtyshError at once: the supervisor must not wait on a
        daemon that is starting or hung, :meth:`Frr.keep` reconnects)."""
        data = _encoded(self.daemon, line)
        if not connect and not self.ready:
            raise VtyshError(f"{self.daemon} is not connected")
        async with self._lock:
            await self._connect()
            return await self._exchange(data, line)

    async def configure(self, lines: Iterable[str]) -> list[Reply]:
        """``configure terminal``, each line, ``end`` as one batch (no other command of this
        session comes between). The first refusal ends the batch (with ``end``) and raises."""
        body = [line for line in lines if line not in ("configure terminal", "end")]
        batch = [(line, _encoded(self.daemon, line)) for line in body]  # all sendable first
        async with self._lock:
            await self._connect()
            await self._expect_ok("configure terminal")
            try:
                replies = [await self._send_ok(data, line) for line, data in batch]
            except VtyshError:
                if self.ready:  # back to the enable node for the next command
                    with contextlib.suppress(VtyshError):
                        await self._expect_ok("end")
                raise
            await self._expect_ok("end")
            return replies

    async def connect(self) -> None:
        """Connect and enable, unless connected already."""
        async with self._lock:
            await self._connect()

    async def answers(self) -> bool:
        """Whether the daemon answers now, on a connection of its own: ``enable`` answered
        within the connect timeout. A hung daemon's socket may still accept (the kernel
        queues the connection); only a daemon that runs its event loop answers."""
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_unix_connection(str(self.path)), self.connect_timeout
            )
        except (OSError, TimeoutError):
            return False
        decoder = ReplyDecoder()

        async def answered() -> bool:
            while data := await reader.read(1 << 16):
                if decoder.feed(data):
                    return True
            return False

        try:
            writer.write(encode_command("enable"))
            return await asyncio.wait_for(answered(), self.connect_timeout)
        except (OSError, TimeoutError, VtyWireError):
            return False
        finally:
            writer.close()

    async def wait_lost(self) -> None:
        """Until the connection is lost (at once when not connected)."""
        await self._lost.wait()

    async def close(self) -> None:
        """Close the connection (no loss is reported)."""
        self._drop("closed by frrdmvpnd", report=False)
        if self._reading is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reading

    async def _connect(self) -> None:
        if self.ready:
            return
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_unix_connection(str(self.path)), self.connect_timeout
            )
        except (OSError, TimeoutError) as exc:
            reason = getattr(exc, "strerror", None) or "timed out"
            raise VtyshError(f"cannot reach {self.daemon} at {self.path}: {reason}") from exc
        self._writer = writer
        self._reading = asyncio.create_task(self._read(reader, ReplyDecoder()))
        await self._expect_ok("enable", self.connect_timeout)
        previous, self.pid = self.pid, read_pid(self.pid_path)
        self.ready = True
        self._lost.clear()
        self._report(VtyEvent(self.daemon, True, self.pid, previous))

    async def _expect_ok(self, line: str, timeout: float | None = None) -> None:
        """A command that changes the session's mode: a refusal leaves the mode unknown, so
        the connection is closed (the daemon leaves configuration mode when it closes)."""
        reply = await self._exchange(_encoded(self.daemon, line), line, timeout)
        if not reply.ok:
            self._drop(f"{line!r} failed: {reply.error()}", report=self.ready)
            raise VtyshError(f"{self.daemon} refused {line!r}: {reply.error()}")

    async def _send_ok(self, data: bytes, line: str) -> Reply:
        """Send a configuration line; a refusal names it with its secret masked (FRR's
        message repeats the line)."""
        masked = shown(line)
        reply = await self._exchange(data, masked)
        if not reply.ok:
            error = reply.error().replace(line, masked)
            raise VtyshError(f"{self.daemon} refused {masked!r}: {error}")
        return reply

    async def _exchange(self, data: bytes, line: str, timeout: float | None = None) -> Reply:
        timeout = self.timeout if timeout is None else timeout
        if self._writer is None:
            raise VtyshError(f"{self.daemon}: not connected")
        waiting: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._waiting = waiting
        try:
            self._writer.write(data)
            await self._writer.drain()
            return await asyncio.wait_for(waiting, timeout)
        except TimeoutError as exc:  # the next reply could be this one's: start afresh
            self._drop(f"no answer to {line!r} within {timeout:g} s", report=self.ready)
            raise VtyshError(f"{self.daemon} did not answer {line!r} in {timeout:g} s") from exc
        except OSError as exc:
            self._drop(f"sending {line!r}: {exc}", report=self.ready)
            raise VtyshError(f"{self.daemon}: sending {line!r}: {exc}") from exc
        finally:
            self._waiting = None
            if waiting.done() and not waiting.cancelled():
                waiting.exception()  # a loss while sending is reported once, above

    async def _read(self, reader: asyncio.StreamReader, decoder: ReplyDecoder) -> None:
        """Hand each reply to the command awaiting it; report the end of the connection."""
        reason = f"{self.daemon} closed its vty connection"
        try:
            while True:
                data = await reader.read(1 << 16)
                if not data:
                    break
                if not self._deliver(decoder.feed(data)):
                    reason = f"{self.daemon} sent a reply to no command"
                    break
        except (OSError, VtyWireError) as exc:
            reason = f"{self.daemon}'s vty connection: {exc}"
        self._drop(reason, report=self.ready)

    def _deliver(self, replies: list[Reply]) -> bool:
        """Hand the replies to the command awaiting one; False if there is none for one."""
        for reply in replies:
            if self._waiting is None or self._waiting.done():
                return False
            self._waiting.set_result(reply)
        return True

    def _drop(self, reason: str, *, report: bool) -> None:
        if self._waiting is not None and not self._waiting.done():
            self._waiting.set_exception(VtyshError(reason))
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._reading is not None and self._reading is not asyncio.current_task():
            self._reading.cancel()
        was_ready, self.ready = self.ready, False
        self._lost.set()
        if report and was_ready:
            self._report(VtyEvent(self.daemon, False, self.pid, reason=reason))

    def _report(self, event: VtyEvent) -> None:
        if self.on_event is not None:
            self.on_event(event)


def _encoded(daemon: str, line: str) -> bytes:
    try:
        return encode_command(line)
    except VtyWireError as exc:
        raise VtyshError(f"{daemon}: {exc}") from exc


class Frr:
    """Sessions with the FRR daemons of this node (one each), and their watch."""

    def __init__(self, run_dir: Path = RUN_DIR, *, timeout: float = TIMEOUT) -> None:
        self.run_dir = run_dir
        self.timeout = timeout
        self.sessions: dict[str, VtySession] = {}
        self.listeners: list[Callable[[VtyEvent], None]] = []
        self.seen: set[str] = set()  # daemons connected at least once

    def session(self, daemon: str) -> VtySession:
        if daemon not in self.sessions:
            self.sessions[daemon] = VtySession(
                daemon, self.run_dir, timeout=self.timeout, on_event=self._event
            )
        return self.sessions[daemon]

    def _event(self, event: VtyEvent) -> None:
        if event.connected:
            self.seen.add(event.daemon)
        for listener in list(self.listeners):
            listener(event)

    def connected(self, daemon: str) -> bool:
        return daemon in self.sessions and self.sessions[daemon].ready

    async def command(self, daemon: str, line: str, *, connect: bool = True) -> str:
        """An exec command's output; VtyshError if the daemon refused it."""
        reply = await self.session(daemon).command(line, connect=connect)
        if not reply.ok:
            raise VtyshError(f"{daemon} refused {line!r}: {reply.error()}")
        return reply.text

    async def show_json(self, command: str, daemon: str = "nhrpd", *, connect: bool = True) -> Any:
        """One ``show ... json`` (an empty table's status 1 is no error)."""
        text = await self.command(daemon, command, connect=connect)
        try:
            return extract_json(text)
        except ValueError as exc:
            raise VtyshError(f"{daemon}: {command!r}: {exc}") from exc

    async def running_config(self, daemon: str) -> str:
        return await self.command(daemon, "show running-config")

    async def configure(self, daemon: str, lines: list[str]) -> None:
        if any(line not in ("configure terminal", "end") for line in lines):
            await self.session(daemon).configure(lines)

    async def keep(self, daemons: Iterable[str] = WATCHED) -> None:
        """Keep each daemon connected, forever: reconnect after a loss (see
        :func:`reconnect_delay`); what happens is reported to :attr:`listeners`."""
        async with asyncio.TaskGroup() as group:
            for daemon in daemons:
                group.create_task(self._keep(self.session(daemon)))

    async def _keep(self, session: VtySession) -> None:
        attempt = 0
        while True:
            await session.wait_lost()
            try:
                await session.connect()
                attempt = 0
            except VtyshError:
                attempt += 1
                await asyncio.sleep(reconnect_delay(attempt))

    async def settled(self, timeout: float) -> bool:
        """Wait (up to ``timeout`` s) until every daemon seen before is connected again."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while any(not self.connected(d) for d in self.seen):
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.1)
        return True

    async def close(self) -> None:
        for session in self.sessions.values():
            await session.close()


_default: Frr | None = None


def default() -> Frr:
    """The process's sessions (created on first use)."""
    global _default  # noqa: PLW0603 - one set of connections per process
    if _default is None:
        _default = Frr()
    return _default


def use(frr: Frr) -> None:
    """Make ``frr`` the process's sessions (frrdmvpnd's composition root)."""
    global _default  # noqa: PLW0603
    _default = frr


async def show_json(command: str, daemon: str = "nhrpd") -> Any:
    """Run one ``show ... json`` command against ``daemon``."""
    return await default().show_json(command, daemon)


async def run_command(command: str, daemon: str = "nhrpd") -> str:
    """An exec-mode command (``clear ip nhrp cache``); VtyshError if the daemon says ``%``."""
    return await default().command(daemon, command)


class SyncFrr:
    """Blocking access for code that runs outside the event loop: apply (in a thread of the
    daemon, whose ``loop`` owns the sessions) or ``frrdmvpnd apply`` (``loop`` None: a
    connection of its own per call)."""

    def __init__(
        self,
        frr: Frr | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        run_dir: Path = RUN_DIR,
    ) -> None:
        self.frr = frr
        self.loop = loop
        self.run_dir = run_dir  # of the daemons, for a connection of its own

    def running_config(self, daemon: str) -> str:
        return self._call(lambda frr: frr.running_config(daemon))

    def configure(self, daemon: str, lines: list[str]) -> None:
        self._call(lambda frr: frr.configure(daemon, lines))

    def version(self) -> FrrVersion:
        """The node's FRR release, as nhrpd's ``show version`` names it (FRR 8.4 when it
        names none)."""
        return frr_version(self._call(lambda frr: frr.command("nhrpd", "show version"))) or FRR_8_4

    def _call(self, work: Callable[[Frr], Awaitable[T]]) -> T:
        if self.loop is None or self.frr is None:
            return asyncio.run(_once(work, self.run_dir))
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:  # no loop in this thread: the usual case
            running = None
        if running is self.loop:
            raise RuntimeError("a blocking vty call on the event loop itself would deadlock")
        future = asyncio.run_coroutine_threadsafe(_awaited(work(self.frr)), self.loop)
        return future.result()


async def _awaited(awaitable: Awaitable[T]) -> T:
    return await awaitable


async def _once(work: Callable[[Frr], Awaitable[T]], run_dir: Path) -> T:
    frr = Frr(run_dir)
    try:
        return await work(frr)
    finally:
        await frr.close()


# --- nhrpd's tables ----------------------------------------------------------------------


def extract_json(text: str) -> Any:
    """Parse a ``show ... json`` output, skipping text some FRR 8.4 commands print before it
    (``show ip nhrp shortcut json`` prints its table header first)."""
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    if not starts:
        raise ValueError(f"no JSON in the output: {text[:200]!r}")
    return json.loads(text[min(starts) :])


def bindings_from_cache(data: Any) -> list[NhrpBinding]:
    """Peer bindings from ``show ip nhrp cache json`` (local entries are not peers)."""
    out = []
    for e in table(data):
        if e.get("type") in ("local", "incomplete", "negative"):
            continue
        try:
            out.append(
                NhrpBinding(
                    ipaddress.ip_address(e["protocol"]),
                    ipaddress.ip_address(e["nbma"]),
                    str(e["type"]),
                    str(e.get("interface", "")),
                )
            )
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


@dataclass(frozen=True)
class NhrpTables:
    """nhrpd's cache, SA counts and NHS list, read one after the other."""

    bindings: list[NhrpBinding]
    sas: dict[PeerKey, int]
    cache: list[dict[str, Any]]
    nhs: list[dict[str, Any]]
    answers: tuple[str, ...] = ()  # nhrpd's text, as read


_TABLES = ("show ip nhrp cache json", "show dmvpn json", "show ip nhrp nhs json")


async def nhrp_tables(
    frr: Frr | None = None, *, connect: bool = True, previous: NhrpTables | None = None
) -> NhrpTables:
    """Cache, ``show dmvpn`` and NHS list over nhrpd's session (``connect``: see
    :meth:`VtySession.command`). ``previous`` itself when nhrpd answered the same text
    (nothing to parse, and its readers know it unchanged by its identity)."""
    frr = frr or default()
    answers = tuple([await frr.command("nhrpd", command, connect=connect) for command in _TABLES])
    if previous is not None and previous.answers == answers:
        return previous
    parsed = []
    for command, text in zip(_TABLES, answers, strict=True):
        try:
            parsed.append(extract_json(text))
        except ValueError as exc:
            raise VtyshError(f"nhrpd: {command!r}: {exc}") from exc
    cache, dmvpn, nhs = parsed
    return NhrpTables(
        bindings_from_cache(cache), sas_from_dmvpn(dmvpn), table(cache), table(nhs), answers
    )
