"""The evidence vote is the shipped default (issue 15): through the strategy object with the
default `[strategy]` (config.toml and the code's defaults alike), one coin-flip headline moves
the target by less than a tenth of full size and ten agreeing strong ones to at least 90% of it
(full size: `fraction x equity`, capped by `max_fraction`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from bot.config import Settings, StrategyConfig, load_settings_file
from bot.events import Label, Signal
from bot.symbols import SymbolTable
from strategies.vote_strategy import VoteStrategy

CONFIG = Path(__file__).resolve().parents[2] / "config.toml"
T = datetime(2024, 1, 1, tzinfo=UTC)
EQUITY, PRICE = Decimal("1000000"), Decimal("40000")


def signal(probs: tuple[float, float, float], minute: int = 0) -> Signal:
    at = T + timedelta(minutes=minute)
    best = max(range(3), key=lambda i: probs[i])
    return Signal(
        ts=at,
        symbol="BTCUSDT",
        label=Label(best),
        confidence=probs[best],
        probs=probs,
        model_id="m",
        source="desk",
        news_id=f"n{minute}",
        published=at,
        received=at,
    )


def share_of_full_size(config: StrategyConfig, signals: list[Signal]) -> float:
    """The target the strategy sets from flat, as a share of full size."""
    strategy = VoteStrategy(config)
    for one in signals:
        strategy.on_signal(one)
    evaluation = strategy.evaluate(
        "BTCUSDT",
        signals[-1].received,
        instrument=SymbolTable.from_settings(Settings()).instrument("BTCUSDT"),
        price=PRICE,
        equity=EQUITY,
        current=Decimal(0),
    )
    if evaluation.target is None:
        return 0.0
    full = EQUITY * Decimal(repr(min(config.fraction, config.max_fraction))) / PRICE
    return float(abs(evaluation.target.qty) / full)


@pytest.fixture(params=["config.toml", "code"])
def default(request: pytest.FixtureRequest) -> StrategyConfig:
    return (
        load_settings_file(CONFIG).strategy
        if request.param == "config.toml"
        else Settings().strategy
    )


def test_the_default_vote_is_the_evidence_vote(default: StrategyConfig) -> None:
    assert default.aggregation == "evidence"
    assert (
        default.prior_weight
        == load_settings_file(CONFIG).strategy.prior_weight
        == Settings().strategy.prior_weight
    )


def test_one_weak_headline_moves_less_than_a_tenth(default: StrategyConfig) -> None:
    # "Bitcoin is not going to crash, analysts say": bullish 0.471 against bearish 0.469
    assert share_of_full_size(default, [signal((0.469, 0.060, 0.471))]) < 0.1


def test_one_strong_headline_moves_less_than_ten_do(default: StrategyConfig) -> None:
    one = share_of_full_size(default, [signal((0.02, 0.03, 0.95))])
    ten = share_of_full_size(default, [signal((0.02, 0.03, 0.95), m) for m in range(10)])
    assert ten >= 0.9
    assert one < ten


def test_ten_agreeing_strong_headlines_reach_nine_tenths(default: StrategyConfig) -> None:
    strong = [signal((0.02, 0.03, 0.95), minute) for minute in range(10)]
    assert share_of_full_size(default, strong) >= 0.9
    bearish = [signal((0.95, 0.03, 0.02), minute) for minute in range(10)]
    assert share_of_full_size(default, bearish) >= 0.9  # a perpetual shorts as far


def test_the_share_vote_stays_for_comparison(default: StrategyConfig) -> None:
    share = default.model_copy(update={"aggregation": "share"})
    # the old vote gives a lone coin flip the whole composite (1.00): it trades it at full size
    assert share_of_full_size(share, [signal((0.469, 0.060, 0.471))]) == pytest.approx(1.0, 0.01)
