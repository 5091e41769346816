"""The signal service and a market-aware model: contexts from the bars seen before each item, a
cache keyed by text and context, and the live batcher's path."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.model.impact import ImpactModel, market_inputs_of
from bot import assemble
from bot.clock import ReplayClock
from bot.config import Settings
from bot.events import Bar, Label, NewsItem, Signal
from bot.protocols import Prediction
from bot.signals import SignalService, context_key, normalise
from bot.symbols import SymbolTable
from training.impact.cli import ImpactRequest, run
from training.impact.heads import HeadSettings

from .files import write_momentum_files

SPLIT = datetime(2022, 3, 10, tzinfo=UTC)

pytestmark = pytest.mark.slow  # trains a model in its fixture


@pytest.fixture(scope="module")
def numbers_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("numbers")
    news, bars, _ = write_momentum_files(folder)
    request = ImpactRequest(
        news=news, bars={"BTCUSDT": bars}, out=folder / "out", split_date=SPLIT,
        models=("numbers",),
    )  # fmt: skip
    run(Settings(), Settings().training, request, head=HeadSettings(epochs=40), echo=print)
    return folder / "out" / "numbers", bars


def _bars(path: Path) -> list[Bar]:
    return list(assemble.bars_file(path, "BTCUSDT"))


def _service(model: ImpactModel, emitted: list[object], clock: ReplayClock) -> SignalService:
    market = market_inputs_of(model)
    assert market is not None
    symbols = SymbolTable.from_settings(Settings())
    return SignalService(model, symbols, clock, emitted.append, market=market)


def _item(at: datetime, title: str = "river stone cloud") -> NewsItem:
    return NewsItem(id=f"n{at.timestamp():.0f}", source="wire", title=title, received=at)


def test_contexts_come_from_the_bars_seen_and_key_the_cache(
    numbers_model: tuple[Path, Path],
) -> None:
    folder, bars_path = numbers_model
    model = ImpactModel(folder)
    bars = _bars(bars_path)
    emitted: list[object] = []
    clock = ReplayClock()
    service = _service(model, emitted, clock)
    item = _item(bars[1000].ts + timedelta(minutes=10))
    # a text-only answer for the same headline must never be taken for the model's
    fake = Prediction(Label.BULLISH, 1.0, (0.0, 0.0, 1.0), model.model_id)
    service.cache.put_many(model.model_id, [(normalise(item.text), fake)])
    asyncio.run(service.prefetch([item.text]))
    for bar in bars[:1001]:
        clock.advance_to(bar.ts)
        service.on_bar(bar)
    clock.advance_to(item.received)
    service.on_news(item)
    signal = emitted[-1]
    assert isinstance(signal, Signal) and signal.probs != fake.probs
    context = service.market.features.context(item.received)  # type: ignore[union-attr]
    assert all(value == value for value in context.values)  # a full week of bars: no NaN
    expected = model.classify_in_context([item.text], [context])[0]
    assert signal.probs == expected.probs
    key = context_key(item.text, context)
    assert key != normalise(item.text)
    assert service.cache.get(model.model_id, key) == expected
    # the same headline after other bars: another context, another cache entry
    for bar in bars[1001:1010]:
        service.on_bar(bar)
    later = _item(bars[1009].ts + timedelta(minutes=10))
    clock.advance_to(later.received)
    service.on_news(later)
    other = service.market.features.context(later.received)  # type: ignore[union-attr]
    assert other.key != context.key
    assert service.cache.get(model.model_id, context_key(later.text, other)) is not None


async def test_the_live_batcher_reads_the_streamed_bars(numbers_model: tuple[Path, Path]) -> None:
    folder, bars_path = numbers_model
    model = ImpactModel(folder)
    bars = _bars(bars_path)
    emitted: list[object] = []
    clock = ReplayClock()
    service = _service(model, emitted, clock)
    service.start_live()
    task = asyncio.create_task(service.run())
    try:
        for bar in bars[:800]:
            service.on_bar(bar)
        item = _item(bars[799].ts + timedelta(seconds=5), "alpha beta gamma")
        clock.advance_to(item.received)
        service.on_news(item)
        for _ in range(200):
            if emitted:
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await model.close()
    signal = emitted[0]
    assert isinstance(signal, Signal) and signal.model_id == model.model_id
    context = service.market.features.context(item.received)  # type: ignore[union-attr]
    assert signal.probs == model.classify_in_context([item.text], [context])[0].probs
