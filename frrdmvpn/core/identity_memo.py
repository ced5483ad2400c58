"""A function's result remembered by the object it was computed from (issue 17: a step at
rest sees the very same objects step after step). Pure: no I/O."""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

_T = TypeVar("_T")
_R = TypeVar("_R")


class IdentityMemo(Generic[_T, _R]):
    """``fn(obj)`` per object, for objects that never change (frozen dataclasses,
    addresses). Held by a weak reference: an object's entry goes with it, so no other
    object can take its id, and nothing is kept alive by the memo (a hub's listings come
    and go). An object that takes no weak reference is computed each time."""

    def __init__(self, fn: Callable[[_T], _R]) -> None:
        self.fn = fn
        self._known: dict[int, tuple[weakref.ref[_T], _R]] = {}

    def __len__(self) -> int:
        return len(self._known)

    def __call__(self, obj: _T) -> _R:
        key = id(obj)
        known = self._known.get(key)
        if known is not None and known[0]() is obj:
            return known[1]
        result = self.fn(obj)
        try:
            ref = weakref.ref(obj, functools.partial(self._forget, key))
        except TypeError:  # int, str, list...: nothing to remember it by
            return result
        self._known[key] = (ref, result)
        return result

    def _forget(self, key: int, gone: weakref.ref[_T]) -> None:
        known = self._known.get(key)
        if known is not None and known[0] is gone:  # not a newer object's entry
            del self._known[key]
