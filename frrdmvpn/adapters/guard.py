"""Kernel guards: the only code that runs ``nft`` and ``ip xfrm``.

What to install is rendered by :mod:`frrdmvpn.core.guard_rules`; this adapter applies it,
checks it, reads the counters and flushes stale larval XFRM states.

Verified with iproute2 6.1.0 (Debian 12): ``ip -j xfrm policy show`` and
``ip -j xfrm state show`` ignore ``-j`` and print the usual text, so both are parsed as
text. A larval ("acquire") state has SPI 0 and the kernel does not index it by SPI, so
``ip xfrm state delete ... spi 0`` fails with "No such process"; ALLOCSPI with the same
src/dst/proto/mode/reqid adopts the larval state and gives it an SPI, after which it can
be deleted.
"""

from __future__ import annotations

import ipaddress
import itertools
import logging
import re
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from frrdmvpn.core.guard_rules import (
    IPPROTO_GRE,
    TABLE_FAMILY,
    TABLE_NAME,
    GuardSpec,
    ListedGuard,
    XfrmPolicy,
    guardable,
    nft_delete_script,
    nft_elements_script,
    nft_guard_mismatch,
    nft_listed_guard,
    nft_ruleset,
    parse_nft_counters,
    xfrm_block_policies,
)
from frrdmvpn.core.orphans import KernelPolicy, KernelSa

log = logging.getLogger(__name__)

#: For a command that hangs, not a slow one: the first nft of a boot may load kernel modules
#: (a lab CI run timed out after 10 s under emulation); failing the guards fails closed.
DEFAULT_TIMEOUT = 60.0
# What nft and iproute2 print for ENOENT / ESRCH (nothing to list or delete). Commands run
# with the daemon's environment; frrdmvpnd runs them in the C locale.
_NOT_FOUND = ("No such file or directory", "No such process")
_PROTO_NUMBERS = {"gre": IPPROTO_GRE}
# Values iproute2 prints (and accepts back) for an SA's protocol and mode, and a mark.
_XFRM_PROTOS = frozenset({"esp", "ah", "comp"})
_XFRM_MODES = frozenset({"transport", "tunnel", "beet", "ro", "in_trigger"})
_MARK = re.compile(r"0x[0-9a-fA-F]{1,8}(?:/0x[0-9a-fA-F]{1,8})?")


class Runner(Protocol):
    """The subset of :func:`subprocess.run` the guard uses (tests pass a recorder)."""

    def __call__(
        self,
        args: Sequence[str],
        *,
        input: str | None,
        capture_output: bool,
        text: Literal[True],
        check: bool,
        timeout: float | None,
    ) -> subprocess.CompletedProcess[str]: ...


class GuardError(RuntimeError):
    """A guard command failed; the message carries the command and its stderr."""

    def __init__(self, message: str, stderr: str = "") -> None:
        super().__init__(message)
        self.stderr = stderr

    @property
    def not_found(self) -> bool:
        """The command failed only because the object to list or delete does not exist."""
        return any(s in self.stderr for s in _NOT_FOUND)


@dataclass(frozen=True)
class ShownPolicy:
    """One policy as ``ip xfrm policy show`` prints it (only what the guard compares)."""

    direction: str
    selector: dict[str, str]
    action: str
    priority: int
    ptype: str
    mark: str | None

    def matches(self, policy: XfrmPolicy) -> bool:
        proto = self.selector.get("proto", "")
        return (
            self.direction == policy.direction
            and set(self.selector) == {"src", "dst", "proto"}
            and _network(self.selector["src"]) == policy.src
            and _network(self.selector["dst"]) == policy.dst
            and _PROTO_NUMBERS.get(proto, int(proto) if proto.isascii() and proto.isdigit() else -1)
            == policy.proto
            and self.action == policy.action
            and self.priority == policy.priority
            and self.ptype == "main"
            and self.mark is None
        )


@dataclass(frozen=True)
class ShownState:
    """One SA as ``ip xfrm state show`` prints it (only what flushing needs)."""

    src: str
    dst: str
    proto: str
    spi: int
    reqid: int
    mode: str
    mark: str | None
    if_id: str | None

    def id_args(self) -> list[str]:
        """``src S dst D proto P`` (the parser only lets through values ip accepts back)."""
        return ["src", self.src, "dst", self.dst, "proto", self.proto]

    def mark_args(self) -> list[str]:
        if self.mark is None:
            return []
        value, _, mask = self.mark.partition("/")
        return ["mark", value, "mask", mask] if mask else ["mark", value]


def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def _records(text: str) -> list[list[str]]:
    """Split ``ip xfrm`` output into records: a line at column 0 starts a new one."""
    records: list[list[str]] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        if not line[0].isspace() or not records:
            records.append([])
        records[-1].append(line.strip())
    return records


