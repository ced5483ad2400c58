"""Who may ask charon what through frrdmvpn-proxy (issue 14, hole 3). Pure.

The proxy knows each client by the Unix user the kernel recorded at ``connect()``
(``SO_PEERCRED``) and gives it one of three roles:

* **root** — relayed unchanged (``swanctl`` and root's tools: root could reach charon's own
  socket anyway);
* **nhrpd's user** (``frr``) — exactly what nhrpd 8.4 and 10.x send, on DMVPN's SAs only:
  registrations of ``child-state-installed|rekeyed|destroying`` and ``list-sa``;
  ``list-sas`` without arguments; ``initiate`` of one of DMVPN's IPsec profiles with
  ``my-host``/``other-host`` (the proxy carries it out itself: it never reaches charon);
  ``terminate`` of one IKE_SA by ``ike-id`` that belongs to one of DMVPN's connections, or
  of a DMVPN connection's IKE_SAs by ``ike`` = its name. Anything else — ``load-conn``,
  ``unload-conn``, ``load-shared``, ``get-shared``, another tunnel's SA, an extra argument
  — is refused: an exploited FRR daemon must not reconfigure charon;
* **anyone else** (another member of the socket's group) — nothing.

DMVPN's IPsec profiles are the connections frrdmvpn loads, each named after its profile,
as is its CHILD_SA (``frrdmvpn.config.swan``). Which connection an IKE_SA belongs to is the
name of its section in charon's own events on the client's connection
(:class:`IkeSaOwners`): nhrpd learns an IKE_SA's id from exactly those events.

A refused command is answered ``success = no`` with the reason in ``errmsg`` (nhrpd logs
it, swanctl prints it); a refused registration ``EVENT_UNKNOWN`` (VICI has no reason for
it). Nothing refused reaches charon.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from frrdmvpn.codec.vici import Message, PacketType, Value

#: The events nhrpd registers for.
NHRPD_EVENTS = frozenset(
    {"child-state-installed", "child-state-rekeyed", "child-state-destroying", "list-sa"}
)
#: The commands nhrpd sends, each with the keys it may carry (a flat message).
NHRPD_COMMANDS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "list-sas": frozenset(),
        "initiate": frozenset(
            {"child", "timeout", "async", "init-limits", "my-host", "other-host"}
        ),
        "terminate": frozenset({"ike-id", "ike"}),
    }
)
#: What an initiate of nhrpd's user must name: the proxy carries out only those.
INITIATE_NEEDS = ("child", "my-host", "other-host")
#: IKE_SAs whose connection is remembered per client (the oldest is forgotten first).
MAX_IKE_SAS = 16384
#: An IKE_SA id as nhrpd prints it, and as charon reads it the same way: decimal, no sign,
#: no leading zero, below 2**31 (charon parses with strtol, base 0, into an int).
_IKE_ID = re.compile(r"[1-9][0-9]{0,9}")
_MAX_IKE_ID = 2**31 - 1


class Role(enum.Enum):
    """What a client may ask of charon through the proxy."""

    ROOT = "root"  # relayed unchanged
    NHRPD = "nhrpd"  # nhrpd's requests, on DMVPN's SAs
    OTHER = "other"  # nothing


@dataclass(frozen=True)
class Client:
    """A connected client: its uid (``SO_PEERCRED``) and its role."""

    uid: int
    role: Role


ROOT = Client(0, Role.ROOT)


def client_of(uid: int, nhrpd_uid: int | None) -> Client:
    """The role of ``uid``; ``nhrpd_uid`` None: nhrpd's user does not exist (only root)."""
    if uid == 0:
        return ROOT
    if nhrpd_uid is not None and uid == nhrpd_uid:
        return Client(uid, Role.NHRPD)
    return Client(uid, Role.OTHER)


@dataclass(frozen=True)
class Forbidden:
    """A request the client may not make: ``request`` names it (``command 'load-conn'``),
    ``reason`` says why (the client is told :attr:`errmsg`)."""

    request: str
    reason: str

    @property
    def errmsg(self) -> str:
        """The ``errmsg`` of the refused command's reply."""
        return f"frrdmvpn-proxy: permission denied: {self.reason}"


def _quote(name: str) -> str:
    """A client-chosen name, quoted and shortened (control characters escaped)."""
    return repr(name if len(name) <= 64 else name[:64] + "...")


@dataclass
class IkeSaOwners:
    """Which connection each IKE_SA charon reported on one client's connection belongs to."""

    names: dict[int, str] = field(default_factory=dict)  # IKE_SA unique id -> connection

    def learn(self, event: str, message: Message) -> None:
        """Take in one of charon's events (``list-sa``, ``child-updown``, ``ike-updown``,
        ``child-rekey``...): each top-level section is an IKE_SA named after its
        connection; an ``ike-updown`` that is not up forgets them."""
        down = event == "ike-updown" and message.get("up") != b"yes"
        for name, section in message.items():
            if not isinstance(section, dict):
                continue
            unique = _ike_id(section.get("uniqueid"))
            if unique is None:
                continue
            self.names.pop(unique, None)
            if not down:
                self.names[unique] = name
                while len(self.names) > MAX_IKE_SAS:
                    del self.names[next(iter(self.names))]

    def owner(self, unique: int) -> str | None:
        return self.names.get(unique)


