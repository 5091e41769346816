"""Spearman's information coefficient, and its day-block bootstrap in one pass.

A day-block resample repeats whole days: item i appears w(d_i) times, d_i its day. Spearman's
rho of a resample is the Pearson correlation of its mid-ranks, and the mid-rank of item i is

    rank(i) = sum_d w(d) * (below_d(i) + equal_d(i) / 2) + 1/2,

below_d / equal_d counting day d's items with a smaller / the same value. So the ranks of every
resample are one matrix product, draws x days times days x items, instead of a sort per draw.
Ties (a lexicon model gives many equal scores; signals entering on one bar share a forward
return) get the mean of the positions they occupy, exactly as `scipy.stats.spearmanr` does.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr

_CHUNK = 250


def _day_rank_parts(
    values: np.ndarray, unit: np.ndarray, n_units: int
) -> tuple[np.ndarray, np.ndarray]:
    """(units x tie groups: below_d + equal_d / 2 for each group of equal values, each item's
    group). Items with equal values share their parts: a three-valued score costs three columns.
    """
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    begins = np.concatenate(([True], ordered[1:] != ordered[:-1]))
    starts = np.flatnonzero(begins)
    ends = np.concatenate((starts[1:], [values.size]))
    group_sorted = np.cumsum(begins) - 1
    counts = np.zeros((n_units, values.size + 1), dtype=np.float32)
    counts[unit[order], np.arange(1, values.size + 1)] = 1.0
    cumulative = np.cumsum(counts, axis=1)
    below = cumulative[:, starts]
    equal = cumulative[:, ends] - below
    group_of = np.empty(values.size, dtype=np.int64)
    group_of[order] = group_sorted
    return below + equal / 2.0, group_of


def resampled_spearman(
    x: np.ndarray, y: np.ndarray, unit: np.ndarray, unit_weights: np.ndarray
) -> np.ndarray:
    """Spearman's rho of (x, y) in every resample; row b of `unit_weights` says how many times
    each unit (day) is drawn, `unit[i]` is item i's unit. NaN where a resample has no spread."""
    n_units = unit_weights.shape[1]
    x_parts, x_group = _day_rank_parts(x, unit, n_units)
    y_parts, y_group = _day_rank_parts(y, unit, n_units)
    out = np.full(unit_weights.shape[0], np.nan)
    for begin in range(0, unit_weights.shape[0], _CHUNK):
        weights = unit_weights[begin : begin + _CHUNK].astype(np.float32)
        rx = (weights @ x_parts)[:, x_group] + 0.5
        ry = (weights @ y_parts)[:, y_group] + 0.5
        w = weights[:, unit]
        total = w.sum(axis=1, dtype=np.float64)
        middle = (total + 1.0) / 2.0
        # Weighted means of mid-ranks are exactly (W + 1) / 2, so only the products are summed.
        centre = total * middle**2
        weighted_x = w * rx
        with np.errstate(invalid="ignore", divide="ignore"):
            cov = (weighted_x * ry).sum(axis=1, dtype=np.float64) - centre
            var_x = (weighted_x * rx).sum(axis=1, dtype=np.float64) - centre
            var_y = (w * ry * ry).sum(axis=1, dtype=np.float64) - centre
            spread = np.sqrt(np.maximum(var_x, 0.0) * np.maximum(var_y, 0.0))
            out[begin : begin + _CHUNK] = np.where(spread > 0, cov / spread, np.nan)
    return out


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho of the sample itself; NaN when either side is constant or too short."""
    if x.size < 2 or np.all(x == x[0]) or np.all(y == y[0]):
        return float("nan")
    return float(spearmanr(x, y).statistic)
