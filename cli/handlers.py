"""What each command of the tree does: ``handler(session, command) -> lines``.

Show handlers fetch the API's messages and hand them to the renderers (``cli.render``,
imported when first used) or, after ``| json``, to ``as_json``. A handler that cannot do
its work raises :class:`cli.errors.ShellError` with the lines to print; API errors
(:class:`grpc.RpcError`) are turned into one line by the session.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Protocol

import grpc

from cli import pipes
from cli.api import AUTHORIZATION_FAILED, error_text
from cli.debug import ALL_OFF, OFF, ON
from cli.errors import ShellError
from cli.parsed import Handler, Level, Parsed
from frrdmvpn.config.modes import ROOT
from frrdmvpn.v1 import config_pb2

if TYPE_CHECKING:
    from collections.abc import Sequence

    from google.protobuf.message import Message

    from cli.session import Session
    from frrdmvpn.v1 import (
        authorization_pb2,
        guard_pb2,
        nhrp_pb2,
        node_pb2,
        peer_pb2,
        state_service_pb2,
    )

BANNER = "Enter configuration commands, one per line.  End with CNTL/Z."

# --- helpers ------------------------------------------------------------------------------


def _lines(value: Any) -> list[str]:
    if isinstance(value, str):
        return value.splitlines()
    return [str(line) for line in value]


class Renderers(Protocol):
    """The show renderers (``cli.render``, imported when first used): API messages in,
    the command's text out; ``now`` (epoch seconds) where they print ages."""

    def show_dmvpn(
        self,
        node: node_pb2.NodeSummary,
        peers: Sequence[peer_pb2.Peer],
        *,
        detail: bool = False,
        now: float,
    ) -> str: ...

    def show_ip_nhrp(
        self, entries: Sequence[nhrp_pb2.NhrpCacheEntry], *, detail: bool = False, now: float
    ) -> str: ...

    def show_ip_nhrp_brief(
        self, entries: Sequence[nhrp_pb2.NhrpCacheEntry], *, now: float
    ) -> str: ...

    def show_ip_nhrp_nhs(
        self,
        node: node_pb2.NodeSummary,
        nhs: Sequence[nhrp_pb2.Nhs],
        *,
        detail: bool = False,
        now: float,
    ) -> str: ...

    def show_ip_nhrp_traffic(self, response: state_service_pb2.GetNhrpTrafficResponse) -> str: ...

    def show_crypto_session(
        self, peers: Sequence[peer_pb2.Peer], *, detail: bool = False, now: float
    ) -> str: ...

    def show_crypto_ipsec_sa(
        self,
        peers: Sequence[peer_pb2.Peer],
        *,
        peer: str | None = None,
        detail: bool = False,
        now: float,
    ) -> str: ...

    def show_crypto_ikev2_sa(self, peers: Sequence[peer_pb2.Peer], *, now: float) -> str: ...

    def show_ip_ospf_neighbor(
        self, response: state_service_pb2.ListOspfNeighborsResponse
    ) -> str: ...

    def show_frrdmvpn_guard(self, guard: guard_pb2.GuardStatus, *, now: float) -> str: ...

    def show_frrdmvpn_authorization(
        self,
        status: state_service_pb2.GetAuthorizationStatusResponse,
        decisions: Sequence[authorization_pb2.AuthorizationDecision],
        *,
        now: float,
    ) -> str: ...

    def as_json(self, message_or_list: Message | Sequence[Message]) -> str: ...


def wants_json(command: Parsed) -> bool:
    return command.pipe is not None and command.pipe.kind == "json"


def as_json(session: Session, value: Any = None, **parts: Any) -> list[str]:
    """``value`` (a message or a list of them) as JSON; or several named ``parts`` as one
    JSON object."""
    if not parts:
        return _lines(session.render.as_json(value))
    merged = {name: json.loads(session.render.as_json(part)) for name, part in parts.items()}
    return json.dumps(merged, indent=2).splitlines()


