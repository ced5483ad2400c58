"""Every algorithm frrdmvpn's configuration maps (``frrdmvpn.config.swan``) is one the
release's charon offers with only what the package depends on installed (issue 16).

Plugins moved between Debian's strongSwan packages: on Debian 12 openssl (AES-GCM, the ECP
groups, Curve25519) is in libstrongswan-standard-plugins, which libstrongswan only
recommends; Debian 13 moved openssl into libstrongswan and aes, sha1, sha2, md5, gmp, hmac
into libstrongswan-extra-plugins (suggested only). This starts each release's charon-systemd
(Debian 12: this machine's; Debian 13: the lab's root, in a chroot) in its own network and
mount namespaces, loading exactly the plugins of the packages in the dependency closure of
the built package's Depends (no Recommends), and asks it over VICI:
``get-algorithms`` must list every IKE algorithm (IKE runs in charon itself), and
``load-conn`` must accept every IKE and ESP proposal string frrdmvpn renders (ESP runs in the
kernel; charon only has to know the names).
"""

from __future__ import annotations

import re
import shlex
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import vici

from frrdmvpn.config import swan
from frrdmvpn.config.model import Ikev2Proposal, TransformSet
from lab.release import RELEASES
from tests.package.roots import release_root

pytestmark = [pytest.mark.package, pytest.mark.timeout(120)]

PLUGINS = "/usr/lib/ipsec/plugins"
#: The plugins that provide algorithms (strongSwan's crypto plugins): of these, charon loads
#: the closure's that Debian's configuration loads. Plus what the test itself needs.
CRYPTO = frozenset(
    [
        "aes",
        "aesni",
        "af-alg",
        "ccm",
        "chapoly",
        "cmac",
        "ctr",
        "curve25519",
        "des",
        "drbg",
        "gcm",
        "gcrypt",
        "gmp",
        "hmac",
        "kdf",
        "md5",
        "mgf1",
        "openssl",
        "sha1",
        "sha2",
        "sha3",
        "xcbc",
    ]
)
NEEDED = ("random", "nonce", "kernel-netlink", "socket-default", "vici")
#: charon's names (get-algorithms) of the IKE keywords frrdmvpn renders: (section, name).
IKE_NAMES = {
    "aes128": ("encryption", "AES_CBC"),
    "aes192": ("encryption", "AES_CBC"),
    "aes256": ("encryption", "AES_CBC"),
    "aes128gcm16": ("aead", "AES_GCM_16"),
    "aes256gcm16": ("aead", "AES_GCM_16"),
    "md5": ("integrity", "HMAC_MD5_96"),
    "sha1": ("integrity", "HMAC_SHA1_96"),
    "sha256": ("integrity", "HMAC_SHA2_256_128"),
    "sha384": ("integrity", "HMAC_SHA2_384_192"),
    "sha512": ("integrity", "HMAC_SHA2_512_256"),
    "prfmd5": ("prf", "PRF_HMAC_MD5"),
    "prfsha1": ("prf", "PRF_HMAC_SHA1"),
    "prfsha256": ("prf", "PRF_HMAC_SHA2_256"),
    "prfsha384": ("prf", "PRF_HMAC_SHA2_384"),
    "prfsha512": ("prf", "PRF_HMAC_SHA2_512"),
    "modp768": ("ke", "MODP_768"),
    "modp1024": ("ke", "MODP_1024"),
    "modp1536": ("ke", "MODP_1536"),
    "modp2048": ("ke", "MODP_2048"),
    "modp3072": ("ke", "MODP_3072"),
    "modp4096": ("ke", "MODP_4096"),
    "ecp256": ("ke", "ECP_256"),
    "ecp384": ("ke", "ECP_384"),
    "ecp521": ("ke", "ECP_521"),
    "modp2048s256": ("ke", "MODP_2048_256"),
    "x25519": ("ke", "CURVE_25519"),
}


def _run_in(root: Path, argv: list[str]) -> str:
    cmd = argv if root == Path("/") else ["chroot", str(root), *argv]
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


def _names(field: str) -> set[str]:
    """Package names in a Depends field (every alternative; versions and arches dropped)."""
    return set(re.findall(r"(?:^|[,|]\s*)([a-z0-9][a-z0-9+.-]+)", field))


def _closure(root: Path, deb: Path) -> set[str]:
    """The packages installed in ``root`` that ``deb``'s Depends pull in (Depends and
    Pre-Depends, transitively)."""
    out = _run_in(root, ["dpkg-query", "-W", "-f=${Package}\t${Pre-Depends}, ${Depends}\n"])
    depends = {}
    for line in out.splitlines():
        name, _, rest = line.partition("\t")
        depends[name] = _names(rest)
    ours = subprocess.run(
        ["dpkg-deb", "-f", str(deb), "Depends"], capture_output=True, text=True, check=True
    ).stdout
    found: set[str] = set()
    todo = [p for p in _names(ours) if p in depends]
    while todo:
        package = todo.pop()
        if package not in found:
            found.add(package)
            todo += [d for d in depends.get(package, ()) if d in depends]
    return found


def _loaded_by_debian(root: Path, plugin: str) -> bool:
    conf = root / "etc/strongswan.d/charon" / f"{plugin}.conf"
    return conf.exists() and re.search(r"^\s*load\s*=\s*yes", conf.read_text(), re.M) is not None


