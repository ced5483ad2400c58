"""apply's ports (:class:`frrdmvpn.apply.Ports`) on the node frrdmvpnd runs on, and the
trustpoint files they may read: only those only root could have written."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from frrdmvpn.adapters import trusted_files
from frrdmvpn.config.swan import TrustpointFile

if TYPE_CHECKING:
    from frrdmvpn.apply import Ports
    from frrdmvpn.guards import GuardKeeper


def real_ports(frr: Any = None, guards: GuardKeeper | None = None) -> Ports:
    """The adapters of the node frrdmvpnd runs on; FRR through ``frr`` (a
    :class:`~frrdmvpn.adapters.vtysh.SyncFrr`; default: a connection per call); the guards
    through ``guards`` (default: widened by this apply alone; the daemon narrows them)."""
    # `frrdmvpnd validate` checks the trustpoint files below without any of these
    from frrdmvpn.adapters import nhrp_hooks, vtysh  # noqa: PLC0415 - keep `guard` light
    from frrdmvpn.adapters.links import Links, set_sysctls  # noqa: PLC0415
    from frrdmvpn.adapters.vici_config import CharonConfig  # noqa: PLC0415
    from frrdmvpn.apply import Ports  # noqa: PLC0415
    from frrdmvpn.guards import GuardKeeper  # noqa: PLC0415

    sessions = frr if frr is not None else vtysh.SyncFrr()
    return Ports(
        links=Links(),
        charon=CharonConfig(),
        frr_running=sessions.running_config,
        frr_configure=sessions.configure,
        sysctls=set_sysctls,
        hooks=nhrp_hooks.ensure,
        read_file=read_trustpoint_file,
        guard=guards if guards is not None else GuardKeeper(narrows=False),
        frr_version=sessions.version,
    )


def read_trustpoint_file(f: TrustpointFile) -> bytes:
    """A trustpoint's file, if only root could have written it."""
    return trusted_files.read(f.path, f.keyword, secret=f.secret)


def check_trustpoint_file(f: TrustpointFile) -> None:
    """Raise if :func:`read_trustpoint_file` would refuse the file (reads nothing)."""
    trusted_files.check(f.path, f.keyword, secret=f.secret)
