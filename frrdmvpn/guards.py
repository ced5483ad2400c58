"""The node's guards follow what may send GRE: the configurations and their source addresses.

The addresses to guard are :func:`~frrdmvpn.config.kernel.guard_nbma` of every configuration
that may be running, with the kernel's addresses of their tunnel source interfaces, plus
the addresses given on the command line (``pinned``). :class:`GuardKeeper` brings the
kernel's guards (:class:`~frrdmvpn.adapters.guard.KernelGuard`) there:

* :meth:`GuardKeeper.widen` and :meth:`GuardKeeper.narrow` are the apply's guard port
  (:class:`frrdmvpn.apply.GuardPort`): before the kernel step the guards cover the old and
  the new configuration; after a successful apply the old one's addresses go (a rollback
  narrows to the old configuration instead). A ``frrdmvpnd apply`` process only widens
  (``narrows=False``): what ``frrdmvpnd run`` pins is not known to it, so the daemon's next
  check narrows.
* :meth:`GuardKeeper.observe` takes rtnetlink's address messages
  (:mod:`frrdmvpn.adapters.addresses`) and :meth:`GuardKeeper.refresh` then adds a new
  address of a source interface at once. An address is removed only when no apply is under
  way, in this process or another (``frrdmvpnd apply`` holds the same apply lock), and the
  running configuration and addresses, known for sure, no longer need it.

Fail-closed: adding never waits for anything; when in doubt, nothing is removed.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from ipaddress import IPv4Address

from frrdmvpn.adapters.guard import KernelGuard
from frrdmvpn.codec.rtnl_addr import Received
from frrdmvpn.config.kernel import guard_nbma
from frrdmvpn.config.model import Config
from frrdmvpn.core.guard_rules import GuardSpec, guardable
from frrdmvpn.core.guard_set import AddressTable, GuardStep, guard_step

log = logging.getLogger(__name__)

Addresses = Mapping[str, Sequence[IPv4Address]]  # interface name -> its IPv4 addresses


def interface_index(name: str) -> int | None:
    """The interface's index; None when there is no such interface."""
    try:
        return socket.if_nametoindex(name)
    except OSError:
        return None