def _not_done(results: list[Any]) -> list[str]:
    return [f"% {r.peer.remote_nbma or r.peer}: {r.message}" for r in results if not r.done]


def _check(results: list[Any]) -> list[str]:
    failed = _not_done(results)
    if failed:
        raise ShellError(*failed)
    return []


# --- show -----------------------------------------------------------------------------------


def show_dmvpn(session: Session, command: Parsed) -> list[str]:
    detail = command.flag("detail")
    peers = session.api.peers(full=detail)
    if wants_json(command):
        return as_json(session, peers)
    node = session.api.node()
    return _lines(session.render.show_dmvpn(node, peers, detail=detail, now=session.now()))


def show_ip_nhrp(session: Session, command: Parsed) -> list[str]:
    entries = session.api.nhrp_cache()
    if wants_json(command):
        return as_json(session, entries)
    detail = command.flag("detail")
    return _lines(session.render.show_ip_nhrp(entries, detail=detail, now=session.now()))


def show_ip_nhrp_brief(session: Session, command: Parsed) -> list[str]:
    entries = session.api.nhrp_cache()
    if wants_json(command):
        return as_json(session, entries)
    return _lines(session.render.show_ip_nhrp_brief(entries, now=session.now()))


def show_ip_nhrp_nhs(session: Session, command: Parsed) -> list[str]:
    nhs = session.api.nhs()
    if wants_json(command):
        return as_json(session, nhs)
    node = session.api.node()
    detail = command.flag("detail")
    return _lines(session.render.show_ip_nhrp_nhs(node, nhs, detail=detail, now=session.now()))


def show_ip_nhrp_traffic(session: Session, command: Parsed) -> list[str]:
    response = session.api.nhrp_traffic()
    if wants_json(command):
        return as_json(session, response)
    return _lines(session.render.show_ip_nhrp_traffic(response))


def show_crypto_session(session: Session, command: Parsed) -> list[str]:
    remote = command.text("remote")
    filters = {"remote_nbma_addresses": [remote]} if remote else {}
    peers = session.api.peers(full=True, **filters)
    if wants_json(command):
        return as_json(session, peers)
    detail = command.flag("detail")
    return _lines(session.render.show_crypto_session(peers, detail=detail, now=session.now()))


def show_crypto_ipsec_sa(session: Session, command: Parsed) -> list[str]:
    peer = command.text("peer")
    peers = session.api.peers(full=True)
    if wants_json(command):
        return as_json(session, [p for p in peers if peer is None or p.key.remote_nbma == peer])
    return _lines(session.render.show_crypto_ipsec_sa(peers, peer=peer, now=session.now()))


def show_crypto_ikev2_sa(session: Session, command: Parsed) -> list[str]:
    peers = session.api.peers(full=True)
    if wants_json(command):
        return as_json(session, peers)
    return _lines(session.render.show_crypto_ikev2_sa(peers, now=session.now()))


def show_ip_ospf_neighbor(session: Session, command: Parsed) -> list[str]:
    response = session.api.ospf_neighbors()
    if wants_json(command):
        return as_json(session, response)
    return _lines(session.render.show_ip_ospf_neighbor(response))


def show_frrdmvpn_guard(session: Session, command: Parsed) -> list[str]:
    guard = session.api.guard()
    if wants_json(command):
        return as_json(session, guard)
    return _lines(session.render.show_frrdmvpn_guard(guard, now=session.now()))


def show_frrdmvpn_authorization(session: Session, command: Parsed) -> list[str]:
    status = session.api.authorization()
    decisions = session.api.decisions()
    if wants_json(command):
        return as_json(session, status=status, decisions=decisions)
    now = session.now()
    return _lines(session.render.show_frrdmvpn_authorization(status, decisions, now=now))


# --- configuration --------------------------------------------------------------------------


def framed(body: list[str]) -> list[str]:
    """IOS's frame of ``show running-config``: the byte count covers ``!`` .. ``end``."""
    content = ["!", *body, "end"]
    size = len(("\n".join(content) + "\n").encode())
    return ["Building configuration...", "", f"Current configuration : {size} bytes", *content]


