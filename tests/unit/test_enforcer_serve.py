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
from pathlib import Path

import pytest

from frrdmvpn.adapters import decision_journal
from frrdmvpn.codec.vici import Packet, PacketType
from tests.fakes.proxy import EVENT, ask, run_proxy, until

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
HUB = (EXAMPLES / "lab-hub.conf").read_text()
ACCEPTED = (
    "accept 192.0.2.12 via 198.51.100.12: IKE identity '198.51.100.12' "
    "(CHILD_SA #5 (IKE_SA #3)) may claim 192.0.2.12/32, 203.0.113.32/28 per the PSK "
    "authorization map"
)
NO_POLICY = (
    "deny 192.0.2.12 via 198.51.100.12: no configuration applied yet, so no authorization policy"
)


def last_decision(args: argparse.Namespace) -> tuple[str, str]:
    """The mode and the reason of the proxy's latest decision, from its journal."""
    journal = decision_journal.read(args.journal)
    assert journal is not None
    decision = journal["decisions"][-1]
    return decision["mode"], decision["reason"]


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


def listings(seen: list[Packet]) -> int:
    return sum(p.type is PacketType.CMD_REQUEST and p.name == "list-sas" for p in seen)


def counters(args: argparse.Namespace) -> dict[str, int]:
    journal = decision_journal.read(args.journal)
    assert journal is not None
    return dict(journal["counters"])


async def ask_for(events: Path, eventid: int, claimed: str) -> str:
    reader, writer = await asyncio.open_unix_connection(str(events))
    event = EVENT.format(eventid=eventid).replace(
        "remote_addr=192.0.2.12", f"remote_addr={claimed}"
    )
    writer.write(event.encode())
    answer = await asyncio.wait_for(reader.readuntil(b"\n\n"), 10)
    writer.close()
    return answer.decode()


def test_an_accept_comes_from_the_sa_table_without_asking_charon(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 17: once the table kept from charon's events is in sync (its own listing
    after charon confirmed the registrations), an accept costs no list-sas; a denial is
    decided again from a fresh listing, with its full reason."""
    caplog.set_level(logging.INFO)
    seen: list[Packet] = []

    async def body(args: argparse.Namespace) -> None:
        args.config.write_text(HUB)
        sighup()
        await until(lambda: "SA table in sync with charon: 1 CHILD_SAs" in caplog.text)
        registered = {p.name for p in seen if p.type is PacketType.EVENT_REGISTER}
        assert {"ike-updown", "child-updown", "ike-rekey", "child-rekey"} <= registered
        before = listings(seen)
        assert await ask(args.events, 1) == "eventid=1\nresult=accept\n\n"
        assert last_decision(args) == ("psk-map", ACCEPTED)
        assert listings(seen) == before, "the accept asked charon"
        assert counters(args).get("from_sa_table") == 1
        assert "from_listing" not in counters(args)
        # spoke2 claiming an address its map entry lacks: denied after a fresh listing
        assert await ask_for(args.events, 2, "192.0.2.13") == "eventid=2\nresult=deny\n\n"
        assert listings(seen) == before + 1
        assert counters(args)["from_listing"] == 1
        assert last_decision(args)[1].endswith(
            "may claim only 192.0.2.12/32, 203.0.113.32/28, not 192.0.2.13"
        )

    run_proxy(tmp_path, body, seen)


def last_reload(records: list[logging.LogRecord]) -> str | None:
    """What the proxy said about its latest reload: "reloaded", "NOT reloaded" or None."""
    for record in reversed(records):
        message = record.getMessage()
        if message.startswith("authorization policy reloaded"):
            return "reloaded"
        if message.startswith("authorization policy NOT reloaded"):
            return "NOT reloaded"
    return None
