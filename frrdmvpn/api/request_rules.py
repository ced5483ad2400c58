"""What the API's handlers check of a request, and how they page a listing. Pure.

A bad field is a :class:`BadRequestError` (the server answers INVALID_ARGUMENT with its
message). A listing is paged in a stable order by a key; a page token carries the last key
and the listing and filter it belongs to (:func:`scope`), so it cannot be replayed on another.
"""

from __future__ import annotations

import base64
import bisect
import functools
import hashlib
import ipaddress
import json
from collections.abc import Callable
from typing import Any, TypeVar

from google.protobuf.message import Message

from frrdmvpn.api import state as api_state
from frrdmvpn.v1 import peer_pb2

DEFAULT_PAGE, MAX_PAGE = 100, 1000
T = TypeVar("T", bound=Message)


class BadRequestError(ValueError):
    """The request is malformed: INVALID_ARGUMENT with this message."""


def address(value: str, field: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError as exc:
        raise BadRequestError(f"{field}: {value[:64]!r} is not an IP address") from exc


def seconds(timestamp: Any, field: str) -> float:
    """A request's Timestamp as seconds since the epoch; one outside the years 1-9999 (or
    with nanos outside a second) is a bad request, not a broken handler."""
    try:
        return float(timestamp.ToNanoseconds() / 1e9)
    except ValueError as exc:
        raise BadRequestError(f"{field}: {exc}") from exc


def peer_filter(f: peer_pb2.PeerFilter, field: str) -> peer_pb2.PeerFilter:
    """A peer filter checked and with canonical addresses."""
    try:
        return api_state.normalized_filter(f)
    except ValueError as exc:
        raise BadRequestError(f"{field}.{exc}") from exc


def page(
    items: list[T],
    key: Callable[[T], str],
    size: int,
    token: str,
    scope: str,
    *,
    presorted: bool = False,
) -> tuple[list[T], str]:
    """One page of ``items`` (in a stable order by ``key``) after the token's key;
    ``presorted``: ``items`` are in that order already (a page then costs no sorting and
    a few ``key`` calls)."""
    if size < 0:
        raise BadRequestError("page_size: must not be negative")
    size = min(size or DEFAULT_PAGE, MAX_PAGE)
    after = ""
    if token:
        try:
            data = json.loads(base64.urlsafe_b64decode(token.encode()).decode())
            after, token_scope = str(data["after"]), str(data["scope"])
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise BadRequestError("page_token: malformed (use next_page_token as given)") from exc
        if token_scope != scope:
            raise BadRequestError("page_token: it belongs to another listing or filter")
    if presorted:
        rest = items[bisect.bisect_right(items, after, key=key) :] if after else items
    else:
        keyed = sorted(((key(i), i) for i in items), key=lambda pair: pair[0])
        rest = [i for k, i in keyed if k > after] if after else [i for _, i in keyed]
    page = rest[:size]
    next_token = ""
    if len(rest) > size:
        raw = json.dumps({"after": key(page[-1]), "scope": scope}).encode()
        next_token = base64.urlsafe_b64encode(raw).decode()
    return page, next_token


def sortable(*addresses: str) -> str:
    """Addresses as text that sorts as they do (10.0.0.9 before 10.0.0.10)."""
    return "|".join(_sortable_one(a) for a in addresses)


@functools.lru_cache(maxsize=65536)
def _sortable_one(address: str) -> str:
    try:
        return ipaddress.ip_address(address).packed.hex().rjust(32, "0")
    except ValueError:
        return address


def scope(kind: str, request: Message) -> str:
    """What a page token is valid for: one listing with one filter (the request without
    its page fields)."""
    raw = request.SerializeToString(deterministic=True)
    return f"{kind}:{hashlib.sha256(raw).hexdigest()[:24]}"


def peer_key(p: peer_pb2.Peer) -> str:
    """The order of the store's PEER table (frrdmvpn.api.tables._order of its keys)."""
    return sortable(p.key.local_nbma, p.key.remote_nbma)
