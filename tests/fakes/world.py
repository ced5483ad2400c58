"""The fake world apply runs against (frrdmvpn/apply.py's ports) and docs/examples."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from frrdmvpn.apply import Ports
from frrdmvpn.config import frrdiff
from frrdmvpn.config.frr import FRR_8_4, render_frr
from frrdmvpn.config.kernel import GreTunnel, NhrpHooks, guard_nbma
from frrdmvpn.config.model import Config
from frrdmvpn.config.parse import parse_strict
from frrdmvpn.config.swan import LocalEnd, TrustpointFile

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


class World:
    """A node's kernel, charon, FRR and guards as the fakes see them; ``log`` is every call.
    ``leaks`` is every moment a GRE link's address was not guarded."""

    def __init__(self) -> None:
        self.interfaces: dict[str, tuple[IPv4Address, ...]] = {
            "eth0": (IPv4Address("198.51.100.11"),)
        }
        self.guarded: set[IPv4Address] = set()
        self.leaks: list[str] = []
        self.tunnels: dict[str, GreTunnel] = {}
        self.conns: dict[str, Mapping[str, Any]] = {}
        self.shared: dict[str, Mapping[str, Any]] = {}
        self.frr: dict[str, str] = {"nhrpd": "", "ospfd": ""}
        self.asked: str | None = None
        self.known: list[Config] = [Config()]
        self.log: list[str] = []
        self.fail_on: str | None = None
        self.files: dict[str, bytes | Exception] = {}  # what read_file finds at each path
        self.sas: list[LocalEnd] = []  # charon's IKE_SAs
        self.version = FRR_8_4  # the node's FRR release

    def _maybe_fail(self, what: str) -> None:
        self.log.append(what)
        if self.fail_on and what.startswith(self.fail_on):
            raise RuntimeError(f"injected failure at {what}")

    # links
    def addresses(self) -> dict[str, tuple[IPv4Address, ...]]:
        return dict(self.interfaces)

    def tunnel(self, name: str) -> GreTunnel | None:
        return self.tunnels.get(name)

    def ensure(self, want: GreTunnel) -> list[str]:
        seen = dataclasses.replace(want, tcp_mss=0)
        if self.tunnels.get(want.name) == seen:
            return []
        self._maybe_fail(f"ensure {want.name}")
        if want.local is not None and want.local not in self.guarded:
            self.leaks.append(f"{want.name} made with local {want.local}, guards {self.guarded}")
        self.tunnels[want.name] = seen
        return [f"ensured {want.name}"]

    def delete(self, name: str) -> bool:
        self._maybe_fail(f"delete {name}")
        return self.tunnels.pop(name, None) is not None

    # charon
    def loaded_conns(self) -> set[str]:
        return set(self.conns)

    def loaded_shared(self) -> set[str]:
        return set(self.shared)

    def load_conn(self, message: Mapping[str, Any]) -> None:
        self._maybe_fail(f"load-conn {','.join(message)}")
        self.conns.update(message)

    def ike_sas(self) -> list[LocalEnd]:
        self._maybe_fail("list-sas")
        return list(self.sas)

    def terminate_ike(self, uniqueid: int) -> None:
        self._maybe_fail(f"terminate {uniqueid}")
        self.sas = [sa for sa in self.sas if sa.uniqueid != uniqueid]

    def unload_conn(self, name: str) -> None:
        self._maybe_fail(f"unload-conn {name}")
        del self.conns[name]

    def load_shared(self, message: Mapping[str, Any]) -> None:
        self._maybe_fail(f"load-shared {message['id']}")
        self.shared[str(message["id"])] = message

    def unload_shared(self, ident: str) -> None:
        self._maybe_fail(f"unload-shared {ident}")
        del self.shared[ident]

    def load_key(self, path: str, data: bytes) -> str:
        self._maybe_fail(f"load-key {path} {len(data)} bytes")
        return "keyid"

    def read_file(self, f: TrustpointFile) -> bytes:
        self.log.append(f"read {f.keyword} {f.path}")
        found = self.files.get(f.path, FileNotFoundError(f.path))
        if isinstance(found, Exception):
            raise found
        return found

    # FRR: configuring makes the daemon run what the target configuration renders
    def frr_running(self, daemon: str) -> str:
        self.asked = daemon
        return self.frr[daemon]

    def frr_configure(self, daemon: str, lines: list[str]) -> None:
        """The daemon ends up running whichever known configuration these lines lead to."""
        assert daemon == self.asked  # apply read its running configuration first
        self._maybe_fail(f"vtysh {daemon}")
        texts = [render_frr(c, self.version).daemons()[daemon] for c in self.known]
        reached = [t for t in texts if frrdiff.diff(self.frr[daemon], t) == lines]
        assert reached, f"lines that lead to no known configuration: {lines}"
        self.frr[daemon] = reached[0]

    # guards: exactly what they are told, each change logged
    def widen(
        self, configs: Sequence[Config], addresses: Mapping[str, Sequence[IPv4Address]]
    ) -> list[str]:
        added = sorted(set().union(*(guard_nbma(c, addresses) for c in configs)) - self.guarded)
        if not added:
            return []
        self._maybe_fail(f"guard widen {' '.join(map(str, added))}")
        self.guarded |= set(added)
        return [f"guard: protect {a}" for a in added]

    def narrow(self, config: Config, addresses: Mapping[str, Sequence[IPv4Address]]) -> list[str]:
        gone = sorted(self.guarded - guard_nbma(config, addresses))
        if not gone:
            return []
        self._maybe_fail(f"guard narrow {' '.join(map(str, gone))}")
        self.guarded -= set(gone)
        for t in self.tunnels.values():
            if t.local is not None and t.local not in self.guarded:
                self.leaks.append(f"{t.name} (local {t.local}) left unguarded")
        return [f"guard: release {a}" for a in gone]

    def ports(self, target: Config) -> Ports:
        self.known.append(target)
        return Ports(
            self,
            self,
            self.frr_running,
            self.frr_configure,
            self.sysctls,
            self.hooks,
            self.read_file,
            self,
            lambda: self.version,
        )

    def sysctls(self, pairs: Iterable[tuple[str, str]]) -> list[str]:
        return []

    def hooks(self, hooks: Iterable[NhrpHooks], tunnels: Iterable[GreTunnel]) -> list[str]:
        return []


