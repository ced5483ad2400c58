"""Issue 14, hole 3: the VICI proxy lets each client ask charon only what its uid may ask.

On main the proxy forwarded every command: anything running as group frr (an exploited FRR
daemon) could ``unload-conn`` the DMVPN, ``load-shared`` keys with forged owners or
``load-conn`` a connection whose updown script charon runs as root. Now root is relayed
unchanged, nhrpd's user gets exactly nhrpd's requests on DMVPN's IPsec profiles, anyone
else nothing; a refused request is answered by the proxy and never reaches charon. First the
pure session, then a property over random requests, then the proxy over real sockets with
clients of other uids.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Collection, Sequence
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from frrdmvpn.adapters.vici_proxy import ViciProxy
from frrdmvpn.codec.vici import Message, Packet, PacketType, decode_packet, encode_packet, frame
from frrdmvpn.core import vici_access
from frrdmvpn.core.vici_access import (
    ROOT,
    Client,
    Forbidden,
    IkeSaOwners,
    Role,
    client_of,
)
from frrdmvpn.core.vici_translate import ClientSession, InitiateChild, ToClient, ToUpstream, peek
from tests.fakes.charon import scripted_charon
from tests.fakes.other_uid import ask, run
from tests.fuzzing import budget

pytestmark = pytest.mark.unit

T = PacketType
NHRPD_UID, OTHER_UID = 65533, 65532
NHRPD = Client(NHRPD_UID, Role.NHRPD)
OTHER = Client(OTHER_UID, Role.OTHER)
PROFILES = frozenset({"dmvpn"})
DENIED = "frrdmvpn-proxy: permission denied: "
ONLY = " (only initiate, list-sas, terminate)"
HOSTS: Message = {"my-host": b"198.51.100.11", "other-host": b"198.51.100.1"}
CONFIRM = encode_packet(Packet(T.EVENT_CONFIRM))


def pkt(ptype: PacketType, name: str | None = None, msg: Message | None = None) -> bytes:
    if msg is None and ptype in (T.CMD_REQUEST, T.CMD_RESPONSE, T.EVENT):
        msg = {}
    return encode_packet(Packet(ptype, name, msg))


def to_client(actions: Sequence[object]) -> list[Packet]:
    return [decode_packet(a.payload) for a in actions if isinstance(a, ToClient)]


def upstream(actions: Sequence[object]) -> list[bytes]:
    return [a.payload for a in actions if isinstance(a, ToUpstream)]


def listed(*sas: tuple[str, int]) -> bytes:
    """A list-sa event of IKE_SAs (connection name, unique id), as charon sends them."""
    msg: Message = {
        name: {"uniqueid": str(unique).encode(), "state": b"ESTABLISHED", "child-sas": {}}
        for name, unique in sas
    }
    return pkt(T.EVENT, "list-sa", msg)


def session(client: Client, profiles: Collection[str] = PROFILES) -> ClientSession:
    """A session that has seen charon list IKE_SA #3 of dmvpn and #9 of another tunnel."""
    s = ClientSession(client, lambda: profiles)
    s.from_upstream(listed(("dmvpn", 3), ("legacy", 9)))
    return s


def refused(s: ClientSession, request: bytes) -> tuple[str, Forbidden]:
    """The errmsg of a refused command and its Forbidden action (nothing reached charon)."""
    out = s.from_client(request)
    assert upstream(out) == [], "a refused request must not reach charon"
    (reply,) = to_client(out)
    assert reply.type is T.CMD_RESPONSE
    assert reply.message is not None
    assert reply.message["success"] == b"no"
    (forbidden,) = [a for a in out if isinstance(a, Forbidden)]
    errmsg = reply.message["errmsg"]
    assert isinstance(errmsg, bytes)
    assert errmsg.decode() == forbidden.errmsg
    return errmsg.decode(), forbidden


# --- roles ----------------------------------------------------------------------------------


def test_the_role_comes_from_the_uid() -> None:
    assert client_of(0, NHRPD_UID) == ROOT
    assert client_of(NHRPD_UID, NHRPD_UID) == NHRPD
    assert client_of(OTHER_UID, NHRPD_UID) == OTHER
    assert client_of(NHRPD_UID, None).role is Role.OTHER, "no nhrpd user: only root"
    assert client_of(0, 0) == ROOT


# --- nhrpd's user: attacks ------------------------------------------------------------------

