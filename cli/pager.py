"""``--More--`` paging like IOS's ``terminal length N`` (0: no paging).

:func:`page` is pure (it writes through a callable and reads keys through another): a
screen holds ``length - 1`` lines of output and the ``--More--`` line; Space shows the
next screen, Enter the next line, ``q`` (or any other key, or Ctrl-C) stops the output.
:func:`tty_key_reader` reads one key from a terminal without echo.
"""

from __future__ import annotations

import contextlib
import os
import termios
import tty
from collections.abc import Callable, Iterator, Sequence

MORE = " --More-- "
ERASE = "\b" * len(MORE) + " " * len(MORE) + "\b" * len(MORE)

DEFAULT_LENGTH = 24
DEFAULT_WIDTH = 80


def rows(line: str, width: int) -> int:
    """How many screen rows ``line`` takes at ``width`` columns (0: no wrapping)."""
    if width <= 0 or not line:
        return 1
    return max(1, -(-len(line) // width))


def page(
    lines: Sequence[str],
    write: Callable[[str], None],
    read_key: Callable[[], str],
    *,
    length: int,
    width: int = 0,
) -> bool:
    """Write ``lines`` a screen at a time; ``False`` if the reader stopped the output."""
    if length <= 1:
        for line in lines:
            write(line + "\n")
        return True
    budget = length - 1
    for index, line in enumerate(lines):
        need = rows(line, width)
        if budget < need and index:
            write(MORE)
            try:
                key = read_key()
            except KeyboardInterrupt:
                key = "\x03"
            write(ERASE)
            if key == " ":
                budget = length - 1
            elif key in ("\r", "\n"):
                budget = need
            else:
                return False
        write(line + "\n")
        budget -= need
    return True


@contextlib.contextmanager
def _cbreak(fd: int) -> Iterator[None]:
    old = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, old)


def tty_key_reader(fd: int) -> Callable[[], str]:
    """A function that waits for one key on terminal ``fd`` (not echoed); ``q`` at EOF."""

    def read_key() -> str:
        with _cbreak(fd):
            data = os.read(fd, 1)
        return data.decode("latin-1") if data else "q"

    return read_key