def _plugins(root: Path, deb: Path) -> list[str]:
    """The crypto plugins (charon's names) shipped by packages of the dependency closure and
    loaded by Debian's configuration, and what the test needs."""
    wanted = _closure(root, deb)
    names = [p.name for p in (root / PLUGINS.lstrip("/")).glob("libstrongswan-*.so")]
    owners = _run_in(root, ["dpkg-query", "-S", *(f"{PLUGINS}/{n}" for n in names)])
    plugins = set(NEEDED)
    for line in owners.splitlines():
        package, _, path = line.partition(": ")
        plugin = Path(path).name.removeprefix("libstrongswan-").removesuffix(".so")
        if package in wanted and plugin in CRYPTO and _loaded_by_debian(root, plugin):
            plugins.add(plugin)
    return sorted(plugins)


@pytest.fixture(params=RELEASES)
def charon(request: pytest.FixtureRequest, tmp_path: Path, deb: Path) -> Iterator[tuple[str, Path]]:
    """(release, VICI socket) of the release's charon-systemd with only the closure's plugins."""
    release: str = request.param
    root = release_root(release, "usr/sbin/charon-systemd")
    inside = tmp_path if root == Path("/") else Path("/mnt")
    conf = f"""charon-systemd {{
  load = {" ".join(_plugins(root, deb))}
  plugins {{
    vici {{
      socket = unix://{inside}/charon.vici
    }}
  }}
}}
"""
    (tmp_path / "strongswan.conf").write_text(conf)
    charon_argv = ["env", f"STRONGSWAN_CONF={inside}/strongswan.conf", "/usr/sbin/charon-systemd"]
    if root == Path("/"):
        script = f"mount -t tmpfs tmpfs /run && exec {shlex.join(charon_argv)}"
    else:
        r = shlex.quote(str(root))
        script = (
            f"mount --bind {shlex.quote(str(tmp_path))} {r}/mnt && mount -t tmpfs tmpfs {r}/run && "
            f"mount -t proc proc {r}/proc && exec chroot {r} {shlex.join(charon_argv)}"
        )
    proc = subprocess.Popen(
        ["unshare", "--mount", "--net", "--propagation", "private", "sh", "-c", script],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    sock = tmp_path / "charon.vici"
    try:
        for _ in range(400):  # until charon listens (a wait, not a timed assertion)
            if _listening(sock) or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert _listening(sock), f"{release}'s charon-systemd did not start"
        yield release, sock
    finally:
        proc.terminate()
        proc.wait(10)


def _listening(sock: Path) -> bool:
    """charon accepts on ``sock`` (it exists from bind() on, before listen())."""
    with socket.socket(socket.AF_UNIX) as s:
        try:
            s.connect(str(sock))
        except OSError:
            return False
    return True


def _session(sock: Path) -> vici.Session:
    s = socket.socket(socket.AF_UNIX)
    s.connect(str(sock))
    return vici.Session(s)


def test_every_ike_algorithm_frrdmvpn_maps_is_offered(charon: tuple[str, Path]) -> None:
    release, sock = charon
    offered = {
        ("ke" if k == "dh" else k): {n.decode() if isinstance(n, bytes) else n for n in v}
        for k, v in _session(sock).get_algorithms().items()
    }
    keywords = {
        *swan.IKE_ENCRYPTION.values(),
        *swan.INTEGRITY.values(),
        *(f"prf{p}" for p in swan.INTEGRITY.values()),
        *swan.DH_GROUPS.values(),
    }
    assert keywords <= set(IKE_NAMES)  # the table above knows every keyword
    missing = sorted(
        k for k in keywords if IKE_NAMES[k][1] not in offered.get(IKE_NAMES[k][0], set())
    )
    assert missing == [], f"{release}: charon offers none of {missing}"


def test_every_proposal_frrdmvpn_renders_is_accepted(charon: tuple[str, Path]) -> None:
    release, sock = charon
    session = _session(sock)
    ike = [
        p
        for enc in swan.IKE_ENCRYPTION
        for p in swan.ike_proposals(
            Ikev2Proposal(
                name="p",
                encryption=(enc,),
                integrity=() if enc in swan.AEAD else tuple(swan.INTEGRITY),
                prf=tuple(swan.INTEGRITY),
                groups=tuple(swan.DH_GROUPS),
            )
        )
    ]
    esp = [
        swan.esp_proposal(TransformSet("t", enc, bits, integrity), group)
        for (enc, bits) in swan.ESP_ENCRYPTION
        for integrity in (None, *swan.ESP_INTEGRITY)
        if not (enc == "esp-gcm" and integrity)
        for group in (None, *swan.DH_GROUPS)
    ]
    for i, proposal in enumerate(ike):
        children = {"c": {"esp_proposals": [esp[i % len(esp)]]}}
        session.load_conn({f"ike{i}": {"proposals": [proposal], "children": children}})
    for i, proposal in enumerate(esp):
        children = {"c": {"esp_proposals": [proposal]}}
        session.load_conn({f"esp{i}": {"proposals": [ike[0]], "children": children}})
    loaded = {k for conn in session.list_conns() for k in conn}
    assert len(loaded) == len(ike) + len(esp), release
