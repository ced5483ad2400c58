"""What the VICI proxy adds for nhrpd on stock strongSwan, as a pure per-connection machine.

nhrpd (FRR 8.4) registers ``child-state-installed|rekeyed|destroying`` (only patched
strongSwan has them) and calls ``initiate`` with ``my-host``/``other-host`` (ignored by stock
charon). A :class:`ClientSession` sits between one client and its own upstream connection to
charon: everything passes through unchanged, except that

* registrations of the three ``child-state-*`` events become registrations of the stock
  ``child-updown``, ``child-rekey`` and ``ike-updown`` events, whose events are turned back
  into ``child-state-*`` events — "installed" only for a CHILD_SA that really protects GRE
  between the IKE endpoints (INSTALLED, ESP, transport, ``host/32[gre]`` selectors);
* ``initiate`` with ``my-host``/``other-host`` is answered at once (nhrpd uses ``async``) and
  surfaced as an :class:`InitiateChild` action, which the proxy carries out;
* for such a client, ``list-sa`` events only list CHILD_SAs that protect GRE;
* a client that is not root gets only what :mod:`frrdmvpn.core.vici_access` allows its
  role: a refused request is answered by the proxy (and surfaced as a :class:`Forbidden`
  action, which the proxy logs and counts), never sent to charon.

Replies reach the client in the order of its requests. No I/O here.
"""

from __future__ import annotations

import ipaddress
import logging
from collections import deque
from collections.abc import Callable, Collection
from dataclasses import dataclass
from enum import Enum

from frrdmvpn.codec.vici import (
    Message,
    Packet,
    PacketType,
    ViciWireError,
    decode_packet,
    encode_packet,
    text,
    texts,
)
from frrdmvpn.core.authorize import is_gre_host_selector
from frrdmvpn.core.authorize import reads_garbled as garbled
from frrdmvpn.core.sa_table import child_sa
from frrdmvpn.core.vici_access import (
    ROOT,
    Client,
    Forbidden,
    IkeSaOwners,
    Role,
    needs_arguments,
    screen,
    screen_arguments,
)

log = logging.getLogger(__name__)

INSTALLED = "child-state-installed"
REKEYED = "child-state-rekeyed"
DESTROYING = "child-state-destroying"
#: Stock events each nhrpd-only event is synthesised from.
STOCK_FOR = {
    INSTALLED: ("child-updown", "ike-updown"),
    DESTROYING: ("child-updown", "ike-updown"),
    REKEYED: ("child-rekey",),
}
RESPONSES = frozenset(
    {
        PacketType.CMD_RESPONSE,
        PacketType.CMD_UNKNOWN,
        PacketType.EVENT_CONFIRM,
        PacketType.EVENT_UNKNOWN,
    }
)
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class ProtocolError(ValueError):
    """A peer broke the VICI conversation; the proxy closes both connections."""


@dataclass(frozen=True)
class ToClient:
    """Send this packet (without length prefix) to the client."""

    payload: bytes


@dataclass(frozen=True)
class ToUpstream:
    """Send this packet to charon."""

    payload: bytes


@dataclass(frozen=True)
class InitiateChild:
    """Bring up CHILD_SA profile ``child`` between exactly these two hosts."""

    child: str
    my_host: IPAddress
    other_host: IPAddress


@dataclass(frozen=True)
class Confirm:
    """List IKE_SA ``ike_id`` and hand the listing to :meth:`ClientSession.confirmed`: an
    event showed one of its CHILD_SAs as a host-to-host transport SA whose selectors read
    as another protocol than GRE. charon names a selector's protocol with
    ``getprotobynumber()``, which is not thread-safe: under load the name comes out wrong
    (``[ip]``, or a comment line of /etc/protocols; bench/results.md), and nhrpd, which
    only hears of CHILD_SAs that protect GRE, would never hear of the SA."""

    ike_id: int
    attempt: int = 1


Action = ToClient | ToUpstream | InitiateChild | Forbidden | Confirm
#: Listings asked for one IKE_SA whose CHILD_SA still reads as not GRE before giving up.
CONFIRM_ATTEMPTS = 3


