"""The equity panel's figures from a series of (time, equity): the curve, its drawdown and a
daily PnL table (each UTC day's last equity less the day before's)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

MAX_POINTS = 1500  # what the chart draws; a longer series is thinned, its last point kept


def equity_summary(points: list[tuple[str, str]]) -> dict[str, Any]:
    series = sorted(points)
    peak: Decimal | None = None
    worst = Decimal(0)
    day_close: dict[str, Decimal] = {}
    for ts, text in series:
        value = Decimal(text)
        peak = value if peak is None or value > peak else peak
        if peak:
            worst = min(worst, (value - peak) / peak)
        day_close[ts[:10]] = value
    days = sorted(day_close)
    daily = []
    for i, day in enumerate(days):
        if i:
            daily.append({"day": day, "pnl": str(day_close[day] - day_close[days[i - 1]])})
    last = Decimal(series[-1][1]) if series else None
    drawdown = float((last - peak) / peak) if last is not None and peak else 0.0
    step = max(1, -(-len(series) // MAX_POINTS))  # rounded up: at most MAX_POINTS drawn
    thinned = series[::step]
    if series and thinned[-1] != series[-1]:
        thinned.append(series[-1])
    return {
        "points": [{"t": t, "equity": e} for t, e in thinned],
        "drawdown": round(drawdown, 6),
        "max_drawdown": round(float(worst), 6),
        "daily": daily,
    }
