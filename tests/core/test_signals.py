"""The signal service: batching, the persistent cache, and never losing an item to a failing
model."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from adapters.model.lexicon import LexiconModel
from bot.clock import LiveClock
from bot.config import Settings
from bot.events import NewsItem, Signal
from bot.protocols import ModelUnavailable, Prediction
from bot.signals import SignalCache, SignalService, normalise
from bot.store import Store
from bot.symbols import SymbolTable

T = datetime(2024, 1, 1, tzinfo=UTC)
SYMBOLS = SymbolTable.from_settings(Settings())


class FlakyModel:
    """A real SentimentModel (the lexicon) behind an outage switch, counting its calls."""

    def __init__(self) -> None:
        self.inner = LexiconModel()
        self.down = False
        self.batches: list[int] = []

    @property
    def model_id(self) -> str:
        return "flaky-" + self.inner.model_id

    async def classify(self, texts: Sequence[str]) -> list[Prediction]:
        if self.down:
            raise ModelUnavailable("server down")
        self.batches.append(len(texts))
        return [
            Prediction(p.label, p.confidence, p.probs, self.model_id)
            for p in await self.inner.classify(texts)
        ]

    async def load(self) -> None:
        return None

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None


def item(n: int, title: str = "Bitcoin rallies") -> NewsItem:
    return NewsItem(f"n{n}", "s", f"{title} #{n}", T, symbols=("BTCUSDT",))


def service(model: FlakyModel, out: list[object], **kw: object) -> SignalService:
    defaults: dict[str, object] = {
        "batch_size": 8,
        "max_wait": 0.05,
        "timeout": 1.0,
    }
    defaults.update(kw)
    return SignalService(model, SYMBOLS, LiveClock(), out.append, **defaults)  # type: ignore[arg-type]


async def test_items_arriving_together_share_one_model_call() -> None:
    model, out = FlakyModel(), []
    signals = service(model, out)
    signals.start_live()
    runner = asyncio.create_task(signals.run())
    for n in range(5):
        signals.on_news(item(n))
    await asyncio.sleep(0.2)
    runner.cancel()
    assert model.batches == [5]
    assert [s.news_id for s in out] == [f"n{n}" for n in range(5)]  # type: ignore[attr-defined]


async def test_model_outage_keeps_items_and_retry_recovers_them(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.sqlite'}", durable=True)
    model, out = FlakyModel(), []
    signals = service(model, out, store=store)
    signals.start_live()
    runner = asyncio.create_task(signals.run())
    model.down = True
    for n in range(3):
        store.record_news(item(n))
        signals.on_news(item(n))
    await asyncio.sleep(0.2)
    assert out == [] and signals.failed_batches >= 1
    assert {i.id for i in store.pending_news()} == {"n0", "n1", "n2"}  # kept, marked failed
    model.down = False
    signals.retry_pending(store.pending_news())
    await asyncio.sleep(0.2)
    runner.cancel()
    assert sorted(s.news_id for s in out) == ["n0", "n1", "n2"]  # type: ignore[attr-defined]
    assert store.pending_news() == []


async def test_cache_persists_and_is_keyed_by_model_id(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    model, out = FlakyModel(), []
    signals = service(model, out, cache=SignalCache(path))
    texts = [item(n).text for n in range(10)]
    assert await signals.prefetch(texts) == 10
    assert await signals.prefetch(texts) == 0
    signals.cache.close()
    again = FlakyModel()
    warm = service(again, [], cache=SignalCache(path))
    assert await warm.prefetch(texts) == 0 and again.batches == []
    other = LexiconModel()
    cache = SignalCache(path)
    assert cache.get(other.model_id, normalise(texts[0])) is None  # another model: no stale hit
    assert cache.get(again.model_id, normalise(texts[0].upper())) is not None


def test_untagged_news_is_market_wide_at_the_configured_weight() -> None:
    model, out = FlakyModel(), []
    signals = service(model, out, market_wide_weight=0.25)
    asyncio.run(signals.prefetch(["Markets rally"]))
    signals.on_news(NewsItem("m", "s", "Markets rally", T))
    assert len(out) == 1
    signal = out[0]
    assert isinstance(signal, Signal) and signal.symbol is None and signal.weight == 0.25
    none_out: list[object] = []
    silent = service(model, none_out, market_wide_weight=0.0, cache=signals.cache)
    silent.on_news(NewsItem("m", "s", "Markets rally", T))
    assert none_out == []
