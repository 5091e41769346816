"""Bars on a time axis, and returns read off it without looking ahead or across gaps.

Times are integer seconds since the Unix epoch (UTC) throughout the research package: exact
equality is how a window's far end is matched to a bar, so that a window crossing a gap in the
bars is found missing instead of being stretched over the gap.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

DAY = 86_400
_UNITS = {"s": 1, "m": 60, "h": 3_600, "d": DAY, "w": 7 * DAY}
_HORIZON = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)


def to_seconds(times: np.ndarray | Sequence[datetime] | Sequence[int]) -> np.ndarray:
    """Epoch seconds (int64) from datetime64 values, aware datetimes, or epoch seconds."""
    array = np.asarray(times)
    if array.dtype.kind == "M":
        return array.astype("datetime64[s]").astype(np.int64)
    if array.dtype.kind in "iu":
        return array.astype(np.int64)
    if array.dtype == object and array.size and isinstance(array.flat[0], datetime):
        return np.fromiter(
            (_aware_seconds(value) for value in array.flat), dtype=np.int64, count=array.size
        )
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    raise TypeError(f"times must be datetimes or epoch seconds, got dtype {array.dtype}")


def _aware_seconds(value: datetime) -> int:
    if value.tzinfo is None:
        raise ValueError(f"time {value.isoformat()} has no time zone (expected UTC)")
    return int(value.timestamp())


def parse_horizon(text: str) -> int:
    """Seconds in a horizon spelled like `30m`, `4h`, `1d`; one clear error otherwise."""
    match = _HORIZON.match(text)
    if not match:
        raise ValueError(
            f"horizon {text!r} is not a number with a unit s, m, h, d or w (e.g. 4h, 1d)"
        )
    seconds = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if seconds <= 0 or seconds != int(seconds):
        raise ValueError(f"horizon {text!r} must be a positive whole number of seconds")
    return int(seconds)


def spell(seconds: int) -> str:
    """The shortest spelling of a duration in the units `parse_horizon` reads."""
    for unit in ("w", "d", "h", "m"):
        if seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True)
class Bars:
    """One symbol's bars: open times (ascending, unique), opens and closes, and the interval."""

    open_time: np.ndarray
    open: np.ndarray
    close: np.ndarray
    interval: int

    @classmethod
    def build(
        cls,
        open_time: np.ndarray | Sequence[datetime] | Sequence[int],
        open_: Sequence[float] | np.ndarray,
        close: Sequence[float] | np.ndarray,
        interval: timedelta | None = None,
    ) -> Bars:
        """Checked bars; the interval defaults to the most common step between open times."""
        times = to_seconds(open_time)
        opens = np.asarray(open_, dtype=float)
        closes = np.asarray(close, dtype=float)
        if not (times.size == opens.size == closes.size):
            raise ValueError(
                f"bars: {times.size} open times, {opens.size} opens, {closes.size} closes"
            )
        if times.size < 2:
            raise ValueError(f"bars: need at least 2 bars, got {times.size}")
        steps = np.diff(times)
        if np.any(steps <= 0):
            at = int(np.flatnonzero(steps <= 0)[0]) + 1
            raise ValueError(f"bars: open times must strictly increase (bar {at})")
        if np.any(~np.isfinite(opens)) or np.any(opens <= 0):
            at = int(np.flatnonzero(~np.isfinite(opens) | (opens <= 0))[0])
            raise ValueError(f"bars: open price must be positive (bar {at})")
        if interval is None:
            values, counts = np.unique(steps, return_counts=True)
            seconds = int(values[np.argmax(counts)])
        else:
            seconds = int(interval.total_seconds())
        return cls(open_time=times, open=opens, close=closes, interval=seconds)

    @property
    def n_gaps(self) -> int:
        """How many steps between bars are longer than the interval."""
        return int(np.count_nonzero(np.diff(self.open_time) > self.interval))

    def check_horizon(self, name: str, seconds: int) -> None:
        """A horizon must be a whole number of bars: shorter than one bar is meaningless."""
        if seconds < self.interval:
            raise ValueError(
                f"horizon {name} is shorter than the bars' interval {spell(self.interval)}"
            )
        if seconds % self.interval:
            raise ValueError(
                f"horizon {name} is not a whole number of the bars' interval {spell(self.interval)}"
            )

    def index_at(self, times: np.ndarray) -> np.ndarray:
        """Index of the bar opening exactly at each time, -1 where there is none."""
        position = np.searchsorted(self.open_time, times)
        clipped = np.minimum(position, self.open_time.size - 1)
        return np.where(self.open_time[clipped] == times, clipped, -1)

    def log_open(self) -> np.ndarray:
        return np.log(self.open)

    def entry_index(self, received: np.ndarray) -> np.ndarray:
        """Index of the first bar opening at or after each time: the bar a fill would use (the
        event study's alignment, and the impact labels'). Past the last bar it is `len(bars)`."""
        return np.searchsorted(self.open_time, received, side="left")


@dataclass(frozen=True)
class ForwardReturns:
    """Every bar's forward log return over one horizon, NaN where the window is incomplete."""

    values: np.ndarray
    gap: np.ndarray
    beyond_end: np.ndarray


def forward_returns(bars: Bars, seconds: int) -> ForwardReturns:
    """log(open at t + h) - log(open at t) for every bar t, never across a gap or past the end."""
    target = bars.open_time + seconds
    far = bars.index_at(target)
    beyond = target > bars.open_time[-1]
    gap = (far < 0) & ~beyond
    log_open = bars.log_open()
    values = np.where(far >= 0, log_open[np.maximum(far, 0)] - log_open, np.nan)
    return ForwardReturns(values=values, gap=gap, beyond_end=beyond)


def log_return_between(bars: Bars, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """log(open at end) - log(open at start) where bars open at both times exactly, else NaN."""
    first, last = bars.index_at(start), bars.index_at(end)
    log_open = bars.log_open()
    ok = (first >= 0) & (last >= 0)
    return np.where(ok, log_open[np.maximum(last, 0)] - log_open[np.maximum(first, 0)], np.nan)


def past_mean(
    bars: Bars, forward: ForwardReturns, seconds: int, at: np.ndarray, lookback: int
) -> np.ndarray:
    """Mean forward return of the bars whose whole window lies in [at - lookback, at].

    This is the drift an item is measured against: only windows that had closed by the time the
    item arrived count, so an impact label built from it cannot leak the future.
    """
    finite = np.isfinite(forward.values)
    sums = np.concatenate(([0.0], np.cumsum(np.where(finite, forward.values, 0.0))))
    counts = np.concatenate(([0], np.cumsum(finite)))
    low = np.searchsorted(bars.open_time, at - lookback, side="left")
    high = np.searchsorted(bars.open_time, at - seconds, side="right")
    high = np.maximum(high, low)
    n = counts[high] - counts[low]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (sums[high] - sums[low]) / np.maximum(n, 1), np.nan)
