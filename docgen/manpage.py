"""Manual pages from argument parsers: :func:`render` is pure, one :class:`Page` (a parser
and its prose) in, roff with man(7) macros out. The pages themselves are in
:mod:`docgen.pages`; ``python3 -m docgen`` writes them."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from dataclasses import dataclass

from docgen.roff import bold, escape, italic, line, macro, markup, prose, tag

MANUALS = {1: "User Commands", 8: "System Manager's Manual"}


@dataclass(frozen=True)
class Section:
    """An extra section: its title and its roff lines."""

    title: str
    lines: tuple[str, ...]


@dataclass(frozen=True)
class Page:
    """A program's manual page: its parser (``prog`` is the page's name), its section,
    the one-line summary of NAME, and the prose the parser does not hold."""

    parser: argparse.ArgumentParser
    section: int
    summary: str
    description: str | None = None  # default: the parser's description
    extra: tuple[Section, ...] = ()  # after OPTIONS and COMMANDS
    files: tuple[tuple[str, str], ...] = ()  # path, what it is
    see_also: tuple[str, ...] = ()  # "frrdmvpn-shell(1)"

    @property
    def filename(self) -> str:
        return f"{self.parser.prog}.{self.section}"


# --- the parser ---------------------------------------------------------------------------


def _actions(parser: argparse.ArgumentParser, *, with_help: bool) -> list[argparse.Action]:
    """The documented arguments, options first (argparse has no public list of them)."""
    shown = [
        a
        for a in parser._actions
        if a.help != argparse.SUPPRESS and (with_help or not isinstance(a, argparse._HelpAction))
    ]
    return [a for a in shown if a.option_strings] + [a for a in shown if not a.option_strings]


def subcommands(
    parser: argparse.ArgumentParser,
) -> Iterator[tuple[str, str, argparse.ArgumentParser]]:
    """Each subcommand's name, help and parser."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield name, helps.get(name, ""), sub


def option_default(parser: argparse.ArgumentParser, option: str) -> str:
    """The default of ``option`` in ``parser`` or the first of its subcommands to give it
    one (a path for FILES)."""
    parsers = [parser, *(sub for _, _, sub in subcommands(parser))]
    for action in (a for p in parsers for a in p._actions):
        if option in action.option_strings and action.default not in (None, argparse.SUPPRESS):
            return str(action.default)
    raise KeyError(option)


def _metavar(action: argparse.Action) -> str:
    if isinstance(action, argparse._SubParsersAction):
        return italic("COMMAND")
    if isinstance(action.metavar, tuple):
        return r"\~".join(italic(m) for m in action.metavar)
    if action.metavar is not None:
        return italic(action.metavar)
    if action.choices is not None:
        return "{" + " | ".join(bold(str(c)) for c in action.choices) + "}"
    return italic(action.dest.upper() if action.option_strings else action.dest)


_NARGS = {
    "?": "[{}]",
    "*": r"[{}\~...]",
    argparse.REMAINDER: r"[{}\~...]",
    "+": r"{0}\~[{0}\~...]",
    argparse.PARSER: r"{}\~...",
}


def _arguments(action: argparse.Action) -> str:
    """What follows an option (or stands for a positional): ``M``, ``[M]``, ``M [M ...]``."""
    meta, nargs = _metavar(action), action.nargs
    if isinstance(nargs, int):
        return r"\~".join([meta] * nargs)
    return _NARGS.get(nargs or "", "{}").format(meta)


def _usage_item(action: argparse.Action) -> str:
    if not action.option_strings:
        return _arguments(action)
    args = _arguments(action)
    item = bold(action.option_strings[0]) + (rf"\~{args}" if args else "")
    return item if action.required else f"[{item}]"


