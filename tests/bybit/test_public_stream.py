"""The public stream against the simulator over loopback: bars, trades, tickers, and its faults."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest

from adapters.bybit.public import BybitPublicStream
from adapters.bybit.rest import BybitRest
from adapters.bybit.sim import Simulator
from adapters.bybit.ws import SubscriptionRefused
from bot.clock import LiveClock
from bot.events import Bar, Ticker, Trade

from .harness import settings_for, wait_until


@asynccontextmanager
async def streaming(
    sim: Simulator,
    symbols: tuple[str, ...] = ("BTCUSDT",),
    publish: Callable[[object], Any] | None = None,
    **bybit: Any,
) -> AsyncIterator[tuple[BybitPublicStream, list[object]]]:
    stream = BybitPublicStream(settings_for(sim, **bybit), symbols, LiveClock())
    events: list[object] = []

    async def collect(event: object) -> None:
        events.append(event)
        if publish is not None:
            await publish(event)

    task = asyncio.create_task(stream.run(collect))
    try:
        yield stream, events
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def bars(events: list[object], symbol: str = "BTCUSDT") -> list[Bar]:
    return [e for e in events if isinstance(e, Bar) and e.symbol == symbol]


def assert_contiguous(series: list[Bar]) -> None:
    for before, after in itertools.pairwise(series):
        assert after.ts_open == before.ts, f"gap or repeat between {before.ts} and {after.ts_open}"


async def assert_equal_to_rest(sim: Simulator, series: list[Bar], category: str = "linear") -> None:
    async with BybitRest(settings_for(sim).bybit, sim.url, LiveClock()) as rest:
        first = int(series[0].ts_open.timestamp() * 1000)
        last = int(series[-1].ts_open.timestamp() * 1000)
        history = await rest.klines(category, series[0].symbol, "1", first, last)
    assert history == series


async def test_confirmed_klines_trades_and_tickers_arrive(sim: Simulator) -> None:
    async with streaming(sim, ("BTCUSDT", "ETHUSDT")) as (stream, events):
        await wait_until(
            lambda: len(bars(events)) >= 2 and len(bars(events, "ETHUSDT")) >= 2,
            8,
            "two confirmed bars per symbol",
        )
    series = bars(events)
    assert all(b.interval == timedelta(minutes=1) for b in series)
    assert_contiguous(series)
    await assert_equal_to_rest(sim, series)  # a confirmed kline is the REST bar, exactly
    trades = [e for e in events if isinstance(e, Trade)]
    tickers = [e for e in events if isinstance(e, Ticker)]
    assert {t.symbol for t in trades} == {"BTCUSDT", "ETHUSDT"}
    assert len({t.trade_id for t in trades}) == len(trades)
    assert all(t.bid is not None and t.ask is not None and t.bid < t.ask for t in tickers)
    assert stream.stats.gaps_flagged == 0 and stream.stats.unreadable == 0


async def test_reconnect_fills_the_missed_bars_and_trades_from_rest(sim: Simulator) -> None:
    async with streaming(sim) as (stream, events):
        await wait_until(lambda: len(bars(events)) >= 1, 5, "a first bar")
        (link,) = stream.links()
        assert link.up and link.connects == 1 and link.reconnects == 0 and link.messages > 0
        assert link.name == "bybit public websocket" and link.target.startswith(sim.ws_public_url)
        sim.faults.reject_ws(2.5)  # ~2.5 minutes of market time without a connection
        assert sim.drop_connections("public") == 1
        await wait_until(lambda: not stream.links()[0].up, 5, "the link shown down")
        before = len(bars(events))
        await wait_until(lambda: stream.stats.bars_filled >= 2, 10, "bars filled from REST")
        await wait_until(lambda: len(bars(events)) >= before + 3, 5, "live bars again")
        (link,) = stream.links()
        assert link.up and link.reconnects >= 1 and link.last_error  # the drop, as shown
    series = bars(events)
    assert_contiguous(series)
    await assert_equal_to_rest(sim, series)
    assert stream.connection.stats.reconnects >= 1
    assert stream.stats.trades_filled >= 1
    trade_ids = [e.trade_id for e in events if isinstance(e, Trade)]
    assert len(trade_ids) == len(set(trade_ids))  # REST and stream overlap: nothing doubled


async def test_a_malformed_frame_is_skipped_and_the_stream_goes_on(sim: Simulator) -> None:
    async with streaming(sim) as (stream, events):
        await wait_until(lambda: len(events) > 5, 5, "first events")
        sim.faults.send_malformed("public", 2)
        await wait_until(lambda: stream.connection.stats.malformed == 2, 5, "malformed frames")
        seen = len(events)
        await wait_until(lambda: len(events) > seen + 5, 5, "events after the bad frames")
    assert stream.connection.stats.reconnects == 0


async def test_silence_is_detected_and_the_connection_replaced(sim: Simulator) -> None:
    async with streaming(sim) as (stream, events):
        await wait_until(lambda: len(events) > 5, 5, "first events")
        sim.faults.silence("public", 1.6)  # no data and no pongs: a half-open connection
        await wait_until(lambda: stream.connection.stats.silences >= 1, 5, "silence detected")
        await wait_until(lambda: len(bars(events)) >= 3, 8, "bars after the silence")
    assert_contiguous(bars(events))


async def test_a_slow_consumer_is_back_pressure_not_silence(sim: Simulator) -> None:
    stalled = asyncio.Event()

    async def slow(event: object) -> None:
        if isinstance(event, Trade) and not stalled.is_set():
            stalled.set()
            await asyncio.sleep(2.5)  # longer than silence_timeout (1 s)

    async with streaming(sim, publish=slow) as (stream, events):
        await wait_until(stalled.is_set, 5, "a trade")
        await wait_until(lambda: len(bars(events)) >= 3, 10, "bars after the stall")
    assert stream.connection.stats.silences == 0 and stream.connection.stats.reconnects == 0


async def test_an_unknown_symbol_is_a_configuration_error(sim: Simulator) -> None:
    stream = BybitPublicStream(settings_for(sim), ["NOPEUSDT"], LiveClock())

    async def ignore(event: object) -> None:
        pass

    with pytest.raises(SubscriptionRefused, match=r"kline\.1\.NOPEUSDT"):
        await asyncio.wait_for(stream.run(ignore), 5)


async def test_spot_category(sim: Simulator) -> None:
    async with streaming(sim, ("ETHUSDT",), category="spot") as (stream, events):
        await wait_until(lambda: len(bars(events, "ETHUSDT")) >= 1, 5, "a spot bar")
        await wait_until(lambda: any(isinstance(e, Ticker) for e in events), 5, "a spot ticker")
    assert stream.endpoints.ws_public.endswith("/v5/public/spot")
    ticker = next(e for e in events if isinstance(e, Ticker))
    assert ticker.last is not None and ticker.bid is None  # spot tickers carry no book
    await assert_equal_to_rest(sim, bars(events, "ETHUSDT"), "spot")


async def test_without_tickers_the_forming_kline_is_published_as_a_ticker(sim: Simulator) -> None:
    async with streaming(sim, tickers=False, trades=False) as (stream, events):
        await wait_until(lambda: sum(isinstance(e, Ticker) for e in events) >= 3, 5, "tickers")
        await wait_until(lambda: len(bars(events)) >= 1, 5, "a bar")
    assert stream.topics == ("kline.1.BTCUSDT",)
    ticker = next(e for e in events if isinstance(e, Ticker))
    assert ticker.last is not None and ticker.bid is None