def _pairs(line: str) -> dict[str, str]:
    """``key value key value ...`` -> dict; the first value of a repeated key wins."""
    tokens = line.split()
    pairs: dict[str, str] = {}
    for key, value in zip(tokens[::2], tokens[1::2], strict=False):
        pairs.setdefault(key, value)
    return pairs


_POLICY_KEYS = frozenset({"dir", "action", "priority", "ptype", "mark", "if_id"})


def _attrs(line: str, keys: frozenset[str]) -> dict[str, str]:
    """The value after each of keys anywhere in line (flag lists break strict pairing)."""
    tokens = line.split()
    found: dict[str, str] = {}
    for key, value in itertools.pairwise(tokens):
        if key in keys:
            found.setdefault(key, value)
    return found


def parse_xfrm_policies(text: str) -> list[ShownPolicy]:
    """Policies from ``ip xfrm policy show``; socket policies and junk are skipped."""
    policies: list[ShownPolicy] = []
    for record in _records(text):
        selector = _pairs(record[0])
        info: dict[str, str] = {}
        for line in record[1:]:
            if line.startswith("tmpl"):
                break  # the template lines have their own src/dst/proto
            for key, value in _attrs(line, _POLICY_KEYS).items():
                info.setdefault(key, value)
        if "src" not in selector or "dst" not in selector or "dir" not in info:
            continue
        try:
            priority = int(info.get("priority", "0"))
        except ValueError:
            continue
        policies.append(
            ShownPolicy(
                direction=info["dir"],
                selector=selector,
                action=info.get("action", "allow"),
                priority=priority,
                ptype=info.get("ptype", "main"),
                mark=info.get("mark"),
            )
        )
    return policies


def parse_xfrm_states(text: str) -> list[ShownState]:
    """SAs from ``ip xfrm state show`` (also the output of ``ip xfrm state allocspi``).

    Records whose addresses, protocol, mode or mark look unlike iproute2's output are
    skipped, so nothing odd ever reaches an argv built from them.
    """
    states: list[ShownState] = []
    for record in _records(text):
        head = _pairs(record[0])
        info: dict[str, str] = {}
        for line in record[1:]:
            if line.startswith(("proto ", "mark ", "if_id ")):
                for key, value in _pairs(line).items():
                    info.setdefault(key, value)
        if "src" not in head or "dst" not in head or "proto" not in info or "spi" not in info:
            continue
        mode = info.get("mode", "transport")
        mark = info.get("mark")
        if (
            info["proto"] not in _XFRM_PROTOS
            or mode not in _XFRM_MODES
            or (mark is not None and not _MARK.fullmatch(mark))
        ):
            continue
        try:
            src = str(ipaddress.ip_address(head["src"]))
            dst = str(ipaddress.ip_address(head["dst"]))
            # With -s, iproute2 appends the value again in parentheses: "0x...(N)".
            spi = int(info["spi"].split("(")[0], 16)
            reqid = int(info.get("reqid", "0").split("(")[0], 10)
        except ValueError:
            continue
        states.append(
            ShownState(
                src=src,
                dst=dst,
                proto=info["proto"],
                spi=spi,
                reqid=reqid,
                mode=mode,
                mark=mark,
                if_id=info.get("if_id"),
            )
        )
    return states