class _Kind(Enum):
    FORWARD = "forward"  # upstream's answer goes to the client
    SWALLOW = "swallow"  # upstream's answer to a registration the proxy added
    LOCAL = "local"  # answered by the proxy, queued behind earlier requests


@dataclass
class _Pending:
    kind: _Kind
    payload: bytes = b""
    register: str | None = None  # event name a forwarded (un)registration is about


def peek(payload: bytes) -> tuple[PacketType, str | None]:
    """Packet type and name, without decoding the message."""
    if not payload:
        raise ProtocolError("empty VICI packet")
    try:
        ptype = PacketType(payload[0])
    except ValueError as exc:
        raise ProtocolError(f"unknown VICI packet type {payload[0]}") from exc
    if ptype in (
        PacketType.CMD_REQUEST,
        PacketType.EVENT_REGISTER,
        PacketType.EVENT_UNREGISTER,
        PacketType.EVENT,
    ):
        if len(payload) < 2 or len(payload) < 2 + payload[1]:
            raise ProtocolError(f"truncated {ptype.name} packet")
        return ptype, payload[2 : 2 + payload[1]].decode("ascii", "replace")
    return ptype, None


def _encode(ptype: PacketType, name: str | None = None, message: Message | None = None) -> bytes:
    return encode_packet(Packet(ptype, name, message))


def _response(success: bool, errmsg: str = "") -> bytes:
    msg: Message = {"success": b"yes" if success else b"no"}
    if errmsg:
        msg["errmsg"] = errmsg.encode()
    return _encode(PacketType.CMD_RESPONSE, None, msg)


def _host_ts_is_gre(ts: list[str], host: str) -> bool:
    address = ipaddress.ip_address(host)
    return bool(ts) and all(is_gre_host_selector(t, address) for t in ts)


def protects_gre(ike: Message, child: Message) -> bool:
    """INSTALLED ESP transport CHILD_SA whose selectors are exactly GRE between the IKE hosts."""
    try:
        local, remote = text(ike.get("local-host")), text(ike.get("remote-host"))
        return (
            text(child.get("state"), "") == "INSTALLED"
            and text(child.get("mode"), "") == "TRANSPORT"
            and text(child.get("protocol"), "") == "ESP"
            and _host_ts_is_gre(texts(child.get("local-ts")), local)
            and _host_ts_is_gre(texts(child.get("remote-ts")), remote)
        )
    except (ViciWireError, ValueError):
        return False


def reads_garbled(ike: Message, child: Message) -> bool:
    """:func:`frrdmvpn.core.authorize.reads_garbled` of an event's or listing's CHILD_SA
    (see :class:`Confirm`)."""
    try:
        return garbled(child_sa("", ike, child))
    except (ViciWireError, ValueError):
        return False


def _uniqueid(section: Message) -> int:
    """An IKE_SA's or CHILD_SA's unique id (0 when it has none that reads)."""
    try:
        return int(text(section.get("uniqueid"), "0"))
    except (ViciWireError, ValueError):
        return 0


def _ike_sections(msg: Message) -> list[tuple[str, Message]]:
    return [(k, v) for k, v in msg.items() if isinstance(v, dict)]


def _children(ike: Message) -> list[tuple[str, Message]]:
    sas = ike.get("child-sas")
    return [(k, v) for k, v in sas.items() if isinstance(v, dict)] if isinstance(sas, dict) else []


def _state_event(name: str, ike_name: str, ike: Message, key: str, child: Message) -> bytes:
    section: Message = {k: v for k, v in ike.items() if k != "child-sas"}
    section["child-sas"] = {key: child}
    return _encode(PacketType.EVENT, name, {ike_name: section})


