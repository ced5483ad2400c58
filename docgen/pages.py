"""The four programs' manual pages (:data:`PAGES`): their parsers, with what a parser does
not say (summary, files, environment, exit status, see also). Each builder imports its
program only when called."""

from __future__ import annotations

from collections.abc import Callable

from docgen.manpage import Page, Section, option_default
from docgen.roff import bold, line, macro, markup, tag

#: The pages the package installs (debian/rules), which each page refers to; the lab's is
#: not among them: a router has no frrdmvpn-lab.
_PACKAGED = ("frrdmvpnd(8)", "frrdmvpn-proxy(8)", "frrdmvpn-shell(1)")


def _others(name: str, *more: str) -> tuple[str, ...]:
    return (*(r for r in _PACKAGED if not r.startswith(f"{name}(")), *more)


def frrdmvpnd() -> Page:
    from frrdmvpn.application.frrdmvpnd import build_parser  # noqa: PLC0415
    from frrdmvpn.config.charon_socket import CHARON_SOCKET, DROPIN  # noqa: PLC0415

    parser = build_parser()
    status = (
        line(
            markup(
                "0 on success; 1 on failure. `configured`: 0 when the configuration defines a "
                "tunnel, 1 when it defines none (systemd skips the unit), 255 when it is missing, "
                "unreadable or invalid (the unit fails; the reason is printed). `guard check`: 1 "
                "only when a valid configuration defines a tunnel and its guards are missing; a "
                "missing or invalid configuration is a warning (exit 0), so that charon and FRR "
                "start."
            )
        ),
    )
    return Page(
        parser,
        8,
        "DMVPN management daemon for FRR nhrpd and strongSwan",
        extra=(Section("Exit status", status),),
        files=(
            (
                option_default(parser, "--config"),
                "The saved configuration (Cisco IOS style), applied at start and written by "
                "`save` (`write memory` in frrdmvpn-shell).",
            ),
            (
                option_default(parser, "--api-socket"),
                "The gRPC API socket, for frrdmvpn-shell and other clients.",
            ),
            (
                option_default(parser, "--running"),
                "The running configuration: what was applied last.",
            ),
            (
                str(DROPIN),
                f"Written by `configured --sync-charon-socket` when the configuration defines a "
                f"tunnel (charon's VICI socket moves to {CHARON_SOCKET}), removed when it "
                f"defines none.",
            ),
        ),
        see_also=_others("frrdmvpnd", "nhrpd(8)", "swanctl(8)"),
    )


def frrdmvpn_proxy() -> Page:
    from frrdmvpn.application.proxy import build_parser  # noqa: PLC0415

    parser = build_parser()
    status = (
        line(
            markup(
                "0 after SIGTERM or SIGINT; 2 when the authorization policy given without "
                "`--config` cannot be used; 3 when a process already serves `--listen` (charon "
                "itself, before it restarted onto its relocated socket): nothing is taken "
                "over."
            )
        ),
    )
    return Page(
        parser,
        8,
        "VICI proxy and NHRP binding authorization for frrdmvpn",
        extra=(Section("Exit status", status),),
        files=(
            (
                option_default(parser, "--listen"),
                "The VICI socket nhrpd connects to: this proxy listens there.",
            ),
            (
                option_default(parser, "--upstream"),
                "charon's own VICI socket, moved aside for the proxy.",
            ),
            (option_default(parser, "--events"), "nhrpd's event socket."),
            (option_default(parser, "--pidfile"), "This process's ID, for `frrdmvpnd apply`."),
            (option_default(parser, "--journal"), "The recent authorization decisions."),
        ),
        see_also=_others("frrdmvpn-proxy", "nhrpd(8)", "swanctl(8)"),
    )


_SHELL = """\
frrdmvpn-shell is a Cisco IOS-like shell over frrdmvpnd's gRPC API; it holds no state of its
own. Configuration-mode lines are sent to the daemon as typed, each applied at once when the
configuration it leads to is valid.

On a terminal it is interactive (line editing, history, `?` for help, TAB completion,
`terminal length` paging). With `-c` it runs each command and exits; with standard input not
a terminal it runs each line of it. Non-interactive output goes to standard output, a failed
command and its error to standard error.
"""


def frrdmvpn_shell() -> Page:
    from cli.main import build_parser  # noqa: PLC0415
    from docgen.shell_commands import commands_section  # noqa: PLC0415
    from frrdmvpn.client import ADMIN_TARGET, DEFAULT_TARGET  # noqa: PLC0415

    environment = (
        macro("TP"),
        tag(bold("FRRDMVPN_API")),
        line(markup("The API to use when `--target` is not given.")),
        macro("TP"),
        tag(bold("TERM")),
        line(
            markup(
                "With `vt100`, `vt102`, `dumb` or unset, `--editor auto` uses the "
                "terminal's own line editing, as automation (Netmiko) expects."
            )
        ),
    )
    status = (
        line(markup("0; 1 if a command failed (`-c`, standard input); 2 for wrong options.")),
    )
    return Page(
        build_parser(),
        1,
        "Cisco IOS-like operator shell for frrdmvpn",
        description=_SHELL,
        extra=(
            Section("Commands", commands_section()),
            Section("Exit status", status),
            Section("Environment", environment),
        ),
        files=(
            (
                ADMIN_TARGET.removeprefix("unix:"),
                "frrdmvpnd's API socket for administrators "
                "(group frrdmvpn-admin, and root): configuration, secrets.",
            ),
            (
                DEFAULT_TARGET.removeprefix("unix:"),
                "frrdmvpnd's API socket for operators "
                "(group frrdmvpn): show, clear, debug; configuration commands answer "
                '"Command authorization failed."',
            ),
        ),
        see_also=_others("frrdmvpn-shell"),
    )


def frrdmvpn_lab() -> Page:
    from lab.cli import build_parser  # noqa: PLC0415

    return Page(
        build_parser(),
        1,
        "three-node DMVPN test lab for frrdmvpn",
        see_also=_others("frrdmvpn-lab"),
    )


PAGES: tuple[Callable[[], Page], ...] = (frrdmvpnd, frrdmvpn_proxy, frrdmvpn_shell, frrdmvpn_lab)
"""frrdmvpnd.8, frrdmvpn-proxy.8, frrdmvpn-shell.1, frrdmvpn-lab.1."""
