"""What can go wrong with the store, as one-line errors the CLI prints without a traceback.

SQLAlchemy's own messages run over several lines (the SQL, the parameters, a link); `explain`
keeps the driver's first line and names the store, so `status` and `run` say what is wrong with
which file or server and exit with a user-error code instead of an internal error.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from bot.errors import UserError


class StoreError(UserError):
    """The store cannot be opened, read or written; the message names the store and why."""


class StoreCorruptError(StoreError):
    """The database fails its integrity check or is not a lorabot store."""


class StoreLockedError(StoreError):
    """Another `lorabot run` holds the store; the message names its pid."""


class StoreWriteError(StoreError):
    """A commit failed (a full disk, a read-only file, a lost server): nothing more is written."""


def display_url(url: str) -> str:
    """A store URL fit for a message or a log line: the password masked."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable store url>"


def _first_line(error: BaseException) -> str:
    original: Any = getattr(error, "orig", None) or error
    text = str(original).strip() or type(original).__name__
    return text.splitlines()[0]


def explain(url: str, error: BaseException, doing: str) -> StoreError:
    """A one-line `StoreError` for `error`, raised while `doing` something with the store."""
    detail = _first_line(error)
    lowered = detail.lower()
    where = display_url(url)
    if "readonly" in lowered or "read-only" in lowered or "read only" in lowered:
        return StoreError(f"store {where} is read-only ({detail}); {doing} needs to write to it")
    if "disk is full" in lowered or "no space" in lowered:
        return StoreWriteError(f"store {where}: the disk is full ({detail}) while {doing}")
    if "not a database" in lowered or "malformed" in lowered or "corrupt" in lowered:
        return StoreCorruptError(
            f"store {where} is corrupt ({detail}); restore it from a backup or move it away"
        )
    if "unable to open" in lowered:
        return StoreError(f"store {where} cannot be opened ({detail})")
    if isinstance(error, sa.exc.OperationalError) and not where.startswith("sqlite"):
        return StoreError(f"store {where} is unreachable ({detail})")
    return StoreError(f"store {where}: {detail} (while {doing})")
