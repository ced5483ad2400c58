"""Per-test lab durations, before and after: a Markdown table from two junit files.

``.venv/bin/python bench/lab_test_times.py BEFORE.xml AFTER.xml`` — each file is what
``frrdmvpn-lab test --junit`` (or ``.ci/run``: ``build/junit-lab.xml``) wrote. Rows follow
the after run's order; a test only one run has shows ``—`` for the other; the outcome is
``ok``, ``failed``, ``error`` or ``skipped``. The last row sums each column.
"""

from __future__ import annotations

import argparse
import xml.etree.ElementTree as ET
from pathlib import Path


def _module(classname: str) -> str:
    """``tests/lab/test_x.py`` of junit's ``tests.lab.test_x`` or ``tests.lab.test_x.TestY``
    (a test keeps its row when it moves into a class)."""
    parts = classname.split(".")
    if len(parts) > 1 and parts[-1][:1].isupper():
        parts = parts[:-1]
    return "/".join(parts) + ".py"


def cases(path: Path) -> dict[str, tuple[float, str]]:
    """``file::test`` -> (seconds, outcome), in the file's order."""
    out: dict[str, tuple[float, str]] = {}
    root = ET.parse(path).getroot()  # noqa: S314 - our own pytest output
    for case in root.iter("testcase"):
        module = _module(case.get("classname") or "")
        outcome = "ok"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = "failed" if child.tag == "failure" else child.tag
        out[f"{module}::{case.get('name')}"] = (float(case.get("time") or 0.0), outcome)
    return out


def table(before: dict[str, tuple[float, str]], after: dict[str, tuple[float, str]]) -> str:
    """The Markdown table of both runs."""

    def cell(entry: tuple[float, str] | None) -> str:
        if entry is None:
            return "—"
        seconds, outcome = entry
        return f"{seconds:.1f}" + ("" if outcome == "ok" else f" ({outcome})")

    rows = ["| test | before (s) | after (s) |", "|---|---:|---:|"]
    for name in [*after, *(n for n in before if n not in after)]:
        rows.append(f"| `{name}` | {cell(before.get(name))} | {cell(after.get(name))} |")
    total_before = sum(s for s, _ in before.values())
    total_after = sum(s for s, _ in after.values())
    rows.append(
        f"| **sum** ({len(before)} / {len(after)} tests) | {total_before:.0f} | {total_after:.0f} |"
    )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    print(table(cases(args.before), cases(args.after)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
