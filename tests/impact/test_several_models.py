"""`[[model.extra]]`: several models read every news item, each signal tagged with its model.

Real backtests of the shipped sample (lexicon first, a scripted model beside it): every item
gets one signal per model in the store, every news decision names its model, the vote counts
both (an extra at weight 0 is recorded and never voted: the trades are the lexicon's alone), a
user strategy can follow one model only, and the live batcher asks a failed model again without
emitting the other model's signal twice.
"""

from __future__ import annotations

import asyncio
import csv
import json
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from bot import assemble
from bot.backtest import LuckOptions, run_backtest
from bot.clock import ReplayClock
from bot.commands.backtest import sample_paths
from bot.config import ConfigError, Settings
from bot.errors import UserError
from bot.events import Label, NewsItem, Signal
from bot.protocols import ModelUnavailable, Prediction
from bot.recording import BacktestResult
from bot.report import write_decisions
from bot.signals import ModelReader, SignalService, normalise
from bot.store import Store
from bot.symbols import SymbolTable

NEWS, BARS = sample_paths()
STRATEGY = '''
from bot.events import Label
from strategies.protocol import Intent, NewsStrategy, View


class FollowScripted(NewsStrategy):
    """Long while the newest signal of a scripted model is bullish; every other model ignored."""

    def decide(self, view: View) -> Intent | None:
        mine = [s for s in view.signals if s.model_id.startswith("scripted-")]
        if not mine:
            return Intent(0, reason="no scripted signal: flat")
        newest = max(mine, key=lambda s: s.received)
        return Intent(1 if newest.label is Label.BULLISH else 0, 1.0, "scripted says so")
'''


def _texts() -> list[str]:
    return [
        item.text for item in assemble.read_news_file(NEWS, SymbolTable.from_settings(Settings()))
    ]


def _scripted(tmp_path: Path, label: str, confidence: float = 0.95) -> Path:
    path = tmp_path / f"scripted_{label}.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        for text in _texts():
            handle.write(
                json.dumps({"text": text, "label": label, "confidence": confidence}) + "\n"
            )
    return path


def _backtest(
    tmp_path: Path, name: str, extra: list[dict[str, object]], **strategy: object
) -> BacktestResult:
    settings = Settings().with_overrides(
        model={"backend": "lexicon", "cache": False, "extra": extra},
        strategy={"reevaluate_interval": 3600.0, **strategy},
    )
    return run_backtest(
        settings,
        bars_path=BARS,
        news_path=NEWS,
        out_dir=tmp_path / name,
        progress=False,
        luck=LuckOptions(ledger_url=f"sqlite:///{tmp_path / 'ledger.sqlite'}", lag=False),
    )


def _stored_signals(out: Path) -> list[tuple[str, str, str]]:
    db = sqlite3.connect(str(out / "store.sqlite"))
    try:
        return db.execute("SELECT news_id, model_id, label FROM signals").fetchall()
    finally:
        db.close()


def _decisions(result: BacktestResult) -> list[dict[str, str]]:
    """The run's decisions.csv rows (as `lorabot backtest` writes them)."""
    path = result.out_dir / "decisions.csv"
    write_decisions(path, result.recording.decisions)
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_every_item_is_read_by_both_models_and_both_vote(tmp_path: Path) -> None:
    alone = _backtest(tmp_path, "alone", [])
    both = _backtest(
        tmp_path,
        "both",
        [{"backend": "scripted", "scripted_file": str(_scripted(tmp_path, "bearish"))}],
    )
    lexicon = both.parts.model.model_id
    service = both.parts.signals
    scripted = service.readers[1].model.model_id
    assert lexicon.startswith("lexicon-") and scripted.startswith("scripted-")
    stored = _stored_signals(both.out_dir)
    by_item: dict[str, set[str]] = {}
    for news_id, model_id, _ in stored:
        by_item.setdefault(news_id, set()).add(model_id)
    n = len(_texts())
    assert len(by_item) == n and all(ids == {lexicon, scripted} for ids in by_item.values())
    assert Counter(m for _, m, _ in stored) == {lexicon: n, scripted: n}
    assert {label for _, m, label in stored if m == scripted} == {"bearish"}
    # the cache keys each answer by its model
    for text in _texts()[:5]:
        assert service.cache.get(scripted, normalise(text)).label is Label.BEARISH  # type: ignore[union-attr]
        assert service.cache.get(lexicon, normalise(text)) is not None
    # each news decision names the model whose signal caused it; re-votes name none
    news = [d for d in _decisions(both) if d["trigger"] == "news"]
    assert Counter(d["model_id"] for d in news) == {lexicon: n, scripted: n}
    assert {d["model_id"] for d in _decisions(both) if d["trigger"] == "revote"} <= {""}
    # the vote counts the scripted model's bearish answers: the lexicon's trades are not kept
    assert alone.recording.trades != both.recording.trades
    assert {d["model_id"] for d in _decisions(alone)} <= {lexicon, ""}
    # and the store keeps it (the daemon journals its decisions)
    store = Store(f"sqlite:///{tmp_path / 'journal.sqlite'}", account="paper")
    try:
        caused = [d for d in both.recording.decisions if d.model_id == scripted][:3]
        for decision in caused:
            store.record_decision(decision)
        store.flush()
        assert {d.model_id for d in store.decisions(limit=10)} == {scripted}
    finally:
        store.close()