UPDOWN: Message = {
    "evil": {
        "local_addrs": [b"198.51.100.1"],
        "children": {"evil": {"updown": b"/tmp/root-shell", "local_ts": [b"0.0.0.0/0"]}},
    }
}
FORGED_KEY: Message = {"id": b"x", "type": b"IKE", "data": b"k", "owners": [b"spoke2.example"]}
ATTACKS = [
    ("load-conn", UPDOWN, f"nhrpd's user may not send 'load-conn'{ONLY}"),
    ("unload-conn", {"name": b"dmvpn"}, f"nhrpd's user may not send 'unload-conn'{ONLY}"),
    ("load-shared", FORGED_KEY, f"nhrpd's user may not send 'load-shared'{ONLY}"),
    (
        "unload-shared",
        {"id": b"frrdmvpn-lab-any"},
        f"nhrpd's user may not send 'unload-shared'{ONLY}",
    ),
    ("get-shared", {}, f"nhrpd's user may not send 'get-shared'{ONLY}"),
    ("list-certs", {}, f"nhrpd's user may not send 'list-certs'{ONLY}"),
    ("list-creds", {}, f"nhrpd's user may not send 'list-creds'{ONLY}"),
    ("get-keys", {}, f"nhrpd's user may not send 'get-keys'{ONLY}"),
    ("load-key", {"type": b"any", "data": b"k"}, f"nhrpd's user may not send 'load-key'{ONLY}"),
    ("reload-settings", {}, f"nhrpd's user may not send 'reload-settings'{ONLY}"),
    (
        "redirect",
        {"ike": b"dmvpn", "gateway": b"203.0.113.9"},
        f"nhrpd's user may not send 'redirect'{ONLY}",
    ),
    ("rekey", {"ike": b"dmvpn"}, f"nhrpd's user may not send 'rekey'{ONLY}"),
    ("uninstall", {"child": b"dmvpn"}, f"nhrpd's user may not send 'uninstall'{ONLY}"),
    ("version", {}, f"nhrpd's user may not send 'version'{ONLY}"),
    ("list-sas\n", {}, f"nhrpd's user may not send 'list-sas\\n'{ONLY}"),
    ("list-sas", {"ike": b"legacy"}, "nhrpd's user may not send list-sas with 'ike'"),
    # initiate: a foreign child, or one charon itself would carry out
    ("initiate", {"child": b"legacy", **HOSTS}, "'legacy' is not one of DMVPN's IPsec profiles"),
    (
        "initiate",
        {"child": b"dmvpn"},
        "nhrpd's user must send initiate with child, my-host "
        "and other-host (missing my-host, other-host)",
    ),
    (
        "initiate",
        {"child": b"dmvpn", "ike": b"legacy", **HOSTS},
        "nhrpd's user may not send initiate with 'ike'",
    ),
    ("initiate", {"child": [b"dmvpn"], **HOSTS}, "initiate child must be a plain value"),
    # terminate: another tunnel's IKE_SA, by name or by id, or more than nhrpd says
    ("terminate", {"ike": b"legacy"}, "'legacy' is not one of DMVPN's IPsec profiles"),
    (
        "terminate",
        {"ike-id": b"9"},
        "IKE_SA #9 belongs to 'legacy', not to one of DMVPN's IPsec profiles",
    ),
    ("terminate", {"ike-id": b"77"}, "IKE_SA #77 is not one charon reported on this connection"),
    ("terminate", {"child": b"legacy"}, "nhrpd's user may not send terminate with 'child'"),
    ("terminate", {"child-id": b"5"}, "nhrpd's user may not send terminate with 'child-id'"),
    (
        "terminate",
        {"ike-id": b"3", "force": b"yes"},
        "nhrpd's user may not send terminate with 'force'",
    ),
    (
        "terminate",
        {"ike-id": b"3", "ike": b"legacy"},
        "nhrpd's user must send terminate with exactly one of ike-id and ike",
    ),
    ("terminate", {}, "nhrpd's user must send terminate with exactly one of ike-id and ike"),
    # ids charon would read as #3 or #9 (strtol, base 0) or as something else
    ("terminate", {"ike-id": b"0x9"}, "terminate ike-id '0x9' is not an IKE_SA id"),
    ("terminate", {"ike-id": b"011"}, "terminate ike-id '011' is not an IKE_SA id"),
    ("terminate", {"ike-id": b" 3"}, "terminate ike-id ' 3' is not an IKE_SA id"),
    ("terminate", {"ike-id": b"-3"}, "terminate ike-id '-3' is not an IKE_SA id"),
    ("terminate", {"ike-id": b"4294967299"}, "terminate ike-id '4294967299' is not an IKE_SA id"),
]