def synthesise(event: str, msg: Message, wanted: set[str]) -> list[bytes]:
    """``child-state-*`` events (those in ``wanted``) equivalent to one stock event."""
    out: list[bytes] = []
    up = text(msg.get("up"), "no") == "yes"
    for ike_name, ike in _ike_sections(msg):
        for key, child in _children(ike):
            if event == "child-updown" and up:
                if INSTALLED in wanted and protects_gre(ike, child):
                    out.append(_state_event(INSTALLED, ike_name, ike, key, child))
            elif event in ("child-updown", "ike-updown") and not up:
                if DESTROYING in wanted:
                    out.append(_state_event(DESTROYING, ike_name, ike, key, child))
            elif event == "child-rekey":
                new, old = child.get("new"), child.get("old")
                if isinstance(new, dict) and INSTALLED in wanted and protects_gre(ike, new):
                    out.append(_state_event(INSTALLED, ike_name, ike, key, new))
                if isinstance(old, dict) and DESTROYING in wanted:
                    out.append(_state_event(DESTROYING, ike_name, ike, key, old))
    return out


def filter_list_sa(msg: Message) -> Message:
    """A ``list-sa`` event keeping only CHILD_SAs that protect GRE."""
    out: Message = {}
    for name, value in msg.items():
        if isinstance(value, dict) and isinstance(value.get("child-sas"), dict):
            ike = dict(value)
            ike["child-sas"] = {k: c for k, c in _children(value) if protects_gre(value, c)}
            out[name] = ike
        else:
            out[name] = value
    return out


def _no_profiles() -> Collection[str]:
    return frozenset()


