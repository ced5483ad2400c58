"""The lab's measured numbers side by side: a Markdown table from several ``results.json``.

``.venv/bin/python bench/lab_results.py bookworm=build/lab-artifacts-bookworm/results.json
trixie=build/lab-artifacts-trixie/results.json`` — each file is what one lab run wrote
(``tests/lab/helpers.record``: restore and outage times in seconds, authorization latency);
``scripts/test`` prints this table for the two releases of one CI run. A number only some
runs have shows ``—`` for the others.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _labelled(arg: str) -> tuple[str, Path]:
    label, sep, path = arg.partition("=")
    if not sep or not label or not path:
        raise argparse.ArgumentTypeError(f"expected LABEL=PATH, got {arg!r}")
    return label, Path(path)


def table(runs: list[tuple[str, dict[str, float]]]) -> str:
    """One row per measured name (sorted), one column per run."""
    names = sorted({name for _, numbers in runs for name in numbers})
    lines = [
        "| measure | " + " | ".join(label for label, _ in runs) + " |",
        "|---|" + "---:|" * len(runs),
    ]
    for name in names:
        cells = [f"{numbers[name]:g}" if name in numbers else "—" for _, numbers in runs]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=_labelled, metavar="LABEL=RESULTS_JSON")
    args = parser.parse_args(argv)
    runs = []
    for label, path in args.runs:
        try:
            numbers = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            parser.error(f"{path}: {e}")
        runs.append((label, {k: float(v) for k, v in numbers.items()}))
    print(table(runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
