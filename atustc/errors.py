"""The one exception type for bad user input.

Raise :class:`AtustcError` with a one-line message that names the file, row or option and what
is wrong. The CLI prints it as ``error: <message>`` on stderr and exits with status 2, without a
traceback. Library callers can catch it like any exception.
"""

from __future__ import annotations


class AtustcError(Exception):
    """A user-facing error: bad input, bad option, or a file that cannot be used."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message
