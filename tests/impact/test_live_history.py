"""The live daemon's impact model starts with a full feature window: at start `live_parts`
fetches the bars it needs from `/v5/market/kline` (the local Bybit simulator over 127.0.0.1),
so the first headline is read with the features a replay computes from the same bars in a file
(`lorabot download` writes it), not with the empty window's training means. Streamed 1-minute
bars are then folded into the model's hourly spacing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from adapters.bybit.download import download_klines
from adapters.bybit.sim import Simulator
from bot import assemble
from bot.assemble import live_parts
from bot.bus import Bus
from bot.clock import LiveClock
from bot.config import Settings
from bot.events import Bar, NewsItem
from bot.signals import context_key
from bot.store import Store
from tests.bybit.harness import settings_for, sim_config, wait_until
from training.impact.cli import ImpactRequest, run
from training.impact.features import BarWindow, FeatureSpec, MarketBars, compute_features
from training.impact.heads import HeadSettings

from .files import write_momentum_files

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def numbers_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("impact-live")
    news, bars, _ = write_momentum_files(folder)
    request = ImpactRequest(
        news=news,
        bars={"BTCUSDT": bars},
        out=folder / "out",
        split_date=datetime(2022, 3, 10, tzinfo=UTC),
        models=("numbers",),
    )
    run(Settings(), Settings().training, request, head=HeadSettings(epochs=5), echo=lambda _: None)
    return folder / "out" / "numbers"


def test_the_manifest_records_the_bar_spacing(numbers_model: Path) -> None:
    assert json.loads((numbers_model / "impact.json").read_text())["bar_interval_s"] == 3600


async def test_the_first_live_item_reads_the_features_of_the_history(
    numbers_model: Path, tmp_path: Path
) -> None:
    sim = Simulator(sim_config(speed=1.0))
    await sim.start()
    try:
        settings = settings_for(sim).with_overrides(
            model={"backend": "embedded", "path": str(numbers_model), "cache": False},
            news={"feeds": []},
            bybit={"announcements": {"enabled": False}},
        )
        clock = LiveClock()
        store = Store(f"sqlite:///{tmp_path / 'live.sqlite'}", account="paper")
        parts = await live_parts(
            settings,
            mode="paper",
            clock=clock,
            bus=Bus(strict=True),
            store=store,
            account="paper",
            id_prefix="hist",
            live_feeds=False,
        )
        now = clock.now()
        # the same bars through `lorabot download`'s path into a bars file, read as a replay does
        bars_file = tmp_path / "btc_1h.csv"
        await download_klines(
            settings,
            "BTCUSDT",
            "60",
            now - timedelta(days=10),
            now,
            bars_file,
            progress=False,
            clock=clock,
        )
        market = MarketBars.from_bars(assemble.bars_file(bars_file, "BTCUSDT"), "BTCUSDT")
        spec = FeatureSpec(("returns", "volatility", "volume"), 4 * 3600)
        item = NewsItem(id="first", source="wire", title="Bitcoin moves", received=clock.now())
        expected = compute_features(market, np.array([int(item.received.timestamp())]), spec)[0]
        assert not np.isnan(expected).any()  # a whole window of real features

        service = parts.signals
        assert service.market is not None and isinstance(service.market.features, BarWindow)
        context = service.market.features.context(item.received)
        assert np.allclose(context.values, expected, rtol=1e-12, atol=0)

        # the first item, through the live batcher, is answered on that context
        import asyncio

        service.start_live()
        runner = asyncio.create_task(service.run())
        service.on_news(item)
        model_id = parts.model.model_id
        await wait_until(
            lambda: service.cache.get(model_id, context_key(item.text, context)) is not None,
            10,
            "the first item's answer",
        )
        runner.cancel()
        await parts.model.close()
        store.close()
    finally:
        await sim.stop()


def _bar(opened: datetime, minutes: int, close: str, volume: str) -> Bar:
    price = Decimal(close)
    return Bar(
        "BTCUSDT",
        opened,
        opened + timedelta(minutes=minutes),
        price,
        price,
        price,
        price,
        Decimal(volume),
    )


def test_streamed_minutes_are_folded_into_the_model_spacing() -> None:
    spec = FeatureSpec(("returns",), 4 * 3600)
    window = BarWindow("BTCUSDT", spec, 3600)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    window.on_bar(_bar(start, 60, "100", "5"))  # history: one hourly bar
    hour = start + timedelta(hours=1)
    for minute in range(30, 60):  # the stream joins half way through the next hour
        window.on_bar(_bar(hour + timedelta(minutes=minute), 1, str(101 + minute), "1"))
    window.on_bar(_bar(hour, 60, "1", "1"))  # an older bar again: ignored
    kept = list(window._bars)
    assert [b.ts_open for b in kept] == [start, hour]
    folded = kept[-1]
    assert folded.ts == hour + timedelta(hours=1) and folded.close == Decimal(160)
    assert folded.open == Decimal(131) and folded.volume == Decimal(30)
    context = window.context(hour + timedelta(hours=1))
    assert context.values[0] == pytest.approx(np.log(160 / 100))  # ret_1h over hourly bars