def _ike_id(value: Value | None) -> int | None:
    """An IKE_SA id in the one form both nhrpd and charon read alike; None otherwise."""
    if not isinstance(value, bytes):
        return None
    try:
        digits = value.decode("ascii")
    except UnicodeDecodeError:
        return None
    if not _IKE_ID.fullmatch(digits) or int(digits) > _MAX_IKE_ID:
        return None
    return int(digits)


def screen(client: Client, ptype: PacketType, name: str) -> Forbidden | None:
    """A request judged by its type and name alone; None if allowed so far (nhrpd's
    commands then need :func:`screen_arguments`)."""
    if client.role is Role.ROOT:
        return None
    if ptype is PacketType.CMD_REQUEST:
        request = f"command {_quote(name)}"
    elif ptype in (PacketType.EVENT_REGISTER, PacketType.EVENT_UNREGISTER):
        request = f"event {_quote(name)}"
    else:
        return None  # not a request: the conversation's own rules apply
    if client.role is Role.OTHER:
        return Forbidden(
            request, f"uid {client.uid} may not use charon (only root and nhrpd's user may)"
        )
    if ptype is PacketType.CMD_REQUEST and name not in NHRPD_COMMANDS:
        allowed = ", ".join(sorted(NHRPD_COMMANDS))
        return Forbidden(request, f"nhrpd's user may not send {_quote(name)} (only {allowed})")
    if ptype is not PacketType.CMD_REQUEST and name not in NHRPD_EVENTS:
        allowed = ", ".join(sorted(NHRPD_EVENTS))
        return Forbidden(
            request, f"nhrpd's user may not register for {_quote(name)} (only {allowed})"
        )
    return None


def needs_arguments(client: Client, ptype: PacketType, name: str) -> bool:
    """Whether :func:`screen_arguments` must see this request's message."""
    return (
        client.role is Role.NHRPD and ptype is PacketType.CMD_REQUEST and name in (NHRPD_COMMANDS)
    )


def screen_arguments(
    name: str, message: Message, profiles: Collection[str], owners: IkeSaOwners
) -> Forbidden | None:
    """One of nhrpd's commands (``name`` in :data:`NHRPD_COMMANDS`) judged by its message:
    only its own keys, each a plain value, naming only DMVPN's ``profiles``."""
    request = f"command {_quote(name)}"
    allowed = NHRPD_COMMANDS[name]
    for key, value in message.items():
        if key not in allowed:
            return Forbidden(request, f"nhrpd's user may not send {name} with {_quote(key)}")
        if not isinstance(value, bytes):
            return Forbidden(request, f"{name} {key} must be a plain value")
    if name == "initiate":
        return _initiate(request, message, profiles)
    if name == "terminate":
        return _terminate(request, message, profiles, owners)
    return None


def _profile(value: Value) -> str:
    assert isinstance(value, bytes)  # screen_arguments checked it
    return value.decode("utf-8", "replace")


def _initiate(request: str, message: Message, profiles: Collection[str]) -> Forbidden | None:
    missing = [k for k in INITIATE_NEEDS if k not in message]
    if missing:
        return Forbidden(
            request,
            f"nhrpd's user must send initiate with child, "
            f"my-host and other-host (missing {', '.join(missing)})",
        )
    child = _profile(message["child"])
    if child not in profiles:
        return Forbidden(request, f"{_quote(child)} is not one of DMVPN's IPsec profiles")
    return None


def _terminate(
    request: str, message: Message, profiles: Collection[str], owners: IkeSaOwners
) -> Forbidden | None:
    if len(message) != 1:
        return Forbidden(
            request, "nhrpd's user must send terminate with exactly one of ike-id and ike"
        )
    if "ike" in message:
        ike = _profile(message["ike"])
        if ike not in profiles:
            return Forbidden(request, f"{_quote(ike)} is not one of DMVPN's IPsec profiles")
        return None
    return _terminate_ike_id(request, message["ike-id"], profiles, owners)


def _terminate_ike_id(
    request: str, raw: Value, profiles: Collection[str], owners: IkeSaOwners
) -> Forbidden | None:
    unique = _ike_id(raw)
    if unique is None:
        shown = _quote(_profile(raw))
        return Forbidden(request, f"terminate ike-id {shown} is not an IKE_SA id")
    owner = owners.owner(unique)
    if owner is None:
        return Forbidden(request, f"IKE_SA #{unique} is not one charon reported on this connection")
    if owner not in profiles:
        return Forbidden(
            request,
            f"IKE_SA #{unique} belongs to {_quote(owner)}, not to one of DMVPN's IPsec profiles",
        )
    return None
