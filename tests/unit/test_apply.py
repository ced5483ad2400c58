"""apply: order, only-what-differs, idempotence, charon's lost state, rollback, and the
guards widened before the kernel step and narrowed after it (fake ports)."""

from __future__ import annotations

import dataclasses
from ipaddress import IPv4Address

import pytest

from frrdmvpn.adapters.trusted_files import UntrustedFileError
from frrdmvpn.apply import ApplyError, apply
from frrdmvpn.config.frr import FrrVersion
from frrdmvpn.config.model import Config
from frrdmvpn.config.parse import parse_strict
from frrdmvpn.config.swan import LocalEnd
from tests.fakes.world import EXAMPLES, SPOKE, World

pytestmark = pytest.mark.unit


def test_first_apply_goes_kernel_then_charon_then_frr_and_second_changes_nothing() -> None:
    w = World()
    plan = apply(SPOKE, None, w.ports(SPOKE))
    order = [entry.split()[0] for entry in w.log]
    assert order == ["guard", "ensure", "load-shared", "load-conn", "vtysh", "vtysh"]
    assert w.log[0] == "guard widen 198.51.100.11"
    assert plan.changes[0] == "guard: protect 198.51.100.11"
    assert "dmvpn0" in w.tunnels
    assert "dmvpn" in w.conns
    assert any(c.startswith("nhrpd: ") for c in plan.changes)
    w.log.clear()
    again = apply(SPOKE, SPOKE, w.ports(SPOKE))
    assert again.empty, again.changes
    assert w.log == []


def test_dry_run_changes_nothing_but_says_what_would() -> None:
    w = World()
    plan = apply(SPOKE, None, w.ports(SPOKE), dry_run=True)
    assert plan.changes
    assert w.log == []
    assert not w.tunnels
    assert not w.conns
    assert any("load-conn dmvpn" in c for c in plan.changes)


def test_restarted_charon_gets_its_configuration_back() -> None:
    w = World()
    apply(SPOKE, None, w.ports(SPOKE))
    w.conns.clear()
    w.shared.clear()
    w.log.clear()
    plan = apply(SPOKE, SPOKE, w.ports(SPOKE))
    assert [c.split()[1] for c in plan.changes] == ["load-shared", "load-conn"]
    assert "dmvpn" in w.conns


def test_a_changed_holdtime_touches_only_nhrpd() -> None:
    w = World()
    apply(SPOKE, None, w.ports(SPOKE))
    tunnel = dataclasses.replace(SPOKE.interfaces[0], nhrp_holdtime=30)
    new = dataclasses.replace(SPOKE, interfaces=(tunnel,))
    w.log.clear()
    plan = apply(new, SPOKE, w.ports(new))
    assert w.log == ["vtysh nhrpd"]
    assert plan.changes == ["nhrpd: interface dmvpn0", "nhrpd: ip nhrp holdtime 30", "nhrpd: exit"]


def test_nhrp_authentication_reaches_an_nhrpd_that_has_it_and_is_reported_masked() -> None:
    w = World()
    w.version = FrrVersion(10, 3)
    apply(SPOKE, None, w.ports(SPOKE))
    tunnel = dataclasses.replace(SPOKE.interfaces[0], nhrp_authentication="s3cr3t")
    new = dataclasses.replace(SPOKE, interfaces=(tunnel,))
    plan = apply(new, SPOKE, w.ports(new))
    assert " ip nhrp authentication s3cr3t" in w.frr["nhrpd"].splitlines()
    assert "nhrpd: ip nhrp authentication <removed>" in plan.changes
    assert not [c for c in plan.changes if "s3cr3t" in c]
    undone = apply(SPOKE, new, w.ports(SPOKE))  # removed: its no form carries the value
    assert "nhrpd: no ip nhrp authentication <removed>" in undone.changes
    assert "authentication" not in w.frr["nhrpd"]


