"""api.request_rules: paging, its tokens, and the checks of a request's fields (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from frrdmvpn.api import request_rules
from frrdmvpn.api.request_rules import BadRequestError, page
from frrdmvpn.v1 import nhrp_pb2

pytestmark = pytest.mark.unit


def shortcut(prefix: str) -> nhrp_pb2.Shortcut:
    return nhrp_pb2.Shortcut(prefix=prefix)


def every_page(items: list[nhrp_pb2.Shortcut], size: int, presorted: bool) -> list[str]:
    seen: list[str] = []
    token = ""
    while True:
        got, token = page(items, lambda s: s.prefix, size, token, "sc", presorted=presorted)
        assert len(got) <= (size or request_rules.DEFAULT_PAGE)
        seen += [s.prefix for s in got]
        if not token:
            return seen


@given(
    keys=st.lists(st.text(alphabet="0123456789abcdef.:/", min_size=1, max_size=8), unique=True),
    size=st.integers(min_value=0, max_value=7),
)
def test_the_pages_hold_every_item_once_in_key_order(keys: list[str], size: int) -> None:
    items = [shortcut(k) for k in keys]
    assert every_page(items, size, presorted=False) == sorted(keys)
    ordered = sorted(items, key=lambda s: s.prefix)
    assert every_page(ordered, size, presorted=True) == sorted(keys)


def test_page_size_zero_is_the_default_and_a_large_one_is_capped() -> None:
    items = [shortcut(f"{i:05d}") for i in range(request_rules.MAX_PAGE + 5)]
    first, token = page(items, lambda s: s.prefix, 0, "", "sc")
    assert len(first) == request_rules.DEFAULT_PAGE
    assert token
    big, _ = page(items, lambda s: s.prefix, 10**6, "", "sc")
    assert len(big) == request_rules.MAX_PAGE


def test_a_token_works_only_for_its_own_listing_and_filter() -> None:
    items = [shortcut(p) for p in "abc"]
    _, token = page(items, lambda s: s.prefix, 1, "", "shortcuts:1")
    with pytest.raises(BadRequestError) as other:
        page(items, lambda s: s.prefix, 1, token, "shortcuts:2")
    assert str(other.value) == "page_token: it belongs to another listing or filter"


@pytest.mark.parametrize("token", ["AAAA", "not base64!", "e30=", "W10="])  # {} and []
def test_a_malformed_token_or_size_is_a_bad_request(token: str) -> None:
    items = [shortcut("a")]
    with pytest.raises(BadRequestError) as bad:
        page(items, lambda s: s.prefix, 1, token, "sc")
    assert str(bad.value) == "page_token: malformed (use next_page_token as given)"
    with pytest.raises(BadRequestError) as negative:
        page(items, lambda s: s.prefix, -1, "", "sc")
    assert str(negative.value) == "page_size: must not be negative"


def test_addresses_sort_as_numbers_and_are_canonical() -> None:
    ordered = sorted(
        ["10.0.0.10", "10.0.0.9", "2001:db8::1", "9.1.1.1"], key=request_rules.sortable
    )
    assert ordered == ["9.1.1.1", "10.0.0.9", "10.0.0.10", "2001:db8::1"]
    assert request_rules.address("2001:DB8:0::1", "remote_nbma") == "2001:db8::1"
    with pytest.raises(BadRequestError) as bad:
        request_rules.address("198.51.100.300", "remote_nbma")
    assert str(bad.value) == "remote_nbma: '198.51.100.300' is not an IP address"
