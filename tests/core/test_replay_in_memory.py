"""`bot.replay.replay_in_memory`: the replay the luck figures and hyperopt trials run, on events
parsed once, keeping nothing; it must give the very Sharpe `lorabot backtest` reports."""

from __future__ import annotations

from pathlib import Path

from bot import assemble
from bot.backtest import LuckOptions
from bot.events import Decision
from bot.replay import replay_in_memory, trial_engine
from bot.symbols import SymbolTable
from tests.core.luck_scenarios import backtest, lexicon_settings, write_scenario


def test_in_memory_replay_gives_the_backtests_sharpe_for_each_strategy(tmp_path: Path) -> None:
    news_path, bars_path = write_scenario(tmp_path / "in", informative=True, days=12)
    for n, strategy in enumerate(({}, {"threshold": 0.9, "window": 4 * 3600.0})):
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
