"""Admission: how many connections or streams each client may hold at once. Pure.

A client is a *principal*: the Unix user of a local socket's peer (``uid 1001``, read with
``SO_PEERCRED``), or the subject of a TCP client's certificate. Each principal may hold at
most ``per_principal``, and all of them together at most ``total``, so one of them can
neither exhaust the process's descriptors nor take every slot from the others.

Some principals have a budget of their own (``reserved``): nhrpd's user on frrdmvpn-proxy's
sockets, root everywhere. What they hold never counts against ``total``, so they are
always served, however many connections the others keep open; their own budget still
bounds them. Another policy (which commands a client may send) is a separate check on the
same principal.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True)
class Ticket:
    """One admitted connection or stream; give it back with :meth:`Admission.release`."""

    principal: str
    serial: int


@dataclass(frozen=True)
class Refusal:
    """Why a principal was not admitted (what the log says and what the client is told)."""

    principal: str
    reason: str


def _no_reserve() -> Mapping[str, int]:
    return MappingProxyType({})


@dataclass
class Admission:
    """Counts what each principal holds of ``what`` (``VICI connections``...)."""

    what: str
    per_principal: int
    total: int
    reserved: Mapping[str, int] = field(default_factory=_no_reserve)
    held: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)  # by principal, since the start
    _open: set[Ticket] = field(default_factory=set)
    _serial: int = 0

    @property
    def shared(self) -> int:
        """What the principals without a budget of their own hold together."""
        return sum(n for p, n in self.held.items() if p not in self.reserved)

    def admit(self, principal: str) -> Ticket | Refusal:
        """A ticket, or why not (the count of refusals grows)."""
        held = self.held[principal]
        if principal in self.reserved:
            limit = self.reserved[principal]
            if held >= limit:
                return self._refuse(
                    principal, f"{principal} holds {held} {self.what}, its limit is {limit}"
                )
        elif held >= self.per_principal:
            return self._refuse(
                principal,
                f"{principal} holds {held} {self.what}, the limit "
                f"per client is {self.per_principal}",
            )
        elif self.shared >= self.total:
            return self._refuse(
                principal,
                f"{self.shared} {self.what} are open, the limit for all clients is {self.total}",
            )
        self._serial += 1
        ticket = Ticket(principal, self._serial)
        self._open.add(ticket)
        self.held[principal] += 1
        return ticket

    def release(self, ticket: Ticket) -> None:
        """Give back what :meth:`admit` gave (a second release does nothing)."""
        if ticket in self._open:
            self._open.discard(ticket)
            self.held[ticket.principal] -= 1
            if not self.held[ticket.principal]:
                del self.held[ticket.principal]

    def _refuse(self, principal: str, reason: str) -> Refusal:
        self.refused[principal] += 1
        return Refusal(principal, reason)
