"""The real charon takes a trustpoint's certificates as data (issue 14, hole 5).

frrdmvpn reads the certificate, key and CA files itself (frrdmvpn.adapters.trusted_files) and
sends their contents in ``load-conn`` (``certs``/``cacerts``) and ``load-key``: charon opens
no configured path. This runs charon 5.9.8 from the host in its own mount and network
namespaces (a private /run), its VICI socket in tmp_path.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from ipaddress import IPv4Address
from pathlib import Path

import pytest
import vici

from frrdmvpn.adapters import trusted_files
from frrdmvpn.adapters.vici_config import CharonConfig, ViciConfigError
from frrdmvpn.config.parse import parse_strict
from frrdmvpn.config.swan import desired_swan, trustpoint_files
from lab import pki

CHARON = Path("/usr/lib/ipsec/charon")
pytestmark = [
    pytest.mark.unit,
    pytest.mark.timeout(60),
    pytest.mark.skipif(
        os.geteuid() != 0 or not CHARON.exists() or shutil.which("unshare") is None,
        reason="needs root, charon and unshare",
    ),
]
EXAMPLES = Path(__file__).resolve().parents[3] / "docs" / "examples"
CONF = """charon {{
  load = random nonce openssl x509 pem pkcs1 pkcs8 pubkey revocation constraints kernel-netlink socket-default vici
  plugins {{
    vici {{
      socket = unix://{socket}
    }}
  }}
}}
"""  # noqa: E501 - strongswan.conf wants the plugin list on one line


@pytest.fixture
def charon(tmp_path: Path) -> Iterator[Path]:
    """charon's VICI socket."""
    sock = tmp_path / "charon.vici"
    conf = tmp_path / "strongswan.conf"
    conf.write_text(CONF.format(socket=sock))
    env = dict(os.environ, STRONGSWAN_CONF=str(conf))
    script = f"mount -t tmpfs tmpfs /run && exec {CHARON}"
    proc = subprocess.Popen(
        ["unshare", "--mount", "--net", "--propagation", "private", "sh", "-c", script],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):  # until charon listens (not a timed assertion: a wait)
            if sock.exists() or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert sock.exists(), "charon did not start"
        yield sock
    finally:
        proc.terminate()
        proc.wait(10)


def test_charon_loads_the_certificates_and_key_frrdmvpn_read(tmp_path: Path, charon: Path) -> None:
    ca_dir = tmp_path / "pki"
    cert, key = pki.issue(ca_dir, pki.Identity("hub", (IPv4Address("198.51.100.1"),)), 1)
    ca = pki.make_ca(ca_dir)
    text = (EXAMPLES / "lab-hub.conf").read_text()
    text = text[: text.index("frrdmvpn authorization")]
    trustpoint = (
        f"crypto pki trustpoint tp\n certificate {cert}\n private-key {key}\n"
        f" ca-certificate {ca}\n!\n"
    )
    config = parse_strict(
        text.replace("crypto ikev2 proposal", trustpoint + "crypto ikev2 proposal", 1)
        .replace(" authentication local pre-share", " authentication local rsa-sig")
        .replace(" authentication remote pre-share", " authentication remote rsa-sig")
        .replace(" keyring local lab\n", " pki trustpoint tp\n")
    )
    files = {
        f.path: trusted_files.read(f.path, f.keyword, secret=f.secret)
        for f in trustpoint_files(config)
    }
    swan = desired_swan(config, {"eth0": IPv4Address("198.51.100.1")}, files)
    assert str(tmp_path) not in repr(swan.conns)  # no path goes to charon
    charon_config = CharonConfig(charon)
    assert charon_config.load_key(str(key), files[str(key)])
    for message in swan.conns.values():
        charon_config.load_conn(message)
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(charon))
        session = vici.Session(sock)
        (conn,) = list(session.list_conns())
        dmvpn = conn["dmvpn"]
        assert dmvpn["local-1"]["certs"] == [b"O=frrdmvpn lab, CN=hub"]
        assert dmvpn["remote-1"]["cacerts"] == [b"O=frrdmvpn lab, CN=frrdmvpn lab CA"]
        certs = {(c["flag"], c.get("has_privkey")) for c in session.list_certs()}
    assert certs == {(b"NONE", b"yes"), (b"CA", None)}  # ours with its key, and the CA


def test_a_key_charon_cannot_parse_is_refused_with_its_path(charon: Path) -> None:
    with pytest.raises(ViciConfigError) as info:
        CharonConfig(charon).load_key("/etc/frrdmvpn/hub.key", b"not a private key\n")
    assert str(info.value).startswith(
        "private-key /etc/frrdmvpn/hub.key: charon refused load-key: "
    )
