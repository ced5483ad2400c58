"""Files the configuration names, read by root only if nobody but root could have written them
(issue 14, hole 5): real files, directories, links, FIFOs and devices in tmp_path."""

from __future__ import annotations

import dataclasses
import os
import socket
from pathlib import Path

import pytest

from frrdmvpn import node_ports
from frrdmvpn.adapters.trusted_files import MAX_BYTES, UntrustedFileError, check, read
from frrdmvpn.config.model import Config
from frrdmvpn.config.parse import parse
from frrdmvpn.datastores import ApplyOutcome, Datastores
from tests.fakes.world import EXAMPLES, World, certificate_mode

pytestmark = [
    pytest.mark.unit,
    pytest.mark.timeout(30),  # a FIFO opened without O_NONBLOCK would hang here
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give files to another user"),
]

NOBODY = 65534
PEM = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def refusal(path: Path | str, what: str = "certificate", *, secret: bool = False) -> str:
    with pytest.raises(UntrustedFileError) as info:
        read(path, what, secret=secret)
    with pytest.raises(UntrustedFileError) as checked:
        check(path, what, secret=secret)
    assert str(checked.value) == str(info.value)  # validation says what the apply would
    return str(info.value)


def a_file(directory: Path, name: str = "hub.pem", data: bytes = PEM, mode: int = 0o644) -> Path:
    path = directory / name
    path.write_bytes(data)
    path.chmod(mode)
    return path


@pytest.fixture
def etc(tmp_path: Path) -> Path:
    """A directory like /etc/frrdmvpn: root's, 0755."""
    directory = tmp_path / "etc"
    directory.mkdir(mode=0o755)
    return directory


def test_a_root_file_is_read_and_a_private_key_may_be_0600_or_0640(etc: Path) -> None:
    assert read(a_file(etc), "certificate") == PEM
    for mode in (0o600, 0o640):
        key = a_file(etc, "hub.key", b"KEY", mode)
        assert read(key, "private-key", secret=True) == b"KEY"
    assert read(a_file(etc, "max.pem", b"x" * MAX_BYTES), "certificate") == b"x" * MAX_BYTES


def test_devices_fifos_sockets_and_directories_are_never_opened(etc: Path) -> None:
    assert refusal("/dev/zero", "private-key", secret=True) == (
        "private-key /dev/zero is not a regular file: it is a character device"
    )
    fifo = etc / "key.fifo"
    os.mkfifo(fifo, 0o600)
    assert refusal(fifo, "private-key", secret=True) == (
        f"private-key {fifo} is not a regular file: it is a FIFO"
    )
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(etc / "s"))
        assert refusal(etc / "s") == f"certificate {etc}/s is not a regular file: it is a socket"
    assert refusal(etc) == f"certificate {etc} is not a regular file: it is a directory"


def test_size_empty_missing_and_relative(etc: Path) -> None:
    big = a_file(etc, "big.pem", b"x" * (MAX_BYTES + 1))
    assert refusal(big) == f"certificate {big} has 65536 bytes: at most 65535"
    empty = a_file(etc, "empty.pem", b"")
    assert refusal(empty) == f"certificate {empty} is empty"
    assert refusal(etc / "gone.pem") == f"certificate {etc}/gone.pem does not exist"
    assert refusal("hub.pem") == "certificate hub.pem is not an absolute path"
    assert (
        refusal(f"{big}/x") == f"certificate {big}/x goes through {big}, which is not a directory"
    )


def test_owner_and_mode_of_the_file(etc: Path) -> None:
    theirs = a_file(etc, "theirs.pem")
    os.chown(theirs, NOBODY, NOBODY)
    assert refusal(theirs) == f"certificate {theirs} is owned by uid 65534 (nobody), not root"
    writable = a_file(etc, "w.pem", mode=0o664)
    assert refusal(writable) == (
        f"certificate {writable} is writable by group or others (mode 0664): only root may write it"
    )
    key = a_file(etc, "hub.key", b"KEY", 0o644)
    assert refusal(key, "private-key", secret=True) == (
        f"private-key {key} is readable by others (mode 0644): a private key is 0600 or 0640"
    )


