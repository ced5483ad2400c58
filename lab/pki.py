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


_NEW_KEY = ["-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
"""openssl req's words for a new ECDSA P-256 key, unencrypted."""


def make_ca(directory: Path) -> Path:
    """Create ``ca.pem``/``ca.key`` in ``directory`` (once); returns the CA certificate."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = directory / "ca.pem"
    if not ca.exists():
        _openssl(
            [
                "req",
                "-x509",
                *_NEW_KEY,
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
    sans = [f"IP:{a}" for a in ident.addresses] + [f"DNS:{d}" for d in ident.dns_names]
    lines = ["subjectAltName=" + ",".join(sans)]
    if ident.blocks:
        lines.append("sbgp-ipAddrBlock=" + ",".join(f"IPv4:{b}" for b in ident.blocks))
    subject = f"/O={SUBJECT_O}/CN={ident.name}"
    return sign(directory, ident.name, subject, lines, serial=serial, days=3650)


def sign(
    directory: Path, name: str, subject: str, extensions: list[str], *, serial: int, days: int
) -> tuple[Path, Path]:
    """A new key ``NAME.key`` and its certificate ``NAME.pem``, signed by the CA in
    ``directory`` (:func:`make_ca`), with ``subject`` (``/K=V/...``) and the extension
    lines ``extensions`` (``subjectAltName=...``); returns (cert, key)."""
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    ext = directory / f"{name}.ext"
    ext.write_text("\n".join(extensions) + "\n")
    _openssl(
        ["req", *_NEW_KEY, "-keyout", key.name, "-out", f"{name}.csr", "-subj", subject],
        directory,
    )
    _openssl(
        [
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-set_serial",
            str(serial),
            "-days",
            str(days),
            "-out",
            cert.name,
            "-extfile",
            ext.name,
        ],
        directory,
    )
    return cert, key
