"""The strategy protocol: declared parameters, the loader's errors, the vote through the base
class deciding exactly as the vote did, the trend-gated vote, and `lorabot new-strategy`."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.config import Settings
from bot.events import Bar, Label, Signal
from bot.symbols import SymbolTable
from strategies.loader import StrategyError, build_strategy, parameters, strategy_class
from strategies.params import ParamError
from strategies.protocol import NewsStrategy, Strategy
from strategies.sizing import target_qty, within_band
from strategies.trend_vote import TrendGatedVote
from strategies.vote import decide
from strategies.vote_strategy import VoteStrategy

ROOT = Path(__file__).resolve().parents[2]
T = datetime(2024, 1, 1, tzinfo=UTC)
INSTRUMENT = SymbolTable.from_settings(Settings()).instrument("BTCUSDT")


def signal(label: Label, conf: float, at: datetime = T, stale: bool = False) -> Signal:
    probs = [(1 - conf) / 2] * 3
    probs[label] = conf
    return Signal(
        at,
        "BTCUSDT",
        label,
        conf,
        (probs[0], probs[1], probs[2]),
        "m",
        "s",
        "n",
        at,
        at,
        1.0,
        stale,
    )


def config(**strategy: object) -> Settings:
    return Settings().with_overrides(strategy={"half_life": 0, **strategy})


def hourly_bar(i: int, close: float) -> Bar:
    ts_open = T - timedelta(hours=48) + timedelta(hours=i)
    c = D(str(close))
    return Bar("BTCUSDT", ts_open, ts_open + timedelta(hours=1), c, c + 1, c - 1, c, D(1))


# -- parameters and the loader --------------------------------------------------------------


def test_declared_parameters_read_as_values_and_come_from_config() -> None:
    trend = build_strategy(config(use="trend", threshold=0.7, params={"trend_hours": 48}).strategy)
    assert isinstance(trend, TrendGatedVote) and isinstance(trend, Strategy)
    assert trend.trend_hours == 48 and trend.reactive_hours == 4  # set, default
    assert trend.threshold == 0.7  # a [strategy] key
    names = set(parameters("trend"))
    assert {"threshold", "window", "trend_hours", "reactive_sigma"} <= names


def test_a_config_value_outside_the_search_range_still_runs() -> None:
    """The declared range is hyperopt's; a [strategy] key keeps its own, wider, range."""
    assert build_strategy(config(threshold=0.1).strategy).threshold == 0.1  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"trend_hours": 1000},
            r"\[strategy.params\] trend_hours = 1000 is outside its range \[6, 168\]",
        ),
        ({"trend_hours": "x"}, r"trend_hours: 'x' is not an integer"),
        ({"nope": 1}, r"\[strategy.params\] nope: TrendGatedVote has no such parameter"),
    ],
)
def test_bad_params_are_one_line_naming_the_key(params: dict[str, object], message: str) -> None:
    with pytest.raises(StrategyError, match=message):
        build_strategy(config(use="trend", params=params).strategy)


def test_user_classes_that_do_not_fit_are_refused_naming_what_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "mine.py"
    path.write_text(
        "from strategies.protocol import NewsStrategy\n"
        "class Bare:\n    def decide(self, view):\n        return None\n"
        "class NoDecide(NewsStrategy):\n    pass\n"
        "class Fine(NewsStrategy):\n    def decide(self, view):\n        return None\n"
    )
    with pytest.raises(
        StrategyError,
        match="Bare does not fit the strategy protocol: it has no "
        "reevaluate_every, on_signal, on_bar, wants_revote, evaluate",
    ):
        strategy_class(f"{path}:Bare")
    with pytest.raises(StrategyError, match="NoDecide does not define decide"):
        strategy_class(f"{path}:NoDecide")
    with pytest.raises(StrategyError, match=r"has no Missing \(classes there: .*Fine"):
        strategy_class(f"{path}:Missing")
    with pytest.raises(StrategyError, match="no such file"):
        strategy_class(f"{tmp_path}/absent.py:Fine")
    with pytest.raises(StrategyError, match="a built-in"):
        strategy_class("momentum")
    assert issubclass(strategy_class(f"{path}:Fine"), NewsStrategy)
    assert strategy_class("strategies.vote_strategy:VoteStrategy") is VoteStrategy


def test_a_file_that_fails_to_import_names_the_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.py"
    path.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(StrategyError, match="failed to load: RuntimeError: boom"):
        strategy_class(f"{path}:X")


def test_a_param_declaration_with_an_empty_range_fails_at_class_definition() -> None:
    from strategies.params import IntParam

    with pytest.raises(ParamError, match="empty or inverted"):
        IntParam(5, 5, 5)


# -- the vote through the base class decides as the vote always did -------------------------


