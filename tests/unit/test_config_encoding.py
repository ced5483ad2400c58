"""A configuration file that is not UTF-8 (an editor writing Latin-1): every reader says
where the first bad byte is, and nothing crashes or stops relaying.

Found by tests/unit/config/test_fuzz_config.py: each reader decoded with ``read_text()``, so such a
file ended ``frrdmvpnd run`` at start (and a SIGHUP's apply with a traceback), stopped
frrdmvpn-proxy (swanctl and nhrpd lost their socket), made ``SaveConfig`` fail while keeping
``.prev`` and the API answer INTERNAL.
"""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from frrdmvpn.adapters import config_store
from frrdmvpn.application import frrdmvpnd
from frrdmvpn.application.proxy import build_parser
from frrdmvpn.config.diagnostics import ConfigError
from frrdmvpn.enforcement import PolicyError, _initial_policy, load_policy
from frrdmvpn.v1 import config_pb2, config_service_pb2, state_service_pb2
from tests.fakes.api_node import Node, run

pytestmark = pytest.mark.unit

HUB = (Path(__file__).resolve().parents[2] / "docs" / "examples" / "lab-hub.conf").read_text()
# " description Café" typed in a Latin-1 editor, as the 2nd line of the interface block
LATIN1 = HUB.replace("interface Tunnel0\n", "interface Tunnel0\n description Caf\xe9\n").encode(
    "latin-1"
)
LINE = HUB.splitlines().index("interface Tunnel0") + 2
WHERE = f"{LINE}:17: error: byte 0xe9 is not UTF-8 (write the file in UTF-8)"


@pytest.fixture
def latin1(tmp_path: Path) -> Path:
    path = tmp_path / "frrdmvpn.conf"
    path.write_bytes(LATIN1)
    return path


def test_the_store_names_the_line_and_column(latin1: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        config_store.read(latin1)
    (found,) = caught.value.diagnostics
    assert found.format(filename="frrdmvpn.conf") == f"frrdmvpn.conf:{WHERE}"


def test_saving_over_it_keeps_its_bytes_as_prev(latin1: Path) -> None:
    kept = config_store.save(latin1, HUB)
    assert kept is not None
    assert kept.read_bytes() == LATIN1
    assert latin1.read_text(encoding="utf-8") == HUB


def test_frrdmvpnd_validate_apply_and_configured_say_where(
    latin1: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    running = tmp_path / "running.conf"
    assert frrdmvpnd.main(["validate", "-c", str(latin1), "--running", str(running)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"{latin1}:{WHERE}",
        f"frrdmvpnd: {latin1}: not UTF-8, nothing applied",
    ]
    assert frrdmvpnd.main(["apply", "-c", str(latin1), "--running", str(running)]) == 1
    assert f"{latin1}:{WHERE}" in capsys.readouterr().err
    # unusable, not "no tunnel": the units fail (255) and say why
    assert frrdmvpnd.main(["configured", "-c", str(latin1)]) == frrdmvpnd.UNUSABLE
    assert capsys.readouterr().err == f"frrdmvpnd: {latin1} is not valid:\n{latin1}:{WHERE}\n"


def test_the_proxy_has_no_policy_but_keeps_running(latin1: Path) -> None:
    args = build_parser().parse_args(["--config", str(latin1)])
    with pytest.raises(PolicyError) as caught:
        load_policy(args)
    assert str(caught.value) == f"{latin1}:{WHERE}"
    assert _initial_policy(args) is None  # deny every binding, relay everything else


def test_the_api_says_why_it_cannot_show_the_saved_file(tmp_path: Path) -> None:
    async def body(node: Node) -> None:
        (tmp_path / "etc").mkdir()
        (tmp_path / "etc" / "frrdmvpn.conf").write_bytes(LATIN1)
        request = config_service_pb2.GetConfigRequest(datastore=config_pb2.CONFIG_DATASTORE_SAVED)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await node.config.GetConfig(request)
        assert caught.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert f"line {LINE}, column 17: error: byte 0xe9 is not UTF-8" in str(
            caught.value.details()
        )
        node_state = await node.state.GetNode(state_service_pb2.GetNodeRequest())
        assert node_state.node.config.unsaved_changes  # what is saved cannot be read

    run(tmp_path, body)
