"""Null models: what a backtest's Sharpe looks like when the signals carry no information.

Two nulls, both cheap because no model runs again (the replay reuses the cached signals with
other labels):

- permutation: the real signals' labels and probability vectors shuffled among them (seeded),
  keeping their times, sources and symbols, and the label mix exactly;
- coin flip: at the real signals' times, labels drawn independently at the real label rates,
  each with the probability vector of a random real signal of that label, so the confidence
  distribution stays the same.

`p_value` is the share of null replays whose statistic reaches the real one, counting the real
run among them ((k + 1) / (N + 1)), so it is never 0 and is exact for a finite N.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class NullLabels:
    """Labels (indices into bot.research.signals.LABELS) and matching probability rows."""

    label: np.ndarray
    probs: np.ndarray


def permuted(
    label: np.ndarray, probs: np.ndarray, trials: int, seed: int = 0
) -> Iterator[NullLabels]:
    """`trials` permutations of (label, probs) rows among the signals."""
    rng = np.random.default_rng(seed)
    for _ in range(trials):
        order = rng.permutation(label.size)
        yield NullLabels(label=label[order], probs=probs[order])


def coin_flips(
    label: np.ndarray, probs: np.ndarray, trials: int, seed: int = 0
) -> Iterator[NullLabels]:
    """`trials` sets of labels drawn at the real label rates (see the module text)."""
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(label, return_counts=True)
    rates = counts / counts.sum() if counts.size else counts
    rows_of = {int(c): np.flatnonzero(label == c) for c in classes}
    for _ in range(trials):
        drawn = rng.choice(classes, size=label.size, p=rates) if label.size else label.copy()
        rows = np.empty(label.size, dtype=np.int64)
        for c, candidates in rows_of.items():
            where = np.flatnonzero(drawn == c)
            rows[where] = candidates[rng.integers(0, candidates.size, where.size)]
        yield NullLabels(label=drawn.astype(label.dtype), probs=probs[rows])


def p_value(real: float, null: Sequence[float] | np.ndarray) -> float:
    """(k + 1) / (N + 1), k the null statistics at least as large as the real one."""
    values = np.asarray(null, dtype=float)
    if values.size == 0:
        raise ValueError("a null p-value needs at least one null trial")
    return float((np.count_nonzero(values >= real) + 1) / (values.size + 1))


def null_figures(
    real: float,
    replay: Callable[[NullLabels], float],
    label: np.ndarray,
    probs: np.ndarray,
    trials: int,
    seed: int = 0,
) -> dict[str, float]:
    """Both nulls for one run, keyed as metrics.json spells them.

    `replay` runs the backtest on the cached signals with the given labels and returns its
    Sharpe; it is called `trials` times per null. The coin flips use a different seed stream
    from the permutations so the two nulls are independent.
    """
    if trials < 1:
        raise ValueError(f"--null needs at least 1 trial, got {trials}")
    shuffled = [replay(labels) for labels in permuted(label, probs, trials, seed)]
    flipped = [replay(labels) for labels in coin_flips(label, probs, trials, seed + 1)]
    return {
        "null_p_value": p_value(real, shuffled),
        "null_trials": float(trials),
        "coin_flip_p_value": p_value(real, flipped),
    }