@pytest.mark.parametrize(("name", "msg", "reason"), ATTACKS)
def test_nhrpds_user_is_refused_whatever_nhrpd_does_not_send(
    name: str, msg: Message, reason: str
) -> None:
    errmsg, forbidden = refused(session(NHRPD), pkt(T.CMD_REQUEST, name, msg))
    assert errmsg == DENIED + reason
    assert forbidden.reason == reason
    assert forbidden.request == f"command {name!r}"


def test_nhrpds_user_registers_only_for_nhrpds_events() -> None:
    s = session(NHRPD)
    for name in ("log", "control-log", "ike-updown", "child-updown", "list-conn", "list-cert"):
        out = s.from_client(pkt(T.EVENT_REGISTER, name))
        assert upstream(out) == []
        assert [p.type for p in to_client(out)] == [T.EVENT_UNKNOWN]
        (forbidden,) = [a for a in out if isinstance(a, Forbidden)]
        assert forbidden == Forbidden(
            f"event {name!r}",
            f"nhrpd's user may not register for {name!r} (only child-state-destroying, "
            "child-state-installed, child-state-rekeyed, list-sa)",
        )
        assert [p.type for p in to_client(s.from_client(pkt(T.EVENT_UNREGISTER, name)))] == [
            T.EVENT_UNKNOWN
        ]


def test_nhrpds_own_requests_pass() -> None:
    """What nhrpd sends on connect and later, as it sends it."""
    s = session(NHRPD)
    registered = []
    for name in (
        "child-state-installed",
        "child-state-rekeyed",
        "child-state-destroying",
        "list-sa",
    ):
        registered += [peek(p) for p in upstream(s.from_client(pkt(T.EVENT_REGISTER, name)))]
    assert registered == [
        (T.EVENT_REGISTER, n) for n in ("child-updown", "ike-updown", "child-rekey", "list-sa")
    ]
    for _ in registered:
        s.from_upstream(CONFIRM)
    assert upstream(s.from_client(pkt(T.CMD_REQUEST, "list-sas"))) == [
        pkt(T.CMD_REQUEST, "list-sas")
    ]
    initiate: Message = {
        "child": b"dmvpn",
        "timeout": b"-1",
        "async": b"1",
        "init-limits": b"0",
        **HOSTS,
    }
    out = s.from_client(pkt(T.CMD_REQUEST, "initiate", initiate))
    assert upstream(out) == [], "carried out by the proxy, never by charon"
    assert [type(a) for a in out] == [InitiateChild]
    terminates: list[Message] = [{"ike-id": b"3"}, {"ike": b"dmvpn"}]
    for msg in terminates:
        request = pkt(T.CMD_REQUEST, "terminate", msg)
        assert upstream(s.from_client(request)) == [request]


def test_profiles_are_read_at_each_request() -> None:
    profiles: set[str] = set()
    s = ClientSession(NHRPD, lambda: profiles)
    request = pkt(T.CMD_REQUEST, "initiate", {"child": b"dmvpn", **HOSTS})
    errmsg, _ = refused(s, request)
    assert errmsg == DENIED + "'dmvpn' is not one of DMVPN's IPsec profiles"
    profiles.add("dmvpn")  # the configuration was applied meanwhile
    assert [type(a) for a in s.from_client(request)] == [InitiateChild, ToClient]


def test_terminate_by_id_only_of_an_ike_sa_charon_named_on_this_connection() -> None:
    s = ClientSession(NHRPD, lambda: PROFILES)
    request = pkt(T.CMD_REQUEST, "terminate", {"ike-id": b"12"})
    errmsg, _ = refused(s, request)
    assert errmsg == DENIED + "IKE_SA #12 is not one charon reported on this connection"
    up: Message = {"up": b"yes", "dmvpn": {"uniqueid": b"12", "child-sas": {}}}
    s.from_upstream(pkt(T.EVENT, "child-updown", up))  # not registered: learnt all the same
    assert upstream(s.from_client(request)) == [request]
    s.from_upstream(pkt(T.CMD_RESPONSE, None, {"success": b"yes"}))
    s.from_upstream(pkt(T.EVENT, "ike-updown", {"dmvpn": {"uniqueid": b"12"}}))  # down
    errmsg, _ = refused(s, request)
    assert errmsg == DENIED + "IKE_SA #12 is not one charon reported on this connection"