def test_directories_on_the_way(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    os.chown(home, NOBODY, NOBODY)
    inside = a_file(home)
    assert refusal(inside) == (
        f"certificate {inside} lies in {home}, which is owned by uid 65534 (nobody), not root"
    )
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    assert refusal(a_file(shared)) == (
        f"certificate {shared}/hub.pem lies in {shared}, which is writable by group or others "
        "(mode 0777): only root may write there"
    )
    sticky = tmp_path / "sticky"
    sticky.mkdir()
    sticky.chmod(0o1777)
    assert read(a_file(sticky), "certificate") == PEM  # root's entry in a sticky directory
    planted = a_file(sticky, "planted.pem")
    os.chown(planted, NOBODY, NOBODY)
    assert refusal(planted) == (
        f"certificate {planted} lies in {sticky}, which others may write, and {planted} is "
        "owned by uid 65534 (nobody), not root"
    )


def test_symbolic_links_root_made_are_followed_others_are_refused(
    tmp_path: Path, etc: Path
) -> None:
    real = a_file(etc)
    (etc / "link.pem").symlink_to("hub.pem")
    (tmp_path / "etc-link").symlink_to(etc)
    assert read(etc / "link.pem", "certificate") == PEM
    assert read(tmp_path / "etc-link" / "link.pem", "certificate") == PEM
    # a link root made, pointing where others write
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    os.chown(home, NOBODY, NOBODY)
    a_file(home, "evil.pem")
    (etc / "to-home.pem").symlink_to(home / "evil.pem")
    assert refusal(etc / "to-home.pem") == (
        f"certificate {etc}/to-home.pem lies in {home}, which is owned by uid 65534 (nobody), "
        "not root"
    )
    # a link another user owns (only root could have given it to them here)
    os.symlink(real, etc / "theirs.pem")
    os.lchown(etc / "theirs.pem", NOBODY, NOBODY)
    assert refusal(etc / "theirs.pem") == (
        f"certificate {etc}/theirs.pem goes through the symbolic link {etc}/theirs.pem, owned "
        "by uid 65534 (nobody), not root"
    )
    (etc / "loop").symlink_to("loop")
    assert (
        refusal(etc / "loop") == f"certificate {etc}/loop goes through more than 40 symbolic links"
    )


# --- through the datastores, as frrdmvpnd wires it ---------------------------------------


def cert_config(directory: Path, key: Path | str) -> str:
    return certificate_mode(
        (EXAMPLES / "lab-spoke1.conf").read_text(),
        certificate=f"{directory}/spoke.pem",
        private_key=str(key),
        ca_certificate=f"{directory}/ca.pem",
    )


def stores(tmp_path: Path) -> tuple[Datastores, World]:
    world = World()
    ports = world.ports(Config())
    ports = dataclasses.replace(ports, read_file=node_ports.read_trustpoint_file)
    world.known.append(parse(cert_config(tmp_path / "etc", "/k")).config)
    ds = Datastores(
        saved=tmp_path / "saved.conf",
        running=tmp_path / "run" / "running.conf",
        ports=lambda: ports,
        check_file=node_ports.check_trustpoint_file,
    )
    return ds, world


@pytest.mark.parametrize("kind", ["/dev/zero", "fifo"])
def test_private_key_dev_zero_or_a_fifo_is_a_validation_error_and_nothing_is_applied(
    tmp_path: Path, etc: Path, kind: str
) -> None:
    """The reported attack: on main, ``private-key /dev/zero`` grew the daemon until memory
    ran out and a FIFO blocked the apply holding the datastore lock."""
    a_file(etc, "spoke.pem")
    a_file(etc, "ca.pem")
    key = "/dev/zero"
    if kind == "fifo":
        key = str(etc / "key.fifo")
        os.mkfifo(key, 0o600)
    text = cert_config(etc, key)
    ds, world = stores(tmp_path)
    report = ds.apply_text(text)
    assert report.outcome is ApplyOutcome.REJECTED
    (found,) = report.diagnostics
    line = text.splitlines().index(f" private-key {key}") + 1
    what = "a character device" if kind == "/dev/zero" else "a FIFO"
    assert (found.line, found.column, found.token, found.code) == (line, 14, key, "trustpoint-file")
    assert found.message == f"private-key {key} is not a regular file: it is {what}"
    assert world.log == []
    assert not (tmp_path / "run" / "running.conf").exists()


def test_good_files_are_applied_as_data(tmp_path: Path, etc: Path) -> None:
    a_file(etc, "spoke.pem", b"SPOKE")
    a_file(etc, "ca.pem", b"CA")
    key = a_file(etc, "spoke.key", b"KEY", 0o600)
    ds, world = stores(tmp_path)
    report = ds.apply_text(cert_config(etc, key))
    assert report.outcome is ApplyOutcome.APPLIED, report.message
    assert world.conns["dmvpn"]["local"]["certs"] == [b"SPOKE"]
    assert f"load-key {key} 3 bytes" in world.log