def statement_lines(statement: Any, depth: int = 0) -> list[str]:
    """A statement of the API's configuration tree and its block, one space per level."""
    out = [" " * depth + statement.text]
    for child in statement.children:
        out += statement_lines(child, depth + 1)
    return out


def _interface_statement(tree: Any, name: str) -> Any:
    for statement in tree.statements:
        opens = statement.opens
        if opens.mode == config_pb2.CONFIG_MODE_INTERFACE and list(opens.keys) == [name]:
            return statement
    return None


def show_running_config(session: Session, command: Parsed) -> list[str]:
    """Secrets masked (``<removed>``); ``unmasked`` asks for them in clear, which only an
    administrator's connection gets (else ``Command authorization failed.``)."""
    response = session.api.get_config("running", reveal_secrets=command.flag("unmasked"))
    if wants_json(command):
        return as_json(session, response)
    number = command.args.get("interface")
    interface = None if number is None else f"Tunnel{number}"
    if interface is not None:
        statement = _interface_statement(response.tree, interface)
        if statement is None:
            raise ShellError(f"% Interface {interface} is not configured")
        return framed(statement_lines(statement))
    body = [line for line in str(response.text).splitlines() if line.strip() != "end"]
    while body and not body[0].strip():
        body.pop(0)
    section = command.text("section")
    if section is not None:
        try:
            pattern = pipes.compile_regex(section)
        except pipes.PipeError as exc:
            raise ShellError(str(exc)) from None
        return pipes.section(body, pattern)
    if body and body[0] == "!":
        body.pop(0)
    return framed(body)


def show_startup_config(session: Session, command: Parsed) -> list[str]:
    try:
        response = session.api.get_config("saved", reveal_secrets=command.flag("unmasked"))
    except grpc.RpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            raise ShellError("startup-config is not present") from None
        raise
    if wants_json(command):
        return as_json(session, response)
    text = str(response.text)
    body = [line for line in text.splitlines() if line.strip() != "end"]
    size = len(text.encode())
    return [f"Using {size} bytes", "!", *body, "end"]


def write_memory(session: Session, command: Parsed) -> list[str]:
    try:
        session.api.save()
    except grpc.RpcError as exc:
        if exc.code() == grpc.StatusCode.PERMISSION_DENIED:
            raise ShellError(AUTHORIZATION_FAILED) from None
        raise ShellError("Building configuration...", error_text(exc, session.api.target)) from None
    return ["Building configuration...", "[OK]"]


# --- modes ----------------------------------------------------------------------------------


def _no_do(command: Parsed) -> None:
    """Refuse the commands that change the level when typed after ``do``."""
    if command.via_do and command.handler in (configure, enable, disable, exit_):
        raise ShellError("% This command cannot be run through 'do'")


def configure(session: Session, command: Parsed) -> list[str]:
    """Configuration mode; an operator's connection is refused like IOS refuses a command
    AAA does not authorize (the daemon refuses every change of an operator anyway)."""
    _no_do(command)
    if session.api.role() == "operator":
        raise ShellError(AUTHORIZATION_FAILED)
    session.level, session.context = Level.CONFIG, ROOT
    return [BANNER]


def enable(session: Session, command: Parsed) -> list[str]:
    _no_do(command)
    session.level = Level.PRIV
    return []


def disable(session: Session, command: Parsed) -> list[str]:
    _no_do(command)
    session.level = Level.USER
    return []


def exit_(session: Session, command: Parsed) -> list[str]:
    _no_do(command)
    session.debugger.stop()
    session.finished = True
    return []


def end(session: Session, command: Parsed) -> list[str]:
    return session.end().lines


def config_exit(session: Session, command: Parsed) -> list[str]:
    if session.context == ROOT:
        return session.end().lines
    session.context = session.context.parent()
    return []


# --- terminal -------------------------------------------------------------------------------


