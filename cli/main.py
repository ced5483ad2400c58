"""Entry point of ``frrdmvpn-shell``."""

from __future__ import annotations

import argparse

from frrdmvpn import __version__


def main(argv: list[str] | None = None) -> int:
    """Parse arguments; the interactive shell arrives with the shell issue."""
    parser = argparse.ArgumentParser(prog="frrdmvpn-shell", description=__doc__)
    parser.add_argument("--version", action="version", version=f"frrdmvpn-shell {__version__}")
    parser.parse_args(argv)
    print(f"frrdmvpn-shell {__version__}")
    return 0