def reference_outcome(
    vote: VoteStrategy, now: datetime, price: D, current: D
) -> tuple[str, D | None]:
    """The vote's evaluation as written before the protocol (decide, size, band), by hand."""
    composite = vote.signal_window.composite("BTCUSDT", now)
    decision = decide(composite, vote.vote_params, INSTRUMENT.can_short)
    if decision.direction is None:
        empty = composite.label is None or composite.n_signals < vote.vote_params.min_signals
        return ("hold" if empty else "below threshold"), None
    qty = target_qty(
        decision.direction,
        composite.confidence,
        D(10000),
        price,
        vote.config.fraction,
        vote.config.max_fraction,
        INSTRUMENT,
    )
    if qty == current:
        return "unchanged", None
    if within_band(current, qty, vote.config.rebalance_band):
        return "within band", None
    return "target", qty


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(list(Label)), st.floats(0.34, 1.0), st.integers(0, 600)),
        max_size=8,
    ),
    st.sampled_from(["hold", "flat"]),
    st.sampled_from(["share", "evidence"]),
    st.floats(0.3, 0.9),
    st.sampled_from([D(0), D("0.05"), D("-0.1")]),
)
def test_the_vote_through_the_protocol_decides_as_the_plain_vote(
    items: list[tuple[Label, float, int]],
    below: str,
    aggregation: str,
    threshold: float,
    current: D,
) -> None:
    vote = VoteStrategy(
        config(
            below_threshold=below, aggregation=aggregation, threshold=threshold, min_signals=2
        ).strategy
    )
    for label, conf, minutes in items:
        vote.on_signal(signal(label, conf, T - timedelta(minutes=minutes)))
    expected = reference_outcome(vote, T, D("40000"), current)
    got = vote.evaluate(
        "BTCUSDT", T, instrument=INSTRUMENT, price=D("40000"), equity=D(10000), current=current
    )
    assert (got.outcome, got.target.qty if got.target else None) == expected


# -- the trend-gated vote -------------------------------------------------------------------


def trend_after(closes: list[float], **params: object) -> TrendGatedVote:
    strategy = build_strategy(config(use="trend", params=params).strategy)
    assert isinstance(strategy, TrendGatedVote)
    for i, close in enumerate(closes):
        strategy.on_bar(hourly_bar(i, close))
    return strategy


def evaluate(strategy: NewsStrategy, price: str) -> tuple[str, D | None, str]:
    got = strategy.evaluate(
        "BTCUSDT", T, instrument=INSTRUMENT, price=D(price), equity=D(10000), current=D(0)
    )
    return got.outcome, (got.target.qty if got.target else None), got.reason


def test_longs_only_above_the_trend_mean() -> None:
    rising = trend_after([100.0 + i for i in range(48)], reactive_sigma=0.0)
    rising.on_signal(signal(Label.BULLISH, 0.9, T - timedelta(minutes=5)))
    outcome, qty, _ = evaluate(rising, "147")
    assert outcome == "target" and qty is not None and qty > 0
    falling = trend_after([200.0 - i for i in range(48)], reactive_sigma=0.0)
    falling.on_signal(signal(Label.BULLISH, 0.9, T - timedelta(minutes=5)))
    outcome, qty, reason = evaluate(falling, "153")
    assert outcome == "unchanged" and "below its 24h mean" in reason  # flat: no long
    shorting = trend_after([200.0 - i for i in range(48)], reactive_sigma=0.0)
    shorting.on_signal(signal(Label.BEARISH, 0.9, T - timedelta(minutes=5)))
    outcome, qty, _ = evaluate(shorting, "153")
    assert outcome == "target" and qty is not None and qty < 0


def test_a_headline_after_a_move_its_way_is_reactive_and_left_out() -> None:
    quiet = [100.0 + (0.2 if i % 2 else -0.2) for i in range(44)]
    spike = [*quiet, 101.0, 104.0, 108.0, 112.0]  # the 4 hours before the headline
    reactive = trend_after(spike, reactive_sigma=2.0)
    reactive.on_signal(signal(Label.BULLISH, 0.9, T))
    assert evaluate(reactive, "112")[0] == "hold"  # the only signal left the vote
    kept = trend_after(spike, reactive_sigma=0.0)  # 0: the filter is off
    kept.on_signal(signal(Label.BULLISH, 0.9, T))
    assert evaluate(kept, "112")[0] == "target"
    against = trend_after(spike, reactive_sigma=2.0)  # a bearish item after a rise is news
    against.on_signal(signal(Label.BEARISH, 0.9, T))
    outcome, _qty, _ = evaluate(against, "112")
    assert outcome == "unchanged" and "above its 24h mean" in evaluate(against, "112")[2]


def test_the_vote_keeps_no_bars() -> None:
    vote = VoteStrategy(config().strategy)
    vote.on_bar(hourly_bar(0, 100.0))
    assert vote.bars == {}


# -- lorabot new-strategy -------------------------------------------------------------------


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_new_strategy_writes_a_starter_that_backtests_as_is(tmp_path: Path) -> None:
    made = run(["new-strategy", "news momentum"], tmp_path)
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "news_momentum.py").is_file()
    assert (
        run(["new-strategy", "NewsMomentum"], tmp_path)
        .stderr.strip()
        .endswith("exists (use --force to overwrite it)")
    )
    (tmp_path / "config.toml").write_text(
        '[strategy]\nuse = "news_momentum.py:NewsMomentum"\n\n'
        "[strategy.params]\nlookback_hours = 12\n"
    )
    done = run(
        [
            "backtest",
            "--sample",
            "--no-lag",
            "--out",
            "bt",
            "--ledger",
            f"sqlite:///{tmp_path / 'l.sqlite'}",
        ],
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    trades = (tmp_path / "bt" / "trades.csv").read_text().splitlines()
    assert len(trades) > 2  # it trades
    assert 'use = "news_momentum.py:NewsMomentum"' in (tmp_path / "bt" / "config.toml").read_text()


def test_lorabot_config_lists_the_strategy_parameters_and_ranges(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli import main

    path = tmp_path / "c.toml"
    path.write_text('[strategy]\nuse = "trend"\n\n[strategy.params]\ntrend_hours = 48\n')
    main(["--config", str(path), "config"])  # returns on success (exits on an error)
    out = capsys.readouterr().out
    assert "# strategy 'trend' (TrendGatedVote)" in out
    assert "#   [strategy.params] trend_hours = 48  (6..168)" in out
    assert "#   [strategy] threshold = 0.6  (0.3..0.95)" in out
