"""Sum junit XML files into one closing line: ``total: N passed, N failed, N skipped``.

With ``--no-skips`` (CI) a skipped test fails the run and is named: a test that cannot run
on CI's machine proves nothing there.
"""

from __future__ import annotations

import argparse
import xml.etree.ElementTree as ET
from pathlib import Path


def totals(paths: list[Path]) -> tuple[int, int, int]:
    """(passed, failed, skipped) over all testsuites in ``paths``; a missing file is 1 failure."""
    passed = failed = skipped = 0
    for path in paths:
        try:
            root = ET.parse(path).getroot()  # noqa: S314 - our own pytest output
        except (OSError, ET.ParseError):
            failed += 1
            continue
        for suite in root.iter("testsuite"):
            tests = int(suite.get("tests", 0))
            bad = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
            skip = int(suite.get("skipped", 0))
            failed += bad
            skipped += skip
            passed += tests - bad - skip
    return passed, failed, skipped


def skipped_tests(paths: list[Path]) -> list[str]:
    """``classname::name: reason`` of every skipped test case in ``paths``."""
    out = []
    for path in paths:
        try:
            root = ET.parse(path).getroot()  # noqa: S314 - our own pytest output
        except (OSError, ET.ParseError):
            continue
        for case in root.iter("testcase"):
            skip = case.find("skipped")
            if skip is not None:
                reason = skip.get("message", "")
                out.append(f"{case.get('classname')}::{case.get('name')}: {reason}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.junit", description=__doc__)
    parser.add_argument("--no-skips", action="store_true", help="a skipped test fails the run")
    parser.add_argument("files", nargs="*", type=Path)
    args = parser.parse_args(argv)
    passed, failed, skipped = totals(args.files)
    if args.no_skips:
        for name in skipped_tests(args.files):
            print(f"skipped (not allowed here): {name}")
    print(f"total: {passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed or not passed or (args.no_skips and skipped) else 0


if __name__ == "__main__":
    raise SystemExit(main())
