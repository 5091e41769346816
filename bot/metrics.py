"""Backtest metrics, with the conventions written down once.

- Returns are resampled daily (UTC): the last equity of each day against the previous day's (the
  first day against the starting equity). Sharpe and Sortino are annualised with sqrt(365), crypto
  trading every day, at a zero risk-free rate; Sortino's downside deviation is the root mean
  square of the negative daily returns over all days.
- Max drawdown is a positive fraction, measured on every bar's equity, not only daily closes.
- A round trip runs from flat to flat (a flip closes one and opens the next); its PnL is the
  realised PnL of its fills less their fees. Win rate and profit factor are over round trips.
- `n_trades` counts fills (the rows of trades.csv); `n_round_trips` the closed round trips.
- Every value is a number. Where one is undefined (no losing trade, a single day), it is 0 and
  `notes` says why, so that the file always parses into numbers.

Floats are fine here: these are statistics of a finished run, never an order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

import numpy as np

SQRT_365 = math.sqrt(365.0)
DAY_MICROS = 86_400_000_000
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


@dataclass
class RoundTrips:
    """Folds fills into flat-to-flat round trips."""

    closed: list[float] = field(default_factory=list)
    _open_pnl: dict[str, float] = field(default_factory=dict)

    def on_fill(
        self,
        symbol: str,
        position_after: float,
        realised: float,
        fee: float,
        position_before: float,
    ) -> None:
        pnl = self._open_pnl.get(symbol, 0.0) + realised - fee
        flipped = (
            position_before != 0
            and position_after != 0
            and ((position_before > 0) != (position_after > 0))
        )
        if position_after == 0 or flipped:
            self.closed.append(pnl)
            self._open_pnl.pop(symbol, None)
            if flipped:
                self._open_pnl[symbol] = 0.0
        else:
            self._open_pnl[symbol] = pnl


def daily_closes(stamps: Sequence[int], equity: Sequence[float]) -> list[tuple[date, float]]:
    """The last equity of each UTC day (`stamps`: ascending microseconds since the epoch)."""
    if not len(stamps):
        return []
    days = np.asarray(stamps, dtype=np.int64) // DAY_MICROS
    last = np.flatnonzero(np.diff(days))
    ends = [*last.tolist(), len(stamps) - 1]
    return [(date.fromordinal(EPOCH_ORDINAL + int(days[i])), float(equity[i])) for i in ends]


def max_drawdown(equity: Sequence[float] | np.ndarray) -> float:
    values = np.asarray(equity, dtype=float)
    if values.size == 0:
        return 0.0
    peaks = np.maximum.accumulate(values)
    with np.errstate(divide="ignore", invalid="ignore"):
        drawdowns = np.where(peaks > 0, (peaks - values) / peaks, 0.0)
    return float(drawdowns.max())


def drawdown_series(equity: Sequence[float] | np.ndarray) -> np.ndarray:
    values = np.asarray(equity, dtype=float)
    if values.size == 0:
        return values
    peaks = np.maximum.accumulate(values)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(peaks > 0, (peaks - values) / peaks, 0.0)


def compute(
    *,
    stamps: Sequence[int],
    equity: Sequence[float],
    closes: Sequence[float],
    exposed: Sequence[bool] | bytes | bytearray,
    initial_cash: float,
    round_trips: Sequence[float],
    n_fills: int,
    fees: float,
    extra: dict[str, float] | None = None,
) -> dict[str, object]:
    notes: list[str] = []
    metrics: dict[str, object] = {}
    final = float(equity[-1]) if len(equity) else initial_cash
    metrics["initial_equity"] = initial_cash
    metrics["final_equity"] = final
    metrics["total_return"] = final / initial_cash - 1.0 if initial_cash else 0.0
    if len(closes) >= 1 and closes[0] > 0:
        metrics["buy_and_hold_return"] = float(closes[-1]) / float(closes[0]) - 1.0
    else:
        metrics["buy_and_hold_return"] = 0.0
        notes.append("buy_and_hold_return: no bars")

    days = daily_closes(stamps, equity)
    previous = initial_cash
    returns: list[float] = []
    for _, value in days:
        returns.append(value / previous - 1.0 if previous else 0.0)
        previous = value
    daily = np.asarray(returns, dtype=float)
    metrics["n_days"] = len(days)
    if daily.size >= 2 and float(daily.std(ddof=1)) > 0:
        metrics["sharpe"] = float(daily.mean() / daily.std(ddof=1) * SQRT_365)
        metrics["volatility"] = float(daily.std(ddof=1) * SQRT_365)
    else:
        metrics["sharpe"] = 0.0
        metrics["volatility"] = 0.0
        notes.append("sharpe: fewer than two days or no variation in daily returns")
    downside = daily[daily < 0]
    if daily.size >= 2 and downside.size:
        downside_dev = math.sqrt(float((downside**2).sum()) / daily.size)
        metrics["sortino"] = float(daily.mean() / downside_dev * SQRT_365) if downside_dev else 0.0
    else:
        metrics["sortino"] = 0.0
        notes.append("sortino: no losing day")
    if days and len(days) >= 2:
        years = len(days) / 365.0
        growth = final / initial_cash if initial_cash else 0.0
        metrics["annual_return"] = growth ** (1 / years) - 1.0 if growth > 0 else -1.0
    else:
        metrics["annual_return"] = 0.0
        notes.append("annual_return: less than two days")
    mdd = max_drawdown(equity)
    metrics["max_drawdown"] = mdd
    metrics["calmar"] = (
        float(metrics["annual_return"]) / mdd if mdd > 0 else 0.0  # type: ignore[arg-type]
    )
    if mdd <= 0:
        notes.append("calmar: no drawdown")

    trips = np.asarray(round_trips, dtype=float)
    metrics["n_trades"] = n_fills
    metrics["n_round_trips"] = int(trips.size)
    if trips.size:
        wins = trips[trips > 0]
        losses = trips[trips < 0]
        metrics["win_rate"] = float(wins.size / trips.size)
        metrics["avg_trade_pnl"] = float(trips.mean())
        metrics["best_trade_pnl"] = float(trips.max())
        metrics["worst_trade_pnl"] = float(trips.min())
        if losses.size:
            metrics["profit_factor"] = float(wins.sum() / -losses.sum())
        else:
            metrics["profit_factor"] = 0.0
            notes.append("profit_factor: no losing round trip")
    else:
        for key in (
            "win_rate",
            "avg_trade_pnl",
            "best_trade_pnl",
            "worst_trade_pnl",
            "profit_factor",
        ):
            metrics[key] = 0.0
        notes.append("win_rate, profit_factor: no closed round trip")
    metrics["exposure"] = float(np.mean(np.asarray(exposed, dtype=bool))) if len(exposed) else 0.0
    metrics["fees_paid"] = fees
    metrics["n_bars"] = len(closes)
    for key, value in (extra or {}).items():
        metrics[key] = value
    metrics["notes"] = notes
    return metrics
