"""PSR, DSR and the bootstrap intervals against hand-computed values and published examples."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import norm

from bot.research.bootstrap import stationary_indices
from bot.research.luck import (
    EULER_GAMMA,
    annualised_sharpe,
    bootstrap_intervals,
    daily_returns,
    dsr,
    expected_max_sharpe,
    luck_figures,
    moments,
    psr,
)


def test_normal_returns_psr_is_phi_of_sr_sqrt_t_minus_1_over_the_sharpe_term() -> None:
    # g3 = 0, g4 = 3: the denominator is sqrt(1 + SR^2 / 2); for small SR it tends to
    # Phi(SR sqrt(T-1)), the limiting case the issue names.
    sr, t = 0.05, 400
    by_hand = norm.cdf(sr * math.sqrt(t - 1) / math.sqrt(1 + 0.5 * sr**2))
    assert psr(sr, t) == pytest.approx(by_hand, abs=1e-12)
    assert psr(1e-4, t) == pytest.approx(norm.cdf(1e-4 * math.sqrt(t - 1)), abs=1e-9)


def test_psr_by_hand_with_skew_and_kurtosis() -> None:
    sr, t, g3, g4 = 0.1, 101, -1.0, 6.0
    # 1 - g3 SR + (g4 - 1)/4 SR^2 = 1 + 0.1 + 1.25 * 0.01 = 1.1125
    z = 0.1 * 10 / math.sqrt(1.1125)
    assert psr(sr, t, g3, g4) == pytest.approx(norm.cdf(z), abs=1e-12)
    assert psr(sr, t, g3, g4, benchmark=0.1) == pytest.approx(0.5)


def test_psr_matches_the_sharpe_ratio_efficient_frontier_2012_example() -> None:
    # Bailey & Lopez de Prado (2012), "The Sharpe Ratio Efficient Frontier": monthly SR 0.458
    # over 24 months gives PSR(0) 0.982 for normal returns and 0.913 with skew -2.448,
    # kurtosis 10.164. These are the paper's numbers as checked by the independent
    # implementation github.com/rubenbriones/Probabilistic-Sharpe-Ratio
    # (tests/test_sharpe_ratio_stats.py, test_probabilistic_sharpe_ratio_paper_examples).
    assert round(psr(0.458, 24), 3) == 0.982
    assert round(psr(0.458, 24, -2.448, 10.164), 3) == 0.913


def test_dsr_matches_the_deflated_sharpe_ratio_2014_numerical_example() -> None:
    # Bailey & Lopez de Prado (2014), "The Deflated Sharpe Ratio", numerical example: annualised
    # SR 2.5 over T = 1250 daily returns (250 a year), skew -3, kurtosis 10, N = 100 trials whose
    # annualised Sharpes have variance 0.5: SR* = 0.1132 per day and DSR = 0.9004.
    # The same figures come out of the independent implementation in vectorbt
    # (github.com/polakowo/vectorbt, vectorbt/returns/metrics.py: approx_exp_max_sharpe and
    # deflated_sharpe_ratio, with mean_sharpe 0), which codes the paper's equations the same way.
    daily_sr = 2.5 / math.sqrt(250)
    variance = 0.5 / 250
    assert round(expected_max_sharpe(100, variance), 4) == 0.1132
    assert round(dsr(daily_sr, 1250, 100, variance, -3.0, 10.0), 3) == 0.900
    assert dsr(daily_sr, 1250, 100, variance, -3.0, 10.0) == pytest.approx(0.9004, abs=5e-4)


def test_expected_max_sharpe_matches_the_simulated_best_of_n_lucky_sharpes() -> None:
    # Lopez de Prado's own check of the formula (deflated_sharpe_ratio.py of 2014-06-07,
    # get_numerical_max_sr, as published in stefan-jansen/machine-learning-for-trading): the mean
    # of the maximum of N draws from N(0, V) approaches SR*. Seeded; 20,000 draws per N. The
    # closed form is an approximation that overstates the best draw slightly at small N (2.4%
    # at N = 10, 0.5% at N = 1000), the direction that makes DSR conservative.
    rng = np.random.default_rng(7)
    for trials, variance in ((10, 1.0), (100, 0.002), (1000, 0.5)):
        draws = rng.normal(0.0, math.sqrt(variance), size=(20_000, trials)).max(axis=1)
        assert draws.mean() <= expected_max_sharpe(trials, variance)
        assert expected_max_sharpe(trials, variance) == pytest.approx(draws.mean(), rel=0.03)


def test_expected_max_sharpe_by_hand() -> None:
    n, v = 10, 0.04
    by_hand = 0.2 * (
        (1 - EULER_GAMMA) * norm.ppf(1 - 1 / n) + EULER_GAMMA * norm.ppf(1 - 1 / (n * math.e))
    )
    assert expected_max_sharpe(n, v) == pytest.approx(by_hand, abs=1e-12)


def test_one_trial_dsr_is_psr_of_zero() -> None:
    assert dsr(0.08, 300, 1, 0.5, -0.5, 5.0) == psr(0.08, 300, -0.5, 5.0, benchmark=0.0)


def test_more_trials_lower_dsr() -> None:
    values = [dsr(0.08, 300, n, 0.002) for n in (1, 2, 10, 100, 1000)]
    assert all(a > b for a, b in itertools.pairwise(values))


def test_bad_trial_count_and_short_series_are_errors() -> None:
    with pytest.raises(ValueError, match="trials"):
        expected_max_sharpe(0, 1.0)
    with pytest.raises(ValueError, match="at least 2 returns"):
        psr(0.1, 1)


def test_moments_are_the_population_moments() -> None:
    values = np.array([0.01, -0.02, 0.03, 0.0, 0.05])
    centred = values - values.mean()
    m2 = np.mean(centred**2)
    stats = moments(values)
    assert stats.skew == pytest.approx(np.mean(centred**3) / m2**1.5)
    assert stats.kurtosis == pytest.approx(np.mean(centred**4) / m2**2)
    assert stats.sharpe == pytest.approx(values.mean() / values.std(ddof=1))
    assert stats.n == 5


def test_annualised_sharpe_is_the_backtest_convention() -> None:
    values = np.array([0.01, -0.005, 0.002, 0.004])
    assert annualised_sharpe(values) == pytest.approx(
        values.mean() / values.std(ddof=1) * math.sqrt(365)
    )
    assert annualised_sharpe(np.array([0.01, 0.01])) == 0.0


def test_stationary_indices_run_in_blocks_and_wrap() -> None:
    rng = np.random.default_rng(1)
    indices = stationary_indices(50, 200, 10.0, rng)
    assert indices.shape == (200, 50)
    assert indices.min() >= 0 and indices.max() < 50
    steps = (np.diff(indices, axis=1) % 50) == 1
    # A new block starts with probability 1/10: about 90% of steps continue a block.
    assert 0.85 < steps.mean() < 0.95


def test_bootstrap_intervals_cover_the_estimate_and_are_seeded() -> None:
    rng = np.random.default_rng(7)
    returns = rng.normal(0.002, 0.02, 500)
    intervals = bootstrap_intervals(returns, draws=1000, seed=3)
    sharpe = annualised_sharpe(returns)
    total = float(np.prod(1 + returns) - 1)
    assert intervals.sharpe_ci_low < sharpe < intervals.sharpe_ci_high
    assert intervals.total_return_ci_low < total < intervals.total_return_ci_high
    # The Sharpe's standard error is about sqrt(365 / T) annualised: the interval is about
    # +-1.96 of it wide, not a sliver and not the whole line.
    width = intervals.sharpe_ci_high - intervals.sharpe_ci_low
    assert 0.5 * 2 * 1.96 * math.sqrt(365 / 500) < width < 2 * 2 * 1.96 * math.sqrt(365 / 500)
    assert bootstrap_intervals(returns, draws=1000, seed=3) == intervals
    assert bootstrap_intervals(returns, draws=1000, seed=4) != intervals


def test_luck_figures_have_every_metrics_key_as_numbers() -> None:
    returns = np.random.default_rng(2).normal(0.001, 0.01, 200)
    figures = luck_figures(returns, trials=5, trials_variance=0.001, draws=200)
    for key in (
        "sharpe_ci_low",
        "sharpe_ci_high",
        "total_return_ci_low",
        "total_return_ci_high",
        "psr",
        "dsr",
        "dsr_trials",
    ):
        assert isinstance(figures[key], float), key
    assert figures["dsr"] < figures["psr"]
    assert luck_figures(np.array([0.01]))["psr"] == 0.0


def test_daily_returns_and_sharpe_are_the_backtest_metrics() -> None:
    from datetime import UTC, datetime, timedelta

    from bot.metrics import compute
    from bot.recording import to_micros

    rng = np.random.default_rng(4)
    times = [datetime(2022, 1, 1, tzinfo=UTC) + timedelta(hours=h) for h in range(24 * 60)]
    stamps = [to_micros(t) for t in times]
    equity = list(10_000 * np.exp(np.cumsum(rng.normal(0.0001, 0.003, len(times)))))
    metrics = compute(
        stamps=stamps,
        equity=equity,
        closes=equity,
        exposed=[True] * len(times),
        initial_cash=10_000.0,
        round_trips=[],
        n_fills=0,
        fees=0.0,
    )
    returns = daily_returns(stamps, equity, 10_000.0)
    assert returns.size == metrics["n_days"] == 60
    assert annualised_sharpe(returns) == pytest.approx(metrics["sharpe"], rel=1e-12)


def test_record_and_assess_counts_every_configuration_on_the_data(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from bot.research.ledger import TrialLedger
    from bot.research.luck import record_and_assess

    ledger = TrialLedger.open(f"sqlite:///{tmp_path / 'store.sqlite'}")
    when = datetime(2026, 1, 1, tzinfo=UTC)
    rng = np.random.default_rng(11)
    figures = []
    for config in ("a", "b", "c"):
        returns = rng.normal(0.002, 0.02, 300)
        figures.append(
            record_and_assess(
                ledger,
                returns=returns,
                data="d",
                config=config,
                kind="backtest",
                recorded_at=when,
                draws=100,
            )
        )
    assert [f["dsr_trials"] for f in figures] == [1.0, 2.0, 3.0]
    assert figures[0]["dsr"] == pytest.approx(figures[0]["psr"])
    assert figures[2]["dsr"] < figures[2]["psr"]
    assert ledger.count("d").trials == 3
