"""Protective exits in a live engine on the simulator: the whole live graph (`live_parts`), its bus,
store and Bybit broker over loopback. The engine places the position's levels on the venue, does
not close the position itself when a bar crosses them, and records the venue's exit as its own:
an order with the reason, its fill, and a decision with trigger "exit"."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_UP
from decimal import Decimal as D
from pathlib import Path

import pytest

from adapters.bybit.sim import Simulator
from bot.assemble import Parts, live_parts
from bot.bus import Bus
from bot.clock import LiveClock
from bot.config import Settings
from bot.daemon import adopt_venue_state
from bot.events import Bar, Label, OrderType, Side, TargetPosition, Trade
from bot.store import Store

from .harness import settings_for, wait_until


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BYBIT_API_KEY", "sim-key")
    monkeypatch.setenv("BYBIT_API_SECRET", "sim-secret")


def live_settings(sim: Simulator, **strategy: object) -> Settings:
    levels = {"stop_loss": "2%", "take_profit": "3%", "max_hold": 86_400, **strategy}
    return settings_for(sim).with_overrides(model={"backend": "lexicon"}, strategy=levels)


async def life(sim: Simulator, store: Store, prefix: str, **strategy: object) -> Parts:
    """One daemon's graph, started as the daemon starts it: resume, broker, reconcile, adopt."""
    parts = await live_parts(
        live_settings(sim, **strategy),
        mode="live",
        clock=LiveClock(),
        bus=Bus(strict=True),
        store=store,
        account="live",
        id_prefix=prefix,
        live_feeds=False,
    )
    assert parts.live is not None
    state = store.load_account("live")
    if state is not None:
        parts.engine.resume(state)
    await parts.live.start()
    venue = await parts.live.reconcile(state.open_orders if state else [])
    adopt_venue_state(parts, venue)
    return parts


async def enter_long(sim: Simulator, parts: Parts) -> None:
    market = sim.market.get("linear", "BTCUSDT")
    assert market is not None
    await wait_until(lambda: market.last_price is not None, 5, "a first trade")
    assert market.last_price is not None
    now, bus = parts.clock.now(), parts.bus
    bus.publish(Trade("BTCUSDT", now, market.last_price, D("0.001"), Side.BUY))
    bus.publish(TargetPosition(now, "BTCUSDT", D("0.010"), Label.BULLISH, 1.0, "test entry"))
    await wait_until(lambda: parts.engine.portfolio.qty("BTCUSDT") == D("0.010"), 5, "entered")


async def stop(parts: Parts, running: asyncio.Task[None]) -> None:
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    assert parts.live is not None
    await parts.live.stop()
    parts.store.flush()


async def first_life_with_levels(sim: Simulator, store_url: str) -> D:
    """A daemon's life that enters a long, sees its levels on the venue and stops; the entry."""
    first = await life(sim, Store(store_url, account="live", run_id="one"), "l1")
    running = asyncio.create_task(first.bus.run())
    try:
        await enter_long(sim, first)
        position = sim.account.positions["BTCUSDT"]
        await wait_until(lambda: position.take_profit != 0, 5, "the levels on the venue")
        return first.engine.portfolio.positions["BTCUSDT"].avg_price
    finally:
        await stop(first, running)


async def test_a_live_engine_puts_its_levels_on_the_venue_and_records_the_venues_exit(
    sim: Simulator, tmp_path: Path, keys: None
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'live.sqlite'}", account="live", run_id="exits")
    parts = await life(sim, store, "lx")
    engine, broker, clock, bus = parts.engine, parts.live, parts.clock, parts.bus
    assert broker is not None and engine.exits is not None
    assert engine.exits.rules.stop_loss is None and engine.exits.rules.max_hold is not None
    running = asyncio.create_task(bus.run())
    try:
        await enter_long(sim, parts)
        position = sim.account.positions["BTCUSDT"]
        await wait_until(lambda: position.take_profit != 0, 5, "the levels on the venue")
        entry = engine.portfolio.positions["BTCUSDT"].avg_price
        tick = D("0.1")
        assert position.stop_loss == (entry * D("0.98") / tick).quantize(D(1), ROUND_UP) * tick
        assert position.take_profit == (entry * D("1.03") / tick).quantize(D(1), ROUND_DOWN) * tick

        # A bar through the stop: on the venue the price is still above it, so nothing happens.
        low = position.stop_loss - 100
        start = clock.now()
        bar = Bar("BTCUSDT", start - timedelta(minutes=1), start, entry, entry, low, entry, D(1))
        bus.publish(bar)
        await asyncio.sleep(0.3)
        assert len(engine.orders) == 1 and engine.portfolio.qty("BTCUSDT") == D("0.010")

        # The venue's price falls through the stop: Bybit closes the position.
        sim.set_price("BTCUSDT", float(entry * D("0.96")))
        await wait_until(lambda: engine.portfolio.qty("BTCUSDT") == 0, 5, "the venue's exit")
        await wait_until(lambda: not broker._tasks, 2, "idle")  # type: ignore[attr-defined]
    finally:
        await stop(parts, running)

    exit_orders = [o for o in store.orders() if o.reason == "stop_loss"]
    assert len(exit_orders) == 1
    (exit_order,) = exit_orders
    assert exit_order.order_type is OrderType.STOP and exit_order.reduce_only
    assert exit_order.status.value == "filled" and exit_order.filled_qty == D("0.010")
    fills = [f for f in store.fills() if f.client_order_id == exit_order.client_order_id]
    assert sum(f.qty for f in fills) == D("0.010") and all(f.side is Side.SELL for f in fills)
    (decision,) = [d for d in store.decisions(limit=50) if d.trigger == "exit"]
    assert decision.reason == "stop_loss" and decision.order_id == exit_order.client_order_id
    assert decision.target_after == 0
    assert "BTCUSDT" in engine.exited  # re-entered on news only, as after a paper exit
    assert datetime.now(UTC) - exit_order.created < timedelta(minutes=1)


