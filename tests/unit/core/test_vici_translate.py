"""The VICI proxy's per-connection translation for nhrpd on stock strongSwan."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import pytest

from frrdmvpn.codec.vici import Message, Packet, PacketType, decode_packet, encode_packet
from frrdmvpn.core.vici_translate import (
    ClientSession,
    Confirm,
    InitiateChild,
    ProtocolError,
    ToClient,
    ToUpstream,
    peek,
)

pytestmark = pytest.mark.unit

T = PacketType
CONFIRM = encode_packet(Packet(T.EVENT_CONFIRM))
OK = encode_packet(Packet(T.CMD_RESPONSE, None, {"success": b"yes"}))


def pkt(ptype: PacketType, name: str | None = None, msg: Message | None = None) -> bytes:
    if msg is None and ptype in (T.CMD_REQUEST, T.CMD_RESPONSE, T.EVENT):
        msg = {}
    return encode_packet(Packet(ptype, name, msg))


S1_GRE, S2_GRE = "198.51.100.11/32[gre]", "198.51.100.12/32[gre]"


def child(
    uid: str,
    *,
    state: str = "INSTALLED",
    mode: str = "TRANSPORT",
    lts: str = S1_GRE,
    rts: str = S2_GRE,
) -> Message:
    return {
        "name": b"dmvpn",
        "uniqueid": uid.encode(),
        "reqid": b"1",
        "state": state.encode(),
        "mode": mode.encode(),
        "protocol": b"ESP",
        "local-ts": [lts.encode()],
        "remote-ts": [rts.encode()],
    }


def ike(children: dict[str, Message]) -> Message:
    return {
        "uniqueid": b"3",
        "state": b"ESTABLISHED",
        "local-host": b"198.51.100.11",
        "remote-host": b"198.51.100.12",
        "local-id": b"198.51.100.11",
        "remote-id": b"198.51.100.12",
        "child-sas": dict(children),
    }


def nhrpd_session() -> ClientSession:
    """A session after nhrpd's registrations, all confirmed by charon; DMVPN's profile is
    ``dmvpn``."""
    s = ClientSession(profiles=lambda: {"dmvpn"})
    for name in ("child-state-installed", "child-state-rekeyed", "child-state-destroying"):
        s.from_client(pkt(T.EVENT_REGISTER, name))
    for _ in range(3):  # child-updown, ike-updown, child-rekey
        s.from_upstream(CONFIRM)
    return s


def to_client(actions: Sequence[object]) -> list[Packet]:
    return [decode_packet(a.payload) for a in actions if isinstance(a, ToClient)]


def section(value: object, *path: str) -> Message:
    """The nested section at ``path`` (a test failure if it is not one)."""
    for key in path:
        assert isinstance(value, dict), value
        value = value[key]
    assert isinstance(value, dict), value
    return value


def test_state_registrations_become_stock_ones_and_are_confirmed_in_order() -> None:
    s = ClientSession()
    out = s.from_client(pkt(T.EVENT_REGISTER, "child-state-installed"))
    assert [peek(a.payload) for a in out if isinstance(a, ToUpstream)] == [
        (T.EVENT_REGISTER, "child-updown"),
        (T.EVENT_REGISTER, "ike-updown"),
    ]
    assert not any(isinstance(a, ToClient) for a in out), "confirm must wait for charon"
    out = s.from_client(pkt(T.EVENT_REGISTER, "child-state-destroying"))
    assert out == [], "already registered upstream, and queued behind the first"
    assert s.from_upstream(CONFIRM) == []
    assert s.from_upstream(CONFIRM) == [ToClient(CONFIRM), ToClient(CONFIRM)]


def test_nhrpd_connect_sequence_keeps_reply_order() -> None:
    s = ClientSession()
    for name in (
        "child-state-installed",
        "child-state-rekeyed",
        "child-state-destroying",
        "list-sa",
    ):
        s.from_client(pkt(T.EVENT_REGISTER, name))
    up = s.from_client(pkt(T.CMD_REQUEST, "list-sas"))
    assert [peek(a.payload)[1] for a in up if isinstance(a, ToUpstream)] == ["list-sas"]
    replies: list[object] = []
    for answer in (CONFIRM, CONFIRM, CONFIRM, CONFIRM):  # 3 stock + list-sa
        replies += s.from_upstream(answer)
    listed = pkt(T.EVENT, "list-sa", {"dmvpn": ike({"dmvpn-5": child("5")})})
    replies += s.from_upstream(listed)
    replies += s.from_upstream(OK)
    kinds = [(p.type, p.name) for p in to_client(replies)]
    assert kinds == [(T.EVENT_CONFIRM, None)] * 4 + [(T.EVENT, "list-sa"), (T.CMD_RESPONSE, None)]


def test_installed_only_for_gre_transport_between_the_ike_hosts() -> None:
    s = nhrpd_session()
    good = pkt(T.EVENT, "child-updown", {"up": b"yes", "dmvpn": ike({"dmvpn-7": child("7")})})
    events = to_client(s.from_upstream(good))
    assert [e.name for e in events] == ["child-state-installed"]
    ike_section = section(events[0].message, "dmvpn")
    assert ike_section["local-host"] == b"198.51.100.11"
    assert ike_section["child-sas"] == {"dmvpn-7": child("7")}
    for bad in (
        child("8", mode="TUNNEL"),
        child("9", lts="198.51.100.11/32"),
        child("10", rts="198.51.100.99/32[gre]"),
        child("11", state="INSTALLING"),
        child("12", lts="0.0.0.0/0[gre]"),
    ):
        msg: Message = {"up": b"yes", "dmvpn": ike({"x": bad})}
        assert to_client(s.from_upstream(pkt(T.EVENT, "child-updown", msg))) == []


def test_down_and_rekey_events() -> None:
    s = nhrpd_session()
    down = pkt(T.EVENT, "child-updown", {"dmvpn": ike({"dmvpn-7": child("7")})})
    assert [e.name for e in to_client(s.from_upstream(down))] == ["child-state-destroying"]
    rekey_child: Message = {"old": child("7", state="REKEYED"), "new": child("8")}
    rekey = pkt(T.EVENT, "child-rekey", {"dmvpn": ike({"dmvpn": rekey_child})})
    events = to_client(s.from_upstream(rekey))
    assert [e.name for e in events] == ["child-state-installed", "child-state-destroying"]
    uids = []
    for e in events:
        sas = section(e.message, "dmvpn", "child-sas")
        uids.append(section(next(iter(sas.values())))["uniqueid"])
    assert uids == [b"8", b"7"], "new SA is up before the old one is withdrawn"
    ike_down = pkt(T.EVENT, "ike-updown", {"dmvpn": ike({"dmvpn-8": child("8")})})
    assert [e.name for e in to_client(s.from_upstream(ike_down))] == ["child-state-destroying"]


def test_a_strongswan_6_rekey_with_ake_keys_is_translated_the_same() -> None:
    """charon 6.0 (Debian 13) sends one ``child-rekey`` per rekey, after the new SA's
    outbound is installed, and adds ``ake1``..``ake7`` (additional key exchanges) to IKE
    and CHILD sections (strongSwan's vici_query.c at 6.0.1): the same two state events,
    new SA first, the new keys carried through untouched."""
    s = nhrpd_session()
    new = {**child("8"), "ake1": b"ML_KEM_768"}
    rekey_child: Message = {"old": child("7", state="REKEYED"), "new": new}
    sa = {**ike({"dmvpn": rekey_child}), "ake1": b"ML_KEM_768"}
    events = to_client(s.from_upstream(pkt(T.EVENT, "child-rekey", {"dmvpn": sa})))
    assert [e.name for e in events] == ["child-state-installed", "child-state-destroying"]
    installed = section(events[0].message, "dmvpn", "child-sas")
    assert [section(c)["uniqueid"] for c in installed.values()] == [b"8"]
    assert [section(c).get("ake1") for c in installed.values()] == [b"ML_KEM_768"]


def test_unregistered_stock_events_are_not_leaked_to_nhrpd() -> None:
    s = nhrpd_session()
    up = pkt(T.EVENT, "child-updown", {"up": b"yes", "dmvpn": ike({"dmvpn-7": child("7")})})
    assert all(p.name != "child-updown" for p in to_client(s.from_upstream(up)))


def test_initiate_with_hosts_is_answered_and_surfaced() -> None:
    s = nhrpd_session()
    req = pkt(
        T.CMD_REQUEST,
        "initiate",
        {
            "child": b"dmvpn",
            "timeout": b"-1",
            "async": b"1",
            "init-limits": b"0",
            "my-host": b"198.51.100.11",
            "other-host": b"198.51.100.1",
        },
    )
    out = s.from_client(req)
    assert (
        InitiateChild(
            "dmvpn", ipaddress.ip_address("198.51.100.11"), ipaddress.ip_address("198.51.100.1")
        )
        in out
    )
    assert not any(isinstance(a, ToUpstream) for a in out)
    assert to_client(out) == [decode_packet(OK)]


def test_initiate_with_a_bad_host_fails_cleanly() -> None:
    s = ClientSession()
    req = pkt(
        T.CMD_REQUEST,
        "initiate",
        {"child": b"dmvpn", "my-host": b"not-an-ip", "other-host": b"198.51.100.1"},
    )
    (reply,) = to_client(s.from_client(req))
    assert reply.message is not None
    assert reply.message["success"] == b"no"
    assert b"my-host" in reply.message["errmsg"] or b"not-an-ip" in reply.message["errmsg"]


def test_plain_initiate_and_other_commands_pass_through() -> None:
    s = ClientSession()
    req = pkt(T.CMD_REQUEST, "initiate", {"child": b"dmvpn", "ike": b"dmvpn"})
    assert s.from_client(req) == [ToUpstream(req)]
    assert s.from_upstream(OK) == [ToClient(OK)]


def test_a_plain_client_sees_charon_unchanged() -> None:
    s = ClientSession()  # e.g. swanctl --list-sas
    s.from_client(pkt(T.EVENT_REGISTER, "list-sa"))
    s.from_upstream(CONFIRM)
    tunnel = pkt(T.EVENT, "list-sa", {"x": ike({"c-1": child("1", mode="TUNNEL")})})
    assert s.from_upstream(tunnel) == [ToClient(tunnel)]


def test_nhrpd_list_sa_hides_children_that_do_not_protect_gre() -> None:
    s = nhrpd_session()
    s.from_client(pkt(T.EVENT_REGISTER, "list-sa"))
    s.from_upstream(CONFIRM)
    both: Message = {"dmvpn": ike({"a-1": child("1"), "b-2": child("2", mode="TUNNEL")})}
    (event,) = to_client(s.from_upstream(pkt(T.EVENT, "list-sa", both)))
    assert list(section(event.message, "dmvpn", "child-sas")) == ["a-1"]


def test_unknown_stock_event_still_confirms_the_client() -> None:
    s = ClientSession()
    s.from_client(pkt(T.EVENT_REGISTER, "child-state-rekeyed"))
    out = s.from_upstream(encode_packet(Packet(T.EVENT_UNKNOWN)))
    assert out == [ToClient(CONFIRM)]
    assert "child-rekey" not in s.upstream_events


@pytest.mark.parametrize(
    ("side", "payload", "match"),
    [
        ("client", b"", "empty"),
        ("client", b"\x09", "unknown VICI packet type 9"),
        ("client", encode_packet(Packet(T.EVENT, "x", {})), "may not send EVENT"),
        ("client", b"\x00\x05ab", "truncated"),
        ("upstream", CONFIRM, "unsolicited"),
        ("upstream", encode_packet(Packet(T.CMD_REQUEST, "version", {})), "unexpected"),
    ],
)
def test_protocol_errors(side: str, payload: bytes, match: str) -> None:
    s = ClientSession()
    handler = s.from_client if side == "client" else s.from_upstream
    with pytest.raises(ProtocolError, match=match):
        handler(payload)


def test_malformed_initiate_is_a_protocol_error() -> None:
    s = ClientSession()
    with pytest.raises(ProtocolError, match="malformed initiate"):
        s.from_client(b"\x00\x08initiate\x03")


def test_numeric_gre_selectors_count_as_gre() -> None:
    """charon prints [47] where /etc/protocols lacks gre; it is the same selector."""
    s = nhrpd_session()
    numeric = child("9", lts="198.51.100.11/32[47]", rts="198.51.100.12/32[47]")
    up = pkt(T.EVENT, "child-updown", {"up": b"yes", "dmvpn": ike({"n": numeric})})
    assert [e.name for e in to_client(s.from_upstream(up))] == ["child-state-installed"]


# charon names a selector's protocol with getprotobynumber(), not thread-safe: with 155
# spokes coming up at once these came in child-updown events for GRE CHILD_SAs
# (bench/results.md, "A step at rest"); the listing a moment later said [gre]
GARBLED = (
    "198.51.100.12/32[ip]",
    "198.51.100.12/32[# Updated from http://www.iana.org/assignments/protocol-numbers and other\n]",
)


def _up(*children: tuple[str, Message]) -> bytes:
    return pkt(T.EVENT, "child-updown", {"up": b"yes", "dmvpn": ike(dict(children))})


@pytest.mark.parametrize("garbled", GARBLED)
def test_a_child_sa_whose_selectors_read_garbled_is_confirmed_then_announced(
    garbled: str,
) -> None:
    s = nhrpd_session()
    actions = s.from_upstream(_up(("dmvpn-7", child("7", rts=garbled))))
    assert to_client(actions) == []  # not GRE as it reads: nhrpd is not told yet
    assert [a for a in actions if isinstance(a, Confirm)] == [Confirm(3)]
    listed: Message = {"dmvpn": ike({"dmvpn-7": child("7"), "dmvpn-9": child("9")})}
    events = to_client(s.confirmed(3, 1, [listed]))
    assert [e.name for e in events] == ["child-state-installed"]
    (only,) = section(events[0].message, "dmvpn", "child-sas").values()
    assert section(only)["uniqueid"] == b"7"  # the one confirmed, not its sibling
    assert s.confirmed(3, 1, [listed]) == []  # confirmed once


def test_a_confirmation_never_brings_back_a_child_sa_gone_meanwhile() -> None:
    s = nhrpd_session()
    s.from_upstream(_up(("dmvpn-7", child("7", rts=GARBLED[0]))))
    down = pkt(T.EVENT, "child-updown", {"dmvpn": ike({"dmvpn-7": child("7")})})
    assert [e.name for e in to_client(s.from_upstream(down))] == ["child-state-destroying"]
    stale: Message = {"dmvpn": ike({"dmvpn-7": child("7")})}  # listed before the delete
    assert s.confirmed(3, 1, [stale]) == []


def test_a_confirmation_asks_again_then_gives_up() -> None:
    s = nhrpd_session()
    s.from_upstream(_up(("dmvpn-7", child("7", rts=GARBLED[0]))))
    still: Message = {"dmvpn": ike({"dmvpn-7": child("7", rts=GARBLED[0])})}
    assert s.confirmed(3, 1, [still]) == [Confirm(3, 2)]
    assert s.confirmed(3, 2, [still]) == [Confirm(3, 3)]
    assert s.confirmed(3, 3, [still]) == []  # CONFIRM_ATTEMPTS listings: not GRE after all
    assert s.confirmed(3, 4, [{"dmvpn": ike({"dmvpn-7": child("7")})}]) == []


def test_only_a_host_to_host_transport_sa_reading_not_gre_is_confirmed() -> None:
    s = nhrpd_session()
    for other in (
        child("8", rts="198.51.100.0/24[ip]"),  # not the host
        child("9", rts="198.51.100.99/32[ip]"),  # another host
        child("10", rts="198.51.100.12/32[ip]", mode="TUNNEL"),
        child("11", rts="198.51.100.12/32[ip]", state="INSTALLING"),
        child("12"),  # GRE: announced at once
    ):
        actions = s.from_upstream(_up(("x", other)))
        assert not [a for a in actions if isinstance(a, Confirm)]


def test_only_a_child_sa_of_dmvpns_profiles_is_confirmed() -> None:
    """A host-to-host SA of another connection may protect every protocol by design: it is
    not DMVPN's, so it is neither confirmed nor announced."""
    s = nhrpd_session()
    other: Message = {"up": b"yes", "office": ike({"office-7": child("7", rts=GARBLED[0])})}
    actions = s.from_upstream(pkt(T.EVENT, "child-updown", other))
    assert actions == []


def test_nhrpds_listing_leaves_out_a_garbled_child_sa_then_it_is_confirmed() -> None:
    """At connect nhrpd lists charon's SAs: a GRE CHILD_SA whose selectors read garbled
    is left out of the listing, then announced once its own listing shows GRE."""
    s = nhrpd_session()
    s.from_client(pkt(T.EVENT_REGISTER, "list-sa"))
    s.from_upstream(CONFIRM)
    listed: Message = {"dmvpn": ike({"a-1": child("1"), "b-2": child("2", rts=GARBLED[1])})}
    actions = s.from_upstream(pkt(T.EVENT, "list-sa", listed))
    (event,) = to_client(actions)
    assert list(section(event.message, "dmvpn", "child-sas")) == ["a-1"]
    assert [a for a in actions if isinstance(a, Confirm)] == [Confirm(3)]
    fixed: Message = {"dmvpn": ike({"a-1": child("1"), "b-2": child("2")})}
    (installed,) = to_client(s.confirmed(3, 1, [fixed]))
    assert installed.name == "child-state-installed"
    assert list(section(installed.message, "dmvpn", "child-sas")) == ["b-2"]


def test_a_child_sa_garbled_while_a_listing_is_out_is_confirmed_next() -> None:
    """CHILD_SA 7 is being confirmed when 7 is rekeyed into 8, garbled too: the listing
    asked for 7 decides nothing of 8, which is listed next, not lost."""
    s = nhrpd_session()
    assert Confirm(3) in s.from_upstream(_up(("a", child("7", rts=GARBLED[0]))))
    rekey_child: Message = {
        "old": child("7", state="REKEYED"),
        "new": child("8", rts=GARBLED[1]),
    }
    rekey = pkt(T.EVENT, "child-rekey", {"dmvpn": ike({"dmvpn": rekey_child})})
    actions = s.from_upstream(rekey)
    assert not [a for a in actions if isinstance(a, Confirm)]  # one listing at a time
    stale: Message = {"dmvpn": ike({"a": child("7")})}  # taken before the rekey
    assert s.confirmed(3, 1, [stale]) == [Confirm(3)]  # 7 gone meanwhile; 8 next
    (installed,) = to_client(s.confirmed(3, 1, [{"dmvpn": ike({"b": child("8")})}]))
    (only,) = section(installed.message, "dmvpn", "child-sas").values()
    assert section(only)["uniqueid"] == b"8"
