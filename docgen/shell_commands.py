"""The COMMANDS section of frrdmvpn-shell's manual page: the rows of :mod:`docgen.shell_reference`
(the walk docs/shell.md comes from) as roff."""

from __future__ import annotations

import re

from docgen.roff import bold, escape, italic, line, macro, markup, tag
from docgen.shell_reference import Row, config_rows, exec_rows, language_rows, modifier_rows

# keywords and numbers are typed as they are; A.B.C.D, WORD, TunnelN, <1-65535> stand for one
_PIECES = re.compile(r"(?P<word>[a-z0-9][a-z0-9-]*)|(?P<value>[A-Z][A-Za-z.]*|<[^>]*>)|.")


def syntax(text: str) -> str:
    """A command's syntax: keywords in bold, what stands for a value in italics."""
    out = []
    for m in _PIECES.finditer(re.sub(r"\s*\|\s*", " | ", text)):  # man(7) spaces alternatives
        if m.group("word"):
            out.append(bold(m.group()))
        elif m.group("value"):
            out.append(italic(m.group()))
        else:
            out.append(escape(m.group()))
    return "".join(out)


def _item(row: Row, note: str = "") -> list[str]:
    text = markup(row.help) + (f" ({note})" if note else "")
    return [macro("TP"), tag(syntax(row.syntax)), line(text)]


def _where(row: Row) -> str:
    levels = "user and privileged EXEC" if row.user else "privileged EXEC only"
    return f"{levels}; takes {bold('|')} modifiers" if row.pipes else levels


def commands_section() -> tuple[str, ...]:
    """Every command of the shell's tree, its output modifiers and the configuration
    language, mode by mode."""
    out = [
        line(
            markup(
                "Every keyword can be abbreviated to a unique prefix (`sh dm`, `conf t`); "
                "`?` after a word lists what can follow, TAB completes a keyword."
            )
        )
    ]
    out += [macro("SS", "EXEC commands")]
    for row in exec_rows():
        out += _item(row, _where(row))
    out += [
        macro("SS", "Output modifiers"),
        line(
            markup(
                "Commands that print output take one modifier after `|`; the rest of the line "
                "is the regular expression (Python's, case-sensitive)."
            )
        ),
    ]
    for row in modifier_rows():
        out += _item(row)
    out += [
        macro("SS", "Configuration mode"),
        line(markup("`configure terminal` enters it. The shell's own commands, in every mode:")),
    ]
    for row in config_rows():
        out += _item(row)
    out += [
        macro("PP"),
        line(
            markup(
                "Every other line is the configuration language, sent to the daemon as typed and "
                "applied at once when the configuration it leads to is valid. Each command has a "
                "`no` form (remove it, or switch a default-on setting off) and a `default` form."
            )
        ),
    ]
    for mode, rows in language_rows():
        out += [macro("SS", escape(f"({mode.prompt})# {mode.title}"))]
        for row in rows:
            out += _item(row, "" if row.no_form else "without a " + bold("no") + " form")
    return tuple(out)