async def test_after_a_restart_the_levels_are_reattached_or_placed_again(
    sim: Simulator, tmp_path: Path, keys: None
) -> None:
    store_url = f"sqlite:///{tmp_path / 'live.sqlite'}"
    await first_life_with_levels(sim, store_url)
    position = sim.account.positions["BTCUSDT"]
    placed = position.stop_loss, position.take_profit

    # Restarted while the venue still holds both levels: adopted as they are, nothing sent.
    second = await life(sim, Store(store_url, account="live", run_id="two"), "l2")
    running = asyncio.create_task(second.bus.run())
    try:
        assert second.live is not None
        desk = second.live.protection  # type: ignore[attr-defined]
        await wait_until(lambda: "BTCUSDT" in desk.wanted, 5, "the engine's levels")
        assert desk.calls == 0 and (position.stop_loss, position.take_profit) == placed
    finally:
        await stop(second, running)

    # Restarted after the stop-loss was lost on the venue: placed again at start.
    position.stop_loss = D(0)
    third = await life(sim, Store(store_url, account="live", run_id="three"), "l3")
    running = asyncio.create_task(third.bus.run())
    try:
        await wait_until(lambda: position.stop_loss == placed[0], 5, "the stop placed again")
        assert position.take_profit == placed[1]
        assert third.live is not None
        assert third.live.protection.calls == 1  # type: ignore[attr-defined]
    finally:
        await stop(third, running)


async def test_max_hold_stays_the_engines_and_closes_with_a_market_order(
    sim: Simulator, tmp_path: Path, keys: None
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'live.sqlite'}", account="live", run_id="hold")
    parts = await life(sim, store, "lh")
    running = asyncio.create_task(parts.bus.run())
    try:
        await enter_long(sim, parts)
        entry = parts.engine.portfolio.positions["BTCUSDT"].avg_price
        later = parts.clock.now() + timedelta(days=2)  # past max_hold (one day)
        bar = Bar("BTCUSDT", later - timedelta(minutes=1), later, entry, entry, entry, entry, D(1))
        parts.bus.publish(bar)
        await wait_until(lambda: parts.engine.portfolio.qty("BTCUSDT") == 0, 5, "held too long")
        assert sim.account.positions["BTCUSDT"].size == 0
    finally:
        await stop(parts, running)
    (closing,) = [o for o in store.orders() if o.reason == "max_hold"]
    assert closing.status.value == "filled" and closing.reduce_only
    venue = next(o for o in sim.account.orders.values() if o.link_id == closing.client_order_id)
    assert venue.order_type == "Market" and venue.reduce_only and venue.stop_order_type == ""


async def test_atr_levels_wait_for_the_first_atr_then_go_on_the_venue(
    sim: Simulator, tmp_path: Path, keys: None
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'live.sqlite'}", account="live", run_id="atr")
    parts = await life(
        sim, store, "la", stop_loss="1atr", take_profit="", trailing_stop="2atr", atr_period=2
    )
    running = asyncio.create_task(parts.bus.run())
    try:
        await enter_long(sim, parts)
        assert parts.live is not None
        desk = parts.live.protection  # type: ignore[attr-defined]
        await asyncio.sleep(0.2)
        assert "BTCUSDT" not in desk.wanted and desk.calls == 0  # no ATR yet: no level
        entry = parts.engine.portfolio.positions["BTCUSDT"].avg_price
        now = parts.clock.now()
        for minutes in (2, 1):  # two bars 100 wide: an ATR of 100
            bar_ts = now - timedelta(minutes=minutes - 1)
            low, high = entry - 50, entry + 50
            bar = Bar(
                "BTCUSDT", bar_ts - timedelta(minutes=1), bar_ts, entry, high, low, entry, D(1)
            )
            parts.bus.publish(bar)
        position = sim.account.positions["BTCUSDT"]
        await wait_until(lambda: position.stop_loss != 0, 5, "the ATR stop on the venue")
        tick = D("0.1")
        assert position.stop_loss == ((entry - 100) / tick).quantize(D(1), ROUND_UP) * tick
        assert position.trailing_stop == 200 and position.take_profit == 0
    finally:
        await stop(parts, running)


async def test_an_exit_the_venue_made_while_lorabot_was_down_is_recorded_once(
    sim: Simulator, tmp_path: Path, keys: None
) -> None:
    store_url = f"sqlite:///{tmp_path / 'live.sqlite'}"
    entry = await first_life_with_levels(sim, store_url)
    position = sim.account.positions["BTCUSDT"]

    sim.set_price("BTCUSDT", float(entry * D("0.96")))  # nobody is connected
    await wait_until(lambda: position.size == 0, 5, "the venue's stop while lorabot is down")

    for run_id in ("two", "three"):  # the restart records it; the next one does not again
        store = Store(store_url, account="live", run_id=run_id)
        later = await life(sim, store, f"d-{run_id}")
        running = asyncio.create_task(later.bus.run())
        try:
            assert later.engine.portfolio.qty("BTCUSDT") == 0
        finally:
            await stop(later, running)
        (exit_order,) = [o for o in store.orders() if o.reason == "stop_loss"]
        assert exit_order.status.value == "filled" and exit_order.filled_qty == D("0.010")
        exits = [d for d in store.decisions(limit=50) if d.trigger == "exit"]
        assert [(d.reason, d.order_id) for d in exits] == [
            ("stop_loss", exit_order.client_order_id)
        ]
        assert sum(
            f.qty for f in store.fills() if f.client_order_id == exit_order.client_order_id
        ) == D("0.010")