def test_an_extra_model_at_weight_zero_is_recorded_and_never_voted(tmp_path: Path) -> None:
    alone = _backtest(tmp_path, "alone", [])
    quiet = [
        {"backend": "scripted", "scripted_file": str(_scripted(tmp_path, "bearish")), "weight": 0.0}
    ]
    muted = _backtest(tmp_path, "muted", quiet)
    assert len(_stored_signals(muted.out_dir)) == 2 * len(_texts())
    assert alone.recording.trades == muted.recording.trades
    assert list(alone.recording.equity) == list(muted.recording.equity)
    assert alone.metrics["n_trades"] == muted.metrics["n_trades"] > 0


def test_a_user_strategy_follows_one_model(tmp_path: Path) -> None:
    (tmp_path / "follow.py").write_text(STRATEGY, encoding="utf-8")
    use = f"{tmp_path / 'follow.py'}:FollowScripted"
    extra = [{"backend": "scripted", "scripted_file": str(_scripted(tmp_path, "bullish"))}]
    followed = _backtest(tmp_path, "followed", extra, use=use)
    assert followed.metrics["n_trades"] > 0
    # the lexicon alone gives this strategy no scripted signal: it never trades
    ignored = _backtest(tmp_path, "ignored", [], use=use)
    assert ignored.metrics["n_trades"] == 0


def test_a_model_configured_twice_is_one_error_line(tmp_path: Path) -> None:
    settings = Settings().with_overrides(
        model={"backend": "lexicon", "extra": [{"backend": "lexicon"}]}
    )
    with pytest.raises(UserError) as caught:
        assemble.extra_models(settings, assemble.build_model(settings))
    message = str(caught.value)
    assert message.startswith("[[model.extra]] #1: the same model as [model] (model id lexicon-")
    assert "\n" not in message
    broken = Settings().with_overrides(
        model={"backend": "lexicon", "extra": [{"backend": "scripted"}]}
    )
    with pytest.raises(
        UserError, match=r"^\[\[model.extra\]\] #1: \[model\] backend = 'scripted' needs"
    ):
        assemble.extra_models(broken, assemble.build_model(broken))


class _Flaky:
    """A model that is down for its first `failures` calls, then answers `label`."""

    def __init__(self, name: str, label: Label, failures: int = 0) -> None:
        self.model_id = name
        self.label = label
        self.failures = failures
        self.calls = 0

    async def load(self) -> None: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def classify(self, texts: list[str]) -> list[Prediction]:
        self.calls += 1
        if self.calls <= self.failures:
            raise ModelUnavailable("down")
        probs = [0.1, 0.1, 0.1]
        probs[self.label] = 0.8
        return [Prediction(self.label, 0.8, (probs[0], probs[1], probs[2]), self.model_id)] * len(
            texts
        )


def test_live_a_failed_model_is_asked_again_and_the_other_never_twice() -> None:
    from datetime import UTC, datetime

    first, second = _Flaky("first", Label.BULLISH), _Flaky("second", Label.BEARISH, failures=1)
    emitted: list[Signal] = []
    clock = ReplayClock()
    clock.advance_to(datetime(2024, 1, 1, tzinfo=UTC))
    service = SignalService(
        first,  # type: ignore[arg-type]
        SymbolTable.from_settings(Settings()),
        clock,
        emitted.append,  # type: ignore[arg-type]
        also=[ModelReader(second, weight=0.5)],  # type: ignore[arg-type]
    )
    item = NewsItem(
        id="n1",
        source="wire",
        title="Bitcoin jumps",
        body="",
        link="",
        published=None,
        received=clock.now(),
        symbols=("BTCUSDT",),
    )

    async def scenario() -> None:
        service.start_live()
        runner = asyncio.create_task(service.run())
        service.on_news(item)
        await asyncio.sleep(0.05)
        assert [(s.model_id, s.weight) for s in emitted] == [("first", 1.0)]
        service.retry_pending([item])  # the engine's retry timer
        await asyncio.sleep(0.05)
        runner.cancel()

    asyncio.run(scenario())
    assert [(s.model_id, s.label, s.weight) for s in emitted] == [
        ("first", Label.BULLISH, 1.0),
        ("second", Label.BEARISH, 0.5),
    ]
    assert (first.calls, second.calls) == (1, 2)


def test_a_config_file_names_several_models(tmp_path: Path) -> None:
    from bot.config import load_settings_file

    path = tmp_path / "config.toml"
    path.write_text(
        '[model]\nbackend = "lexicon"\n\n[[model.extra]]\nbackend = "scripted"\n'
        'scripted_file = "answers.jsonl"\nweight = 0.5\n\n[[model.extra]]\npath = "runs/impact"\n',
        encoding="utf-8",
    )
    extra = load_settings_file(path).model.extra
    assert [(e.backend, e.weight) for e in extra] == [("scripted", 0.5), ("embedded", 1.0)]
    assert extra[1].path.endswith("runs/impact")
    path.write_text("[model]\n[[model.extra]]\nweight = -1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"weight"):
        load_settings_file(path)
