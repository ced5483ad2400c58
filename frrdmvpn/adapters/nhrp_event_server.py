"""nhrpd's event socket: answer ``authorize-binding`` with a decision from the core."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

from frrdmvpn.adapters.journald import fields as log_fields
from frrdmvpn.adapters.unix_server import admitted, close_server, listen_restricted
from frrdmvpn.codec.nhrp_events import (
    AuthorizeBinding,
    EventDecoder,
    EventStreamError,
    EventWireError,
    encode_reply,
    parse_event,
)
from frrdmvpn.core.admission import Admission
from frrdmvpn.core.authorize import Decision

log = logging.getLogger(__name__)

DEFAULT_PATH = Path("/run/frrdmvpn/nhrp-events.sock")
READ_SIZE = 65536
Decide = Callable[[AuthorizeBinding], Awaitable[Decision]]


class NhrpEventServer:
    """Listen where nhrpd's ``nhrp event socket`` points; every decision is logged and counted."""

    def __init__(
        self,
        decide: Decide,
        path: Path = DEFAULT_PATH,
        group: str | None = "frr",
        journal: Callable[[AuthorizeBinding, Decision, float], Awaitable[None]] | None = None,
        admission: Admission | None = None,
    ):
        self.decide = decide
        self.admission = admission  # per-UID caps (frrdmvpn.enforcement sets them)
        self.journal = journal
        self.path = path
        self.group = group
        self.counters: Counter[str] = Counter()
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        serve = admitted(self.admission, self._serve, log)
        self._server = await listen_restricted(self.path, serve, self.group, own_dir=True)
        log.info("nhrp event socket listening on %s", self.path)

    async def close(self) -> None:
        if self._server is not None:
            await close_server(self._server)

    async def _answer(self, event: AuthorizeBinding, writer: asyncio.StreamWriter) -> None:
        started = time.monotonic()
        try:
            decision = await self.decide(event)
        except Exception as exc:  # a failing check must deny, never leave nhrpd waiting
            log.exception("authorize-binding %d: check failed", event.eventid)
            decision = Decision(False, f"deny: the check failed: {exc}")
        self.counters["accept" if decision.accept else "deny"] += 1
        if decision.weak:
            self.counters["weak"] += 1
        log.log(
            logging.WARNING if not decision.accept or decision.weak else logging.INFO,
            "authorize-binding event=%d type=%s peer=%s nbma=%s -> %s: %s",
            event.eventid,
            event.type,
            event.remote_addr,
            event.remote_nbma,
            "accept" if decision.accept else "deny",
            decision.reason,
            extra=log_fields(
                peer=event.remote_nbma,
                claimed=event.remote_addr,
                event="authorize-binding",
                eventid=event.eventid,
                verdict="accept" if decision.accept else "deny",
                reason=decision.reason,
            ),
        )
        if self.journal is not None:  # recorded before nhrpd can act on it (causal order)
            try:
                await self.journal(event, decision, time.monotonic() - started)
            except Exception as exc:  # only the record is lost, never the answer
                log.warning("recording the decision: %s", exc)
        writer.write(encode_reply(event.eventid, decision.accept))
        await writer.drain()

    def _dispatch(
        self,
        messages: list[dict[str, str]],
        writer: asyncio.StreamWriter,
        tasks: set[asyncio.Task[None]],
    ) -> None:
        """Start a decision for each authorize-binding; deny what is malformed or unknown."""
        for fields in messages:
            try:
                event = parse_event(fields)
            except EventWireError as exc:
                self.counters["malformed"] += 1
                log.warning("malformed event from nhrpd: %s", exc)
                if exc.eventid is not None:
                    writer.write(encode_reply(exc.eventid, False))
                continue
            if isinstance(event, AuthorizeBinding):
                task = asyncio.create_task(self._answer(event, writer))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            else:
                self.counters["unknown"] += 1
                log.warning("unknown nhrpd event %r: denied", event.event)
                if event.eventid is not None:
                    writer.write(encode_reply(event.eventid, False))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one nhrpd connection; a broken stream is answered up to the fault, then closed."""
        log.info("nhrpd connected to the event socket")
        decoder = EventDecoder()
        tasks: set[asyncio.Task[None]] = set()
        try:
            while data := await reader.read(READ_SIZE):
                try:
                    messages = decoder.feed(data)
                except EventStreamError as exc:
                    # What completed before the fault still gets its answer; the broken
                    # message is denied if its id was read; then the connection closes.
                    self._dispatch(exc.messages, writer, tasks)
                    self.counters["malformed"] += 1
                    log.warning("closing the event socket connection: %s", exc)
                    if exc.eventid is not None:
                        writer.write(encode_reply(exc.eventid, False))
                    break
                self._dispatch(messages, writer, tasks)
        except ConnectionError:
            pass
        finally:
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            writer.close()
            log.info("nhrpd disconnected from the event socket")
