"""IdentityMemo: a result per object, never another object's, and nothing kept alive."""

from __future__ import annotations

import gc
import ipaddress

import pytest

from frrdmvpn.core.identity_memo import IdentityMemo

pytestmark = pytest.mark.unit


def test_the_same_object_is_computed_once_an_equal_one_again() -> None:
    calls: list[object] = []

    def fn(obj: object) -> str:
        calls.append(obj)
        return str(obj)

    memo = IdentityMemo(fn)
    a = ipaddress.ip_address("198.51.100.1")
    b = ipaddress.ip_address("198.51.100.1")
    assert memo(a) == memo(a) == "198.51.100.1"
    assert calls == [a]
    assert memo(b) == "198.51.100.1"
    assert len(calls) == 2
    assert calls[1] is b


def test_an_object_gone_is_forgotten_and_lends_nothing_to_one_with_its_id() -> None:
    memo: IdentityMemo[ipaddress.IPv4Address, str] = IdentityMemo(str)
    for n in range(200):  # each address is dropped at once: its id is reused
        assert memo(ipaddress.IPv4Address(f"198.51.100.{n}")) == f"198.51.100.{n}"
    gc.collect()
    assert len(memo) == 0  # the memo kept none of them alive
    kept = [ipaddress.IPv4Address(f"192.0.2.{n}") for n in range(10)]
    assert [memo(a) for a in kept] == [str(a) for a in kept]
    assert len(memo) == 10


def test_an_object_without_weak_references_is_computed_each_time() -> None:
    calls: list[int] = []

    def fn(values: list[int]) -> int:
        calls.append(1)
        return sum(values)

    memo = IdentityMemo(fn)
    values = [1, 2]
    assert memo(values) == memo(values) == 3
    assert len(calls) == 2
    assert len(memo) == 0
