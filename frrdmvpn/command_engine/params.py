"""Typed parameters of IOS commands: how a word is read, judged and begun.

A :class:`ParamType` reads a word into a value (``None``: not this type), says why a
word is refused when more than "invalid input" can be said, and whether a word can still
become a value (where ``^`` goes, what ``?`` inside a word lists). ``rank`` orders the
alternatives at one place like IOS: fixed choices (0) and typed values (1) before keywords
matched by abbreviation, any word (2) last.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv4Network

from frrdmvpn.command_engine.tokens import NUMBER_DIGITS_MAX, is_decimal, number


class ParamType:
    """Any word; the base of every parameter type."""

    label = "WORD"
    rank = 2
    rest_of_line = False
    #: the longest text :meth:`partial` can accept (``None``: no bound)
    longest: int | None = None

    def read(self, token: str) -> object | None:
        return token

    def read_lenient(self, token: str) -> object | None:
        """Like :meth:`read`, but accepting values a validator should judge (out of range)."""
        return self.read(token)

    def reason(self, token: str) -> str | None:
        """Why ``token`` is not accepted, when more can be said than "invalid input"."""
        return None

    def partial(self, text: str) -> bool:
        """Whether ``text`` can begin a value."""
        return True

    def alternatives(self, token: str) -> tuple[str, ...]:
        """The values ``token`` abbreviates when it abbreviates more than one."""
        return ()


class Word(ParamType):
    """Any word, shown as ``label``."""

    def __init__(self, label: str = "WORD") -> None:
        self.label = label


class Line(ParamType):
    """The rest of the line, spacing kept (a regular expression, a description)."""

    label = "LINE"
    rest_of_line = True


class IntRange(ParamType):
    """A decimal integer within ``lo``..``hi``."""

    rank = 1
    longest = NUMBER_DIGITS_MAX

    def __init__(self, lo: int, hi: int) -> None:
        self.lo, self.hi = lo, hi
        self.label = f"<{lo}-{hi}>"

    def read(self, token: str) -> object | None:
        value = number(token)
        return value if value is not None and self.lo <= value <= self.hi else None

    def read_lenient(self, token: str) -> object | None:
        return number(token)

    def reason(self, token: str) -> str | None:
        if is_decimal(token):
            return f"{token} is out of range {self.lo}-{self.hi}"
        return None

    def partial(self, text: str) -> bool:
        value = number(text)
        return text == "" or (value is not None and value <= self.hi)


def ipv4_address(token: str) -> IPv4Address | None:
    """``token`` as a dotted-quad address (no leading zeros, ASCII digits only)."""
    if token.count(".") != 3 or not token.isascii():
        return None
    try:
        return IPv4Address(token)
    except ValueError:
        return None


_IPV4_BEGUN = re.compile(r"[0-9]{0,3}(\.[0-9]{0,3}){0,3}")


class Ipv4(ParamType):
    """A dotted-quad IPv4 address."""

    label = "A.B.C.D"
    rank = 1
    longest = len("255.255.255.255")

    def read(self, token: str) -> object | None:
        return ipv4_address(token)

    def partial(self, text: str) -> bool:
        if not _IPV4_BEGUN.fullmatch(text) or ".." in text or text.startswith("."):
            return text == ""
        return all(int(p) <= 255 for p in text.split(".") if p)


class Mask(ParamType):
    """A contiguous netmask (``255.255.255.0``); read as the prefix length."""

    label = "M.M.M.M"
    rank = 1
    inverse = False  # a wildcard mask: the bits to ignore are set
    what = "netmask"

    def read(self, token: str) -> object | None:
        mask = ipv4_address(token)
        if mask is None:
            return None
        if self.inverse:
            mask = IPv4Address(int(mask) ^ 0xFFFFFFFF)
        try:
            return IPv4Network(f"0.0.0.0/{mask}").prefixlen
        except ValueError:
            return None

    def reason(self, token: str) -> str | None:
        return f"{token} is not a contiguous {self.what}" if ipv4_address(token) else None


class Wildcard(Mask):
    """A contiguous wildcard (inverse) mask (``0.0.0.255``); read as the prefix length."""

    label = "W.W.W.W"
    inverse = True
    what = "wildcard mask"


_PREFIX = re.compile(r"[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}")


class Prefix(ParamType):
    """An IPv4 prefix ``A.B.C.D/M`` without host bits."""

    label = "A.B.C.D/M"
    rank = 1

    def read(self, token: str) -> object | None:
        if not _PREFIX.fullmatch(token):
            return None
        try:
            return IPv4Network(token)
        except ValueError:
            return None

    def reason(self, token: str) -> str | None:
        if not _PREFIX.fullmatch(token):
            return None
        try:
            network = IPv4Network(token, strict=False)
        except ValueError:
            return f"{token} is not an IPv4 prefix"
        return f"{token} has host bits set (did you mean {network}?)"


#: ``Tunnel0``, ``tunnel0``, ``Tu0`` ...: an abbreviation of "tunnel" and the number.
TUNNEL = re.compile(r"(?i)tu(?:n(?:n(?:e(?:l)?)?)?)?([0-9]{1,10})")


class Tunnel(ParamType):
    """An mGRE tunnel interface ``TunnelN`` (also ``tunnelN``, ``TuN``), N at most
    ``maximum``: read as ``N``."""

    label = "TunnelN"
    rank = 1
    longest = len("tunnel") + 10

    def __init__(self, maximum: int) -> None:
        self.maximum = maximum

    def read(self, token: str) -> object | None:
        m = TUNNEL.fullmatch(token)
        if m is None:
            return None
        value = int(m.group(1))
        return value if value <= self.maximum else None

    def reason(self, token: str) -> str | None:
        return (
            f"only mGRE tunnels are configured here: {token!r} is not Tunnel0-Tunnel{self.maximum}"
        )

    def partial(self, text: str) -> bool:
        head = text.rstrip("0123456789")
        digits = text[len(head) :]
        if not head:
            return not digits
        return "tunnel".startswith(head.lower()) and (not digits or len(head) >= 2)


class Choice(ParamType):
    """One of fixed keywords, captured as a value (by unique prefix, like keywords)."""

    rank = 0

    def __init__(self, *values: str) -> None:
        self.values = values
        self.label = values[0] if len(values) == 1 else "{" + "|".join(values) + "}"
        self.longest = max(len(v) for v in values)

    def read(self, token: str) -> object | None:
        low = token.lower()
        if low in self.values:
            return low
        hits = [v for v in self.values if v.startswith(low)]
        return hits[0] if len(hits) == 1 else None

    def reason(self, token: str) -> str | None:
        hits = self.alternatives(token)
        return f"ambiguous abbreviation {token!r} ({', '.join(hits)})" if hits else None

    def alternatives(self, token: str) -> tuple[str, ...]:
        hits = tuple(v for v in self.values if v.startswith(token.lower()))
        return hits if len(hits) > 1 else ()

    def partial(self, text: str) -> bool:
        return any(v.startswith(text.lower()) for v in self.values)


class Whole(Choice):
    """A :class:`Choice` that takes only whole words: where a parameter follows that could
    be any word (``fqdn [domain] NAME``), an abbreviation would take a name (``dom``)."""

    def read(self, token: str) -> object | None:
        low = token.lower()
        return low if low in self.values else None

    def reason(self, token: str) -> str | None:
        return None

    def alternatives(self, token: str) -> tuple[str, ...]:
        return ()