class GuardKeeper:
    """The guards of one node (thread-safe: applies run in worker threads, the address
    notifications and checks come from the service's event loop)."""

    def __init__(
        self,
        guard: KernelGuard | None = None,
        configs: Sequence[Config] = (),
        *,
        pinned: Sequence[IPv4Address] = (),
        running: Callable[[], Config | None] | None = None,
        read_addresses: Callable[[], Addresses] | None = None,
        apply_lock: Callable[[], AbstractContextManager[bool]] | None = None,
        index_of: Callable[[str], int | None] = interface_index,
        narrows: bool = True,
        tunnel_locals: Callable[[set[str]], set[IPv4Address]] | None = None,
    ) -> None:
        self.guard = guard  # None: made for the first addresses to guard
        # False in `frrdmvpnd apply`: it cannot see what `frrdmvpnd run` pins, so it only
        # widens; the daemon narrows at its next check (wider guards are safe meanwhile).
        self.narrows = narrows
        # The local addresses the kernel's GRE links of these names have now: an apply that
        # was cut short (SIGKILL between its kernel and FRR steps) may leave a link on an
        # address no configuration names; it stays guarded while a link uses it.
        self._tunnel_locals = tunnel_locals
        self.configs = tuple(configs)  # what may run (an apply under way: old and new)
        self.pinned = frozenset(pinned)
        self.table = AddressTable()  # under _table_lock: the event loop must never wait long
        self._running = running
        self._read_addresses = read_addresses
        self._apply_lock = apply_lock
        self._index_of = index_of
        self._lock = threading.RLock()  # one change of the guards at a time
        self._table_lock = threading.Lock()
        self._seen = False  # the guards were found or installed once
        self._settled = True  # False from an apply's widen to its narrow

    # --- the apply's port -------------------------------------------------------------------
    def widen(self, configs: Sequence[Config], addresses: Addresses) -> list[str]:
        """Before the kernel step: guard every address of ``configs`` (old and new); nothing
        is removed. Returns what changed."""
        with self._lock:
            self.configs = tuple(configs)
            self._settled = False
            return self._step(self._need(self.configs, addresses))

    def narrow(self, config: Config, addresses: Addresses) -> list[str]:
        """After the apply: ``config`` alone runs; the addresses the apply covered that it
        does not need stop being guarded. Returns what changed."""
        with self._lock:
            covered = self._need(self.configs, addresses)
            self.configs = (config,)
            self._settled = True
            if not self.narrows:
                return self._step(self._need(self.configs, addresses))
            return self._step(self._need(self.configs, addresses), unused=covered)

    # --- the kernel's addresses -------------------------------------------------------------
    def dumping(self) -> None:
        """The address monitor asked for a dump of every address."""
        with self._table_lock:
            self.table.dumping()

    def observe(self, received: Received) -> bool:
        """Take rtnetlink's address messages; whether the guards may have to change (an
        address of a tunnel source interface came or went, or the first dump ended). Quick:
        the event loop calls it; :meth:`refresh` then changes the guards."""
        sources = {self._index_of(n) for n in self._sources(self._configs())}
        with self._table_lock:
            complete = self.table.complete
            changed = self.table.update(received)
            return bool(changed & sources) or self.table.complete != complete

    # --- checks ---------------------------------------------------------------------------
    def refresh(self) -> list[str]:
        """Bring the guards to what may send GRE now: reinstall them if they are missing or
        altered, add what they lack; remove what is no longer needed only when the apply
        lock is free and the addresses are known (a dump read whole, or read now)."""
        with self._lock:
            configs = self._configs()
            addresses = self._known_addresses(configs)
            need = self._need(configs, addresses or {})
            with self._free() as free:
                if not free or addresses is None:
                    return self._step(need)
                running = self._running() if self._running is not None else None
                if running is not None and self._settled:
                    self.configs = (running,)
                elif running is not None and running not in self.configs:
                    self.configs = (*self.configs, running)  # an apply that did not end
                # What runs may have changed before the lock was ours (another process's
                # apply): its sources' addresses, read again.
                addresses = self._known_addresses(self.configs)
                if addresses is None:
                    return self._step(need)
                exact = self._need(self.configs, addresses)
                return self._step(exact, exact=exact)

    # --- inside ---------------------------------------------------------------------------
    def _configs(self) -> tuple[Config, ...]:
        running = self._running() if self._running is not None else None
        if running is None or running in self.configs:
            return self.configs
        return (*self.configs, running)  # applied by another process meanwhile

    @staticmethod
    def _sources(configs: Sequence[Config]) -> set[str]:
        return {t.source for c in configs for t in c.interfaces if isinstance(t.source, str)}

    def _from_table(self, names: set[str]) -> dict[str, frozenset[IPv4Address]]:
        indexes = {n: self._index_of(n) for n in names}
        with self._table_lock:
            return {n: self.table.of(i) for n, i in indexes.items()}

    def _known_addresses(self, configs: Sequence[Config]) -> Addresses | None:
        """The source interfaces' addresses: from the notifications once a dump was read
        whole, else read now; None when neither can be had."""
        names = self._sources(configs)
        with self._table_lock:
            complete = self.table.complete
        if complete:
            return {n: tuple(a) for n, a in self._from_table(names).items()}
        if self._read_addresses is None:
            return None
        read = self._read_addresses()
        return {n: tuple(read.get(n, ())) for n in names}

    def _need(self, configs: Sequence[Config], addresses: Addresses) -> frozenset[IPv4Address]:
        """Every address ``configs`` may send GRE from: ``addresses`` (read by the caller)
        and what the notifications say, plus the pinned ones."""
        known = self._from_table(self._sources(configs))
        merged = {n: {*addresses.get(n, ()), *known.get(n, ())} for n in {*addresses, *known}}
        found = frozenset().union(*(guard_nbma(c, merged) for c in configs))
        if self._tunnel_locals is not None:
            names = {t.linux_name for c in configs for t in c.interfaces}
            found |= frozenset(a for a in self._tunnel_locals(names) if guardable(a))
        return found | self.pinned

    @contextlib.contextmanager
    def _free(self) -> Iterator[bool]:
        if self._apply_lock is None:
            yield False
            return
        with self._apply_lock() as free:
            yield free

    def _step(
        self,
        need: frozenset[IPv4Address],
        unused: frozenset[IPv4Address] = frozenset(),
        exact: frozenset[IPv4Address] | None = None,
    ) -> list[str]:
        """Add what ``need`` lacks, then remove ``unused`` (all but ``exact`` when given:
        also addresses guarded by an earlier process). A missing or altered table is
        installed again whole, with what it held."""
        if self.guard is None:
            if not need:
                return []
            self.guard = KernelGuard(GuardSpec(tuple(sorted(need))))
        guard = self.guard
        listed = guard.listed()
        if listed is None or listed.mismatch is not None:
            keep = need | (frozenset() if listed is None else listed.nbma)
            guard.spec = GuardSpec(tuple(sorted(keep or guard.spec.nbma)), guard.spec.nflog_group)
            if self._seen:  # something removed them: an nftables reload, a hand
                why = "missing" if listed is None else f"altered: {listed.mismatch}"
                log.warning("the guards were missing or altered: reinstalling (%.600s)", why)
            guard.install()
            self._seen = True
            nbma = ", ".join(map(str, guard.spec.sorted_nbma))
            log.info("guards installed for %s", nbma)
            return [f"guard: installed for {nbma}"]
        self._seen = True
        held = listed.nbma
        if exact is not None:
            unused = held - exact
        step = guard_step(held, need, unused, guard.unblocked(need))
        self._change(guard, held, step)
        return step.changes()

    @staticmethod
    def _change(guard: KernelGuard, held: frozenset[IPv4Address], step: GuardStep) -> None:
        if step.add:
            guard.add(step.add)
        if step.remove:
            guard.discard(step.remove)
        now = (held | step.add) - step.remove
        if now:
            guard.spec = GuardSpec(tuple(sorted(now)), guard.spec.nflog_group)
        for line in step.changes():
            log.info("%s", line)
