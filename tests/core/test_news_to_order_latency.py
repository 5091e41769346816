"""The daemon's news-to-order latency probe (bot/latency.py): one sane reading per order a
headline caused, in a real paper daemon, and the same readings in the console's /metrics."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.assemble import ReplayFiles
from bot.clock import LiveClock, ReplayClock
from bot.daemon import DaemonOptions, run_daemon
from bot.events import Decision, NewsItem, OrderRequest, Outcome, Side
from bot.latency import NewsToOrder
from bot.orders import Order
from tests.console.daemon import start, wait_decisions
from tests.core.test_paper_vs_replay import config, scenario


@pytest.mark.slow
async def test_every_order_a_headline_caused_has_one_positive_latency(tmp_path: Path) -> None:
    start_at = datetime.now(UTC) + timedelta(seconds=1.5)
    news, bars, end = scenario(tmp_path, start_at)
    stop = asyncio.Event()

    async def stopper() -> None:
        await asyncio.sleep((end - datetime.now(UTC)).total_seconds() + 0.6)
        stop.set()

    task = asyncio.create_task(stopper())
    settings = config(tmp_path, "live").with_overrides(api={"listen": "127.0.0.1:0"})
    replay = ReplayFiles(news, bars, 1.0, rebase=False)
    options = DaemonOptions(mode="paper", replay=replay, live_feeds=False)
    parts = await run_daemon(settings, options, stop)
    await task

    assert parts.latency is not None
    samples = list(parts.latency.samples)
    orders = [o.client_order_id for o in parts.store.orders("paper")]
    assert len(orders) == 3  # long, flip short, flat: each caused by one headline
    assert [s.client_order_id for s in samples] == orders
    assert [s.news_id for s in samples] == ["s0", "s1", "s2"]
    for sample in samples:
        # dispatch -> lexicon answer -> vote -> risk -> order stored -> just before submit:
        # more than nothing (the model runs on another task), well under a second
        assert 0 < sample.seconds < 1.0, sample


def test_a_replay_clock_measures_in_replay_time() -> None:
    clock = ReplayClock(datetime(2024, 1, 1, tzinfo=UTC))
    probe = NewsToOrder(clock.monotonic)
    seen: list[float] = []
    probe.listeners.append(seen.append)
    item = NewsItem("n1", "test", "Bitcoin surges", clock.now())
    probe.on_news(item)
    clock.advance_to(clock.now() + timedelta(milliseconds=7))
    request = OrderRequest(clock.now(), "o1", "BTCUSDT", Side.BUY, Decimal("0.01"))
    probe.on_submit(Order.from_request(request))
    decided = Decision("d1", clock.now(), "news", "BTCUSDT", Outcome.ORDER, "", news_id="n1")
    probe.on_decision(decided)  # names no order: nothing to pair
    assert seen == []
    probe.on_decision(replace(decided, order_id="o1"))
    assert len(seen) == 1 and abs(seen[0] - 0.007) < 1e-6  # float seconds since 1970
    assert [(s.news_id, s.client_order_id) for s in probe.samples] == [("n1", "o1")]


def test_a_live_clock_reads_a_steady_scale() -> None:
    clock = LiveClock(offset=timedelta(hours=-5))  # a venue skew never moves the reading
    first = clock.monotonic()
    second = clock.monotonic()
    assert 0 <= second - first < 1.0


@pytest.mark.slow
def test_metrics_news_to_order_counts_each_order_a_headline_caused(tmp_path: Path) -> None:
    daemon = start(tmp_path)
    try:
        decisions = wait_decisions(daemon, 3)
        wanted = sum(1 for d in decisions if d["order_id"] and d["trigger"] == "news")
        assert wanted >= 1, decisions
        status, body, _ = daemon.get("/metrics")
        assert status == 200
        families = {f.name: f for f in text_string_to_metric_families(body.decode())}
        histogram = {
            s.name: s.value for s in families["lorabot_news_to_order_latency_seconds"].samples
        }
        count = histogram["lorabot_news_to_order_latency_seconds_count"]
        total = histogram["lorabot_news_to_order_latency_seconds_sum"]
        # the console ticks once a second: what it counts may trail the newest decision
        assert 1 <= count <= wanted
        assert 0 < total / count < 1.0
    finally:
        daemon.stop()


async def test_with_no_batching_wait_what_is_queued_still_goes_in_one_call() -> None:
    """`[model] max_wait = 0` (the default): a lone headline never waits for company, and a burst
    already in the queue is still one model call, not one call per headline."""
    from adapters.model.lexicon import LexiconModel
    from bot.config import Settings
    from bot.signals import SignalService
    from bot.symbols import SymbolTable

    emitted: list[object] = []
    settings = Settings()
    service = SignalService(
        LexiconModel(), SymbolTable.from_settings(settings), LiveClock(), emitted.append,
        max_wait=0.0,
    )  # fmt: skip
    service.start_live()
    now = datetime.now(UTC)
    for n in range(5):
        service.on_news(NewsItem(f"n{n}", "test", f"Bitcoin surges {n}", now, symbols=("BTCUSDT",)))
    runner = asyncio.create_task(service.run())
    for _ in range(200):
        if len(emitted) == 5:
            break
        await asyncio.sleep(0.01)
    runner.cancel()
    assert len(emitted) == 5
    assert service.model_calls == 1
