"""nhrpd's NFLOG hooks in iptables: multicast interception and, on a hub, redirect triggers.

nhrpd reads NFLOG groups: multicast (OSPF) leaving the tunnel is logged to one group and
dropped (nhrpd replicates it to its peers), and on a hub traffic forwarded tunnel → tunnel
is logged (rate-limited per flow) to another, which makes nhrpd send redirects. frrdmvpn
keeps these in its own chains (``FRRDMVPN-NHRP-OUT``, ``FRRDMVPN-NHRP-FWD``), jumped to from
OUTPUT and FORWARD, and rewrites a chain only when its rules differ.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterable

from frrdmvpn.config.kernel import GreTunnel, NhrpHooks

OUT_CHAIN = "FRRDMVPN-NHRP-OUT"
FWD_CHAIN = "FRRDMVPN-NHRP-FWD"
MSS_CHAIN = "FRRDMVPN-MSS"
TIMEOUT = 60.0


class HookError(RuntimeError):
    """iptables refused or failed."""


def chain_rules(hooks: Iterable[NhrpHooks]) -> dict[str, list[str]]:
    """The rules of both chains, as ``iptables -S`` prints them (without the -N line)."""
    out: list[str] = []
    fwd: list[str] = []
    for h in hooks:
        mcast = f"-d {h.multicast_destinations} -o {h.interface}"
        out += [
            f"-A {OUT_CHAIN} {mcast} -j NFLOG --nflog-group {h.multicast_group}",
            f"-A {OUT_CHAIN} {mcast} -j DROP",
        ]
        if h.redirect_group is not None:
            fwd.append(
                f"-A {FWD_CHAIN} -i {h.interface} -o {h.interface} -m hashlimit "
                f"--hashlimit-upto {h.redirect_rate} --hashlimit-burst {h.redirect_burst} "
                f"--hashlimit-mode srcip,dstip --hashlimit-srcmask {h.redirect_mask} "
                f"--hashlimit-dstmask {h.redirect_mask} --hashlimit-name nhrp-{h.interface[:10]} "
                f"-j NFLOG --nflog-group {h.redirect_group} --nflog-size 128"
            )
    return {OUT_CHAIN: out, FWD_CHAIN: fwd}


def _run(args: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            args, input=stdin, capture_output=True, text=True, check=False, timeout=TIMEOUT
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise HookError(f"{args[0]}: {exc}") from exc


def _current(chain: str, table: str = "filter") -> list[str] | None:
    done = _run(["iptables", "-w", "-t", table, "-S", chain])
    if done.returncode != 0:
        return None
    return [line for line in done.stdout.splitlines() if line.startswith("-A ")]


def _stamped(rules: list[str]) -> list[str]:
    """``rules`` each tagged with a digest of all of them: iptables prints rules back in
    its own canonical form, so whether a chain is current is read from the tag."""
    digest = hashlib.sha256("\n".join(rules).encode()).hexdigest()[:12]
    return [f'{rule} -m comment --comment "frrdmvpn {digest}"' for rule in rules]


def _is_current(current: list[str] | None, stamped: list[str]) -> bool:
    if current is None or len(current) != len(stamped):
        return False
    tag = stamped[0].rsplit(" ", 1)[-1] if stamped else ""
    return all(tag in rule for rule in current)


def mss_rules(tunnels: Iterable[GreTunnel]) -> list[str]:
    """``ip tcp adjust-mss``: clamp the MSS of TCP SYNs forwarded through each tunnel."""
    out = []
    for t in tunnels:
        for direction in ("-o", "-i"):
            out.append(
                f"-A {MSS_CHAIN} {direction} {t.name} -p tcp -m tcp --tcp-flags SYN,RST "
                f"SYN -j TCPMSS --set-mss {t.tcp_mss}"
            )
    return out


def _sync(
    table: str, wanted: dict[str, list[str]], jumps: tuple[tuple[str, str], ...]
) -> list[str]:
    """Rewrite the chains of ``table`` whose tagged rules differ; add missing jumps."""
    stamped = {chain: _stamped(rules) for chain, rules in wanted.items()}
    changes: list[str] = []
    stale = {c: r for c, r in stamped.items() if not _is_current(_current(c, table), r)}
    if stale:
        script = f"*{table}\n"
        script += "".join(f":{chain} - [0:0]\n" for chain in stale)
        script += "".join(rule + "\n" for rules in stale.values() for rule in rules)
        done = _run(["iptables-restore", "-w", "--noflush"], script + "COMMIT\n")
        if done.returncode != 0:
            raise HookError(f"iptables-restore: {done.stderr.strip()}")
        changes += [f"iptables: {c} now has {len(stamped[c])} rule(s)" for c in stale]
    for parent, chain in jumps:
        if _run(["iptables", "-w", "-t", table, "-C", parent, "-j", chain]).returncode != 0:
            done = _run(["iptables", "-w", "-t", table, "-I", parent, "1", "-j", chain])
            if done.returncode != 0:
                raise HookError(f"iptables -I {parent} -j {chain}: {done.stderr.strip()}")
            changes.append(f"iptables: {parent} jumps to {chain}")
    return changes


def ensure(hooks: Iterable[NhrpHooks], tunnels: Iterable[GreTunnel] = ()) -> list[str]:
    """Bring the chains and their jumps to what ``hooks`` and ``tunnels`` need (nhrpd's
    NFLOG hooks in ``filter``, the MSS clamp in ``mangle``); returns what changed."""
    changes = _sync("filter", chain_rules(hooks), (("OUTPUT", OUT_CHAIN), ("FORWARD", FWD_CHAIN)))
    changes += _sync("mangle", {MSS_CHAIN: mss_rules(tunnels)}, (("FORWARD", MSS_CHAIN),))
    return changes
