"""How much of a backtest's result could be luck.

A Sharpe ratio from a few hundred daily returns is an estimate with a wide error, wider still
when the returns are skewed or fat-tailed, and inflated again when it is the best of many
configurations tried. This module turns a run's daily returns into the figures that say so:

- `psr`: the probabilistic Sharpe ratio of Bailey and Lopez de Prado (2012), the probability
  that the true Sharpe exceeds a benchmark SR*, given the sample's skewness and kurtosis:
  `PSR(SR*) = Phi((SR - SR*) sqrt(T-1) / sqrt(1 - g3 SR + (g4-1)/4 SR^2))`,
  with SR per period (daily, not annualised), g3 the skewness, g4 the (non-excess) kurtosis and
  T the number of returns.
- `expected_max_sharpe` / `dsr`: the deflated Sharpe ratio (Bailey and Lopez de Prado, 2014),
  PSR against the Sharpe the best of N trials would reach by luck alone:
  `SR* = sqrt(V) ((1-gamma) Phi^-1(1-1/N) + gamma Phi^-1(1-1/(N e)))`, V the variance of the
  trials' (daily) Sharpes; with N = 1 there is no selection and SR* = 0.
- `bootstrap_intervals`: 95% intervals of the annualised Sharpe and the total return from a
  stationary block bootstrap of the daily returns (seeded).

The Sharpe convention is the backtest's (bot/metrics.py): daily returns, sample standard
deviation (ddof=1), zero risk-free rate, annualised with sqrt(365); 0 when there are fewer than
two days or no variation. Skewness and kurtosis are the population moments, as in the papers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from statistics import NormalDist

import numpy as np

from bot.metrics import SQRT_365, daily_closes
from bot.research.bootstrap import percentile_interval, stationary_indices
from bot.research.ledger import TrialLedger

EULER_GAMMA = 0.5772156649015329
norm = NormalDist()  # Phi and its inverse; the stdlib's, as importing scipy.stats costs seconds


@dataclass(frozen=True)
class Moments:
    """What PSR needs from a return series: per-period Sharpe, skewness, kurtosis, count."""

    sharpe: float
    skew: float
    kurtosis: float
    n: int


def daily_returns(
    stamps: Sequence[int], equity: Sequence[float], initial_cash: float
) -> np.ndarray:
    """A run's daily returns as bot/metrics.py forms them: each UTC day's last equity against
    the previous day's, the first day against the starting equity. `stamps` are the bars'
    times in microseconds since the epoch, as a `Recording` keeps them."""
    previous = initial_cash
    returns = []
    for _, value in daily_closes(stamps, equity):
        returns.append(value / previous - 1.0 if previous else 0.0)
        previous = value
    return np.asarray(returns, dtype=float)


def daily_sharpe(returns: np.ndarray) -> float:
    """Per-day Sharpe (mean / sample std), 0 when undefined, as bot/metrics.py computes it."""
    values = np.asarray(returns, dtype=float)
    if values.size < 2:
        return 0.0
    spread = float(values.std(ddof=1))
    return float(values.mean() / spread) if spread > 0 else 0.0


def annualised_sharpe(returns: np.ndarray) -> float:
    """The backtest's `sharpe`: the daily Sharpe times sqrt(365)."""
    return daily_sharpe(returns) * SQRT_365


def moments(returns: np.ndarray) -> Moments:
    """Sharpe, skewness and (non-excess) kurtosis of daily returns; a constant series has 0, 3."""
    values = np.asarray(returns, dtype=float)
    n = int(values.size)
    if n < 2:
        return Moments(sharpe=0.0, skew=0.0, kurtosis=3.0, n=n)
    centred = values - values.mean()
    second = float(np.mean(centred**2))
    if second <= 0:
        return Moments(sharpe=0.0, skew=0.0, kurtosis=3.0, n=n)
    skew = float(np.mean(centred**3) / second**1.5)
    kurtosis = float(np.mean(centred**4) / second**2)
    return Moments(sharpe=daily_sharpe(values), skew=skew, kurtosis=kurtosis, n=n)


def psr(
    sharpe: float, n: int, skew: float = 0.0, kurtosis: float = 3.0, benchmark: float = 0.0
) -> float:
    """Probability that the true per-period Sharpe exceeds `benchmark` (see the module text).

    Needs n >= 2; where the variance term is not positive (extreme skew) it is floored at a tiny
    value, which makes PSR 0 or 1 by the sign of SR - SR*.
    """
    if n < 2:
        raise ValueError(f"PSR needs at least 2 returns, got {n}")
    variance = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    z = (sharpe - benchmark) * math.sqrt(n - 1) / math.sqrt(max(variance, 1e-12))
    return float(norm.cdf(z))


