"""What configuration text may contain, and how it splits into lines. Pure.

A file splits into lines at ``"\\n"`` only (a ``"\\r"`` before it is dropped, so a CRLF
file reads the same). No character of a line may split it again for another reader, hide
what it says, or reorder how it displays. Refused anywhere in a line, comments included:

* C0 controls U+0000-U+001F except TAB (U+0009): NUL, CR, VT, FF, ESC, and the
  separators U+001C-U+001E that ``str.splitlines`` takes for line breaks;
* DEL U+007F and the C1 controls U+0080-U+009F (NEL U+0085 is a line break too);
* U+2028 LINE SEPARATOR and U+2029 PARAGRAPH SEPARATOR;
* format characters: bidirectional embeddings, overrides and isolates (U+202A-U+202E,
  U+2066-U+2069), direction marks (U+200E, U+200F, U+061C), zero-width characters and
  the byte order mark (U+200B-U+200D, U+2060, U+FEFF), the soft hyphen, tag characters;
* lone surrogates (text decoded with ``surrogateescape`` from bytes that are not UTF-8).

That is the Unicode categories Cc (but TAB), Cf, Zl, Zp and Cs. Any other character —
letters, digits, marks, symbols, punctuation and spaces of every script — is text.
"""

from __future__ import annotations

import unicodedata

REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
EXPECTED = "printable characters (words separated by spaces or TAB)"


def refused(char: str) -> bool:
    """Whether ``char`` may not appear in configuration text."""
    return char != "\t" and unicodedata.category(char) in REFUSED_CATEGORIES


def first_refused(line: str) -> int | None:
    """The 0-based index of the first refused character of ``line``, if any."""
    if line.isprintable():  # fast path: no Cc, Cf, Zl, Zp, Cs (nor TAB)
        return None
    return next((i for i, char in enumerate(line) if refused(char)), None)


def label(char: str) -> str:
    """``U+2028 LINE SEPARATOR``; controls have no Unicode name: ``U+000B``."""
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X}" + (f" {name}" if name else "")


def message(char: str) -> str:
    """What a user sees for a refused character."""
    return (
        f"character {label(char)} is not allowed (no control, format or line-separator "
        "characters in configuration text)"
    )


def lines(text: str) -> list[str]:
    """The lines of a configuration text: split at ``"\\n"`` only, one ``"\\r"`` before it
    dropped. Every reader of configuration text numbers lines with this."""
    out = text.split("\n")
    if out and out[-1] == "":
        out.pop()
    return [line.removesuffix("\r") for line in out]


def printable(line: str) -> str:
    """``line`` with each refused character shown as ``?`` (safe to echo; columns kept)."""
    if first_refused(line) is None:
        return line
    return "".join("?" if refused(char) else char for char in line)