def test_a_refusal_is_answered_in_turn() -> None:
    s = session(NHRPD)
    assert upstream(s.from_client(pkt(T.CMD_REQUEST, "list-sas")))
    out = s.from_client(pkt(T.CMD_REQUEST, "unload-conn", {"name": b"dmvpn"}))
    assert to_client(out) == [], "the refusal waits for the answer to list-sas"
    answer = pkt(T.CMD_RESPONSE, None, {"success": b"yes"})
    replies = to_client(s.from_upstream(answer))
    assert [p.message for p in replies] == [
        {"success": b"yes"},
        {
            "success": b"no",
            "errmsg": f"{DENIED}nhrpd's user may not send 'unload-conn'{ONLY}".encode(),
        },
    ]


# --- root and everyone else -----------------------------------------------------------------


def test_root_is_relayed_unchanged() -> None:
    s = session(ROOT)
    relayed: list[tuple[str, Message]] = [
        ("load-conn", UPDOWN),
        ("unload-conn", {"name": b"dmvpn"}),
        ("load-shared", FORGED_KEY),
        ("terminate", {"ike": b"legacy"}),
        ("initiate", {"child": b"legacy"}),
    ]
    for name, msg in relayed:
        request = pkt(T.CMD_REQUEST, name, msg)
        out = s.from_client(request)
        assert out == [ToUpstream(request)]
    assert upstream(s.from_client(pkt(T.EVENT_REGISTER, "log"))) == [pkt(T.EVENT_REGISTER, "log")]


def test_another_user_gets_nothing() -> None:
    s = session(OTHER)
    reason = f"uid {OTHER_UID} may not use charon (only root and nhrpd's user may)"
    tried: list[tuple[str, Message]] = [
        ("list-sas", {}),
        ("version", {}),
        ("load-conn", UPDOWN),
        ("initiate", {"child": b"dmvpn", **HOSTS}),
        ("terminate", {"ike-id": b"3"}),
    ]
    for name, msg in tried:
        errmsg, forbidden = refused(s, pkt(T.CMD_REQUEST, name, msg))
        assert errmsg == DENIED + reason
        assert forbidden == Forbidden(f"command {name!r}", reason)
    for ptype in (T.EVENT_REGISTER, T.EVENT_UNREGISTER):
        out = s.from_client(pkt(ptype, "list-sa"))
        assert (upstream(out), [p.type for p in to_client(out)]) == ([], [T.EVENT_UNKNOWN])


# --- which IKE_SA is whose ------------------------------------------------------------------


def test_owners_come_from_charons_events_and_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    owners = IkeSaOwners()
    owners.learn("list-sa", {"dmvpn": {"uniqueid": b"3"}, "legacy": {"uniqueid": b"9"}})
    owners.learn("child-updown", {"up": b"yes", "other": {"uniqueid": b"0x5"}, "x": b"y"})
    assert owners.names == {3: "dmvpn", 9: "legacy"}, "only sections with a plain id"
    owners.learn("ike-updown", {"up": b"yes", "dmvpn": {"uniqueid": b"4"}})
    owners.learn("ike-updown", {"legacy": {"uniqueid": b"9"}})  # down
    assert (owners.owner(4), owners.owner(9)) == ("dmvpn", None)
    monkeypatch.setattr(vici_access, "MAX_IKE_SAS", 3)
    for unique in range(10, 15):
        owners.learn("list-sa", {"dmvpn": {"uniqueid": str(unique).encode()}})
    assert list(owners.names) == [12, 13, 14], "the oldest are forgotten first"


# --- property: nothing reaches charon that the role does not allow -----------------------------

