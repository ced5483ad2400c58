"""Roff for manual pages (man(7) macros): escaping, inline fonts, macro calls, prose.

Pure. Text is escaped so that it prints as written: a backslash is ``\\e``, every ``-`` is
``\\-`` (option names, paths and IOS keywords in help texts must copy and paste as typed),
quotes and non-ASCII characters become named glyphs. Text lines never start with a control
character (``.`` or ``'``), are wrapped at 80 columns, and their words other than plain
ones are not hyphenated.
"""

from __future__ import annotations

import re

_GLYPHS = {"\\": r"\e", "-": r"\-", '"': r"\(dq", "'": r"\(aq", "`": r"\(ga"}
_CODE = re.compile(r"``(.+?)``|`([^`]+)`")
_BULLET = re.compile(r"[*-] ")
_PLAIN = re.compile(r"\(?[A-Za-z]+[.,;:!?)]*")  # a word that may be hyphenated
_LONG = re.compile(r"[A-Za-z]{4,}")  # (hyphenation needs letters)


def escape(text: str) -> str:
    """``text`` as roff text, each run of blanks (newlines included) one space."""
    out = []
    for char in re.sub(r"\s+", " ", text):
        if char in _GLYPHS:
            out.append(_GLYPHS[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            continue  # a control character prints as nothing
        elif ord(char) > 0x7E:
            out.append(f"\\[u{ord(char):04X}]")
        else:
            out.append(char)
    return "".join(out)


def bold(text: str) -> str:
    """``text`` in bold (what is typed as it is: options, keywords)."""
    return rf"\fB{escape(text)}\fR"


def italic(text: str) -> str:
    """``text`` in italics (what stands for a value: metavariables, file names)."""
    return rf"\fI{escape(text)}\fR"


def markup(text: str) -> str:
    """Prose whose ````literal```` (reST) or ```literal``` (markdown) spans are in bold."""
    out, end = [], 0
    for m in _CODE.finditer(text):
        out += [escape(text[end : m.start()]), bold(m.group(1) or m.group(2))]
        end = m.end()
    out.append(escape(text[end:]))
    return "".join(out)


def _word(word: str) -> str:
    return word if _PLAIN.fullmatch(word) or not _LONG.search(word) else "\\%" + word


def _guard(text: str) -> str:
    return "\\&" + text if text[:1] in (".", "'") else text


def tag(text: str) -> str:
    """One text line, as the tag after ``.TP`` must be: not starting with a blank (a break)
    nor with ``.`` or ``'`` (a request); words other than plain ones (options, paths,
    keywords in bold) are not hyphenated (``\\%`` before them)."""
    return _guard(" ".join(_word(w) for w in text.split(" ") if w))


def line(text: str, width: int = 80) -> str:
    """Text as :func:`tag` makes it, on input lines of at most ``width`` characters where
    the words allow (filled on output all the same)."""
    lines: list[str] = []
    for word in tag(text).split(" "):
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(_guard(word))
    return "\n".join(lines)


def macro(name: str, *args: str) -> str:
    """A macro call; each argument is roff already, quoted when it holds a blank."""
    quoted = [f'"{a}"' if (" " in a or not a) else a for a in args]
    return " ".join([f".{name}", *quoted])


def prose(text: str) -> list[str]:
    """Docstring-like text as roff lines: paragraphs separated by blank lines (``.PP``),
    lines starting with ``* `` or ``- `` as bullet items (``.IP``)."""
    out: list[str] = []
    for block in re.split(r"\n\s*\n", text.strip()):
        items: list[list[str]] = []
        for text_line in block.strip().splitlines():
            stripped = text_line.strip()
            if _BULLET.match(stripped) or not items:
                items.append([])
            items[-1].append(stripped)
        for item in items:
            first = item[0]
            if _BULLET.match(first):
                out += [macro("IP", r"\(bu", "2"), line(markup(" ".join([first[2:], *item[1:]])))]
            else:
                out += [macro("PP"), line(markup(" ".join(item)))]
    return out
