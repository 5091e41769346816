"""What a trial is scored by, from its daily returns (as bot/metrics.py forms them).

Sharpe and Sortino are annualised with sqrt(365) as the backtest reports them; Calmar is the
annualised return over the maximum drawdown of the daily closes; `return` is the compounded total
return. Every one is 0 where undefined (fewer than two days, no variation, no drawdown), like
the backtest's metrics, so a trial that never trades scores 0 rather than failing.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from bot.metrics import max_drawdown
from bot.research.luck import annualised_sharpe

SQRT_365 = math.sqrt(365.0)


def sharpe(returns: np.ndarray) -> float:
    return annualised_sharpe(returns)


def sortino(returns: np.ndarray) -> float:
    if returns.size < 2:
        return 0.0
    downside = returns[returns < 0]
    if not downside.size:
        return 0.0
    deviation = math.sqrt(float((downside**2).sum()) / returns.size)
    return float(returns.mean() / deviation * SQRT_365) if deviation else 0.0


def total_return(returns: np.ndarray) -> float:
    return float(np.prod(1.0 + returns) - 1.0) if returns.size else 0.0


def calmar(returns: np.ndarray) -> float:
    if returns.size < 2:
        return 0.0
    equity = np.concatenate([[1.0], np.cumprod(1.0 + returns)])
    drawdown = max_drawdown(equity)
    growth = float(equity[-1])
    annual = growth ** (365.0 / returns.size) - 1.0 if growth > 0 else -1.0
    return annual / drawdown if drawdown > 0 else 0.0


OBJECTIVES: dict[str, Callable[[np.ndarray], float]] = {
    "sharpe": sharpe,
    "sortino": sortino,
    "calmar": calmar,
    "return": total_return,
}


def score(name: str, returns: np.ndarray) -> float:
    value = OBJECTIVES[name](np.asarray(returns, dtype=float))
    return value if math.isfinite(value) else 0.0