def test_on_frr_8_4_nhrp_authentication_is_refused_and_nothing_changes() -> None:
    w = World()
    apply(SPOKE, None, w.ports(SPOKE))
    before = (dict(w.tunnels), dict(w.conns), dict(w.frr))
    w.log.clear()
    tunnel = dataclasses.replace(SPOKE.interfaces[0], nhrp_authentication="s3cr3t")
    new = dataclasses.replace(SPOKE, interfaces=(tunnel,))
    with pytest.raises(ApplyError) as e:
        apply(new, SPOKE, w.ports(new))
    assert "ip nhrp authentication needs nhrpd from FRR 10.2" in str(e.value)
    assert "FRR 8.4" in str(e.value)
    assert "s3cr3t" not in str(e.value)
    assert e.value.changes == []
    assert e.value.rolled_back  # nothing changed: the previous state stands
    assert w.log == []
    assert (dict(w.tunnels), dict(w.conns), dict(w.frr)) == before


@pytest.mark.parametrize("failing", ["vtysh nhrpd", "vtysh ospfd"])
def test_failure_part_way_restores_the_previous_configuration(failing: str) -> None:
    w = World()
    apply(SPOKE, None, w.ports(SPOKE))
    before = (dict(w.tunnels), dict(w.conns), dict(w.frr))
    tunnel = dataclasses.replace(
        SPOKE.interfaces[0], mtu=1380, key=43, nhrp_holdtime=30, ospf_hello_interval=3
    )
    new = dataclasses.replace(SPOKE, interfaces=(tunnel,))
    w.fail_on = failing
    with pytest.raises(ApplyError) as err:
        apply(new, SPOKE, w.ports(new))
    assert err.value.rolled_back
    assert any(c.startswith("kernel: ensured dmvpn0") for c in err.value.changes)
    # The rollback applied SPOKE again: the tunnel (key 42, mtu 1400) and FRR as before.
    assert w.tunnels == before[0]
    assert w.conns == before[1]
    assert w.frr == before[2]


def test_failed_first_apply_removes_what_it_created() -> None:
    w = World()
    w.fail_on = "vtysh nhrpd"
    with pytest.raises(ApplyError) as err:
        apply(SPOKE, None, w.ports(SPOKE))
    assert err.value.rolled_back
    assert w.tunnels == {}
    assert w.conns == {}
    assert w.shared == {}


def test_a_failure_that_repeats_in_the_undo_is_reported_once() -> None:
    w = World()
    apply(SPOKE, None, w.ports(SPOKE))
    w.conns.clear()  # charon restarted and is unreachable: every load fails
    w.log.clear()
    w.fail_on = "load-"
    tunnel = dataclasses.replace(SPOKE.interfaces[0], mtu=1380)
    new = dataclasses.replace(SPOKE, interfaces=(tunnel,))
    with pytest.raises(ApplyError) as err:
        apply(new, SPOKE, w.ports(new))
    assert not err.value.rolled_back
    assert "restoring failed too" in str(err.value)
    assert [e.split()[0] for e in w.log].count("ensure") == 2  # the change and its undo only


def test_a_state_that_cannot_be_computed_changes_nothing() -> None:
    w = World()
    w.interfaces = {}  # eth0 has no address yet
    with pytest.raises(ApplyError) as err:
        apply(SPOKE, None, w.ports(SPOKE))
    assert "tunnel source eth0" in str(err.value)
    assert err.value.changes == []
    assert w.log == []


def test_a_node_without_ospf_never_asks_ospfd() -> None:
    w = World()
    no_ospf = dataclasses.replace(SPOKE, ospf=None)
    asked: list[str] = []
    real = w.frr_running

    def running(daemon: str) -> str:
        asked.append(daemon)
        return real(daemon)

    ports = w.ports(no_ospf)
    ports.frr_running = running
    apply(no_ospf, None, ports)
    assert asked == ["nhrpd"]


CERT_SPOKE = parse_strict(
    (EXAMPLES / "lab-spoke1.conf")
    .read_text()
    .replace(
        "crypto ikev2 proposal",
        "crypto pki trustpoint tp\n certificate /etc/frrdmvpn/spoke.pem\n"
        " private-key /etc/frrdmvpn/spoke.key\n ca-certificate /etc/frrdmvpn/ca.pem\n!\n"
        "crypto ikev2 proposal",
        1,
    )
    .replace(" authentication local pre-share", " authentication local rsa-sig")
    .replace(" authentication remote pre-share", " authentication remote rsa-sig")
    .replace(" keyring local lab\n", " pki trustpoint tp\n")
)
CERT_FILES: dict[str, bytes | Exception] = {
    "/etc/frrdmvpn/spoke.pem": b"SPOKE PEM",
    "/etc/frrdmvpn/spoke.key": b"KEY!",
    "/etc/frrdmvpn/ca.pem": b"CA PEM",
}


