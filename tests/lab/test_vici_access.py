"""The hub's VICI proxy gives nhrpd's user only what nhrpd sends (issue 14, hole 3).

On main the proxy on ``/run/charon.vici`` (0660 root:frr) forwarded every command: a
process running as ``frr`` — an exploited FRR daemon — could ``unload-conn`` the DMVPN,
``load-shared`` a key with forged owners, or ``load-conn`` a connection whose updown script
charon runs as root. Here a VICI client runs as ``frr`` inside the hub and tries exactly
that; each request is refused with the proxy's reason, logged, and never reaches charon
(root's ``swanctl`` and ``get-shared`` through the same socket show charon unchanged);
another member of group frr gets nothing at all; nhrpd's own requests still work, so both
spokes stay protected.
"""

from __future__ import annotations

import grp
import json
import pwd
import re
import sys
from functools import partial
from typing import Any

import pytest

from frrdmvpn.config.charon_socket import PROXY_SOCKET
from lab import topology as topo
from lab.netns import Lab
from tests.lab.helpers import ping, protected_peer, wait_for

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("frrdmvpn_mode")]

HUB, S1, S2 = topo.node("hub"), topo.node("spoke1"), topo.node("spoke2")
SOCKET = str(PROXY_SOCKET)  # nhrpd's compiled-in path: the proxy, inside the hub
DENIED = "frrdmvpn-proxy: permission denied: "
ONLY = " (only initiate, list-sas, terminate)"
NOBODY = 65534

# A VICI client from the standard library alone (it runs as another user, isolated):
# argv[1] the socket, argv[2] a JSON list of [packet type, name, message]; prints a JSON
# list with, per request, the answer's packet type and its message (key/values as text).
CLIENT = r"""
import json, socket, struct, sys

def name(text):
    raw = text.encode()
    return bytes([len(raw)]) + raw

def blob(text):
    raw = text.encode()
    return struct.pack(">H", len(raw)) + raw

def encode(msg):
    out = b""
    for key, value in msg.items():
        if isinstance(value, dict):
            out += b"\x01" + name(key) + encode(value) + b"\x02"
        elif isinstance(value, list):
            out += b"\x04" + name(key) + b"".join(b"\x05" + blob(v) for v in value) + b"\x06"
        else:
            out += b"\x03" + name(key) + blob(value)
    return out

def decode(data):
    top, stack, pos, key = {}, [], 0, None
    cur = top
    while pos < len(data):
        kind = data[pos]; pos += 1
        if kind in (1, 3, 4):
            size = data[pos]; key = data[pos + 1:pos + 1 + size].decode(); pos += 1 + size
        if kind == 1:
            stack.append(cur); cur[key] = {}; cur = cur[key]
        elif kind == 2:
            cur = stack.pop()
        elif kind in (3, 5):
            (size,) = struct.unpack(">H", data[pos:pos + 2])
            value = data[pos + 2:pos + 2 + size].decode("utf-8", "replace"); pos += 2 + size
            if kind == 3:
                cur[key] = value
            else:
                cur[key].append(value)
        elif kind == 4:
            cur[key] = []
    return top

sock = socket.socket(socket.AF_UNIX)
sock.connect(sys.argv[1])
buf, answers = b"", []
for ptype, pname, msg in json.loads(sys.argv[2]):
    packet = bytes([ptype]) + name(pname) + (encode(msg) if ptype == 0 else b"")
    sock.sendall(struct.pack(">I", len(packet)) + packet)
    while True:
        while len(buf) < 4 or len(buf) < 4 + struct.unpack(">I", buf[:4])[0]:
            data = sock.recv(65536)
            if not data:
                sys.exit("the proxy closed the connection")
            buf += data
        (size,) = struct.unpack(">I", buf[:4])
        packet, buf = buf[4:4 + size], buf[4 + size:]
        if packet[0] == 7:  # an event: not an answer
            continue
        answers.append([packet[0], decode(packet[1:]) if packet[0] == 1 else {}])
        break
print(json.dumps(answers))
"""

CMD, REGISTER = 0, 3
CMD_RESPONSE, EVENT_UNKNOWN = 1, 6
EVIL = {
    "evil": {
        "version": "2",
        "local_addrs": [str(HUB.nbma.ip)],
        "remote_addrs": ["203.0.113.99"],
        "local": {"auth": "psk"},
        "remote": {"auth": "psk"},
        "children": {
            "evil": {
                "updown": "/bin/sh -c 'id > /tmp/owned'",
                "local_ts": ["0.0.0.0/0"],
                "remote_ts": ["0.0.0.0/0"],
                "start_action": "start",
            }
        },
    }
}
FORGED = {"id": "forged", "type": "IKE", "data": "not-the-key", "owners": [S2.fqdn]}
HOSTS = {"my-host": str(HUB.nbma.ip), "other-host": str(S1.nbma.ip)}
ATTACKS = [
    ([CMD, "load-conn", EVIL], f"nhrpd's user may not send 'load-conn'{ONLY}"),
    (
        [CMD, "unload-conn", {"name": topo.VICI_PROFILE}],
        f"nhrpd's user may not send 'unload-conn'{ONLY}",
    ),
    ([CMD, "load-shared", FORGED], f"nhrpd's user may not send 'load-shared'{ONLY}"),
    ([CMD, "get-shared", {}], f"nhrpd's user may not send 'get-shared'{ONLY}"),
    ([CMD, "terminate", {"ike": "evil"}], "'evil' is not one of DMVPN's IPsec profiles"),
    (
        [CMD, "terminate", {"ike-id": "99999"}],
        "IKE_SA #99999 is not one charon reported on this connection",
    ),
    (
        [CMD, "terminate", {"ike": topo.VICI_PROFILE, "force": "yes"}],
        "nhrpd's user may not send terminate with 'force'",
    ),
    (
        [CMD, "initiate", {"child": "evil", "timeout": "-1", "async": "1", **HOSTS}],
        "'evil' is not one of DMVPN's IPsec profiles",
    ),
]


