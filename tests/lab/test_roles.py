"""The API's two roles on the hub's real frrdmvpnd: an operator (a non-root uid in group
frrdmvpn only) shows, clears and watches, sees secrets masked and is refused every change;
an administrator (a non-root uid in group frrdmvpn-admin only) configures and may reveal
them. Neither role's refusals nor a rejected key reach the daemon's log."""

from __future__ import annotations

import grp
import json
import os
import subprocess
import sys
from typing import Any

import pytest

from frrdmvpn.config.parse import parse_strict
from frrdmvpn.config.secrets import values
from frrdmvpn.v1 import config_pb2
from lab import topology as topo
from lab.netns import ADMIN_GROUP, API_GROUP, Lab

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("frrdmvpn_mode")]

HUB = topo.node("hub")
NOBODY = 65534
REFUSED = "Command authorization failed."

# Run as the unprivileged user: every call the test needs, its status code (or OK) and what
# it answered, as JSON on stdout.
PROBE = r"""
import json, sys
import grpc
from frrdmvpn.client import Client
from frrdmvpn.v1 import config_service_pb2, watch_service_pb2

target, secret = sys.argv[1], sys.argv[2]
api = Client(target, timeout=30)
out = {}


def call(name, fn):
    try:
        value = fn()
        out[name] = ["OK", value]
    except grpc.RpcError as exc:
        out[name] = [exc.code().name, exc.details()]


call("role", api.role)
call("show", lambda: api.get_config("running").text)
call("reveal", lambda: api.get_config("running", reveal_secrets=True).text)
call("peers", lambda: len(api.peers()))
call("clear", lambda: api.clear_counters("peers").peers_cleared)  # harmless
call("watch", lambda: next(iter(api.watch(["node"], timeout=30))).WhichOneof("event"))
running = api.get_config("running", reveal_secrets=out["reveal"][0] == "OK").text
call("apply", lambda: api.apply(running, dry_run=True).message)
call("edit", lambda: api.edit(["crypto ikev2 keyring lab", " peer any",
                               "  pre-shared-key <removed>"]).apply.outcome)
call("kept", lambda: api.get_config("running", reveal_secrets=True).text == running)
refused = running.replace("pre-shared-key ", "pre-shared-key local ", 1)  # IOS syntax
call("rejected", lambda: [d.token for d in api.apply(refused).diagnostics])
call("save", lambda: api.save().path)
print(json.dumps({k: v if secret not in json.dumps(v) else ["LEAK", ""] for k, v in out.items()}
                 | {"leaked": [k for k, v in out.items() if secret in json.dumps(v)]}))
"""


def _as_user(lab: Lab, group: str, argv: list[str], *, in_node: bool = False) -> Any:
    """``argv`` as uid 65534 with only ``group`` (inside the hub's namespaces if asked)."""
    gid = grp.getgrnam(group).gr_gid
    cmd = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", f"--groups={gid}", *argv]
    if in_node:
        cmd = lab.argv("hub", cmd)
    return subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd="/",
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )


def _probe(lab: Lab, group: str, target: str, secret: str, *, reveals: bool = False) -> Any:
    """The probe's answers; only ``reveal`` (when ``reveals``) may hold the secret."""
    done = _as_user(lab, group, [sys.executable, "-c", PROBE, target, secret])
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout)
    assert answer.pop("leaked") == (["reveal"] if reveals else []), answer
    return answer


def _secret(lab: Lab) -> str:
    (key,) = values(parse_strict(lab.config_path(HUB).read_text()))[:1]
    return key


def test_sockets_belong_to_their_groups(lab: Lab) -> None:
    for sock, group in (
        (lab.api_socket("hub"), API_GROUP),
        (lab.api_admin_socket("hub"), ADMIN_GROUP),
    ):
        st = sock.stat()
        assert (st.st_mode & 0o777, st.st_gid) == (0o660, grp.getgrnam(group).gr_gid), sock
    code = "import sys; from frrdmvpn.client import Client; Client(sys.argv[1], timeout=10).node()"
    refused = _as_user(
        lab, API_GROUP, [sys.executable, "-c", code, f"unix:{lab.api_admin_socket('hub')}"]
    )
    assert refused.returncode != 0
    assert "Permission denied" in refused.stderr or "UNAVAILABLE" in refused.stderr