def test_certificates_and_the_key_are_read_through_the_port_and_sent_as_data() -> None:
    """Issue 14 hole 5: charon opens no configured path; frrdmvpn reads the files (through
    frrdmvpn.adapters.trusted_files in the daemon) while planning, before any change."""
    w = World()
    w.files.update(CERT_FILES)
    apply(CERT_SPOKE, None, w.ports(CERT_SPOKE))
    reads = [e for e in w.log if e.startswith("read ")]
    assert reads == [
        "read certificate /etc/frrdmvpn/spoke.pem",
        "read private-key /etc/frrdmvpn/spoke.key",
        "read ca-certificate /etc/frrdmvpn/ca.pem",
    ]
    assert w.log.index(reads[-1]) < w.log.index("ensure dmvpn0")
    assert "load-key /etc/frrdmvpn/spoke.key 4 bytes" in w.log
    ike = w.conns["dmvpn"]
    assert ike["local"]["certs"] == [b"SPOKE PEM"]
    assert ike["remote"]["cacerts"] == [b"CA PEM"]


def test_a_file_the_reader_refuses_fails_the_apply_before_any_change() -> None:
    w = World()
    w.files.update(CERT_FILES)
    w.files["/etc/frrdmvpn/spoke.key"] = UntrustedFileError(
        "private-key", "/etc/frrdmvpn/spoke.key", "is not a regular file: it is a FIFO"
    )
    with pytest.raises(ApplyError) as err:
        apply(CERT_SPOKE, None, w.ports(CERT_SPOKE))
    assert str(err.value) == (
        "cannot compute the desired state: private-key /etc/frrdmvpn/spoke.key is not a "
        "regular file: it is a FIFO"
    )
    assert err.value.changes == []
    assert [e for e in w.log if not e.startswith("read ")] == []


# --- the guards (issue 14, hole 4) -----------------------------------------------------------

NEW_NBMA = IPv4Address("198.51.100.111")


def _source(config: Config, source: IPv4Address | str) -> Config:
    tunnel = dataclasses.replace(config.interfaces[0], source=source)
    return dataclasses.replace(config, interfaces=(tunnel,))


def _at(w: World, prefix: str) -> int:
    return next(i for i, e in enumerate(w.log) if e.startswith(prefix))


def test_a_new_tunnel_source_is_guarded_before_the_kernel_step_and_the_old_released_after() -> None:
    w = World()
    apply(SPOKE, None, w.ports(SPOKE))
    w.log.clear()
    w.interfaces["eth0"] += (NEW_NBMA,)  # a second address, and the tunnel switched to it
    moved = _source(SPOKE, NEW_NBMA)
    plan = apply(moved, SPOKE, w.ports(moved))
    # Widened to old + new before the link is made again, narrowed once FRR is configured.
    assert w.log[0] == "guard widen 198.51.100.111"
    assert _at(w, "guard widen") < _at(w, "ensure dmvpn0")
    assert w.log[-1] == "guard narrow 198.51.100.11"
    assert _at(w, "vtysh") < _at(w, "guard narrow")
    assert w.tunnels["dmvpn0"].local == NEW_NBMA
    assert w.guarded == {NEW_NBMA}
    assert w.leaks == []
    assert plan.changes[0] == "guard: protect 198.51.100.111"
    assert plan.changes[-1] == "guard: release 198.51.100.11"


def test_every_address_of_the_source_interface_is_guarded() -> None:
    """The link takes eth0's first address; the next apply takes another when DHCP replaces
    it, so all of them are guarded from the start."""
    w = World()
    w.interfaces["eth0"] += (NEW_NBMA,)
    apply(SPOKE, None, w.ports(SPOKE))
    assert w.tunnels["dmvpn0"].local == IPv4Address("198.51.100.11")
    assert w.guarded == {IPv4Address("198.51.100.11"), NEW_NBMA}