def _vici(lab: Lab, user: list[str], requests: list[list[Any]]) -> list[list[Any]]:
    """``requests`` on the hub's proxy socket, as ``user`` (setpriv options)."""
    argv = ["setpriv", *user, sys.executable, "-I", "-c", CLIENT, SOCKET, json.dumps(requests)]
    done = lab.run("hub", argv, check=False)
    assert done.returncode == 0, done.stderr
    answers: list[list[Any]] = json.loads(done.stdout)
    return answers


def _as_frr() -> list[str]:
    return ["--reuid=frr", "--regid=frr", "--init-groups"]


def _proxy_log(lab: Lab) -> str:
    return lab.run("hub", ["cat", "/var/log/frrdmvpn-proxy.log"]).stdout


def _charon(lab: Lab) -> tuple[str, list[str]]:
    """What charon has loaded, asked by root through the proxy: connections (swanctl) and
    the ids of its shared keys (get-shared)."""
    conns = lab.run("hub", ["swanctl", "--list-conns"]).stdout
    ((kind, shared),) = _vici(lab, ["--reuid=0"], [[CMD, "get-shared", {}]])
    assert kind == CMD_RESPONSE, shared
    return conns, list(shared.get("keys", []))


def test_nhrpds_user_gets_only_nhrpds_requests(lab: Lab) -> None:
    conns, shared = _charon(lab)
    assert f"{topo.VICI_PROFILE}:" in conns
    since = len(_proxy_log(lab))
    answers = _vici(lab, _as_frr(), [request for request, _ in ATTACKS])
    for (request, reason), (kind, message) in zip(ATTACKS, answers, strict=True):
        assert kind == CMD_RESPONSE, (request, kind)
        assert message == {"success": "no", "errmsg": DENIED + reason}, request
    # nhrpd's registrations and listing still reach charon; anything else it refuses
    answers = _vici(
        lab,
        _as_frr(),
        [[REGISTER, "list-sa", None], [REGISTER, "log", None], [CMD, "list-sas", {}]],
    )
    assert [kind for kind, _ in answers] == [5, EVENT_UNKNOWN, CMD_RESPONSE]
    assert "errmsg" not in answers[2][1], answers[2]
    # charon is as it was: nothing was loaded, unloaded or added
    assert _charon(lab) == (conns, shared)
    assert "evil" not in conns
    assert "forged" not in shared
    # logged with the reason at the 1st, 2nd, 4th ... refusal of the user (nhrpd itself is
    # not refused: these are about the first of uid frr, so some of them are logged)
    frr = pwd.getpwnam("frr").pw_uid
    logged = re.findall(
        rf"refused (command|event) '([^']+)' of uid {frr} \(frr\) pid \d+: "
        rf"(.*) \(refusal (\d+) of uid {frr}\)",
        _proxy_log(lab)[since:],
    )
    assert logged, _proxy_log(lab)[since:]
    expected = {(str(request[1]), reason) for request, reason in ATTACKS} | {
        (
            "log",
            "nhrpd's user may not register for 'log' (only child-state-destroying, "
            "child-state-installed, child-state-rekeyed, list-sa)",
        )
    }
    for _, name, reason, count in logged:
        assert (name, reason) in expected, (name, reason)
        assert int(count) & (int(count) - 1) == 0, count
    # nhrpd keeps both spokes protected, and traffic flows
    for spoke in (S1, S2):
        nbma = str(spoke.nbma.ip)
        wait_for(
            f"{spoke.name} protected at the hub", partial(protected_peer, lab, "hub", nbma), 60
        )
    assert ping(lab, "hub", str(HUB.lan.ip), str(S2.lan.ip), count=3)


def test_another_member_of_group_frr_gets_nothing(lab: Lab) -> None:
    gid = grp.getgrnam("frr").gr_gid
    user = [f"--reuid={NOBODY}", f"--regid={NOBODY}", f"--groups={gid}"]
    answers = _vici(
        lab, user, [[CMD, "list-sas", {}], [CMD, "version", {}], [REGISTER, "list-sa", None]]
    )
    reason = f"uid {NOBODY} may not use charon (only root and nhrpd's user may)"
    assert answers == [[CMD_RESPONSE, {"success": "no", "errmsg": DENIED + reason}]] * 2 + [
        [EVENT_UNKNOWN, {}]
    ]


def test_root_still_uses_swanctl_through_the_proxy(lab: Lab) -> None:
    listed = lab.run("hub", ["swanctl", "--list-sas"]).stdout
    for spoke in (S1, S2):
        assert str(spoke.nbma.ip) in listed
    version = lab.run("hub", ["swanctl", "--stats"])
    assert "uptime:" in version.stdout
