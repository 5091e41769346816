"""`bot.replay.replay_in_memory`: the replay the luck figures and hyperopt trials run, on events
parsed once, keeping nothing; it must give the very Sharpe `lorabot backtest` reports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from bot import assemble
from bot.backtest import LuckOptions
from bot.events import Bar, Decision
from bot.luck_replays import BarKeeper
from bot.recording import to_micros
from bot.replay import replay_in_memory, trial_engine
from bot.signals import SignalCache
from bot.symbols import SymbolTable
from tests.core.luck_scenarios import backtest, lexicon_settings, write_scenario


def test_in_memory_replay_gives_the_backtests_sharpe_for_each_strategy(tmp_path: Path) -> None:
    news_path, bars_path = write_scenario(tmp_path / "in", informative=True, days=12)
    for n, strategy in enumerate(
        ({}, {"aggregation": "share", "threshold": 0.9, "window": 14400.0})
    ):
        settings = lexicon_settings(tmp_path, strategy=strategy)
        options = LuckOptions(ledger_url=f"sqlite:///{tmp_path / 'ledger.sqlite'}", lag=False)
        result = backtest(tmp_path, news_path, bars_path, f"out{n}", options, settings)
        symbols = SymbolTable.from_settings(settings)
        news = assemble.read_news_file(news_path, symbols)
        bars = list(assemble.bars_file(bars_path, "BTCUSDT"))  # parsed once, replayed twice
        for _ in range(2):
            trial = replay_in_memory(
                settings,
                bars=bars,
                news=news,
                signals=assemble.signal_cache(settings),  # the backtest's cache answers all
                model=assemble.build_model(settings),
                symbol="BTCUSDT",
                symbols=symbols,
            )
            assert trial.sharpe == result.metrics["sharpe"]
            assert trial.final_equity == result.metrics["final_equity"]
            assert len(trial.recording.trades) == result.metrics["n_trades"]
            assert trial.recording.decisions == []  # no decision record is made
        assert result.metrics["n_trades"], "the scenario trades"


def test_a_trial_engine_keeps_nothing(tmp_path: Path) -> None:
    settings = lexicon_settings(tmp_path)
    symbols = SymbolTable.from_settings(settings)
    engine = trial_engine(
        settings,
        symbols=symbols,
        traded=["BTCUSDT"],
        model=assemble.build_model(settings),
        signals=assemble.signal_cache(settings),
    )
    assert engine.store is None and engine.signals.store is None
    assert engine.bus.handlers(Decision) == []  # no journal, and nothing to journal
    assert not (tmp_path / "data").exists()


D1 = Decimal(1)


def _bars(minutes: list[int]) -> list[Bar]:
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    price = Decimal("40000")
    return [
        Bar("BTCUSDT", t0 + timedelta(minutes=m), t0 + timedelta(minutes=m + 1), *[price] * 4, D1)
        for m in minutes
    ]


def test_each_bars_stamp_is_its_close_in_microseconds_across_gaps(tmp_path: Path) -> None:
    """The driver adds the usual gap to the last stamp instead of converting each time: a gap
    in the data, a longer or a shorter one, must still give every bar its own exact stamp."""
    settings = lexicon_settings(tmp_path)
    bars = _bars([0, 1, 2, 5, 6, 7, 100, 101, 130, 131, 132])
    trial = replay_in_memory(
        settings,
        bars=bars,
        news=[],
        signals=SignalCache(),
        model=assemble.build_model(settings),
        symbol="BTCUSDT",
    )
    assert list(trial.recording.stamps) == [to_micros(bar.ts) for bar in bars]


def test_the_bar_keeper_keeps_the_window_and_gives_up_past_its_limit() -> None:
    bars = _bars(list(range(10)))
    keeper = BarKeeper(bars[2].ts, bars[6].ts, limit=5)
    assert list(keeper.watch(iter(bars))) == bars  # passed through unchanged
    again = list
    assert keeper.replayable(again)() == bars[2:7]  # only the window's bars are kept
    small = BarKeeper(None, None, limit=5)
    assert list(small.watch(iter(bars))) == bars
    assert small.replayable(again) is again  # too many to keep: the file is read again
    assert BarKeeper(None, None).replayable(again) is again  # never watched: nothing kept
