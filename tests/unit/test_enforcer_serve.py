"""frrdmvpn-proxy's ``serve`` itself (frrdmvpn/enforcement.py), not only ``load_policy``: its
event socket answers a fake nhrpd, its decisions ask a fake charon that holds the peer's SA,
and a reload is what SIGHUP does to this very process (docs/security.md A9).

Without a policy every binding is denied, although charon holds an SA that would let it
through; a reload with an invalid file keeps the last valid policy, not the start's "none".
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from frrdmvpn.adapters import decision_journal
from frrdmvpn.application.proxy import build_parser
from frrdmvpn.codec.vici import Message, Packet, PacketType
from frrdmvpn.enforcement import serve
from tests.unit.adapters.test_proxy_io import scripted_charon

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
HUB = (EXAMPLES / "lab-hub.conf").read_text()
# spoke2 (198.51.100.12) claims 192.0.2.12: lab-hub.conf's psk-map grants it exactly that.
EVENT = (
    "eventid={eventid}\nevent=authorize-binding\ntype=dynamic\nold_type=invalid\nnum_nhs=0\n"
    "interface=dmvpn0\nlocal_addr=192.0.2.1\nlocal_nbma=198.51.100.1\n"
    "remote_addr=192.0.2.12\nremote_nbma=198.51.100.12\n\n"
)
# What charon lists for spoke2: an INSTALLED ESP transport CHILD_SA protecting GRE between
# the two NBMA addresses, its IKE identity its own address.
SPOKE2_SA: Message = {
    "dmvpn": {
        "uniqueid": b"3", "version": b"2", "state": b"ESTABLISHED",
        "local-host": b"198.51.100.1", "remote-host": b"198.51.100.12",
        "local-id": b"198.51.100.1", "remote-id": b"198.51.100.12",
        "child-sas": {"dmvpn-5": {
            "name": b"dmvpn", "uniqueid": b"5", "state": b"INSTALLED", "mode": b"TRANSPORT",
            "protocol": b"ESP", "spi-in": b"c0000001", "spi-out": b"c0000002",
            "local-ts": [b"198.51.100.1/32[gre]"], "remote-ts": [b"198.51.100.12/32[gre]"],
        }},
    },
}  # fmt: skip
ACCEPTED = (
    "accept 192.0.2.12 via 198.51.100.12: IKE identity '198.51.100.12' "
    "(CHILD_SA #5 (IKE_SA #3)) may claim 192.0.2.12/32, 203.0.113.32/28 per the PSK "
    "authorization map"
)
NO_POLICY = (
    "deny 192.0.2.12 via 198.51.100.12: no configuration applied yet, so no authorization policy"
)


def proxy_args(tmp_path: Path) -> argparse.Namespace:
    return build_parser().parse_args([
        "--listen", str(tmp_path / "charon.vici"),
        "--upstream", str(tmp_path / "frrdmvpn-charon.vici"),
        "--events", str(tmp_path / "run" / "nhrp-events.sock"),
        "--config", str(tmp_path / "running.conf"),
        "--pidfile", str(tmp_path / "run" / "proxy.pid"),
        "--journal", str(tmp_path / "run" / "authorization.json"),
    ])  # fmt: skip


async def until(condition: Callable[[], bool]) -> None:
    """A wait for what the proxy does on its own (not a timed assertion)."""
    while not condition():
        await asyncio.sleep(0.01)


async def ask(events: Path, eventid: int) -> str:
    """Send one authorize-binding as nhrpd does; nhrpd's answer."""
    reader, writer = await asyncio.open_unix_connection(str(events))
    writer.write(EVENT.format(eventid=eventid).encode())
    answer = await asyncio.wait_for(reader.readuntil(b"\n\n"), 10)
    writer.close()
    return answer.decode()


def last_decision(args: argparse.Namespace) -> tuple[str, str]:
    """The mode and the reason of the proxy's latest decision, from its journal."""
    journal = decision_journal.read(args.journal)
    assert journal is not None
    decision = journal["decisions"][-1]
    return decision["mode"], decision["reason"]