def test_a_failed_apply_narrows_the_guards_back_to_the_previous_configuration() -> None:
    w = World()
    apply(SPOKE, None, w.ports(SPOKE))
    w.log.clear()
    moved = _source(SPOKE, NEW_NBMA)
    w.fail_on = "vtysh nhrpd"
    with pytest.raises(ApplyError) as err:
        apply(moved, SPOKE, w.ports(moved))
    assert err.value.rolled_back
    assert "guard: protect 198.51.100.111" in err.value.changes
    # The undo made the link with the old address again, then released the new one.
    assert w.log[-1] == "guard narrow 198.51.100.111"
    assert w.tunnels["dmvpn0"].local == IPv4Address("198.51.100.11")
    assert w.guarded == {IPv4Address("198.51.100.11")}
    assert w.leaks == []


def test_guards_that_cannot_be_widened_stop_the_apply_before_the_kernel() -> None:
    w = World()
    apply(SPOKE, None, w.ports(SPOKE))
    before = dict(w.tunnels)
    w.log.clear()
    w.fail_on = "guard widen"
    with pytest.raises(ApplyError) as err:
        apply(_source(SPOKE, NEW_NBMA), SPOKE, w.ports(SPOKE))
    assert err.value.rolled_back  # nothing was changed
    assert err.value.changes == []
    assert w.log == ["guard widen 198.51.100.111"]
    assert w.tunnels == before


def test_guards_that_cannot_be_narrowed_stay_wider_and_the_apply_succeeds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    w = World()
    apply(SPOKE, None, w.ports(SPOKE))
    moved = _source(SPOKE, NEW_NBMA)
    w.fail_on = "guard narrow"
    plan = apply(moved, SPOKE, w.ports(moved))
    assert w.tunnels["dmvpn0"].local == NEW_NBMA
    assert w.guarded == {IPv4Address("198.51.100.11"), NEW_NBMA}
    assert "guard: release 198.51.100.11" not in plan.changes
    assert "narrowing the guards failed, they stay wider (fail-closed)" in caplog.text


def test_a_dry_run_leaves_the_guards_alone() -> None:
    w = World()
    apply(SPOKE, None, w.ports(SPOKE))
    w.log.clear()
    plan = apply(_source(SPOKE, NEW_NBMA), SPOKE, w.ports(SPOKE), dry_run=True)
    assert plan.changes
    assert not any(c.startswith("guard") for c in plan.changes)
    assert w.log == ["list-sas"]  # a read: what the moved connection would close
    assert w.guarded == {IPv4Address("198.51.100.11")}


def test_nhrpd_lets_go_of_the_source_device_before_the_link_is_made_again() -> None:
    # nhrpd, still bound to eth0, would have zebra rewrite the re-created link (the lab saw
    # local 0.0.0.0): it is told first, then the link changes.
    w = World()
    apply(SPOKE, None, w.ports(SPOKE))
    w.log.clear()
    w.interfaces["eth0"] += (NEW_NBMA,)
    moved = _source(SPOKE, NEW_NBMA)
    plan = apply(moved, SPOKE, w.ports(moved))
    assert _at(w, "vtysh nhrpd") < _at(w, "ensure dmvpn0")
    assert "nhrpd: no tunnel source" in plan.changes
    assert "tunnel source" not in w.frr["nhrpd"]
    assert w.tunnels["dmvpn0"].local == NEW_NBMA
    # Back to the device: nhrpd holds none, so the link comes first and FRR binds it after.
    w.log.clear()
    apply(SPOKE, moved, w.ports(SPOKE))
    assert _at(w, "ensure dmvpn0") < _at(w, "vtysh nhrpd")
    assert " tunnel source eth0" in w.frr["nhrpd"]


def _sa(uniqueid: int, host: str, identity: str) -> LocalEnd:
    return LocalEnd(uniqueid, "dmvpn", host, identity)


