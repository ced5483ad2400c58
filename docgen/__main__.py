"""``python3 -m docgen OUTDIR`` writes frrdmvpnd.8, frrdmvpn-proxy.8, frrdmvpn-shell.1 and
frrdmvpn-lab.1 (:data:`docgen.pages.PAGES`). Their date is ``SOURCE_DATE_EPOCH``'s (as
Debian's builds set it, so the pages are reproducible), else today's."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from docgen.manpage import render
from docgen.pages import PAGES
from frrdmvpn import __version__


def build_date(epoch: str | None) -> str:
    """``YYYY-MM-DD`` of ``SOURCE_DATE_EPOCH`` (UTC), else of now."""
    when = datetime.fromtimestamp(int(epoch), UTC) if epoch else datetime.now(UTC)
    return when.strftime("%Y-%m-%d")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python3 -m docgen", description=__doc__)
    parser.add_argument("outdir", type=Path, help="where to write the pages")
    parser.add_argument(
        "--date", help="the pages' date, YYYY-MM-DD (default: from $SOURCE_DATE_EPOCH, else today)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Write every page into OUTDIR."""
    args = build_parser().parse_args(argv)
    date = args.date or build_date(os.environ.get("SOURCE_DATE_EPOCH"))
    args.outdir.mkdir(parents=True, exist_ok=True)
    for build in PAGES:  # each imports its program
        page = build()
        path = args.outdir / page.filename
        path.write_text(render(page, date=date, version=__version__), encoding="ascii")
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
