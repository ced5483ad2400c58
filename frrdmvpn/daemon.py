"""frrdmvpnd: the management daemon (wiring only; the core arrives with the enforcement issue)."""

from __future__ import annotations

import argparse

from frrdmvpn import __version__


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``frrdmvpnd``."""
    parser = argparse.ArgumentParser(prog="frrdmvpnd", description=__doc__)
    parser.add_argument("--version", action="version", version=f"frrdmvpnd {__version__}")
    parser.parse_args(argv)
    print(f"frrdmvpnd {__version__}")
    return 0
