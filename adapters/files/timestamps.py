"""Times read from files: ISO-8601 (naive means UTC) or epoch seconds/milliseconds, in range.

A time the engine cannot add a window or a bar interval to (year 9999, an epoch in the far
future) is refused at its line here, instead of overflowing deep inside a replay.
"""

from __future__ import annotations

from datetime import UTC, datetime

from bot.events import parse_time

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def out_of_range(ts: datetime) -> str | None:
    if EARLIEST <= ts < LATEST:
        return None
    return f"time {ts.isoformat()} is out of range (years {EARLIEST.year} to {LATEST.year - 1})"


def read_time(value: object) -> datetime:
    """A file's time value; ValueError (with the reason) for anything that is not one in range."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"{value!r} is not a time")
    if isinstance(value, str) and len(value) > 64:
        raise ValueError(f"{value[:40]!r}... is not a time")
    try:
        ts = parse_time(value)
    except (ValueError, OverflowError, OSError):
        raise ValueError(f"bad timestamp {value!r}") from None
    problem = out_of_range(ts)
    if problem:
        raise ValueError(problem)
    return ts


def read_iso_time(text: str) -> datetime:
    """A bars CSV's time: `datetime.fromisoformat` first (the common case), then the rest."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return read_time(text)
    try:
        ts = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"bad timestamp {text!r}") from None
    problem = out_of_range(ts)
    if problem:
        raise ValueError(problem)
    return ts