def run_proxy(tmp_path: Path, body: Callable[[argparse.Namespace], Awaitable[None]]) -> None:
    """``serve`` until ``body`` is done, then SIGTERM, as systemd stops it."""
    args = proxy_args(tmp_path)

    async def main() -> None:
        seen: list[Packet] = []
        charon = await scripted_charon(
            args.upstream, {"list-sas": [Packet(PacketType.EVENT, "list-sa", SPOKE2_SA)]}, seen
        )
        proxy = asyncio.create_task(serve(args))
        try:
            await until(lambda: args.pidfile.exists() or proxy.done())  # both sockets listen
            assert not proxy.done(), proxy.exception()
            await body(args)
            os.kill(os.getpid(), signal.SIGTERM)  # the proxy's handler, not pytest's
            await asyncio.wait_for(proxy, 10)
        finally:
            proxy.cancel()
            charon.close()
        assert not args.pidfile.exists()

    asyncio.run(asyncio.wait_for(main(), 50))


def sighup() -> None:
    """What ``frrdmvpnd apply`` does to the proxy after writing the running configuration."""
    os.kill(os.getpid(), signal.SIGHUP)


def test_without_a_policy_every_binding_is_denied_though_charon_holds_the_sa(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="frrdmvpn.proxy")

    async def body(args: argparse.Namespace) -> None:
        assert not args.config.exists()
        assert await ask(args.events, 1) == "eventid=1\nresult=deny\n\n"
        assert last_decision(args) == ("", NO_POLICY)
        # an invalid file is no policy either, at start or after a reload
        args.config.write_text(HUB.replace("tunnel key 42", "tunnel key x"))
        sighup()
        await until(lambda: last_reload(caplog.records) is not None)
        assert await ask(args.events, 2) == "eventid=2\nresult=deny\n\n"
        assert last_decision(args) == ("", NO_POLICY)
        # the control: the same event, the same SA, a valid policy
        args.config.write_text(HUB)
        sighup()
        await until(lambda: last_reload(caplog.records) == "reloaded")
        assert await ask(args.events, 3) == "eventid=3\nresult=accept\n\n"
        assert last_decision(args) == ("psk-map", ACCEPTED)

    run_proxy(tmp_path, body)


def test_an_invalid_reload_keeps_the_policy_that_was_valid(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="frrdmvpn.proxy")

    async def body(args: argparse.Namespace) -> None:
        args.config.write_text(HUB)
        sighup()
        await until(lambda: last_reload(caplog.records) == "reloaded")
        assert await ask(args.events, 1) == "eventid=1\nresult=accept\n\n"
        for broken in (
            HUB.replace("tunnel key 42", "tunnel key x"),  # a validation error
            "hostname hub\n",  # valid, but no tunnel: no policy in it
            None,  # the file removed
        ):
            caplog.clear()
            if broken is None:
                args.config.unlink()
            else:
                args.config.write_text(broken)
            sighup()
            await until(lambda: last_reload(caplog.records) is not None)
            assert last_reload(caplog.records) == "NOT reloaded"
            # still the psk-map of the valid file, not the start's "no policy"
            assert await ask(args.events, 2) == "eventid=2\nresult=accept\n\n"
            assert last_decision(args) == ("psk-map", ACCEPTED)
        # and a valid file that grants spoke2 nothing is the policy from then on
        args.config.write_text(HUB.replace("192.0.2.12/32 203.0.113.32/28", "203.0.113.32/28"))
        caplog.clear()
        sighup()
        await until(lambda: last_reload(caplog.records) is not None)
        assert last_reload(caplog.records) == "reloaded"
        assert await ask(args.events, 3) == "eventid=3\nresult=deny\n\n"
        mode, reason = last_decision(args)
        assert mode == "psk-map"
        assert reason.endswith("may claim only 203.0.113.32/28, not 192.0.2.12")

    run_proxy(tmp_path, body)


def last_reload(records: list[logging.LogRecord]) -> str | None:
    """What the proxy said about its latest reload: "reloaded", "NOT reloaded" or None."""
    for record in reversed(records):
        message = record.getMessage()
        if message.startswith("authorization policy reloaded"):
            return "reloaded"
        if message.startswith("authorization policy NOT reloaded"):
            return "NOT reloaded"
    return None
