"""Permutation and coin-flip nulls, and their p-value."""

from __future__ import annotations

import numpy as np
import pytest

from bot.research.nulls import coin_flips, p_value, permuted


def _signals(n: int = 600) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    label = rng.choice(3, size=n, p=[0.2, 0.5, 0.3])
    probs = rng.dirichlet([1, 1, 1], n)
    probs[np.arange(n), label] += 2
    return label, probs / probs.sum(axis=1, keepdims=True)


def test_permutations_keep_the_label_mix_and_rows_together() -> None:
    label, probs = _signals()
    draws = list(permuted(label, probs, trials=5, seed=1))
    assert len(draws) == 5
    for draw in draws:
        assert np.array_equal(np.bincount(draw.label, minlength=3), np.bincount(label, minlength=3))
        # Each row still has its own label's probability as its largest.
        assert np.array_equal(draw.probs.argmax(axis=1), draw.label)
    assert not np.array_equal(draws[0].label, label)
    again = list(permuted(label, probs, trials=5, seed=1))
    assert all(np.array_equal(a.label, b.label) for a, b in zip(draws, again, strict=True))


def test_coin_flips_follow_the_real_rates() -> None:
    label, probs = _signals(3000)
    draws = list(coin_flips(label, probs, trials=20, seed=2))
    shares = np.mean([np.bincount(d.label, minlength=3) / label.size for d in draws], axis=0)
    assert shares == pytest.approx([0.2, 0.5, 0.3], abs=0.02)
    for draw in draws:
        assert np.array_equal(draw.probs.argmax(axis=1), draw.label)
    # Independent of the real labels: agreement is what chance gives (0.2^2 + 0.5^2 + 0.3^2).
    agreement = np.mean([np.mean(d.label == label) for d in draws])
    assert agreement == pytest.approx(0.38, abs=0.02)


def test_p_value_counts_the_real_run() -> None:
    assert p_value(2.0, [0.1, 2.0, 3.0, -1.0]) == pytest.approx(3 / 5)
    assert p_value(10.0, np.zeros(199)) == pytest.approx(1 / 200)
    with pytest.raises(ValueError, match="at least one"):
        p_value(1.0, [])


def test_null_gives_high_p_for_random_labels_and_low_for_informative_ones() -> None:
    # A toy strategy: the statistic is the mean of returns signed by the label, where returns
    # follow informative labels; a permutation null ranks the real statistic.
    rng = np.random.default_rng(9)
    label, probs = _signals(800)
    direction = label.astype(float) - 1.0
    returns = 0.3 * direction + rng.normal(0, 1, label.size)

    def statistic(labels: np.ndarray) -> float:
        return float(np.mean((labels.astype(float) - 1.0) * returns))

    null = [statistic(d.label) for d in permuted(label, probs, 200, seed=3)]
    assert p_value(statistic(label), null) < 0.01
    random_labels = rng.permutation(label)
    null = [statistic(d.label) for d in permuted(random_labels, probs, 200, seed=4)]
    assert p_value(statistic(random_labels), null) > 0.05


def test_null_figures_run_both_nulls_through_the_replay() -> None:
    from bot.research.nulls import NullLabels, null_figures

    rng = np.random.default_rng(12)
    label, probs = _signals(500)
    returns = 0.4 * (label.astype(float) - 1.0) + rng.normal(0, 1, label.size)
    calls = []

    def replay(labels: NullLabels) -> float:
        calls.append(1)
        return float(np.mean((labels.label.astype(float) - 1.0) * returns))

    figures = null_figures(replay(NullLabels(label, probs)), replay, label, probs, 50)
    assert len(calls) == 1 + 2 * 50
    assert figures["null_trials"] == 50.0
    assert figures["null_p_value"] == pytest.approx(1 / 51)
    assert figures["coin_flip_p_value"] == pytest.approx(1 / 51)
    with pytest.raises(ValueError, match="at least 1 trial"):
        null_figures(0.0, replay, label, probs, 0)