def _help(action: argparse.Action, prog: str) -> str:
    """The help text (``%(default)s`` and the like expanded, as argparse does) and the
    default, unless the text already says it."""
    text = action.help or ""
    if "%" in text:
        params = {k: v for k, v in vars(action).items() if v is not argparse.SUPPRESS}
        text = text % {**params, "prog": prog}
    out = markup(text)
    default = action.default
    said = "default" in text.lower()
    if action.nargs != 0 and default not in (None, argparse.SUPPRESS, []) and not said:
        value = bold(str(default))
        out = f"{out} (default: {value})" if out else f"Default: {value}."
    return out


# --- the page -----------------------------------------------------------------------------


def synopsis(parser: argparse.ArgumentParser, *, brief: bool = False) -> list[str]:
    """``.SY`` with every argument; ``brief``: the required ones and ``[options]``."""
    actions = _actions(parser, with_help=not brief)
    items = [_usage_item(a) for a in actions if not brief or a.required or not a.option_strings]
    if brief and any(not a.required and a.option_strings for a in actions):
        items.insert(0, f"[{italic('options')}]")
    return [macro("SY", escape(parser.prog)), *(line(i) for i in items), macro("YS")]


def items(parser: argparse.ArgumentParser, *, with_help: bool = True) -> list[str]:
    """A ``.TP`` item per argument: its names and metavariables, its help."""
    out: list[str] = []
    for action in _actions(parser, with_help=with_help):
        if isinstance(action, argparse._SubParsersAction):
            continue  # COMMANDS
        args = _arguments(action)
        label = ", ".join(bold(o) for o in action.option_strings) or args
        if action.option_strings and args:
            label = f"{label} {args}"
        body = _help(action, parser.prog)
        out += [macro("TP"), tag(label), *([line(body)] if body else [])]
    return out


def _commands(parser: argparse.ArgumentParser) -> list[str]:
    out: list[str] = []
    for name, text, sub in subcommands(parser):
        out += [macro("SS", escape(name))]
        out += [line(markup(text[:1].upper() + text[1:] + "."))] if text else []
        out += [*synopsis(sub), *items(sub, with_help=False)]
    return out


def _description(text: str) -> list[str]:
    lines = prose(text)
    return lines[1:] if lines[:1] == [macro("PP")] else lines  # no paragraph break after .SH


def _see_also(refs: tuple[str, ...]) -> list[str]:
    out = []
    for i, ref in enumerate(refs):
        name, _, section = ref.rstrip(")").partition("(")
        comma = "," if i < len(refs) - 1 else ""
        out.append(macro("BR", r"\%" + escape(name), f"({section}){comma}"))
    return out


def render(page: Page, *, date: str, version: str) -> str:
    """The manual page, roff with man(7) macros."""
    parser, name = page.parser, page.parser.prog
    subs = list(subcommands(parser))
    iso = re.fullmatch(r"\d{4}-\d\d-\d\d", date)  # as it is: mandoc reads the date
    title = [escape(name.upper()), str(page.section), date if iso else escape(date)]
    title += [escape(f"frrdmvpn {version}"), escape(MANUALS[page.section])]
    out = [
        rf'.\" Generated by "python3 -m docgen" from the parser of {name}.',
        macro("TH", *title),
        macro("SH", "NAME"),
        line(rf"{escape(name)} \- {escape(page.summary)}"),
        macro("SH", "SYNOPSIS"),
        *synopsis(parser),
        *(s for _, _, sub in subs for s in synopsis(sub, brief=True)),
        macro("SH", "DESCRIPTION"),
        *_description(page.description or parser.description or page.summary),
        macro("SH", "OPTIONS"),
        *items(parser),
    ]
    if subs:
        out += [macro("SH", "COMMANDS"), *_commands(parser)]
    for extra in page.extra:
        out += [macro("SH", escape(extra.title.upper())), *extra.lines]
    if page.files:
        out.append(macro("SH", "FILES"))
        for path, text in page.files:
            out += [macro("TP"), tag(italic(path)), line(markup(text))]
    if page.see_also:
        out += [macro("SH", "SEE ALSO"), *_see_also(page.see_also)]
    return "\n".join(out) + "\n"