def terminal_length(session: Session, command: Parsed) -> list[str]:
    value = command.args.get("lines")
    assert isinstance(value, int)
    session.length = value
    return []


def terminal_width(session: Session, command: Parsed) -> list[str]:
    value = command.args.get("columns")
    assert isinstance(value, int)
    session.width = value
    return []


def terminal_monitor(session: Session, command: Parsed) -> list[str]:
    session.monitor = True
    return []


def show_terminal(session: Session, command: Parsed) -> list[str]:
    return [
        f"Length: {session.length} lines, Width: {session.width} columns",
        f"History is enabled, {len(session.history)} command(s) in this session",
    ]


def show_history(session: Session, command: Parsed) -> list[str]:
    return [f"  {line}" for line in session.history]


def _uptime(seconds: float) -> str:
    minutes = int(seconds // 60)
    parts: list[str] = []
    for unit, size in (("week", 7 * 24 * 60), ("day", 24 * 60), ("hour", 60), ("minute", 1)):
        count, minutes = divmod(minutes, size)
        if count or (unit == "minute" and not parts):
            parts.append(f"{count} {unit}{'' if count == 1 else 's'}")
    return ", ".join(parts)


def show_version(session: Session, command: Parsed) -> list[str]:
    node = session.api.node()
    if wants_json(command):
        return as_json(session, node)
    started = node.started_at.seconds + node.started_at.nanos / 1e9
    lines = [f"frrdmvpn Software (frrdmvpnd), Version {node.version}", ""]
    if started:
        lines.append(f"{node.hostname} uptime is {_uptime(session.now() - started)}")
    lines += [
        f"API: {', '.join(node.api_versions) or 'v1'} at {session.api.target}",
        f"Ready: {'yes' if node.ready else 'no'}",
    ]
    return lines


# --- clear ----------------------------------------------------------------------------------


def clear_crypto_session(session: Session, command: Parsed) -> list[str]:
    remote = command.text("remote") or ""
    return _check(session.api.clear(remote_nbma=remote, scope="ipsec"))


def clear_ip_nhrp(session: Session, command: Parsed) -> list[str]:
    address = command.text("address") or ""
    return _check(session.api.clear(tunnel_address=address, scope="nhrp"))


def clear_dmvpn_session(session: Session, command: Parsed) -> list[str]:
    peer = command.text("peer") or ""
    static = command.flag("static")
    try:
        results = session.api.clear(remote_nbma=peer, scope="nhrp+ipsec", include_static=static)
    except grpc.RpcError as exc:
        if not peer or exc.code() != grpc.StatusCode.NOT_FOUND:
            raise
        results = session.api.clear(tunnel_address=peer, scope="nhrp+ipsec", include_static=static)
    return _check(results)


def clear_frrdmvpn_counters(session: Session, command: Parsed) -> list[str]:
    session.api.clear_counters("all")
    return []


# --- debug ----------------------------------------------------------------------------------


def _debug(*categories: str) -> Handler:
    def run(session: Session, command: Parsed) -> list[str]:
        session.debugger.enable(*categories)
        return [ON[c] for c in categories]

    return run


def _undebug(*categories: str) -> Handler:
    def run(session: Session, command: Parsed) -> list[str]:
        session.debugger.disable(*categories)
        return [OFF[c] for c in categories]

    return run


def undebug_all(session: Session, command: Parsed) -> list[str]:
    session.debugger.stop()
    return [ALL_OFF]


debug_dmvpn = _debug("dmvpn")
debug_nhrp = _debug("nhrp")
debug_all = _debug("dmvpn", "nhrp")
undebug_dmvpn = _undebug("dmvpn")
undebug_nhrp = _undebug("nhrp")


def show_debugging(session: Session, command: Parsed) -> list[str]:
    out: list[str] = []
    for category, title in (("dmvpn", "DMVPN"), ("nhrp", "NHRP")):
        if category in session.debugger.enabled:
            out += [f"{title}:", f"  {ON[category]}"]
    return out
