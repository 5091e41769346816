"""Numeric market features of a headline, from bars that had closed by the time it arrived.

A bar is known once it has closed: its close time (open + interval) is at or before the item's
`received` time (on a tie the replay releases the bar first, so a backtest sees it too). Every
feature reads only bars up to the last such bar, `c`; nothing at or after the item's entry bar
(the first opening at or after `received`, where its label begins) can reach a feature. That is
the whole no-look-ahead argument, and `tests/impact/test_features.py` changes every later bar to
prove it.

Groups (`--features returns,volatility,volume`):
- returns: log close-to-close returns over 1h, 4h and 24h up to bar c, and the move over the
  label's horizon before the item (`pre_<horizon>`, the reactive part: "Bitcoin spikes to $20K");
- volatility: the standard deviation of one-bar log returns over the 24h up to c;
- volume: bar c's volume as a z-score against the 7 days of bars before it.

A window that crosses a gap in the bars, or starts before the first bar, gives NaN (the models
impute it); a lookback shorter than one bar (1h returns on 4h bars) is NaN too.

The same function serves training (all items at once) and serving (`BarWindow`, which keeps the
last week of streamed bars and computes one item's features), so the two cannot drift apart.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np

from bot.events import Bar
from bot.protocols import MarketContext
from bot.research.timeline import DAY, Bars, spell

HOUR = 3_600
GROUPS = ("returns", "volatility", "volume")
RETURN_LOOKBACKS = (HOUR, 4 * HOUR, DAY)
VOLATILITY_WINDOW = DAY
VOLUME_WINDOW = 7 * DAY


@dataclass(frozen=True)
class MarketBars:
    """One symbol's bars as arrays: open times in epoch seconds, prices and volume."""

    symbol: str
    open_time: np.ndarray
    open: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    interval: int

    @classmethod
    def from_bars(cls, bars: Iterable[Bar], symbol: str) -> MarketBars:
        rows = list(bars)
        interval = int(rows[0].interval.total_seconds()) if rows else 0
        return cls(
            symbol=symbol,
            open_time=np.fromiter((int(b.ts_open.timestamp()) for b in rows), np.int64, len(rows)),
            open=np.fromiter((float(b.open) for b in rows), float, len(rows)),
            close=np.fromiter((float(b.close) for b in rows), float, len(rows)),
            volume=np.fromiter((float(b.volume) for b in rows), float, len(rows)),
            interval=interval,
        )

    def __len__(self) -> int:
        return int(self.open_time.size)

    @property
    def close_time(self) -> np.ndarray:
        return self.open_time + self.interval

    def research(self) -> Bars:
        """The event study's view of the same bars (for the labels)."""
        return Bars(self.open_time, self.open, self.close, self.interval)


@dataclass(frozen=True)
class FeatureSpec:
    """Which feature groups, for which label horizon: recorded in the model's manifest."""

    groups: tuple[str, ...]
    horizon_s: int

    def __post_init__(self) -> None:
        unknown = [g for g in self.groups if g not in GROUPS]
        if unknown or not self.groups:
            raise ValueError(
                f"--features {','.join(self.groups)!r}: expected some of {', '.join(GROUPS)}"
            )

    @property
    def names(self) -> tuple[str, ...]:
        names: list[str] = []
        if "returns" in self.groups:
            names += [f"ret_{spell(s)}" for s in RETURN_LOOKBACKS]
            names.append(f"pre_{spell(self.horizon_s)}")
        if "volatility" in self.groups:
            names.append(f"vol_{spell(VOLATILITY_WINDOW)}")
        if "volume" in self.groups:
            names.append(f"volume_z_{spell(VOLUME_WINDOW)}")
        return tuple(names)

    @property
    def history_s(self) -> int:
        """How far back the features read: what a live window must keep."""
        return max(VOLUME_WINDOW, DAY, self.horizon_s) + 2 * DAY


def last_closed(bars: MarketBars, at: np.ndarray) -> np.ndarray:
    """Index of the last bar closed by each time (-1 where none had): features read up to it."""
    return np.searchsorted(bars.close_time, at, side="right") - 1


