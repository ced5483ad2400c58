"""The fuzzers' shared budget and helpers (tests marked ``fuzz``: ``pytest -m fuzz``).

Every fuzz test runs a fixed number of examples, :func:`budget` times
``FRRDMVPN_FUZZ_SCALE``. Without that variable (CI, ``scripts/test``) the examples are
derandomized and no example database is used (the ``ci`` profile, ``tests/conftest.py``): a
run explores exactly what the previous one did, so a red run is the change's doing and
repeats on any machine. With it (``FRRDMVPN_FUZZ_SCALE=50 pytest -m fuzz``) each run draws
new examples and keeps the failing ones in ``.hypothesis/`` (the ``explore`` profile);
a bug found that way is fixed with its example pinned as ``@example`` or a fixture.
"""

from __future__ import annotations

import itertools
import os
import tracemalloc
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

SCALE = max(1, int(os.environ.get("FRRDMVPN_FUZZ_SCALE", "1") or "1"))
EXPLORE = "FRRDMVPN_FUZZ_SCALE" in os.environ

#: Per example. A decoder answers in milliseconds; seconds means it is stuck, e.g. quadratic
#: or worse in its input (the CI machine shares 2 cores with the lab VM: leave headroom).
DEADLINE = timedelta(seconds=2)

#: Both markers: the fuzzers run in the unit tier, and alone with ``-m fuzz``.
MARKS = [pytest.mark.unit, pytest.mark.fuzz]

T = TypeVar("T")


def budget(examples: int, *, deadline: timedelta | None = DEADLINE) -> settings:
    """``examples`` per run (times ``FRRDMVPN_FUZZ_SCALE``), over the loaded profile."""
    return settings(
        max_examples=examples * SCALE,
        deadline=deadline,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def peak_allocation(call: Callable[[], T]) -> tuple[T | BaseException, int]:
    """What ``call`` returned (or raised) and the most memory it held at once, in bytes."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        try:
            result: T | BaseException = call()
        except Exception as exc:  # returned for the caller to judge
            result = exc
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


def assert_bounded(call: Callable[[], T], size: int, factor: int = 64) -> T | BaseException:
    """Run ``call`` on ``size`` bytes of input; it may hold at most ``factor`` times that
    (plus 64 KiB): a length field must never make a decoder allocate what it claims."""
    result, peak = peak_allocation(call)
    assert peak <= factor * size + 65536, f"{peak} bytes held for {size} bytes of input"
    return result


def pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` cut where ``cuts`` say (each taken modulo its length + 1): how a stream may
    arrive, read by read."""
    bounds = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def mutations(data: bytes) -> st.SearchStrategy[bytes]:
    """``data`` with a few bytes replaced, inserted, removed, or cut short: what a fuzzer
    feeds to reach past a decoder's first length check."""
    if not data:
        return st.binary(max_size=8)

    def apply(edits: list[tuple[int, int, int]]) -> bytes:
        out = bytearray(data)
        for kind, where, byte in edits:
            at = where % (len(out) + 1)
            if kind == 0 and at < len(out):
                out[at] = byte
            elif kind == 1:
                out.insert(at, byte)
            elif kind == 2 and at < len(out):
                del out[at]
            elif kind == 3:
                del out[at:]
            elif kind == 4 and at < len(out):
                out[at] ^= 1 << (byte % 8)
        return bytes(out)

    edit = st.tuples(st.integers(0, 4), st.integers(0, 1 << 16), st.integers(0, 255))
    return st.lists(edit, min_size=1, max_size=4).map(apply)
