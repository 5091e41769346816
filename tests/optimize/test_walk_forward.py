"""Walk-forward folds, the search space, and trials that never see their test span."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import optuna
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.config import load_settings
from bot.engine import Engine
from bot.errors import UserError
from bot.events import Bar, NewsItem
from bot.optimize import data as trial_data
from bot.optimize.folds import walk_forward
from bot.optimize.space import build_space, trial_settings
from strategies.loader import parameters
from tests.optimize.conftest import BARS, NEWS

T0 = datetime(2024, 1, 1, tzinfo=UTC)


@given(st.integers(1, 8), st.sampled_from(["anchored", "rolling"]), st.integers(24, 24 * 400))
def test_folds_never_overlap_and_tune_only_on_the_past(folds: int, walk: str, hours: int) -> None:
    end = T0 + timedelta(hours=hours)
    if hours / (folds + 1) < 1:
        return
    made = walk_forward(T0, end, folds, walk)
    assert len(made) == folds
    assert made[-1].oos_end == end
    for fold in made:
        assert fold.is_start < fold.is_end <= fold.oos_start < fold.oos_end
    for a, b in itertools.pairwise(made):
        assert a.oos_end <= b.oos_start  # out-of-sample spans never overlap
    if walk == "anchored":
        assert all(f.is_start == T0 for f in made)
    else:
        assert all(f.is_end - f.is_start == made[0].is_end - made[0].is_start for f in made)


def test_fold_errors() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        walk_forward(T0, T0 + timedelta(days=10), 0)
    with pytest.raises(ValueError, match="under an hour"):
        walk_forward(T0, T0 + timedelta(hours=2), 4)
    with pytest.raises(ValueError, match="--walk sideways"):
        walk_forward(T0, T0 + timedelta(days=10), 2, "sideways")


def test_the_space_comes_from_the_declarations_narrowed_by_space() -> None:
    space = build_space(parameters("trend"), ["threshold=0.5:0.7", "aggregation=evidence"], "trend")
    dists = space.distributions()
    assert dists["threshold"] == optuna.distributions.FloatDistribution(0.5, 0.7, step=0.05)
    assert dists["aggregation"] == optuna.distributions.CategoricalDistribution(["evidence"])
    assert dists["trend_hours"] == optuna.distributions.IntDistribution(6, 168, step=6)
    tuned = trial_settings(load_settings(None), space, {"threshold": 0.55, "trend_hours": 36})
    assert tuned.strategy.threshold == 0.55 and tuned.strategy.params == {"trend_hours": 36}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("threshold=0.8:0.5", r"--space threshold=0.8:0.5: the range is inverted"),
        ("threshold=0.5:0.5", r"--space threshold=0.5:0.5: the range is empty"),
        ("threshold=0.1:0.5", r"outside the declared range \[0.3, 0.95\]"),
        ("threshold=a:b", r"LOW and HIGH must be a number"),
        ("aggregation=", r"give NAME=LOW:HIGH"),
        ("aggregation=mean", r"mean not among \['share', 'evidence'\]"),
        ("nope=1:2", r"--space nope: vote has no parameter nope"),
    ],
)
def test_bad_ranges_are_one_line(entry: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        build_space(parameters("vote"), [entry], "vote")


def test_a_strategy_with_nothing_to_tune_is_refused() -> None:
    with pytest.raises(UserError, match="declares no parameters: nothing to tune"):
        build_space({}, [], "mine.py:Plain")


@pytest.mark.parametrize("walk", ["anchored", "rolling"])
def test_a_trial_sees_only_its_in_sample_span(lexicon_config: Path, walk: str) -> None:
    settings = load_settings(lexicon_config)
    loaded = trial_data.load(
        settings,
        news_path=NEWS,
        bars_path=BARS,
        symbol="BTCUSDT",
        start=T0,
        end=T0 + timedelta(days=9),
    )
    seen: list[datetime] = []

    def watch(engine: Engine) -> None:
        bus = engine.bus
        bus.subscribe(Bar, lambda bar: seen.append(bar.ts))
        bus.subscribe(NewsItem, lambda item: seen.append(item.received))

    fold = walk_forward(loaded.start, loaded.end, 2, walk)[1]
    trial_data.replay_span(loaded, settings, fold.is_start, fold.is_end, watch)
    assert seen and min(seen) >= fold.is_start and max(seen) < fold.is_end
    assert any(isinstance(ts, datetime) for ts in seen)
    news_in = [i for i in loaded.news if fold.is_start <= i.received < fold.is_end]
    assert len([ts for ts in seen if ts in {i.received for i in news_in}]) >= len(news_in)


def test_a_trial_scores_what_the_backtest_of_its_config_reports(
    lexicon_config: Path, tmp_path: Path
) -> None:
    """The same replay driver, the same objective: a trial is a backtest without the files."""
    from bot.backtest import LuckOptions, run_backtest
    from bot.luck_report import run_returns
    from bot.optimize.objective import score

    settings = load_settings(lexicon_config).with_overrides(strategy={"threshold": 0.5})
    start, end = T0, T0 + timedelta(days=8)
    loaded = trial_data.load(
        settings, news_path=NEWS, bars_path=BARS, symbol="BTCUSDT", start=start, end=end
    )
    recording = trial_data.replay_span(loaded, settings, start, end)
    result = run_backtest(
        settings,
        bars_path=BARS,
        news_path=NEWS,
        symbol="BTCUSDT",
        start=start,
        end=end - timedelta(microseconds=1),
        out_dir=tmp_path / "bt",
        progress=False,
        luck=LuckOptions(ledger_url=f"sqlite:///{tmp_path / 'l.sqlite'}", lag=False),
    )
    returns = run_returns(recording, float(settings.engine.initial_cash))
    assert result.metrics["n_trades"] == len(recording.trades) > 0
    assert score("sharpe", returns) == pytest.approx(result.metrics["sharpe"])
    assert score("return", returns) == pytest.approx(result.metrics["total_return"])
    assert score("sortino", returns) == pytest.approx(result.metrics["sortino"])
