"""Synthetic bars with known moves, for the impact tests (no files, no model)."""

from __future__ import annotations

import numpy as np

from training.impact.features import MarketBars

HOUR = 3_600
T0 = 1_640_995_200  # 2022-01-01T00:00:00Z


def noisy_bars(n: int, seed: int = 0, sigma: float = 0.002, symbol: str = "BTCUSDT") -> MarketBars:
    """n hourly bars of a random walk from 100 (opens and closes chained), random volumes."""
    rng = np.random.default_rng(seed)
    log_open = np.log(100.0) + np.concatenate(([0.0], np.cumsum(rng.normal(0, sigma, n - 1))))
    opens = np.exp(log_open)
    closes = np.concatenate((opens[1:], [opens[-1]]))
    return MarketBars(
        symbol=symbol,
        open_time=T0 + HOUR * np.arange(n, dtype=np.int64),
        open=opens,
        close=closes,
        volume=rng.uniform(10, 20, n),
        interval=HOUR,
    )


def with_step(bars: MarketBars, at_bar: int, size: float) -> MarketBars:
    """The same bars with every open from `at_bar` on multiplied by exp(size)."""
    opens = bars.open.copy()
    opens[at_bar:] *= np.exp(size)
    closes = np.concatenate((opens[1:], [opens[-1]]))
    return MarketBars(bars.symbol, bars.open_time, opens, closes, bars.volume, bars.interval)
