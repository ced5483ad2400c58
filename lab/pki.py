"""The lab's certificate authority: a CA and one certificate per node, made with openssl.

Each node certificate binds what the node may claim in certificate mode: its tunnel address
as an iPAddress subjectAltName (with its NBMA address), and its LAN as an RFC 3779 address
block (``sbgp-ipAddrBlock``), the prefixes a shortcut resolution may bind to it. Its
dNSNames are its IKE identity (``NAME.lab.example``) and, for spokes, a name they all share
(see :data:`lab.topology.SPOKES_DNS`). Keys are ECDSA P-256: cheap to make and to
verify under emulation.
"""

from __future__ import annotations

import ipaddress
import subprocess
from dataclasses import dataclass
from pathlib import Path

SUBJECT_O = "frrdmvpn lab"
CA_CN = "frrdmvpn lab CA"


@dataclass(frozen=True)
class Identity:
    """What one node's certificate says: its CN, IP and DNS subjectAltNames and address
    blocks."""

    name: str
    addresses: tuple[ipaddress.IPv4Address, ...]
    blocks: tuple[ipaddress.IPv4Network, ...] = ()
    dns_names: tuple[str, ...] = ()

    @property
    def subject(self) -> str:
        """The subject DN as charon prints it (and as the node's IKE identity)."""
        return f"O={SUBJECT_O}, CN={self.name}"


def _openssl(args: list[str], cwd: Path) -> None:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args[:2])}: {done.stderr.strip()}")


def make_ca(directory: Path) -> Path:
    """Create ``ca.pem``/``ca.key`` in ``directory`` (once); returns the CA certificate."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = directory / "ca.pem"
    if not ca.exists():
        _openssl(
            [
                "req",
                "-x509",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "3650",
                "-subj",
                f"/O={SUBJECT_O}/CN={CA_CN}",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
            directory,
        )
    return ca


def issue(directory: Path, ident: Identity, serial: int) -> tuple[Path, Path]:
    """Issue ``ident``'s certificate from the CA in ``directory``; returns (cert, key)."""
    make_ca(directory)
    cert, key = directory / f"{ident.name}.pem", directory / f"{ident.name}.key"
    ext = directory / f"{ident.name}.ext"
    sans = [f"IP:{a}" for a in ident.addresses] + [f"DNS:{d}" for d in ident.dns_names]
    lines = ["subjectAltName=" + ",".join(sans)]
    if ident.blocks:
        lines.append("sbgp-ipAddrBlock=" + ",".join(f"IPv4:{b}" for b in ident.blocks))
    ext.write_text("\n".join(lines) + "\n")
    _openssl(
        [
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            key.name,
            "-out",
            f"{ident.name}.csr",
            "-subj",
            f"/O={SUBJECT_O}/CN={ident.name}",
        ],
        directory,
    )
    _openssl(
        [
            "x509",
            "-req",
            "-in",
            f"{ident.name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-set_serial",
            str(serial),
            "-days",
            "3650",
            "-out",
            cert.name,
            "-extfile",
            ext.name,
        ],
        directory,
    )
    return cert, key