def compute_features(bars: MarketBars, at: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """items x features, in `spec.names` order, from the bars closed by each time in `at`."""
    at = np.asarray(at, dtype=np.int64)
    c = last_closed(bars, at)
    known = c >= 0
    last = np.maximum(c, 0)
    columns: list[np.ndarray] = []
    if "returns" in spec.groups:
        for seconds in (*RETURN_LOOKBACKS, spec.horizon_s):
            columns.append(np.where(known, _return_back(bars, last, seconds), np.nan))
    if "volatility" in spec.groups:
        columns.append(np.where(known, _volatility(bars, last, VOLATILITY_WINDOW), np.nan))
    if "volume" in spec.groups:
        columns.append(np.where(known, _volume_z(bars, last, VOLUME_WINDOW), np.nan))
    return np.column_stack(columns) if columns else np.zeros((at.size, 0))


def _contiguous(bars: MarketBars, last: np.ndarray, n: int) -> np.ndarray:
    """Whether the n bars before `last` (and it) are all there, one interval apart."""
    first = last - n
    inside = first >= 0
    span = bars.open_time[last] - bars.open_time[np.maximum(first, 0)]
    return inside & (span == n * bars.interval)


def _return_back(bars: MarketBars, last: np.ndarray, seconds: int) -> np.ndarray:
    n = seconds // bars.interval if bars.interval else 0
    if n < 1 or seconds % bars.interval:
        return np.full(last.size, np.nan)
    log_close = np.log(bars.close)
    ok = _contiguous(bars, last, n)
    return np.where(ok, log_close[last] - log_close[np.maximum(last - n, 0)], np.nan)


def _window_sums(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    zero = np.zeros(1)
    return np.concatenate((zero, np.cumsum(values))), np.concatenate((zero, np.cumsum(values**2)))


def _volatility(bars: MarketBars, last: np.ndarray, seconds: int) -> np.ndarray:
    n = seconds // bars.interval if bars.interval else 0
    if n < 2:
        return np.full(last.size, np.nan)
    steps = np.concatenate(([0.0], np.diff(np.log(bars.close))))  # step i: close i-1 -> i
    sums, squares = _window_sums(steps)
    high, low = last + 1, np.maximum(last + 1 - n, 0)  # steps (last-n, last]
    mean = (sums[high] - sums[low]) / n
    variance = (squares[high] - squares[low] - n * mean**2) / (n - 1)
    ok = _contiguous(bars, last, n)
    return np.where(ok, np.sqrt(np.maximum(variance, 0.0)), np.nan)


def _volume_z(bars: MarketBars, last: np.ndarray, seconds: int) -> np.ndarray:
    n = seconds // bars.interval if bars.interval else 0
    if n < 2:
        return np.full(last.size, np.nan)
    sums, squares = _window_sums(bars.volume)
    high, low = last, np.maximum(last - n, 0)  # the n bars before `last`
    mean = (sums[high] - sums[low]) / n
    variance = (squares[high] - squares[low] - n * mean**2) / (n - 1)
    spread = np.sqrt(np.maximum(variance, 0.0))
    ok = _contiguous(bars, last, n) & (spread > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, (bars.volume[last] - mean) / np.where(ok, spread, 1.0), np.nan)


class BarWindow:
    """The live (and replay) feature source: the last `spec.history_s` of one symbol's bars as
    they stream, and the features of an item from the bars closed by its `received` time.

    The features are only those of training when they read bars of the training spacing
    (`interval_s`, from the model's manifest): a volatility of 1-minute returns is not one of
    hourly returns. Finer streamed bars (the daemon's 1-minute klines) are folded into bars of
    that spacing, each published when the sub-bar that closes it arrives; the first one after a
    start may lack the sub-bars before the stream joined (its close is right, its volume short).
    Coarser bars, or a spacing that does not divide it, are ignored. `interval_s = 0` (a model
    saved before the spacing was recorded) takes the first bar's.

    Bars of other symbols are ignored; a bar older than the newest one kept is ignored too (a
    reconnect replaying a bar, or a streamed bar the history fill already gave), so the window
    stays in time order.
    """

    def __init__(self, symbol: str, spec: FeatureSpec, interval_s: int = 0) -> None:
        self.symbol = symbol
        self.spec = spec
        self.interval_s = interval_s
        self._bars: deque[Bar] = deque()
        self._part: list[Bar] = []  # the sub-bars of the bar being folded

    @property
    def names(self) -> tuple[str, ...]:
        return self.spec.names

    def on_bar(self, bar: Bar) -> None:
        if bar.symbol != self.symbol:
            return
        step = int(bar.interval.total_seconds())
        if not self.interval_s:
            self.interval_s = step
        if step == self.interval_s:
            self._keep(bar)
        elif 0 < step < self.interval_s and self.interval_s % step == 0:
            self._fold(bar)

    def _keep(self, bar: Bar) -> None:
        if self._bars and bar.ts_open <= self._bars[-1].ts_open:
            return
        self._bars.append(bar)
        horizon = bar.ts_open.timestamp() - self.spec.history_s
        while self._bars and self._bars[0].ts_open.timestamp() < horizon:
            self._bars.popleft()

    def _fold(self, bar: Bar) -> None:
        size = self.interval_s
        opened = int(bar.ts_open.timestamp()) // size * size
        if self._part and int(self._part[0].ts_open.timestamp()) // size * size != opened:
            self._part = []  # the stream skipped the sub-bar that would have closed it
        self._part.append(bar)
        if int(bar.ts.timestamp()) != opened + size:
            return
        part, self._part = self._part, []
        start = datetime.fromtimestamp(opened, UTC)
        self._keep(
            Bar(
                symbol=bar.symbol,
                ts_open=start,
                ts=bar.ts,
                open=part[0].open,
                high=max(b.high for b in part),
                low=min(b.low for b in part),
                close=bar.close,
                volume=sum((b.volume for b in part), Decimal(0)),
            )
        )

    def context(self, before: datetime) -> MarketContext:
        at = np.asarray([int(before.timestamp())], dtype=np.int64)
        if len(self._bars) < 2:
            values = np.full(len(self.names), np.nan)
        else:
            bars = MarketBars.from_bars(self._bars, self.symbol)
            values = compute_features(bars, at, self.spec)[0]
        return MarketContext(self.names, tuple(float(v) for v in values))


def contexts_of(names: Sequence[str], matrix: np.ndarray) -> list[MarketContext]:
    """One `MarketContext` per row of a features matrix."""
    return [MarketContext(tuple(names), tuple(float(v) for v in row)) for row in matrix]
