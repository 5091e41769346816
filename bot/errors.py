"""Errors grouped by how to react, not by where they came from.

The CLI prints a `UserError` as one line and exits non-zero with no traceback: bad input files,
bad config, a missing model, an unreachable server the user pointed at. Adapters translate SDK
exceptions into these (or into their own subclasses) at their boundary so nothing foreign leaks.
"""

from __future__ import annotations


class UserError(Exception):
    """Something the user can fix; its message says what and where."""

    exit_code = 1


class InputError(UserError):
    """A malformed input file or row; the message names the file and line."""


class FatalError(UserError):
    """The run cannot go on safely (bad credentials, bad config): stop and flatten."""

    exit_code = 3


class TransientError(Exception):
    """Network trouble, rate limits: retry with backoff; never shown as a user error by itself."""