def test_an_operator_shows_clears_and_watches_but_changes_nothing(lab: Lab) -> None:
    secret = _secret(lab)
    log = lab.node_dir(HUB) / "log" / "frrdmvpnd.log"
    before = log.stat().st_size
    running = lab.config_path(HUB).read_text()
    answer = _probe(lab, API_GROUP, f"unix:{lab.api_socket('hub')}", secret)
    assert answer["role"] == ["OK", "operator"]
    assert answer["show"][0] == "OK"
    assert "pre-shared-key <removed>" in answer["show"][1]
    assert answer["peers"] == ["OK", 2]
    assert answer["clear"][0] == "OK"
    assert answer["watch"] == ["OK", "snapshot_begin"]
    refusals = {
        "reveal": "ConfigService.GetConfig with reveal_secrets needs the administrator role "
        "(this connection has the operator role)",
        "apply": "ConfigService.ApplyConfig needs the administrator role (this connection "
        "has the operator role)",
        "edit": "ConfigService.EditConfig needs the administrator role (this connection has "
        "the operator role)",
        "rejected": "ConfigService.ApplyConfig needs the administrator role (this connection "
        "has the operator role)",
        "save": "ConfigService.SaveConfig needs the administrator role (this connection has "
        "the operator role)",
    }
    refusals["kept"] = refusals["reveal"]
    for name, message in refusals.items():
        assert answer[name] == ["PERMISSION_DENIED", message], name
    assert lab.config_path(HUB).read_text() == running
    logged = log.read_bytes()[before:].decode(errors="replace")
    assert "API: refused on unix:/run/frrdmvpn/frrdmvpn.sock: ConfigService.SaveConfig" in logged
    assert secret not in logged


def test_the_operators_shell_refuses_like_ios(lab: Lab) -> None:
    """The shell inside the hub, as the operator: its default socket is the operators'."""
    shell = lab.program("frrdmvpn-shell")
    done = _as_user(
        lab,
        API_GROUP,
        [shell, "-c", "show running-config", "-c", "configure terminal", "-c", "write memory"],
        in_node=True,
    )
    assert done.returncode == 1
    assert "  pre-shared-key <removed>" in done.stdout.splitlines()
    assert _secret(lab) not in done.stdout + done.stderr
    assert done.stderr.splitlines() == [
        "hub#configure terminal",
        REFUSED,
        "hub#write memory",
        REFUSED,
    ]


def test_an_administrator_configures_and_reveals(lab: Lab) -> None:
    secret = _secret(lab)
    log = lab.node_dir(HUB) / "log" / "frrdmvpnd.log"
    before = log.stat().st_size
    path = lab.config_path(HUB)
    saved = path.read_text()
    try:
        answer = _probe(
            lab, ADMIN_GROUP, f"unix:{lab.api_admin_socket('hub')}", secret, reveals=True
        )
    finally:
        path.write_text(saved)
        path.with_name(path.name + ".prev").unlink(missing_ok=True)
    assert answer["role"] == ["OK", "administrator"]
    assert answer["reveal"] == ["LEAK", ""]  # the secret itself, in clear: only here
    assert answer["apply"][0] == "OK"
    assert answer["edit"][0] == "OK"
    assert answer["edit"][1] in (
        config_pb2.APPLY_OUTCOME_UNCHANGED,
        config_pb2.APPLY_OUTCOME_APPLIED,
    )
    assert answer["kept"] == ["OK", True]  # <removed> kept the key
    assert answer["rejected"] == ["OK", ["<removed>"]]
    assert answer["save"][0] == "OK"
    shell = lab.program("frrdmvpn-shell")
    done = _as_user(lab, ADMIN_GROUP, [shell, "-c", "show running-config unmasked"], in_node=True)
    assert done.returncode == 0, done.stderr
    assert f"  pre-shared-key {secret}" in done.stdout.splitlines()
    logged = log.read_bytes()[before:].decode(errors="replace")
    assert secret not in logged