# charon 5.9.8's commands and events, nhrpd's, and anything else a client may name
NAMES = [
    "list-sas",
    "initiate",
    "terminate",
    "load-conn",
    "unload-conn",
    "load-shared",
    "unload-shared",
    "get-shared",
    "load-key",
    "list-certs",
    "list-conns",
    "redirect",
    "rekey",
    "install",
    "reload-settings",
    "version",
    "list-sa",
    "child-updown",
    "log",
    "child-state-installed",
    "child-state-rekeyed",
    "child-state-destroying",
    "ike-updown",
    "control-log",
]
KEYS = ["child", "ike", "ike-id", "my-host", "other-host", "timeout", "force", "name", "id"]
VALUES = [b"dmvpn", b"legacy", b"3", b"9", b"77", b"0x3", b"198.51.100.1", b"-1", b""]
STOCK = {"child-updown", "ike-updown", "child-rekey", "list-sa"}
#: nhrpd's messages, near misses and an attacker's
SHAPES: list[Message] = [
    {},
    {"name": b"dmvpn"},
    {"child": b"legacy", **HOSTS},
    {"child": b"dmvpn", **HOSTS},
    {"child": b"dmvpn"},
    {"ike": b"dmvpn"},
    {"ike": b"legacy"},
    {"ike-id": b"3"},
    {"ike-id": b"9"},
    {"ike-id": b"77"},
    {"ike-id": b"0x3"},
    {"ike-id": b"3", "force": b"yes"},
    {"id": b"x", "type": b"IKE", "data": b"k", "owners": [b"spoke2"]},
]
IDS = [b"3", b"9", b"77", b"0x3"]
names = st.one_of(st.sampled_from(NAMES), st.text(min_size=1, max_size=8))
requests = st.one_of(
    st.tuples(
        st.just(T.CMD_REQUEST),
        st.sampled_from(["list-sas", "initiate", "terminate"]),
        st.sampled_from(SHAPES),
    ),  # what nhrpd sends, or nearly
    st.tuples(
        st.just(T.CMD_REQUEST),
        names,
        st.sampled_from(SHAPES)
        | st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), max_size=4),
    ),
    st.tuples(st.sampled_from([T.EVENT_REGISTER, T.EVENT_UNREGISTER]), names, st.none()),
    st.tuples(
        st.just(T.EVENT),
        st.just("list-sa"),  # charon names IKE_SAs and their owners
        st.dictionaries(
            st.sampled_from(["dmvpn", "legacy"]),
            st.builds(lambda u: {"uniqueid": u}, st.sampled_from(IDS)),
            min_size=1,
            max_size=2,
        ),
    ),
)


def dmvpns_terminate(msg: Message, owners: dict[int, str]) -> bool:
    """``terminate`` of DMVPN's IKE_SAs only, as nhrpd sends it."""
    if list(msg) == ["ike"]:
        return msg["ike"] == b"dmvpn"
    raw = msg.get("ike-id") if list(msg) == ["ike-id"] else None
    if not isinstance(raw, bytes) or raw not in (b"3", b"9", b"77"):
        return False  # charon would read others differently, or they were never named
    return owners.get(int(raw)) == "dmvpn"


def allowed_upstream(client: Client, packet: Packet, owners: dict[int, str]) -> bool:
    """The model: what may reach charon for ``client`` (written apart from the code)."""
    if client.role is not Role.NHRPD:
        return client.role is Role.ROOT
    if packet.type in (T.EVENT_REGISTER, T.EVENT_UNREGISTER):
        return packet.name in STOCK
    msg = packet.message or {}
    if packet.name == "list-sas":
        return msg == {}
    return packet.name == "terminate" and dmvpns_terminate(msg, owners)


ATTACKS_AS_STEPS = [(name, msg) for name, msg, _ in ATTACKS]
LEGACY_9 = (T.EVENT, "list-sa", {"legacy": {"uniqueid": b"9"}, "dmvpn": {"uniqueid": b"3"}})


