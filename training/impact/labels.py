"""What the news did to the price: an up / flat / down label per headline.

The label is read off the event study's own timeline (`bot.research.timeline`), so an impact
model is trained on exactly what `lorabot analyze` measures:
- entry: the first bar opening at or after the item's `received` time, the bar a fill would use;
- forward return: log(open h after the entry bar) - log(entry open), never across a gap;
- abnormal return: the forward return less the drift, the mean h-forward return of the bars
  whose whole window lay in the 30 days before the item (past-only, `timeline.past_mean`);
- threshold: `k` (default 0.5) times the standard deviation of those same past windows' returns,
  so a quiet month and a wild one label the same share of items as moves;
- up where abnormal > +threshold, down where abnormal < -threshold, flat otherwise; in the
  project's label order down = 0 (bearish), flat = 1 (neutral), up = 2 (bullish).

An item that cannot be labelled is dropped and counted by reason, never guessed: before the first
bar, without a full lookback of bars before it, its entry bar past the last bar, its window past
the end or across a gap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bot.research.timeline import DAY, Bars, ForwardReturns, forward_returns, past_mean

DOWN, FLAT, UP = 0, 1, 2
DROP_REASONS = ("before_bars", "no_history", "after_bars", "beyond_end", "gap")


@dataclass(frozen=True)
class LabelOptions:
    horizon_s: int = 4 * 3_600
    threshold: float = 0.5  # times the past standard deviation of horizon returns
    lookback_s: int = 30 * DAY


@dataclass(frozen=True)
class ImpactLabels:
    """One row per labelled item (`index` points back into the items given); `dropped` counts
    the others by reason."""

    index: np.ndarray
    entry_time: np.ndarray
    window_end: np.ndarray  # the label's last moment: entry + horizon
    forward: np.ndarray
    abnormal: np.ndarray
    threshold: np.ndarray
    label: np.ndarray
    dropped: dict[str, int]

    def __len__(self) -> int:
        return int(self.index.size)

    def counts(self) -> dict[str, int]:
        return {
            name: int(np.count_nonzero(self.label == code))
            for code, name in ((DOWN, "down"), (FLAT, "flat"), (UP, "up"))
        }


def label_items(bars: Bars, received: np.ndarray, options: LabelOptions) -> ImpactLabels:
    """Labels for items received at `received` (epoch seconds) against `bars`."""
    received = np.asarray(received, dtype=np.int64)
    horizon = options.horizon_s
    forward = forward_returns(bars, horizon)
    squared = ForwardReturns(forward.values**2, forward.gap, forward.beyond_end)
    entry = bars.entry_index(received)
    inside = entry < bars.open_time.size
    at = np.minimum(entry, bars.open_time.size - 1)
    drift = past_mean(bars, forward, horizon, received, options.lookback_s)
    second = past_mean(bars, squared, horizon, received, options.lookback_s)
    spread = np.sqrt(np.maximum(second - drift**2, 0.0))
    reasons = {
        "before_bars": received < bars.open_time[0],
        "no_history": received - options.lookback_s < bars.open_time[0],
        "after_bars": ~inside,
        "beyond_end": inside & forward.beyond_end[at],
        "gap": inside & forward.gap[at],
    }
    dropped: dict[str, int] = {}
    taken = np.zeros(received.size, dtype=bool)
    for name in DROP_REASONS:
        mask = reasons[name] & ~taken
        dropped[name] = int(mask.sum())
        taken |= mask
    keep = ~taken & np.isfinite(forward.values[at]) & np.isfinite(drift) & (spread > 0)
    dropped["no_history"] += int(np.count_nonzero(~taken & ~keep))
    index = np.flatnonzero(keep)
    entry_time = bars.open_time[at[index]]
    abnormal = forward.values[at[index]] - drift[index]
    threshold = options.threshold * spread[index]
    label = np.full(index.size, FLAT, dtype=np.int64)
    label[abnormal > threshold] = UP
    label[abnormal < -threshold] = DOWN
    return ImpactLabels(
        index=index,
        entry_time=entry_time,
        window_end=entry_time + horizon,
        forward=forward.values[at[index]],
        abnormal=abnormal,
        threshold=threshold,
        label=label,
        dropped=dropped,
    )
