"""Start-up of the product's programs: what each command imports, and its wall time.

Run from the checkout: ``.venv/bin/python bench/startup.py [--runs 10] [--before DIR]``.
Each command runs under ``python -X importtime`` (the modules it imports and the sum of
their own import times, the least of three runs) and then ``--runs`` times for its wall
time (median and fastest, a subprocess each, as systemd or an operator starts it).
``--before DIR``: the same for the code of another tree (e.g. ``git archive main`` unpacked),
run by the same interpreter, alternating with this one's so that both see the same load.
In a development checkout the interpreter also imports setuptools' editable-install
finder (about 20 modules), which the Debian package does not have.

It only reads: the configuration is a copy of the lab's spoke1 in a temporary directory,
``apply`` is a dry run (which reads the kernel, FRR and charon; where they are missing it
fails after importing what it needs), and ``guard check|status`` only list the kernel's
guards. Run as root for the guard commands to read nftables and XFRM.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "examples" / "lab-spoke1.conf"
#: packages a command should import only when it uses them
HEAVY = (
    "asyncio",
    "pyroute2",
    "grpc",
    "google.protobuf",
    "frrdmvpn.api",
    "prometheus_client",
    "prompt_toolkit",
)
PROGRAMS = {
    "frrdmvpnd": "frrdmvpn.application.frrdmvpnd",
    "frrdmvpn-proxy": "frrdmvpn.application.proxy",
    "frrdmvpn-shell": "cli.main",
}
IMPORT_RUNS = 3


@dataclass
class Result:
    """One command run from one tree."""

    modules: int = 0
    import_ms: float = 0.0
    heavy: tuple[str, ...] = ()
    times_ms: list[float] = field(default_factory=list)
    returncode: int = 0

    def wall(self) -> str:
        """Median (fastest)."""
        return f"{statistics.median(self.times_ms):.0f} ({min(self.times_ms):.0f}) ms"


def commands(tmp: Path) -> list[tuple[str, list[str]]]:
    """(label, argv after the interpreter) of every command measured."""
    conf = tmp / "frrdmvpn.conf"
    conf.write_text(EXAMPLE.read_text())
    files = ["-c", str(conf), "--running", str(tmp / "running.conf")]
    daemon = [
        ("configured", ["configured", "-c", str(conf)]),
        ("validate", ["validate", *files]),
        ("guard check", ["guard", "check", *files]),
        ("guard status", ["guard", "status", *files]),
        ("apply --dry-run", ["apply", "--dry-run", *files]),
        ("save", ["save", "-c", str(tmp / "saved.conf"), "--running", str(tmp / "none.conf")]),
    ]
    out = [("python -c pass", ["-c", "pass"])]
    out += [(f"{name} --version", _program(name, ["--version"])) for name in PROGRAMS]
    out += [(f"frrdmvpnd {label}", _program("frrdmvpnd", argv)) for label, argv in daemon]
    return out


def _program(name: str, argv: list[str]) -> list[str]:
    """The program as its console script runs it (``main()``, arguments from sys.argv)."""
    entry = f"import sys; from {PROGRAMS[name]} import main; sys.exit(main())"
    return ["-c", entry, *argv]


def _run(python: str, argv: list[str], root: Path) -> subprocess.CompletedProcess[str]:
    """``root``'s code: run in ``root`` too, as ``-c`` puts the working directory first on
    sys.path, before PYTHONPATH."""
    env = dict(os.environ, PYTHONPATH=str(root))
    return subprocess.run(
        [python, *argv], cwd=root, env=env, capture_output=True, text=True, check=False
    )


def imports(python: str, argv: list[str], root: Path, result: Result) -> None:
    """The modules imported, the sum of their own import times, the heavy ones."""
    names: set[str] = set()
    sums: list[float] = []
    for _ in range(IMPORT_RUNS):
        names.clear()
        total_us = 0
        for line in _run(python, ["-X", "importtime", *argv], root).stderr.splitlines():
            if not line.startswith("import time:") or "self [us]" in line:
                continue
            own, _, name = line.removeprefix("import time:").split("|")
            total_us += int(own)
            names.add(name.strip())
        sums.append(total_us / 1000)
    result.modules, result.import_ms = len(names), min(sums)
    result.heavy = tuple(h for h in HEAVY if h in names)


def timed(python: str, argv: list[str], root: Path, result: Result) -> None:
    """One run's wall time and exit status."""
    start = time.perf_counter()
    done = _run(python, argv, root)
    result.times_ms.append((time.perf_counter() - start) * 1000)
    result.returncode = done.returncode


def measure(python: str, roots: list[Path], argv: list[str], runs: int) -> list[Result]:
    """``argv`` from each tree, their runs alternating."""
    results = [Result() for _ in roots]
    for root, result in zip(roots, results, strict=True):
        imports(python, argv, root, result)
    for _ in range(runs):
        for root, result in zip(roots, results, strict=True):
            timed(python, argv, root, result)
    return results


def table(rows: list[tuple[str, list[Result]]], runs: int) -> str:
    """Markdown: one tree's columns, or before and after side by side."""
    wall = f"wall, median (fastest) of {runs}"
    if len(rows[0][1]) == 1:
        lines = [
            f"| command | modules | import time | heavy packages | {wall} | exit |",
            "|---|---:|---:|---|---:|---:|",
        ]
        for label, (r,) in rows:
            lines.append(
                f"| `{label}` | {r.modules} | {r.import_ms:.0f} ms | "
                f"{', '.join(r.heavy) or '—'} | {r.wall()} | {r.returncode} |"
            )
        return "\n".join(lines)
    lines = [
        "| command | modules before | after | import time before | after "
        f"| {wall}: before | after | heavy packages before | after | exit |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|---|",
    ]
    for label, (b, a) in rows:
        codes = (
            f"{b.returncode}"
            if b.returncode == a.returncode
            else f"{b.returncode} → {a.returncode}"
        )
        lines.append(
            f"| `{label}` | {b.modules} | {a.modules} | {b.import_ms:.0f} ms | "
            f"{a.import_ms:.0f} ms | {b.wall()} | {a.wall()} | {', '.join(b.heavy) or '—'} | "
            f"{', '.join(a.heavy) or '—'} | {codes} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="wall-time runs per command")
    parser.add_argument("--python", default=sys.executable, help="the interpreter to use")
    parser.add_argument("--only", help="only the commands whose label contains this")
    parser.add_argument("--before", type=Path, help="another tree to compare with this one")
    args = parser.parse_args(argv)
    roots = [ROOT] if args.before is None else [args.before.resolve(), ROOT]
    with tempfile.TemporaryDirectory(prefix="frrdmvpn-startup-") as tmp:
        rows = [
            (label, measure(args.python, roots, cmd, args.runs))
            for label, cmd in commands(Path(tmp))
            if args.only is None or args.only in label
        ]
    print(table(rows, args.runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