@pytest.mark.fuzz
@budget(250)
@example(uid=NHRPD_UID, steps=[(T.CMD_REQUEST, n, m) for n, m in ATTACKS_AS_STEPS])
@example(
    uid=NHRPD_UID,
    steps=[
        LEGACY_9,
        (T.CMD_REQUEST, "terminate", {"ike-id": b"9"}),
        (T.CMD_REQUEST, "terminate", {"ike-id": b"3"}),
    ],
)
@example(uid=OTHER_UID, steps=[(T.CMD_REQUEST, "list-sas", {}), (T.EVENT_REGISTER, "log", None)])
@given(
    uid=st.sampled_from([0, NHRPD_UID, NHRPD_UID, OTHER_UID]), steps=st.lists(requests, max_size=30)
)
def test_nothing_reaches_charon_unless_the_role_allows_it(
    uid: int, steps: list[tuple[PacketType, str, Message | None]]
) -> None:
    client = client_of(uid, NHRPD_UID)
    s = ClientSession(client, lambda: PROFILES)
    owners: dict[int, str] = {}
    asked = answered = forbidden = 0
    for ptype, name, msg in steps:
        if ptype is T.EVENT:
            assert msg is not None
            for conn, section in msg.items():
                assert isinstance(section, dict)
                value = section["uniqueid"]
                if value in (b"3", b"9", b"77"):
                    assert isinstance(value, bytes)
                    owners[int(value)] = conn
            s.from_upstream(pkt(T.EVENT, name, msg))
            continue
        asked += 1
        out = s.from_client(pkt(ptype, name, msg))
        forbidden += sum(isinstance(a, Forbidden) for a in out)
        answered += sum(p.type is not T.EVENT for p in to_client(out))
        for payload in upstream(out):
            sent = decode_packet(payload)
            assert allowed_upstream(client, sent, owners), (client, sent)
            if sent.type is T.CMD_REQUEST:
                answer = pkt(T.CMD_RESPONSE, None, {"success": b"yes"})
            else:
                answer = CONFIRM
            answered += sum(p.type is not T.EVENT for p in to_client(s.from_upstream(answer)))
        if client.role is Role.NHRPD and name == "initiate":
            assert upstream(out) == [], "nhrpd's initiate is the proxy's, never charon's"
    assert answered == asked, "one answer per request, refused or not"
    if client.role is Role.OTHER:
        assert forbidden == asked


# --- the proxy, with clients of other uids -----------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run clients as other users")
def test_the_proxy_refuses_by_peer_credentials(
    shared_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    seen: list[Packet] = []
    load_conn = frame(pkt(T.CMD_REQUEST, "load-conn", UPDOWN))

    def reply(answer: bytes) -> Packet:
        return decode_packet(answer[4:])

    async def main() -> None:
        charon = await scripted_charon(shared_dir / "charon.vici", {}, seen)
        proxy = ViciProxy(
            shared_dir / "proxy.vici",
            shared_dir / "charon.vici",
            group=None,
            nhrpd_uid=NHRPD_UID,
            profiles=PROFILES,
        )
        await proxy.start()
        (shared_dir / "proxy.vici").chmod(0o666)
        try:
            answer = reply(await ask(NHRPD_UID, shared_dir / "proxy.vici", load_conn, "vici"))
            assert answer.message == {
                "success": b"no",
                "errmsg": (f"{DENIED}nhrpd's user may not send 'load-conn'{ONLY}").encode(),
            }
            list_sas = frame(pkt(T.CMD_REQUEST, "list-sas"))
            answer = reply(await ask(NHRPD_UID, shared_dir / "proxy.vici", list_sas, "vici"))
            assert answer == Packet(T.CMD_RESPONSE, None, {}), "charon's own answer"
            answer = reply(await ask(OTHER_UID, shared_dir / "proxy.vici", list_sas, "vici"))
            assert answer.message == {
                "success": b"no",
                "errmsg": (
                    f"{DENIED}uid {OTHER_UID} may not use charon (only root and nhrpd's user may)"
                ).encode(),
            }
            reader, writer = await asyncio.open_unix_connection(str(shared_dir / "proxy.vici"))
            writer.write(load_conn)  # root: relayed
            assert reply(await asyncio.wait_for(reader.read(65536), 10)).type is T.CMD_RESPONSE
            writer.close()
            assert proxy.refused == {f"uid {NHRPD_UID}": 1, f"uid {OTHER_UID}": 1}
        finally:
            await proxy.close()
            charon.close()

    run(main)
    assert [(p.type, p.name) for p in seen] == [
        (T.CMD_REQUEST, "list-sas"),
        (T.CMD_REQUEST, "load-conn"),
    ]
    logged = [r.getMessage() for r in caplog.records if "refused command" in r.getMessage()]
    assert len(logged) == 2
    assert f"refused command 'load-conn' of uid {NHRPD_UID} pid " in logged[0]
    assert logged[0].endswith(
        f": nhrpd's user may not send 'load-conn'{ONLY} (refusal 1 of uid {NHRPD_UID})"
    )
    assert f"refused command 'list-sas' of uid {OTHER_UID} pid " in logged[1]