class ClientSession:
    """The proxy's view of one client connection and its upstream connection to charon.

    ``client`` says what the client may ask (root: everything); ``profiles`` gives DMVPN's
    IPsec profiles as they are at the moment of a request (the proxy re-reads them).
    """

    def __init__(
        self, client: Client = ROOT, profiles: Callable[[], Collection[str]] = _no_profiles
    ) -> None:
        self.client = client
        self.profiles = profiles
        self.owners = IkeSaOwners()  # what charon reported on this connection (nhrpd's user)
        self.client_events: set[str] = set()  # stock events the client registered itself
        self.synth: set[str] = set()  # child-state-* events the client registered
        self.upstream_events: set[str] = set()  # what this session registered at charon
        self._pending: deque[_Pending] = deque()
        # CHILD_SAs (by IKE_SA) whose selectors read garbled, listed again (Confirm); and
        # CHILD_SAs reported gone while some are: a listing taken before the report came
        # must not bring them back
        self._confirming: dict[int, set[int]] = {}
        self._asked: dict[int, set[int]] = {}  # what the listing under way was asked for
        self._gone: set[int] = set()

    def _flush(self) -> list[Action]:
        out: list[Action] = []
        while self._pending and self._pending[0].kind is _Kind.LOCAL:
            out.append(ToClient(self._pending.popleft().payload))
        return out

    def _local(self, payload: bytes) -> None:
        self._pending.append(_Pending(_Kind.LOCAL, payload))

    def _screen(self, ptype: PacketType, name: str | None, payload: bytes) -> Forbidden | None:
        if self.client.role is Role.ROOT or name is None:
            return None
        forbidden = screen(self.client, ptype, name)
        if forbidden is None and needs_arguments(self.client, ptype, name):
            try:
                msg = decode_packet(payload).message or {}
            except ViciWireError as exc:
                raise ProtocolError(f"malformed {name}: {exc}") from exc
            forbidden = screen_arguments(name, msg, self.profiles(), self.owners)
        return forbidden

    def from_client(self, payload: bytes) -> list[Action]:
        """Actions for one packet the client sent."""
        ptype, name = peek(payload)
        out: list[Action] = []
        forbidden = self._screen(ptype, name, payload)
        if forbidden is not None:  # answered here, in turn; charon never sees it
            if ptype is PacketType.CMD_REQUEST:
                self._local(_response(False, forbidden.errmsg))
            else:
                self._local(_encode(PacketType.EVENT_UNKNOWN))
            out.append(forbidden)
        elif ptype is PacketType.EVENT_REGISTER and name in STOCK_FOR:
            self.synth.add(name)
            for stock in STOCK_FOR[name]:
                if stock not in self.upstream_events:
                    self.upstream_events.add(stock)
                    out.append(ToUpstream(_encode(PacketType.EVENT_REGISTER, stock)))
                    self._pending.append(_Pending(_Kind.SWALLOW, register=stock))
            self._local(_encode(PacketType.EVENT_CONFIRM))
        elif ptype is PacketType.EVENT_UNREGISTER and name in STOCK_FOR:
            self.synth.discard(name)  # upstream stays registered; its events are ignored
            self._local(_encode(PacketType.EVENT_CONFIRM))
        elif ptype is PacketType.EVENT_REGISTER:
            assert name is not None
            self.client_events.add(name)
            if name in self.upstream_events:
                self._local(_encode(PacketType.EVENT_CONFIRM))
            else:
                self.upstream_events.add(name)
                out.append(ToUpstream(payload))
                self._pending.append(_Pending(_Kind.FORWARD, register=name))
        elif ptype is PacketType.EVENT_UNREGISTER:
            assert name is not None
            self.client_events.discard(name)
            if any(name in STOCK_FOR[s] for s in self.synth):
                self._local(_encode(PacketType.EVENT_CONFIRM))
            else:
                self.upstream_events.discard(name)
                out.append(ToUpstream(payload))
                self._pending.append(_Pending(_Kind.FORWARD))
        elif ptype is PacketType.CMD_REQUEST and name == "initiate":
            out += self._initiate(payload)
        elif ptype is PacketType.CMD_REQUEST:
            out.append(ToUpstream(payload))
            self._pending.append(_Pending(_Kind.FORWARD))
        else:
            raise ProtocolError(f"a client may not send {ptype.name}")
        return out + self._flush()

    def _initiate(self, payload: bytes) -> list[Action]:
        try:
            msg = decode_packet(payload).message or {}
        except ViciWireError as exc:
            raise ProtocolError(f"malformed initiate: {exc}") from exc
        if "my-host" not in msg and "other-host" not in msg:
            self._pending.append(_Pending(_Kind.FORWARD))
            return [ToUpstream(payload)]
        try:
            child = text(msg.get("child"))
            mine = ipaddress.ip_address(text(msg.get("my-host")))
            other = ipaddress.ip_address(text(msg.get("other-host")))
        except (ViciWireError, ValueError) as exc:
            self._local(_response(False, f"initiate with my-host/other-host: {exc}"))
            return []
        self._local(_response(True))
        return [InitiateChild(child, mine, other)]

    def from_upstream(self, payload: bytes) -> list[Action]:
        """Actions for one packet charon sent on this session's upstream connection."""
        ptype, name = peek(payload)
        if ptype is PacketType.EVENT:
            return self._event(payload, name or "")
        if ptype not in RESPONSES:
            raise ProtocolError(f"charon sent unexpected {ptype.name}")
        if not self._pending:
            raise ProtocolError(f"unsolicited {ptype.name} from charon")
        head = self._pending.popleft()
        out: list[Action] = []
        if ptype is PacketType.EVENT_UNKNOWN and head.register:
            self.upstream_events.discard(head.register)
            self.client_events.discard(head.register)
            log.warning("charon does not know event %r", head.register)
        if head.kind is _Kind.FORWARD:
            out.append(ToClient(payload))
        return out + self._flush()

    def _event(self, payload: bytes, name: str) -> list[Action]:
        out: list[Action] = []
        wants_synth = bool(self.synth) and name in {s for e in self.synth for s in STOCK_FOR[e]}
        learns = self.client.role is Role.NHRPD
        if name not in self.client_events and not wants_synth and not learns:
            return out
        try:
            msg = decode_packet(payload).message or {}
        except ViciWireError as exc:
            log.warning("undecodable %s event from charon: %s", name, exc)
            return [ToClient(payload)] if name in self.client_events else []
        if learns:  # before the client sees it: it may answer with terminate ike-id
            self.owners.learn(name, msg)
        if name in self.client_events:
            if name == "list-sa" and self.synth:
                out.append(ToClient(_encode(PacketType.EVENT, name, filter_list_sa(msg))))
                if INSTALLED in self.synth:  # one it leaves out may only read garbled
                    out += self._garbled(name, msg)
            else:
                out.append(ToClient(payload))
        if wants_synth:
            out += [ToClient(p) for p in synthesise(name, msg, self.synth)]
            if INSTALLED in self.synth:
                out += self._garbled(name, msg)
        return out

    def _garbled(self, name: str, msg: Message) -> list[Action]:
        """Confirm the CHILD_SAs an event brings up, or a listing shows, that read garbled
        (:class:`Confirm`); note those an event takes down while any is being confirmed."""
        out: list[Action] = []
        issued: set[int] = set()
        up = text(msg.get("up"), "no") == "yes"
        profiles: Collection[str] | None = None  # read once, and only for a garbled one
        for ike_name, ike in _ike_sections(msg):
            for _, child in _children(ike):
                new: object = None
                old: object = None
                if (name == "child-updown" and up) or name == "list-sa":
                    new = child
                elif name == "child-rekey":
                    new, old = child.get("new"), child.get("old")
                elif name in ("child-updown", "ike-updown") and not up:
                    old = child
                if isinstance(old, dict) and self._confirming:
                    self._gone.add(_uniqueid(old))
                if isinstance(new, dict) and reads_garbled(ike, new):
                    profiles = self.profiles() if profiles is None else profiles
                    if ike_name not in profiles:  # not DMVPN's: what it protects is not ours
                        continue
                    ike_id, child_id = _uniqueid(ike), _uniqueid(new)
                    if not ike_id or not child_id:  # charon reads ike-id 0 as "every SA"
                        continue
                    log.warning(
                        "charon reported CHILD_SA #%d (IKE_SA #%d) with selectors %s === %s, "
                        "not GRE: asking charon for it again",
                        child_id,
                        ike_id,
                        texts(new.get("local-ts")),
                        texts(new.get("remote-ts")),
                    )
                    if ike_id not in self._confirming:
                        out.append(Confirm(ike_id))
                        issued.add(ike_id)
                    self._confirming.setdefault(ike_id, set()).add(child_id)
                    if ike_id in issued:  # the listing asked for comes after this event
                        self._asked.setdefault(ike_id, set()).add(child_id)
        return out

    def confirmed(self, ike_id: int, attempt: int, messages: list[Message]) -> list[Action]:
        """charon's listing of IKE_SA ``ike_id`` after a :class:`Confirm`: each CHILD_SA
        being confirmed that now protects GRE is announced to the client as installed
        (nhrpd then counts it); one still garbled is listed again, up to
        :data:`CONFIRM_ATTEMPTS` times; one gone or not GRE is dropped."""
        waiting = self._confirming.get(ike_id, set())
        asked = self._asked.pop(ike_id, set())
        out: list[Action] = []
        still: set[int] = set()
        listed: set[int] = set()
        for msg in messages:
            for ike_name, ike in _ike_sections(msg):
                if _uniqueid(ike) != ike_id:
                    continue
                for key, child in _children(ike):
                    child_id = _uniqueid(child)
                    listed.add(child_id)
                    if child_id not in waiting or child_id in self._gone:
                        continue
                    if protects_gre(ike, child):
                        log.info("CHILD_SA #%d protects GRE after all: told the client", child_id)
                        if INSTALLED in self.synth:
                            out.append(ToClient(_state_event(INSTALLED, ike_name, ike, key, child)))
                    elif reads_garbled(ike, child):
                        still.add(child_id)
        if asked - listed - self._gone:  # rekeyed into another IKE_SA, or deleted
            log.warning(
                "CHILD_SAs %s are not in IKE_SA #%d any more: not confirmed",
                sorted(asked - listed - self._gone),
                ike_id,
            )
        later = waiting - asked - self._gone  # reported while the listing was under way
        if still and attempt >= CONFIRM_ATTEMPTS:
            log.warning(
                "CHILD_SAs %s (IKE_SA #%d) still read as not GRE after %d listings",
                sorted(still),
                ike_id,
                attempt,
            )
            still = set()
        if still or later:
            self._confirming[ike_id] = still | later
            self._asked[ike_id] = still | later
            out.append(Confirm(ike_id, attempt + 1 if still else 1))
        else:
            self.confirm_failed(ike_id)
        return out

    def confirm_failed(self, ike_id: int) -> None:
        """No listing of IKE_SA ``ike_id`` came (charon gone): stop confirming it."""
        self._confirming.pop(ike_id, None)
        self._asked.pop(ike_id, None)
        if not self._confirming:
            self._gone.clear()
