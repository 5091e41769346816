"""Bybit kline interval codes and the bar boundaries they imply.

Bybit names intervals by minutes ("1" ... "720") or by letter ("D", "W", "M"). Bars open on
multiples of the interval since the epoch (weeks on Mondays, months on the 1st), which is what
gap detection and the downloader's paging rely on.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

CODES = ("1", "3", "5", "15", "30", "60", "120", "240", "360", "720", "D", "W", "M")

_MINUTES = {code: int(code) for code in CODES[:10]}
_FIXED_MS = {**{code: minutes * 60_000 for code, minutes in _MINUTES.items()}, "D": 86_400_000}
_WEEK_MS = 7 * 86_400_000
_MONDAY_OFFSET_MS = 4 * 86_400_000  # 1970-01-01 was a Thursday; Bybit's weeks open on Monday

_ALIASES = {
    "1m": "1",
    "3m": "3",
    "5m": "5",
    "15m": "15",
    "30m": "30",
    "1h": "60",
    "2h": "120",
    "4h": "240",
    "6h": "360",
    "12h": "720",
    "1d": "D",
    "1w": "W",
    "1M": "M",
}


def normalise(value: str) -> str:
    """A Bybit interval code from a code ("60", "D") or a common alias ("1h", "1d")."""
    text = value.strip()
    if text in CODES:
        return text
    if text in _ALIASES:
        return _ALIASES[text]
    if text.lower() in _ALIASES:
        return _ALIASES[text.lower()]
    raise ValueError(
        f"unknown kline interval {value!r}: use one of {', '.join(CODES)} "
        "(or 1m 5m 15m 1h 4h 1d 1w 1M)"
    )


def fixed_ms(code: str) -> int | None:
    """The interval in ms, or None for months (calendar length)."""
    if code == "W":
        return _WEEK_MS
    return _FIXED_MS.get(code)


def open_ms(code: str, ts_ms: int) -> int:
    """The open time of the bar that contains `ts_ms`."""
    if code == "M":
        moment = datetime.fromtimestamp(ts_ms / 1000, UTC)
        return int(datetime(moment.year, moment.month, 1, tzinfo=UTC).timestamp() * 1000)
    if code == "W":
        return ts_ms - (ts_ms - _MONDAY_OFFSET_MS) % _WEEK_MS
    step = _FIXED_MS[code]
    return ts_ms - ts_ms % step


def next_open_ms(code: str, open_time_ms: int) -> int:
    """The open time of the bar after the one opening at `open_time_ms`."""
    if code == "M":
        moment = datetime.fromtimestamp(open_time_ms / 1000, UTC)
        year, month = (
            (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
        )
        return int(datetime(year, month, 1, tzinfo=UTC).timestamp() * 1000)
    step = fixed_ms(code)
    assert step is not None
    return open_time_ms + step


def close_of(code: str, ts_open: datetime) -> datetime:
    return datetime.fromtimestamp(next_open_ms(code, int(ts_open.timestamp() * 1000)) / 1000, UTC)


def span(code: str) -> timedelta:
    """A typical bar length (months count as 30 days), for progress estimates."""
    step = fixed_ms(code)
    return timedelta(milliseconds=step if step is not None else 30 * 86_400_000)
