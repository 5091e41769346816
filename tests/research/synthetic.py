"""Synthetic bars and news with a known effect, for the event study's tests and benchmark."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bot.research.signals import SignalArrays
from bot.research.timeline import DAY, Bars

HOUR = 3_600
START = 1_633_046_400  # 2021-10-01 00:00 UTC


@dataclass(frozen=True)
class Synthetic:
    signals: SignalArrays
    bars: Bars
    labels: np.ndarray


def synthetic(
    n_bars: int = 6_800,
    n_signals: int = 900,
    effect_bps: float = 30.0,
    effect_bars: int = 4,
    noise: float = 0.003,
    seed: int = 0,
    shuffle_labels: bool = False,
) -> Synthetic:
    """1h bars of a driftless random walk; after each bullish item the price rises `effect_bps`
    over the next `effect_bars` bars, after each bearish one it falls as much, after a neutral
    one nothing. With `shuffle_labels` the labels (and probabilities) are permuted afterwards,
    so they no longer say anything about the price."""
    rng = np.random.default_rng(seed)
    times = START + HOUR * np.arange(n_bars, dtype=np.int64)
    received = np.sort(rng.integers(times[0] + 31 * DAY, times[-1] - 2 * DAY, n_signals))
    labels = rng.integers(0, 3, n_signals)
    returns = rng.normal(0.0, noise, n_bars)
    entry = np.searchsorted(times, received)
    step = effect_bps / effect_bars / 1e4
    for bar, label in zip(entry, labels, strict=True):
        returns[bar : bar + effect_bars] += step * (label - 1)
    # The open of bar k is the price after the returns of bars 0..k-1.
    opens = 50_000.0 * np.exp(np.concatenate(([0.0], np.cumsum(returns[:-1]))))
    probs = rng.dirichlet([1.0, 1.0, 1.0], n_signals)
    probs[np.arange(n_signals), labels] += 1.5
    probs /= probs.sum(axis=1, keepdims=True)
    if shuffle_labels:
        order = rng.permutation(n_signals)
        labels, probs = labels[order], probs[order]
    signals = SignalArrays.build(
        received=received,
        label=labels,
        probs=probs,
        source=["cointelegraph" if i % 2 else "cryptonews" for i in range(n_signals)],
        symbol=[None] * n_signals,
        key=[f"headline {i}" for i in range(n_signals)],
    )
    return Synthetic(signals=signals, bars=Bars.build(times, opens, opens), labels=labels)
