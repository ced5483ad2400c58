"""Test tiers: every test is ``unit``, ``package`` (the built .deb, as root) or ``lab`` (a kernel
with GRE and ESP)."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

from lab.kernel import native_capable
from tests.fuzzing import EXPLORE

# Every property-based test (the fuzzers, ``tests/fuzzing.py``, and the others): in CI the
# same examples each run, no database; FRRDMVPN_FUZZ_SCALE=N explores (new examples each
# run, failures kept in .hypothesis/ and tried first next time).
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", print_blob=True)
settings.load_profile("explore" if EXPLORE else "ci")

TIERS = ("unit", "package", "lab")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    required = os.environ.get("FRRDMVPN_LAB_REQUIRED") == "1"
    capable: bool | None = None
    for item in items:
        tiers = [t for t in TIERS if item.get_closest_marker(t)]
        if len(tiers) != 1:
            raise pytest.UsageError(f"{item.nodeid}: mark it with exactly one tier of {TIERS}")
        if tiers[0] == "lab" and not required:
            if capable is None:
                capable = native_capable()
            if not capable:
                item.add_marker(
                    pytest.mark.skip(
                        reason="needs GRE/ESP: run the lab tier with `frrdmvpn-lab test`"
                    )
                )
    # The swarm's load after the other lab tests, then the audits (the kernel log, the SA
    # tables' drift), the teardown check last (it takes the lab down).
    items.sort(key=_late)


def _late(item: pytest.Item) -> int:
    for rank, marker in ((3, "lab_last"), (2, "lab_audit"), (1, "lab_late")):
        if item.get_closest_marker(marker):
            return rank
    return 0
