"""Resampling shared by the luck figures and the event study.

Daily returns and clustered headlines are serially dependent, so an i.i.d. bootstrap would
understate the spread of a mean. Politis and Romano's stationary bootstrap draws blocks of
consecutive positions with geometric lengths (mean `mean_block`), wrapping around the end, which
keeps short-range dependence inside blocks while the resampled series stays stationary.

Everything takes a seeded `numpy.random.Generator` so that a report is reproducible.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

_STANDARD = NormalDist()  # the stdlib's: importing scipy.stats costs seconds a backtest


def stationary_indices(
    n: int, draws: int, mean_block: float, rng: np.random.Generator
) -> np.ndarray:
    """`draws` x `n` positions into a series of length `n`, in stationary-bootstrap order.

    Each position starts a new block with probability 1/mean_block (at a uniform random start),
    otherwise it continues the previous block by one, wrapping past the end.
    """
    if n <= 0 or draws <= 0:
        return np.zeros((max(draws, 0), max(n, 0)), dtype=np.int64)
    p_new = 1.0 / max(float(mean_block), 1.0)
    starts = rng.integers(0, n, size=(draws, n))
    new_block = rng.random((draws, n)) < p_new
    new_block[:, 0] = True
    # Position t belongs to the block that began at the last new-block position s <= t, and its
    # index is start[s] + (t - s) modulo n.
    columns = np.arange(n)
    block_begin = np.maximum.accumulate(np.where(new_block, columns, 0), axis=1)
    rows = np.arange(draws)[:, None]
    return (starts[rows, block_begin] + (columns - block_begin)) % n


def stationary_weights(
    n: int, draws: int, mean_block: float, rng: np.random.Generator
) -> np.ndarray:
    """How many times each of `n` units appears in each draw (`draws` x `n`, float).

    A mean over units then resamples as `weights @ sums / weights @ counts`, one matrix product
    for every group at once: this is what makes a 1,000-draw bootstrap of many groups cheap.
    """
    indices = stationary_indices(n, draws, mean_block, rng)
    weights = np.zeros((draws, n), dtype=float)
    np.add.at(weights, (np.arange(draws)[:, None], indices), 1.0)
    return weights


def percentile_interval(draws: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The equal-tailed interval of finite bootstrap draws; NaNs when there are none."""
    finite = draws[np.isfinite(draws)]
    if finite.size == 0:
        return (float("nan"), float("nan"))
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return (float(low), float(high))


def bootstrap_p_value(estimate: float, draws: np.ndarray) -> float:
    """Two-sided p-value of `estimate` against zero, from its bootstrap standard error.

    z = estimate / sd(draws), p = 2 (1 - Phi(|z|)). Counting draws beyond the estimate instead
    cannot go below 1/(B+1), which Holm's correction over dozens of tests would turn into
    "nothing is ever significant"; the standard error keeps the resolution.
    """
    finite = draws[np.isfinite(draws)]
    if finite.size < 2 or not np.isfinite(estimate):
        return float("nan")
    spread = float(finite.std(ddof=1))
    if spread <= 0:
        return float("nan")
    return float(2.0 * (1.0 - _STANDARD.cdf(abs(estimate) / spread)))