class KernelGuard:
    """Install, check, read and remove the GRE guard (nftables table + XFRM block policies)."""

    def __init__(
        self,
        spec: GuardSpec,
        run: Runner = subprocess.run,
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.spec = spec
        self._run = run
        self._timeout = timeout

    @property
    def spec(self) -> GuardSpec:
        """What :meth:`install`, :meth:`installed` and :meth:`remove` act on."""
        return self._spec

    @spec.setter
    def spec(self, spec: GuardSpec) -> None:
        self._spec = spec
        self.policies = xfrm_block_policies(spec)

    def _exec(self, argv: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run argv (stdin as its input); GuardError with its stderr unless it exits 0."""
        try:
            proc = self._run(
                argv,
                input=stdin,
                capture_output=True,
                text=True,
                check=False,
                timeout=self._timeout,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise GuardError(f"{' '.join(argv)}: {exc}") from exc
        if proc.returncode != 0:
            stderr = (proc.stderr or "").strip()
            raise GuardError(
                f"{' '.join(argv)} failed (exit {proc.returncode}): {stderr or 'no stderr'}",
                stderr,
            )
        return proc

    def _exec_unless_missing(self, argv: list[str]) -> subprocess.CompletedProcess[str] | None:
        """Like :meth:`_exec`, but None when the object to list or delete does not exist."""
        try:
            return self._exec(argv)
        except GuardError as exc:
            if exc.not_found:
                return None
            raise

    def kernel_ipsec(self) -> tuple[list[KernelSa], list[KernelPolicy]]:
        """The kernel's SAs and policies (main table, no marks), as the core sees them."""
        states = parse_xfrm_states(self._exec(["ip", "xfrm", "state", "show"]).stdout)
        policies = parse_xfrm_policies(self._exec(["ip", "xfrm", "policy", "show"]).stdout)
        sas = [
            KernelSa(ipaddress.ip_address(st.src), ipaddress.ip_address(st.dst), st.proto, st.spi)
            for st in states
            if st.mark is None and st.if_id is None
        ]
        pols = []
        for p in policies:
            src, dst = _network(p.selector["src"]), _network(p.selector["dst"])
            if src is None or dst is None or p.mark is not None or p.ptype != "main":
                continue
            proto = p.selector.get("proto", "")
            pols.append(KernelPolicy(p.direction, src, dst, proto, p.action, p.priority))
        return sas, pols

    def delete_sa(self, sa: KernelSa) -> None:
        spi = f"0x{sa.spi:08x}"
        self._exec_unless_missing(
            [
                "ip",
                "xfrm",
                "state",
                "delete",
                "src",
                str(sa.src),
                "dst",
                str(sa.dst),
                "proto",
                sa.proto,
                "spi",
                spi,
            ]
        )

    def delete_policy(self, p: KernelPolicy) -> None:
        self._exec_unless_missing(
            [
                "ip",
                "xfrm",
                "policy",
                "delete",
                "src",
                str(p.src),
                "dst",
                str(p.dst),
                "proto",
                p.proto,
                "dir",
                p.direction,
            ]
        )

    def install(self) -> None:
        """Replace the nft table atomically, then add or update every block policy."""
        self._exec(["nft", "-f", "-"], nft_ruleset(self.spec))
        for policy in self.policies:
            self._exec(policy.ip_args("update"))

    def add(self, nbma: Iterable[ipaddress.IPv4Address]) -> None:
        """Guard these addresses too: one nft transaction adds them to the set (the rest of
        the table untouched), then their block policies are added or updated. GuardError
        (``not_found``) when the table is absent."""
        wanted = sorted(set(nbma))
        if not wanted:
            return
        self._exec(["nft", "-f", "-"], nft_elements_script(wanted, ()))
        for policy in xfrm_block_policies(GuardSpec(tuple(wanted), self.spec.nflog_group)):
            self._exec(policy.ip_args("update"))

    def discard(self, nbma: Iterable[ipaddress.IPv4Address]) -> None:
        """Stop guarding these addresses: one nft transaction takes them out of the set (an
        absent table or address is no error), then their block policies are deleted."""
        gone = sorted(set(nbma))
        if not gone:
            return
        try:
            self._exec(["nft", "-f", "-"], nft_elements_script((), gone))
        except GuardError as exc:
            if not exc.not_found:
                raise
        for policy in xfrm_block_policies(GuardSpec(tuple(gone), self.spec.nflog_group)):
            self._exec_unless_missing(policy.ip_args("delete"))

    def remove(self) -> None:
        """Delete the table and the policies; what is already gone is not an error.

        The policies are those of the spec and every other block policy of the guard's
        shape (an address guarded since, by :meth:`add`). Every step is tried; the
        failures, if any, are raised together at the end.
        """
        errors: list[str] = []
        try:
            self._exec(["nft", "-f", "-"], nft_delete_script())
        except GuardError as exc:
            errors.append(str(exc))
        policies = list(self.policies)
        try:
            shown = parse_xfrm_policies(self._exec(["ip", "xfrm", "policy", "show"]).stdout)
        except GuardError as exc:
            errors.append(str(exc))
            shown = []
        others = {a for p in shown if (a := _guarded_address(p)) is not None} - set(self.spec.nbma)
        if others:
            policies += xfrm_block_policies(GuardSpec(tuple(sorted(others)), self.spec.nflog_group))
        for policy in policies:
            try:
                self._exec_unless_missing(policy.ip_args("delete"))
            except GuardError as exc:
                errors.append(str(exc))
        if errors:
            raise GuardError("; ".join(errors))

    def listed(self) -> ListedGuard | None:
        """The guard table as nft lists it (its set's addresses, and how the rest differs
        from the guard); None when there is no table. A listing that is not valid JSON is
        a table that differs (see :meth:`installed`)."""
        table = self._exec_unless_missing(["nft", "-j", "list", "table", TABLE_FAMILY, TABLE_NAME])
        if table is None:
            return None
        try:
            return nft_listed_guard(table.stdout, self.spec.nflog_group)
        except ValueError as exc:
            return ListedGuard(frozenset(), str(exc))

    def unblocked(self, nbma: Iterable[ipaddress.IPv4Address]) -> frozenset[ipaddress.IPv4Address]:
        """Those of ``nbma`` that lack one of their two block policies."""
        wanted = sorted(set(nbma))
        if not wanted:
            return frozenset()
        shown = parse_xfrm_policies(self._exec(["ip", "xfrm", "policy", "show"]).stdout)
        return frozenset(
            a
            for a in wanted
            for want in xfrm_block_policies(GuardSpec((a,), self.spec.nflog_group))
            if not any(p.matches(want) for p in shown)
        )

    def installed(self, *, covering: bool = False) -> bool:
        """True if the nft table is exactly the rendered guard (``covering``: with at least
        the spec's addresses in its set) and every block policy of the spec is present.

        A table listing that is not valid JSON counts as altered, not as an error: nft 1.0.6
        prints garbage for a dormant table's flags, and reinstalling is what repairs it.
        """
        table = self._exec_unless_missing(["nft", "-j", "list", "table", TABLE_FAMILY, TABLE_NAME])
        if table is None:
            return False
        try:
            mismatch = nft_guard_mismatch(self.spec, table.stdout, covering=covering)
        except ValueError as exc:
            mismatch = str(exc)
        if mismatch is not None:
            log.warning(
                "nft table %s %s is not the guard: %.600s", TABLE_FAMILY, TABLE_NAME, mismatch
            )
            return False
        return not self.unblocked(self.spec.nbma)

    def counters(self) -> dict[str, tuple[int, int]]:
        """Counter name -> (packets, bytes) of the guard table; GuardError if it is absent."""
        proc = self._exec(["nft", "-j", "list", "counters", "table", TABLE_FAMILY, TABLE_NAME])
        try:
            return parse_nft_counters(proc.stdout)
        except ValueError as exc:
            raise GuardError(str(exc)) from exc

    def flush_larval_states(self) -> int:
        """Delete SPI-0 (larval "acquire") XFRM states; returns how many were deleted.

        After a charon restart such a state suppresses new ACQUIREs until it expires
        (``xfrm_acq_expires``, 165 s with charon's defaults). Each one is adopted with
        ALLOCSPI (same src/dst/proto/mode/reqid/mark) and then deleted by its new SPI. If
        the larval state vanished meanwhile, ALLOCSPI creates a fresh one, which is
        deleted just the same. States with an ``if_id`` are left alone: iproute2 6.1
        cannot pass one to ``allocspi``, so the adoption would miss them.
        """
        shown = self._exec(["ip", "xfrm", "state", "show"])
        deleted = 0
        for state in parse_xfrm_states(shown.stdout):
            if state.spi != 0 or state.if_id is not None:
                continue
            ident = state.id_args()
            alloc = self._exec(
                [
                    "ip",
                    "xfrm",
                    "state",
                    "allocspi",
                    *ident,
                    "mode",
                    state.mode,
                    "reqid",
                    str(state.reqid),
                    *state.mark_args(),
                ]
            )
            adopted = parse_xfrm_states(alloc.stdout)
            if len(adopted) != 1 or adopted[0].spi == 0:
                raise GuardError(f"ip xfrm state allocspi printed no SPI: {alloc.stdout!r}")
            spi = f"0x{adopted[0].spi:08x}"
            argv = ["ip", "xfrm", "state", "delete", *ident, "spi", spi, *state.mark_args()]
            if self._exec_unless_missing(argv) is not None:
                deleted += 1
        return deleted


def _guarded_address(p: ShownPolicy) -> ipaddress.IPv4Address | None:
    """The NBMA address a block policy of the guard's shape guards; None for any other."""
    host = _network(p.selector.get("src" if p.direction == "out" else "dst", ""))
    if not isinstance(host, ipaddress.IPv4Network) or host.prefixlen != 32:
        return None
    addr = host.network_address
    if not guardable(addr):
        return None
    return addr if any(p.matches(w) for w in xfrm_block_policies(GuardSpec((addr,)))) else None


def xfrm_stats(path: str = "/proc/net/xfrm_stat") -> dict[str, int]:
    """The kernel's XFRM counters for this network namespace (``XfrmOutPolBlock`` counts GRE
    the block policies stopped, ``XfrmInTmplMismatch`` cleartext the inbound policies dropped)."""
    stats: dict[str, int] = {}
    with open(path) as f:
        for line in f:
            fields = line.split()
            if len(fields) == 2 and fields[1].isascii() and fields[1].isdigit():
                stats[fields[0]] = int(fields[1])
    return stats
