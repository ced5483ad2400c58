"""What the guards' set of NBMA addresses must hold, and how it gets there. Pure.

* :class:`AddressTable`: each interface's IPv4 addresses, kept from rtnetlink's address
  messages (:mod:`frrdmvpn.codec.rtnl_addr`): a notification adds or removes one address, and
  the end of a dump removes what the dump did not list.
* :func:`guard_step`: from the addresses guarded now to the ones needed. What is needed is
  added at once; an address goes only when the caller says nothing may still send GRE from
  it, and the last one never goes (the table keeps its shape; guarding an address that is
  no longer used drops nothing).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from frrdmvpn.codec.rtnl_addr import Received


@dataclass
class AddressTable:
    """IPv4 addresses by interface index; ``complete`` once a dump has been read whole."""

    addresses: dict[int, frozenset[IPv4Address]] = field(default_factory=dict)
    complete: bool = False
    _listed: set[tuple[int, IPv4Address]] | None = None  # what the dump under way listed
    _interrupted: bool = False  # the kernel marked the dump under way inconsistent

    def dumping(self) -> None:
        """A dump was asked for: at its end, what it did not list is gone (unless the
        kernel marked it inconsistent)."""
        self._listed, self._interrupted = set(), False

    def update(self, received: Received) -> set[int]:
        """Take one datagram's messages; the interfaces whose addresses changed."""
        changed: set[int] = set()
        for c in received.changes:
            held = self.addresses.get(c.ifindex, frozenset())
            now = held - {c.address} if c.deleted else held | {c.address}
            if now != held:
                changed.add(c.ifindex)
            if now:
                self.addresses[c.ifindex] = now
            else:
                self.addresses.pop(c.ifindex, None)
            if self._listed is not None and not c.deleted:
                self._listed.add((c.ifindex, c.address))
        if received.interrupted and self._listed is not None:
            self._interrupted = True
        if received.done and self._listed is not None and self._interrupted:
            # Not consistent: it may lack an address that exists. Nothing is pruned, and
            # the table is not trusted to release anything until a dump reads whole.
            self._listed, self._interrupted, self.complete = None, False, False
            return changed
        if received.done and self._listed is not None:
            for index, held in list(self.addresses.items()):
                kept = frozenset(a for a in held if (index, a) in self._listed)
                if kept != held:
                    changed.add(index)
                    if kept:
                        self.addresses[index] = kept
                    else:
                        del self.addresses[index]
            self._listed = None
            self.complete = True
        return changed

    def of(self, index: int | None) -> frozenset[IPv4Address]:
        return frozenset() if index is None else self.addresses.get(index, frozenset())


@dataclass(frozen=True)
class GuardStep:
    """Addresses to start and to stop guarding."""

    add: frozenset[IPv4Address]
    remove: frozenset[IPv4Address]

    @property
    def empty(self) -> bool:
        return not self.add and not self.remove

    def changes(self) -> list[str]:
        """What the step does, one line per address."""
        return [f"guard: protect {a}" for a in sorted(self.add)] + [
            f"guard: release {a}" for a in sorted(self.remove)
        ]


def guard_step(
    held: Iterable[IPv4Address],
    need: Iterable[IPv4Address],
    unused: Iterable[IPv4Address] = (),
    unblocked: Iterable[IPv4Address] = (),
) -> GuardStep:
    """From ``held`` (guarded now) to a set that holds ``need``: add what it lacks (and
    ``unblocked``: needed addresses whose block policies are missing), remove what is in
    ``unused`` and not needed, but never the last address."""
    have, want = frozenset(held), frozenset(need)
    add = (want - have) | (want & frozenset(unblocked))
    remove = (frozenset(unused) & have) - want
    if remove and not (have | add) - remove:
        remove -= {max(remove)}
    return GuardStep(add, remove)
