"""The one exception type for bad user input.

Raise :class:`AtustcError` with a one-line message that names the file, row or option and what
is wrong. The CLI prints it as ``error: <message>`` on stderr and exits with status 2, without a
traceback. Library callers can catch it like any exception.
"""

from __future__ import annotations

from collections.abc import Iterable


class AtustcError(Exception):
    """A user-facing error: bad input, bad option, or a file that cannot be used."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def unknown_name(kind: str, name: str, choices: Iterable[str], listing: str) -> AtustcError:
    """The error for a name missing from a registry, with close matches and the full list.

    ``unknown_name("method", "uniatt", names, "registered")`` reads
    ``unknown method 'uniatt'; did you mean uniat? (registered: transreid, uniat)``.
    """
    import difflib

    choices = sorted(choices)
    close = difflib.get_close_matches(name, choices, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return AtustcError(f"unknown {kind} {name!r}{hint} ({listing}: {', '.join(choices)})")
