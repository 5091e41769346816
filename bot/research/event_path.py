"""The classic event-study chart's data: cumulative mean abnormal return around the item.

For every item and every bar offset m from -span to +span (span 24h by default), the log return
from the bar opening `span` before the item's entry bar to the bar opening m after it, less the
item's past drift per bar times the bars elapsed. The path starts at 0 on the left edge, so a run
up before the item (a reactive headline) shows as a rise before offset 0, and any information the
item carries as a rise after it. A point whose bars are missing (a gap) is missing for that item.
"""

from __future__ import annotations

import numpy as np

from bot.research.timeline import Bars, forward_returns, log_return_between, past_mean


def offsets(bars: Bars, span: int) -> np.ndarray:
    """Bar offsets in seconds from -span to +span, one bar apart (just 0 if a bar is longer)."""
    steps = span // bars.interval
    return np.arange(-steps, steps + 1, dtype=np.int64) * bars.interval


def abnormal_paths(
    bars: Bars, entry_time: np.ndarray, received: np.ndarray, span: int, lookback: int
) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, items x offsets matrix of cumulative abnormal log returns, NaN where missing)."""
    grid = offsets(bars, span)
    one_bar = forward_returns(bars, bars.interval)
    drift = past_mean(bars, one_bar, bars.interval, received, lookback)
    start = entry_time - (grid[-1] if grid.size else 0)
    ends = entry_time[:, None] + grid[None, :]
    raw = log_return_between(bars, np.broadcast_to(start[:, None], ends.shape), ends)
    elapsed = (grid - grid[0]) / bars.interval
    return grid, raw - drift[:, None] * elapsed[None, :]