def test_a_moved_source_closes_the_ike_sas_left_on_the_old_address_or_identity() -> None:
    """The lab: back from 198.51.100.111 to eth0, an IKE_SA from .111 (identity .111) stayed
    up and MOBIKE moved it to .11 when .111 went; the hub refused every registration over it
    (an address identity that is not the peer's address)."""
    w = World()
    w.interfaces["eth0"] += (NEW_NBMA,)
    moved = _source(SPOKE, NEW_NBMA)
    apply(moved, None, w.ports(moved))
    w.sas = [
        _sa(4, "198.51.100.111", "198.51.100.111"),  # from the old source
        _sa(5, "198.51.100.11", "198.51.100.111"),  # moved by MOBIKE, old identity
        _sa(6, "198.51.100.11", "198.51.100.11"),  # already the new end's
        LocalEnd(7, "other", "198.51.100.111", "198.51.100.111"),
    ]  # not frrdmvpn's
    w.log.clear()
    plan = apply(SPOKE, moved, w.ports(SPOKE))
    assert [sa.uniqueid for sa in w.sas] == [6, 7]
    assert _at(w, "load-conn dmvpn") < _at(w, "terminate 4") < _at(w, "terminate 5")
    assert (
        "charon: terminate IKE_SA #4 of dmvpn (from 198.51.100.111 as 198.51.100.111: "
        "the connection's local end moved)"
    ) in plan.changes


def test_a_connection_whose_local_end_stays_lists_no_sas() -> None:
    w = World()
    apply(SPOKE, None, w.ports(SPOKE))
    w.sas = [_sa(1, "198.51.100.11", "198.51.100.11")]
    w.log.clear()
    longer = dataclasses.replace(
        SPOKE, interfaces=(dataclasses.replace(SPOKE.interfaces[0], nhrp_holdtime=120),)
    )
    apply(longer, SPOKE, w.ports(longer))
    assert "list-sas" not in w.log  # the hub's hundreds of SAs are not listed for nothing
    assert [sa.uniqueid for sa in w.sas] == [1]


def test_closing_what_was_left_behind_never_fails_the_apply(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An SA that went meanwhile (DPD, a rekey's new id) cannot be closed: the configuration
    is in place all the same, and the other SAs are still closed."""
    w = World()
    w.interfaces["eth0"] += (NEW_NBMA,)
    apply(SPOKE, None, w.ports(SPOKE))
    w.sas = [_sa(1, "198.51.100.11", "198.51.100.11"), _sa(2, "198.51.100.11", "198.51.100.11")]
    w.fail_on = "terminate 1"
    moved = _source(SPOKE, NEW_NBMA)
    plan = apply(moved, SPOKE, w.ports(moved))
    assert w.tunnels["dmvpn0"].local == NEW_NBMA
    assert [sa.uniqueid for sa in w.sas] == [1]  # 2 closed; 1 "went meanwhile"
    assert "charon: terminate IKE_SA #2 of dmvpn" in " ".join(plan.changes)
    assert "charon: terminate IKE_SA #1 of dmvpn" not in " ".join(plan.changes)
    assert "injected failure at terminate 1" in caplog.text
    # and charon not answering the listing: a warning, the apply done
    w.fail_on = "list-sas"
    apply(SPOKE, moved, w.ports(SPOKE))
    assert w.tunnels["dmvpn0"].local == IPv4Address("198.51.100.11")
    assert "could not list the IKE_SAs a moved connection left behind" in caplog.text


def test_an_fqdn_identity_is_compared_as_charon_prints_it() -> None:
    """The configuration says fqdn:NAME, charon lists NAME: an SA on an address the moved
    connection keeps, as that identity, stays; only the one on the old address goes."""
    text = (
        (EXAMPLES / "lab-spoke1.conf")
        .read_text()
        .replace(
            " match identity remote address 0.0.0.0\n",
            " match identity remote address 0.0.0.0\n identity local fqdn spoke1.example.net\n",
        )
    )
    named = parse_strict(text)
    w = World()
    w.interfaces["eth0"] += (NEW_NBMA,)
    apply(named, None, w.ports(named))
    w.sas = [
        _sa(1, "198.51.100.11", "spoke1.example.net"),
        _sa(2, "198.51.100.111", "spoke1.example.net"),
    ]
    moved = _source(named, NEW_NBMA)
    apply(moved, named, w.ports(moved))
    assert [sa.uniqueid for sa in w.sas] == [2]
