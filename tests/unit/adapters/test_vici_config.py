"""charon's configuration over frrdmvpn's own VICI client, against the real charon: what the
apply step renders for the shipped examples is accepted, listed and unloaded again; a
refusal and an unreachable charon are clear errors. charon-systemd runs in a network
namespace of its own (``unshare -rn``), its socket in the test's directory."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from frrdmvpn.adapters.vici_client import ViciError, command
from frrdmvpn.adapters.vici_config import CharonConfig, ViciConfigError, local_end
from frrdmvpn.codec.vici import Message, ViciWireError
from frrdmvpn.config.swan import LocalEnd, desired_swan
from frrdmvpn.config.validate import check

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
CHARON = "/usr/sbin/charon-systemd"
PLUGINS = "random nonce openssl pem pkcs1 pkcs8 x509 pubkey vici socket-default kernel-netlink"


@pytest.fixture
def charon(tmp_path: Path) -> Iterator[CharonConfig]:
    """A real charon listening on ``tmp_path/charon.vici``."""
    if not Path(CHARON).exists() or shutil.which("unshare") is None:
        pytest.fail("needs charon-systemd and unshare (scripts/install-deps installs them)")
    socket = tmp_path / "charon.vici"
    conf = tmp_path / "strongswan.conf"
    conf.write_text(
        f"charon-systemd {{\n load = {PLUGINS}\n"
        f" plugins {{ vici {{ socket = unix://{socket} }} }}\n"
        " journal { default = -1 }\n}\n"
    )
    log = (tmp_path / "charon.log").open("wb")
    proc = subprocess.Popen(
        ["unshare", "-rn", CHARON],
        env={"STRONGSWAN_CONF": str(conf)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while not socket.exists():
            assert proc.poll() is None, (tmp_path / "charon.log").read_text()
            assert time.monotonic() < deadline, "charon made no VICI socket"
            time.sleep(0.05)
        yield CharonConfig(socket)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def _swan(example: str) -> tuple[dict[str, object], dict[str, object]]:
    text = (ROOT / "docs/examples" / example).read_text()
    text = text.replace(" tunnel source eth0\n", " tunnel source 198.51.100.11\n")
    config, _ = check(text)
    state = desired_swan(config, {"eth0": IPv4Address("198.51.100.11")})
    return dict(state.conns), dict(state.shared)


def test_what_apply_renders_is_loaded_listed_and_unloaded(charon: CharonConfig) -> None:
    conns, shared = _swan("lab-spoke1.conf")
    assert conns
    assert shared
    assert charon.loaded_conns() == set()
    for conn in conns.values():  # each is {NAME: {...}}, as apply sends it
        assert isinstance(conn, dict)
        charon.load_conn(conn)
    for message in shared.values():
        assert isinstance(message, dict)
        charon.load_shared(message)
    assert charon.loaded_conns() == set(conns)
    assert charon.loaded_shared() == set(shared)
    for name in conns:
        charon.unload_conn(name)
    for ident in shared:
        charon.unload_shared(ident)
    assert charon.loaded_conns() == set()
    assert charon.loaded_shared() == set()


def test_a_private_key_is_loaded_and_its_id_returned(charon: CharonConfig, tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            str(key),
        ],
        check=True,
    )
    ident = charon.load_key(str(key), key.read_bytes())  # read by trusted_files in apply
    assert len(ident) == 40  # the key's SHA-1 identifier, in hex
    int(ident, 16)


def test_a_refusal_carries_charons_reason(charon: CharonConfig) -> None:
    with pytest.raises(ViciConfigError) as refused:
        charon.load_conn({"dmvpn": {"version": "2", "proposals": ["no-such-algorithm"]}})
    assert str(refused.value) == (
        "charon refused load-conn: invalid value for: proposals, config discarded"
    )
    with pytest.raises(ViciConfigError) as refused:
        charon.unload_conn("never-loaded")
    assert (
        str(refused.value)
        == "charon refused unload-conn: unload: connection 'never-loaded' not found"
    )
    # the connection is still usable afterwards
    assert charon.loaded_conns() == set()


def test_an_unknown_command_and_an_absent_charon_are_errors(
    charon: CharonConfig, tmp_path: Path
) -> None:
    with pytest.raises(ViciError) as unknown:
        command(charon.path, "no-such-command", {})
    assert str(unknown.value) == "charon does not know 'no-such-command'"
    missing = CharonConfig(tmp_path / "missing.vici")
    with pytest.raises(ViciConfigError) as absent:
        missing.loaded_conns()
    assert str(absent.value) == (
        f"charon at {missing.path}: get-conns via {missing.path}: "
        "[Errno 2] No such file or directory"
    )


def test_no_ike_sa_is_listed_and_closing_an_unknown_one_is_a_clear_error(
    charon: CharonConfig,
) -> None:
    assert charon.ike_sas() == []
    with pytest.raises(ViciConfigError, match="IKE_SA #42"):
        charon.terminate_ike(42)


def test_an_ike_sa_of_list_sa_gives_its_local_end() -> None:
    ike: Message = {
        "uniqueid": b"5",
        "local-host": b"198.51.100.11",
        "local-id": b"198.51.100.111",
        "remote-host": b"198.51.100.1",
        "state": b"ESTABLISHED",
    }
    assert local_end("dmvpn", ike) == LocalEnd(5, "dmvpn", "198.51.100.11", "198.51.100.111")
    with pytest.raises(ViciWireError, match="missing"):
        local_end("dmvpn", {"local-host": b"198.51.100.11"})  # no uniqueid
