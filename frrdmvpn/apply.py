"""Apply a configuration: kernel, then charon, then FRR — only what differs, undone on failure.

The desired state comes from the pure renderers in :mod:`frrdmvpn.config`; each external
system sits behind one port (:class:`Ports`), so this module only sequences them:

0. guards — widened to the addresses of the previous configuration and the new one
   (:func:`frrdmvpn.config.kernel.guard_nbma`), so that no step makes GRE leave from an
   address the guards do not cover;
1. kernel — mGRE links (pyroute2), sysctls, nhrpd's NFLOG hooks (iptables); first, nhrpd
   lets go of a ``tunnel source`` device the tunnel leaves (it would rewrite the new link);
2. charon — connections and shared secrets over VICI: what changed since the previous
   configuration, plus whatever charon lacks (a restarted charon has nothing loaded); the
   trustpoints' certificate and key files are read (:attr:`Ports.read_file`) while planning,
   so a file that may not be read fails the apply before anything changed;
3. FRR — for nhrpd and ospfd, the commands from their running configuration to the
   desired one (:func:`frrdmvpn.config.frrdiff.diff`), over each daemon's vty session;
4. charon again — when a connection's local end moved (``tunnel source``), its IKE_SAs
   still on an old address or identity are closed (nhrpd and the supervisor initiate new
   ones; a failure here is a warning);
5. guards — narrowed to the new configuration's addresses (if that fails they stay wider,
   which is safe, and the apply still succeeds).

The kernel comes first and FRR last so that charon's trap exists before nhrpd can send GRE.
Applying the configuration that is running changes nothing. If a step fails, the previous
configuration is applied again (for a first apply, the empty one), which narrows the guards
back to it, and the error re-raised. A dry run leaves the guards alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from ipaddress import IPv4Address
from typing import Any, Protocol

from frrdmvpn.config import frrdiff
from frrdmvpn.config.frr import FRR_8_4, FrrVersion, check_supported, render_frr, shown
from frrdmvpn.config.kernel import GreTunnel, KernelState, NhrpHooks, desired_kernel
from frrdmvpn.config.model import Config
from frrdmvpn.config.swan import (
    EMPTY,
    LocalEnd,
    SwanState,
    TrustpointFile,
    desired_swan,
    diff_swan,
    printed_ike_id,
    trustpoint_files,
)

log = logging.getLogger(__name__)
DAEMONS = ("nhrpd", "ospfd")
Addresses = Mapping[str, Sequence[IPv4Address]]  # interface name -> its IPv4 addresses


class LinksPort(Protocol):
    def addresses(self) -> dict[str, tuple[IPv4Address, ...]]: ...  # by interface, first first
    def tunnel(self, name: str) -> GreTunnel | None: ...
    def ensure(self, want: GreTunnel) -> list[str]: ...
    def delete(self, name: str) -> bool: ...


class CharonPort(Protocol):
    def loaded_conns(self) -> set[str]: ...
    def ike_sas(self) -> list[LocalEnd]: ...
    def terminate_ike(self, uniqueid: int) -> None: ...
    def loaded_shared(self) -> set[str]: ...
    def load_conn(self, message: Mapping[str, Any]) -> None: ...
    def unload_conn(self, name: str) -> None: ...
    def load_shared(self, message: Mapping[str, Any]) -> None: ...
    def unload_shared(self, ident: str) -> None: ...
    def load_key(self, path: str, data: bytes) -> str: ...


class GuardPort(Protocol):
    """The fail-closed guards (:class:`frrdmvpn.guards.GuardKeeper`); each returns what
    changed. ``addresses``: what :meth:`LinksPort.addresses` read for this apply."""

    def widen(self, configs: Sequence[Config], addresses: Addresses) -> list[str]: ...
    def narrow(self, config: Config, addresses: Addresses) -> list[str]: ...


@dataclass
class Ports:
    """The external systems apply talks to (real adapters, or fakes in unit tests)."""

    links: LinksPort
    charon: CharonPort
    frr_running: Callable[[str], str]
    frr_configure: Callable[[str, list[str]], None]  # (daemon, lines)
    sysctls: Callable[[Iterable[tuple[str, str]]], list[str]]
    hooks: Callable[[Iterable[NhrpHooks], Iterable[GreTunnel]], list[str]]
    # A trustpoint's file, if root may read it (frrdmvpn.adapters.trusted_files); raises else.
    read_file: Callable[[TrustpointFile], bytes]
    guard: GuardPort
    # What the node's FRR can be configured with (default: Debian 12's, FRR 8.4).
    frr_version: Callable[[], FrrVersion] = field(default=lambda: FRR_8_4)


class ApplyError(RuntimeError):
    """A step failed; ``changes`` were made before it, then undone if ``rolled_back``."""

    def __init__(self, message: str, changes: list[str], rolled_back: bool) -> None:
        super().__init__(message)
        self.changes = changes
        self.rolled_back = rolled_back


@dataclass
class Plan:
    """What applying would change (``dry_run``) or changed."""

    changes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.changes


def _kernel(ports: Ports, want: KernelState, old: KernelState | None, dry_run: bool) -> list[str]:
    changes: list[str] = []
    for tunnel in want.tunnels:
        if dry_run:
            if ports.links.tunnel(tunnel.name) != _observable(tunnel):
                changes.append(f"kernel: bring {tunnel.name} to {tunnel.to_dict()}")
            continue
        changes += [f"kernel: {c}" for c in ports.links.ensure(tunnel)]
    gone = {t.name for t in old.tunnels} - {t.name for t in want.tunnels} if old else set()
    for name in sorted(gone):
        if dry_run:
            changes.append(f"kernel: delete {name}")
        elif ports.links.delete(name):
            changes.append(f"kernel: deleted {name}")
    if not dry_run:
        changes += [f"kernel: {c}" for c in ports.sysctls(want.sysctls)]
        changes += [f"kernel: {c}" for c in ports.hooks(want.nhrp_hooks, want.tunnels)]
    return changes


def _observable(t: GreTunnel) -> GreTunnel:
    """What :meth:`LinksPort.tunnel` reports for a link made from ``t`` (no MSS in links)."""
    return GreTunnel(
        t.name, t.key, t.local, t.link, t.ttl, t.mtu, tuple(sorted(t.addresses)), 0, t.kind
    )


def _charon(
    ports: Ports, want: SwanState, old: SwanState, files: Mapping[str, bytes], dry_run: bool
) -> list[str]:
    changes = diff_swan(old, want)
    loaded, shared = ports.charon.loaded_conns(), ports.charon.loaded_shared()
    conns = list(changes.load_conns)
    conns += [m for n, m in want.conns.items() if n not in loaded and m not in conns]
    secrets = list(changes.load_shared)
    secrets += [m for i, m in want.shared.items() if i not in shared and m not in secrets]
    keys = list(changes.load_keys)
    if any(n not in loaded for n in want.conns):  # charon lost its configuration
        keys += [k for k in want.private_keys if k not in keys]
    c = ports.charon
    steps: list[tuple[str, Callable[[], object]]] = []
    steps += [(f"charon: load-key {k}", partial(c.load_key, k, files[k])) for k in keys]
    steps += [(f"charon: load-shared {m.get('id')}", partial(c.load_shared, m)) for m in secrets]
    steps += [(f"charon: load-conn {', '.join(m)}", partial(c.load_conn, m)) for m in conns]
    steps += [
        (f"charon: unload-conn {n}", partial(c.unload_conn, n))
        for n in changes.unload_conns
        if n in loaded
    ]
    steps += [
        (f"charon: unload-shared {i}", partial(c.unload_shared, i))
        for i in changes.unload_shared
        if i in shared
    ]
    for _, run in [] if dry_run else steps:
        run()
    return [text for text, _ in steps]


def _local_end(message: Mapping[str, Any]) -> tuple[set[str], str | None]:
    """A connection's local addresses and identity (None: charon's default, a certificate's
    subject)."""
    local = message.get("local")
    identity = local.get("id") if isinstance(local, Mapping) else None
    return {str(a) for a in message.get("local_addrs", [])}, (
        None if identity is None else str(identity)
    )


Ends = dict[str, tuple[set[str], str | None]]  # connection -> local addresses, identity


def _moved_ends(old: SwanState, new: SwanState) -> Ends:
    """The connections whose local end differs from the previous configuration's: their
    new local addresses and identity as charon prints it (None: a certificate's)."""
    moved: Ends = {}
    for name, message in new.conns.items():
        conn, before = message.get(name), old.conns.get(name, {}).get(name)
        if not isinstance(conn, Mapping) or not isinstance(before, Mapping):
            continue
        addrs, identity = _local_end(conn)
        if (addrs, identity) != _local_end(before):
            moved[name] = (addrs, None if identity is None else printed_ike_id(identity))
    return moved


def _left_behind(sa: LocalEnd, moved: Ends) -> bool:
    """An IKE_SA of a moved connection that still runs from an old address or as its old
    identity: the peer authorizes nhrpd's bindings against that identity, and refuses an
    address identity that is not the address the packets come from."""
    if sa.conn not in moved:
        return False
    addrs, identity = moved[sa.conn]
    return sa.host not in addrs or (identity is not None and sa.identity != identity)


def _close_left_behind(charon: CharonPort, moved: Ends, dry_run: bool) -> list[str]:
    """Once the new configuration runs, close the IKE_SAs its moved connections left behind
    (listed now: one may have gone or been rekeyed meanwhile). A failure is a warning, not
    an apply failure: the configuration is in place, and an SA that went needs no closing."""
    if not moved:
        return []
    try:
        stale = [sa for sa in charon.ike_sas() if _left_behind(sa, moved)]
    except Exception as exc:  # the adapter raises several kinds
        log.warning("could not list the IKE_SAs a moved connection left behind: %s", exc)
        return []
    done: list[str] = []
    for sa in stale:
        change = (
            f"charon: terminate IKE_SA #{sa.uniqueid} of {sa.conn} (from {sa.host} as "
            f"{sa.identity}: the connection's local end moved)"
        )
        if not dry_run:
            try:
                charon.terminate_ike(sa.uniqueid)
            except Exception as exc:  # gone meanwhile, or charon busy: say so, go on
                log.warning("%s failed: %s", change, exc)
                continue
        done.append(change)
    return done


def _sources_bound(running: str) -> dict[str, str]:
    """nhrpd's ``tunnel source`` device per interface in its running configuration."""
    return {
        n.line.split()[1]: c.line.split()[2]
        for n in frrdiff.parse_tree(running)
        if n.line.startswith("interface ")
        for c in n.children
        if len(c.line.split()) == 3 and c.line.startswith("tunnel source ")
    }


def _unbind(ports: Ports, new: Config, old: Config | None, dry_run: bool) -> list[str]:
    """Before the kernel step: nhrpd lets go of a ``tunnel source`` device the new
    configuration does not bind the tunnel to. nhrpd binds a tunnel to that device itself,
    through zebra, which writes the link's local address too, from what it last saw: a
    link re-created with another device or a literal address would be rewritten while
    nhrpd still held the old device (seen in the lab: local 0.0.0.0). The FRR step then
    binds the new device, which the link already names."""
    if old is None or not any(isinstance(i.source, str) for i in old.interfaces):
        return []  # nothing bound by frrdmvpn (a first apply: nhrpd runs what FRR saved)
    wanted = {i.linux_name: i.source for i in new.interfaces}
    running = ports.frr_running("nhrpd")
    stale = [
        name
        for name, device in _sources_bound(running).items()
        if name in wanted and wanted[name] != device
    ]
    lines = [
        line for name in sorted(stale) for line in (f"interface {name}", "no tunnel source", "exit")
    ]
    if lines and not dry_run:
        ports.frr_configure("nhrpd", ["configure terminal", *lines, "end"])
    return [f"nhrpd: {line}" for line in lines]


def _frr_daemons(new: Config, old: Config | None) -> tuple[str, ...]:
    """nhrpd always; ospfd only if this configuration or the previous one routes with OSPF
    (a node may run without ospfd, which cannot be read when it is not running)."""
    uses_ospf = new.ospf is not None or (old is not None and old.ospf is not None)
    return DAEMONS if uses_ospf else ("nhrpd",)


def _frr(ports: Ports, new: Config, old: Config | None, dry_run: bool) -> list[str]:
    desired = render_frr(new, ports.frr_version()).daemons()
    changes: list[str] = []
    for daemon in _frr_daemons(new, old):
        running = ports.frr_running(daemon)
        lines = frrdiff.diff(running, desired[daemon])
        if unsafe := frrdiff.nhrp_enabled_unauthorized(running, lines, desired[daemon]):
            raise RuntimeError(
                f"{daemon}: refusing to enable NHRP before its authorization "
                f"is configured: {'; '.join(unsafe)}"
            )
        if lines and not dry_run:
            ports.frr_configure(daemon, lines)
        changes += [
            f"{daemon}: {shown(line)}"
            for line in lines
            if line not in ("configure terminal", "end")
        ]
    return changes


def apply(
    new: Config,
    old: Config | None,
    ports: Ports,
    *,
    dry_run: bool = False,
    restoring: bool = False,
) -> Plan:
    """Bring the node from ``old`` (the running configuration; None: nothing yet) to ``new``
    (validated by the caller). Raises :class:`ApplyError`: with nothing changed if the
    desired state cannot be computed; after undoing the changes made if a step fails.
    ``restoring`` marks the undo itself, which is never undone in turn."""
    try:  # plan first: an error here has changed nothing
        addresses = ports.links.addresses()
        sources = {name: found[0] for name, found in addresses.items() if found}
        kernel = desired_kernel(new, sources)
        old_kernel = desired_kernel(old, sources) if old is not None else None
        files = {f.path: ports.read_file(f) for f in trustpoint_files(new)}
        swan = desired_swan(new, sources, files)
        # the previous state with today's files: a path both use compares equal (a file
        # changed in place is reloaded with its connection only when that changes too)
        old_swan = desired_swan(old, sources, files) if old is not None else EMPTY
        check_supported(new, ports.frr_version)
    except Exception as exc:  # the adapters and renderers raise several kinds
        # nothing was changed: the previous state stands
        raise ApplyError(f"cannot compute the desired state: {exc}", [], True) from exc
    done: list[str] = []
    try:
        if not dry_run:  # before anything may send GRE from a new address
            done += ports.guard.widen((old, new) if old is not None else (new,), addresses)
        done += _unbind(ports, new, old, dry_run)
        done += _kernel(ports, kernel, old_kernel, dry_run)
        done += _charon(ports, swan, old_swan, files, dry_run)
        done += _frr(ports, new, old, dry_run)
    except Exception as exc:  # every adapter error is undone the same way
        if dry_run or restoring or not done:
            raise ApplyError(str(exc), done, rolled_back=not done) from exc
        log.warning(
            "apply failed after %d change(s): %s; restoring the previous state", len(done), exc
        )
        try:
            apply(old if old is not None else Config(), new, ports, restoring=True)
        except ApplyError as again:
            raise ApplyError(f"{exc}; and restoring failed too: {again}", done, False) from exc
        raise ApplyError(str(exc), done, rolled_back=True) from exc
    done += _close_left_behind(ports.charon, _moved_ends(old_swan, swan), dry_run)
    if not dry_run:
        try:
            done += ports.guard.narrow(new, addresses)
        except Exception as exc:  # wider guards are safe: say so and go on
            log.warning("narrowing the guards failed, they stay wider (fail-closed): %s", exc)
    for change in done:
        log.info("%s%s", "would: " if dry_run else "", change)
    return Plan(done)