def expected_max_sharpe(trials: int, variance: float) -> float:
    """The Sharpe the best of `trials` zero-skill configurations reaches by luck (SR*)."""
    if trials < 1:
        raise ValueError(f"the number of trials must be at least 1, got {trials}")
    if trials == 1 or variance <= 0:
        return 0.0
    return math.sqrt(variance) * (
        (1.0 - EULER_GAMMA) * float(norm.inv_cdf(1.0 - 1.0 / trials))
        + EULER_GAMMA * float(norm.inv_cdf(1.0 - 1.0 / (trials * math.e)))
    )


def dsr(
    sharpe: float,
    n: int,
    trials: int,
    variance: float,
    skew: float = 0.0,
    kurtosis: float = 3.0,
) -> float:
    """Deflated Sharpe ratio: PSR against the expected best of `trials` lucky Sharpes."""
    return psr(sharpe, n, skew, kurtosis, benchmark=expected_max_sharpe(trials, variance))


@dataclass(frozen=True)
class BootstrapIntervals:
    sharpe_ci_low: float
    sharpe_ci_high: float
    total_return_ci_low: float
    total_return_ci_high: float


def bootstrap_intervals(
    returns: np.ndarray,
    draws: int = 1000,
    mean_block: float = 5.0,
    seed: int = 0,
    level: float = 0.95,
) -> BootstrapIntervals:
    """Intervals of the annualised Sharpe and the compounded total return (see module text).

    The total return of a resampled path is the product of (1 + r) over its days less 1, so a
    run of losing days stays a run: blocks keep the volatility clustering of the original.
    """
    values = np.asarray(returns, dtype=float)
    if values.size < 2:
        total = float(np.prod(1.0 + values) - 1.0) if values.size else 0.0
        sharpe = annualised_sharpe(values)
        return BootstrapIntervals(sharpe, sharpe, total, total)
    rng = np.random.default_rng(seed)
    paths = values[stationary_indices(values.size, draws, mean_block, rng)]
    means = paths.mean(axis=1)
    spreads = paths.std(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpes = np.where(spreads > 0, means / spreads, 0.0) * SQRT_365
    totals = np.prod(1.0 + paths, axis=1) - 1.0
    sharpe_low, sharpe_high = percentile_interval(sharpes, level)
    total_low, total_high = percentile_interval(totals, level)
    return BootstrapIntervals(sharpe_low, sharpe_high, total_low, total_high)


def luck_figures(
    returns: np.ndarray,
    trials: int = 1,
    trials_variance: float = 0.0,
    draws: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """Every luck figure of one run, keyed as metrics.json spells them.

    `trials` and `trials_variance` (of daily Sharpes) come from the trial ledger; with fewer than
    two days PSR and DSR are 0, like every undefined metric.
    """
    stats = moments(returns)
    figures: dict[str, float] = dict(asdict(bootstrap_intervals(returns, draws=draws, seed=seed)))
    if stats.n >= 2:
        figures["psr"] = psr(stats.sharpe, stats.n, stats.skew, stats.kurtosis)
        figures["dsr"] = dsr(
            stats.sharpe, stats.n, trials, trials_variance, stats.skew, stats.kurtosis
        )
    else:
        figures["psr"] = 0.0
        figures["dsr"] = 0.0
    figures["dsr_trials"] = float(trials)
    figures["dsr_benchmark_sharpe"] = expected_max_sharpe(trials, trials_variance) * SQRT_365
    return figures


def record_and_assess(
    ledger: TrialLedger,
    *,
    returns: np.ndarray,
    data: str,
    config: str,
    kind: str,
    recorded_at: datetime,
    run: str | None = None,
    draws: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """Record this run in the trial ledger, then its luck figures with N and V counted there.

    The run counts itself: the first configuration ever run on some data has N = 1, so its DSR
    is its PSR(0); every new configuration tried on the same data deflates the next one.
    """
    stats = moments(returns)
    ledger.record(
        kind=kind,
        data=data,
        config=config,
        daily_sharpe=stats.sharpe,
        n_days=stats.n,
        recorded_at=recorded_at,
        run=run,
    )
    count = ledger.count(data)
    return luck_figures(
        returns, trials=count.trials, trials_variance=count.variance, draws=draws, seed=seed
    )