def example(name: str) -> Config:
    return parse_strict((EXAMPLES / name).read_text())


SPOKE = example("lab-spoke1.conf")


def certificate_mode(text: str, *, certificate: str, private_key: str, ca_certificate: str) -> str:
    """``text``, a lab example with pre-shared keys, in authorization mode certificate: both
    ends sign with trustpoint tp (these three files), any FQDN under corp.example is admitted."""
    text = text[: text.index("frrdmvpn authorization")] + "frrdmvpn authorization certificate\n"
    trustpoint = (
        f"crypto pki trustpoint tp\n certificate {certificate}\n"
        f" private-key {private_key}\n ca-certificate {ca_certificate}\n!\n"
    )
    return (
        text.replace("crypto ikev2 proposal", trustpoint + "crypto ikev2 proposal", 1)
        .replace(" authentication local pre-share", " authentication local rsa-sig")
        .replace(" authentication remote pre-share", " authentication remote rsa-sig")
        .replace(" keyring local lab\n", " pki trustpoint tp\n")
        .replace(
            " match identity remote address 0.0.0.0\n",
            " match identity remote fqdn domain corp.example\n",
        )
    )


def spoke_sourced_by_address(directory: Path) -> Path:
    """lab-spoke1.conf written as ``directory``/frrdmvpn.conf with tunnel source 198.51.100.11
    instead of eth0 (no interface lookup needed)."""
    path = directory / "frrdmvpn.conf"
    text = (EXAMPLES / "lab-spoke1.conf").read_text()
    assert " tunnel source eth0\n" in text
    path.write_text(text.replace(" tunnel source eth0\n", " tunnel source 198.51.100.11\n"))
    return path
