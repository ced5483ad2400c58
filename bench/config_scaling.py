"""How checking a configuration grows with its size: each shape at n, 2n and 4n.

What ``frrdmvpnd validate`` (and the daemon's apply, and ValidateConfig) does with a text:
:func:`check`, then every finding formatted with its line. Linear work doubles with the
size (growth ~2); quadratic work quadruples it (~4). The API takes texts of up to 1 MiB.

Run: ``.venv/bin/python bench/config_scaling.py [--n N]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from frrdmvpn.config.validate import check


def peers(n: int) -> str:
    """One keyring of n peers, three lines each (a hub's psk-map)."""
    return "crypto ikev2 keyring K\n" + "".join(
        f" peer p{i}\n  address 198.51.100.{i % 250} 255.255.255.255\n  pre-shared-key k{i}\n"
        for i in range(n)
    )


def tunnels(n: int) -> str:
    """n tunnel interfaces (each with findings: no network-id, no source ...)."""
    return "".join(f"interface Tunnel{i}\n ip address 192.0.2.1 255.255.255.0\n" for i in range(n))


def unknown_lines(n: int) -> str:
    """n lines that are no command: n findings, each formatted with its line."""
    return "x y z\n" * n


def words(n: int) -> str:
    """One line of n words after a command (one finding, its line masked and shown)."""
    return "interface Tunnel0\n ip address " + "1 " * n


def long_values(n: int) -> str:
    """100 lines, each a refused value of n digits (where the caret goes is looked for in
    every one): the API takes lines of up to 4,096 characters."""
    return "interface Tunnel0\n" + f" tunnel key {'1' * n}\n" * 100


SHAPES: dict[str, tuple[Callable[[int], str], int]] = {
    "keyring peers": (peers, 1000),
    "tunnel interfaces": (tunnels, 500),
    "unknown lines": (unknown_lines, 5000),
    "words in one line": (words, 20000),
    "long refused values": (long_values, 1000),
}


def cost(text: str) -> float:
    start = time.perf_counter()
    _, found = check(text)
    for finding in found:
        finding.format(text, filename="frrdmvpn.conf")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=float, default=1.0, help="scale every base size")
    args = parser.parse_args()
    print(f"{'shape':<20} {'n':>7} {'bytes':>9} {'seconds':>8} {'growth':>7}")
    for name, (make, base) in SHAPES.items():
        last = None
        for factor in (1, 2, 4):
            n = int(base * args.n * factor)
            text = make(n)
            seconds = cost(text)
            growth = f"{seconds / last:.1f}" if last else ""
            print(f"{name:<20} {n:>7} {len(text):>9} {seconds:>8.2f} {growth:>7}")
            last = seconds


if __name__ == "__main__":
    main()
