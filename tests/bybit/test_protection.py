"""A position's stop-loss / take-profit / trailing stop on Bybit, through `BybitBroker` and the
simulator over loopback: placed (on the tick, only what changed), triggered by the venue (an exit
order with Bybit's stopOrderType and createType, its fill reaching the ledger with its reason),
and re-attached or re-placed by a reconciliation after a restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal as D

import pytest

from adapters.bybit.broker import BybitBroker
from adapters.bybit.factory import fetch_instruments
from adapters.bybit.sim import Simulator
from adapters.bybit.sim.accounts import SimPosition
from bot.clock import LiveClock
from bot.config import Settings
from bot.events import Side
from bot.orders import OrderStatus
from bot.protocols import Protection

from .harness import SIM_SECRETS, Ledger, make_order, settings_for, wait_until


@asynccontextmanager
async def trading(
    sim: Simulator, settings: Settings | None = None
) -> AsyncIterator[tuple[BybitBroker, Ledger]]:
    settings = settings or settings_for(sim)
    instruments = await fetch_instruments(settings, ["BTCUSDT", "ETHUSDT"], LiveClock())
    broker = BybitBroker(settings, SIM_SECRETS, instruments, LiveClock())
    ledger = Ledger()
    broker.bind(ledger.emit)
    await broker.start()
    try:
        yield broker, ledger
    finally:
        await broker.stop()


async def long_position(broker: BybitBroker, ledger: Ledger, qty: str = "0.010") -> D:
    """A filled market buy; returns the venue's average entry."""
    order = ledger.submitted(broker, make_order("p-entry", Side.BUY, qty))
    await wait_until(lambda: order.status is OrderStatus.FILLED, 5, "the entry fills")
    positions = broker.venue_positions
    await wait_until(lambda: "BTCUSDT" in positions and positions["BTCUSDT"].qty != 0, 5, "pos")
    return positions["BTCUSDT"].avg_price


def position_of(sim: Simulator) -> SimPosition:
    return sim.account.positions["BTCUSDT"]


async def test_levels_are_placed_on_the_tick_and_only_what_changed_is_sent(
    sim: Simulator,
) -> None:
    async with trading(sim) as (broker, ledger):
        entry = await long_position(broker, ledger)
        stop, target = entry * D("0.98") + D("0.033"), entry * D("1.03") + D("0.077")
        broker.set_protection("BTCUSDT", Protection(stop_loss=stop, take_profit=target))
        position = position_of(sim)
        await wait_until(lambda: position.stop_loss != 0, 5, "the stop-loss is placed")
        assert position.stop_loss == (stop / D("0.1")).quantize(D(1)) * D("0.1")
        assert position.take_profit == (target / D("0.1")).quantize(D(1)) * D("0.1")
        assert position.stop_loss % D("0.1") == 0 and position.take_profit % D("0.1") == 0
        assert broker.protection.calls == 1

        # The same levels again: nothing is sent.
        broker.set_protection("BTCUSDT", Protection(stop_loss=stop, take_profit=target))
        await wait_until(lambda: not broker._tasks, 2, "idle")
        assert broker.protection.calls == 1

        # A trailing stop added: one call, the other levels untouched.
        kept = position.stop_loss, position.take_profit
        broker.set_protection(
            "BTCUSDT", Protection(stop_loss=stop, take_profit=target, trailing_stop=D("500.04"))
        )
        await wait_until(lambda: position.trailing_stop != 0, 5, "the trailing stop is placed")
        assert position.trailing_stop == D("500.0")
        assert (position.stop_loss, position.take_profit) == kept
        assert broker.protection.calls == 2


async def test_a_level_on_the_wrong_side_of_the_market_is_refused_and_said(
    sim: Simulator,
) -> None:
    async with trading(sim) as (broker, ledger):
        entry = await long_position(broker, ledger)
        broker.set_protection("BTCUSDT", Protection(stop_loss=entry * D("1.05")))
        await wait_until(lambda: "BTCUSDT" in broker.protection.refused, 5, "the refusal")
        assert "StopLoss" in broker.protection.refused["BTCUSDT"]
        assert position_of(sim).stop_loss == 0


@pytest.mark.parametrize("level", ["stop_loss", "take_profit", "trailing_stop"])
async def test_the_venue_triggers_a_level_and_the_exit_is_a_fill_with_its_reason(
    sim: Simulator, level: str
) -> None:
    async with trading(sim) as (broker, ledger):
        entry = await long_position(broker, ledger)
        position = position_of(sim)
        if level == "stop_loss":
            wanted = Protection(stop_loss=(entry * D("0.97")).quantize(D("0.1")))
        elif level == "take_profit":
            wanted = Protection(take_profit=(entry * D("1.03")).quantize(D("0.1")))
        else:
            wanted = Protection(trailing_stop=D("800"))
        broker.set_protection("BTCUSDT", wanted)
        await wait_until(lambda: broker.protection.held.get("BTCUSDT") == wanted, 5, "placed")
        if level == "trailing_stop":
            sim.set_price("BTCUSDT", float(entry + 1500))  # the trail follows the rise...
            await wait_until(lambda: (position.trail_extreme or 0) > entry + 1400, 5, "trail up")
            sim.set_price("BTCUSDT", float(entry + 500))  # ...and a fall of 1000 from it exits
        elif level == "stop_loss":
            sim.set_price("BTCUSDT", float(entry * D("0.95")))
        else:
            sim.set_price("BTCUSDT", float(entry * D("1.05")))
        await wait_until(lambda: ledger.exits != [], 5, "the venue's exit")
        await wait_until(lambda: ledger.position() == 0, 5, "the exit fills")

    (exit_,) = ledger.exits
    assert exit_.reason == level and exit_.side is Side.SELL and exit_.qty == D("0.010")
    order = ledger.orders[exit_.client_order_id]
    assert order.status is OrderStatus.FILLED and order.reason == level
    assert [f.client_order_id for f in ledger.fills][-1] == exit_.client_order_id
    assert ledger.errors == [] and position.size == 0
    # The venue's own records say which level caused it, as Bybit's do.
    venue = sim.account.orders[exit_.venue_order_id].record()
    kinds = {"stop_loss": "StopLoss", "take_profit": "TakeProfit", "trailing_stop": "TrailingStop"}
    assert venue["stopOrderType"] == kinds[level]
    assert venue["createType"] == f"CreateBy{kinds[level]}"
    assert venue["orderLinkId"] == "" and venue["reduceOnly"] is True
    executions = [
        e.record() for e in sim.account.executions if e.order.order_id == venue["orderId"]
    ]
    assert executions and all(e["stopOrderType"] == kinds[level] for e in executions)
    # The levels went with the position.
    assert (position.stop_loss, position.take_profit, position.trailing_stop) == (0, 0, 0)


async def test_a_restart_reattaches_the_levels_and_reconciliation_replaces_missing_ones(
    sim: Simulator,
) -> None:
    async with trading(sim) as (broker, ledger):
        entry = await long_position(broker, ledger)
        wanted = Protection(
            stop_loss=(entry * D("0.97")).quantize(D("0.1")),
            take_profit=(entry * D("1.04")).quantize(D("0.1")),
        )
        broker.set_protection("BTCUSDT", wanted)
        await wait_until(lambda: broker.protection.held.get("BTCUSDT") == wanted, 5, "placed")
    position = position_of(sim)

    # A new process: the venue still holds the levels; asked for the same, it sends nothing.
    async with trading(sim) as (second, _):
        await second.reconcile([])
        assert second.venue_positions["BTCUSDT"].protection == wanted
        second.set_protection("BTCUSDT", wanted)
        await wait_until(lambda: not second._tasks, 2, "idle")
        assert second.protection.calls == 0

        # Someone removes the stop in the web UI: the next reconciliation puts it back.
        position.stop_loss = D(0)
        await second.reconcile([])
        assert position.stop_loss == wanted.stop_loss
        assert position.take_profit == wanted.take_profit
        assert second.protection.calls == 1


async def test_levels_for_a_flat_position_are_forgotten(sim: Simulator) -> None:
    async with trading(sim) as (broker, ledger):
        entry = await long_position(broker, ledger)
        wanted = Protection(stop_loss=(entry * D("0.97")).quantize(D("0.1")))
        broker.set_protection("BTCUSDT", wanted)
        await wait_until(lambda: broker.protection.held.get("BTCUSDT") == wanted, 5, "placed")
        close = ledger.submitted(
            broker, make_order("p-close", Side.SELL, "0.010", reduce_only=True)
        )
        await wait_until(lambda: close.status is OrderStatus.FILLED, 5, "closed")
        broker.set_protection("BTCUSDT", Protection())
        await broker.reconcile(list(ledger.orders.values()))
        assert "BTCUSDT" not in broker.protection.wanted
        assert position_of(sim).stop_loss == 0


async def test_on_spot_a_reducing_sell_is_sent_as_a_plain_sell(sim: Simulator) -> None:
    """Spot has no trading-stop and no reduce-only flag: the engine's own exits there (and
    every reducing order) are plain sells of what it holds."""
    async with trading(sim, settings_for(sim, category="spot")) as (broker, ledger):
        buy = ledger.submitted(broker, make_order("s-buy", Side.BUY, "0.001000"))
        await wait_until(lambda: buy.status is OrderStatus.FILLED, 5, "bought")
        sell = ledger.submitted(
            broker, make_order("s-exit", Side.SELL, "0.001000", reduce_only=True)
        )
        await wait_until(lambda: sell.status is OrderStatus.FILLED, 5, "sold")
        assert ledger.errors == [] and ledger.position() == 0


async def test_an_exit_reported_during_a_reconciliation_reaches_the_engine_before_its_fills(
    sim: Simulator,
) -> None:
    async with trading(sim) as (broker, ledger):
        entry = await long_position(broker, ledger)
        wanted = Protection(stop_loss=(entry * D("0.97")).quantize(D("0.1")))
        broker.set_protection("BTCUSDT", wanted)
        await wait_until(lambda: broker.protection.held.get("BTCUSDT") == wanted, 5, "placed")
        # The position read answers late; the stop triggers while the reconciliation waits.
        sim.faults.delay_rest(1.0, path="/v5/position/list", process_first=False)
        reconciling = asyncio.create_task(broker.reconcile(list(ledger.orders.values())))
        await asyncio.sleep(0.2)
        sim.set_price("BTCUSDT", float(entry * D("0.95")))
        state = await reconciling
        assert [e.reason for e in ledger.exits] == ["stop_loss"]
        ledger.apply_state(state.updates, state.fills)
        await wait_until(lambda: ledger.position() == 0, 5, "the exit's fills")
        assert ledger.errors == []


async def test_a_shorts_stop_is_above_it_and_triggers_on_a_rise(sim: Simulator) -> None:
    async with trading(sim) as (broker, ledger):
        order = ledger.submitted(broker, make_order("p-short", Side.SELL, "0.010"))
        await wait_until(lambda: order.status is OrderStatus.FILLED, 5, "the short fills")
        position = position_of(sim)
        entry = position.avg
        wanted = Protection(
            stop_loss=(entry * D("1.03")).quantize(D("0.1")),
            take_profit=(entry * D("0.96")).quantize(D("0.1")),
        )
        broker.set_protection("BTCUSDT", wanted)
        await wait_until(lambda: broker.protection.held.get("BTCUSDT") == wanted, 5, "placed")
        sim.set_price("BTCUSDT", float(entry * D("1.01")))  # not yet
        await asyncio.sleep(0.3)
        assert ledger.exits == []
        sim.set_price("BTCUSDT", float(entry * D("1.05")))
        await wait_until(lambda: ledger.position() == 0, 5, "the short's stop")
    (exit_,) = ledger.exits
    assert exit_.reason == "stop_loss" and exit_.side is Side.BUY
    assert ledger.fills[-1].price >= wanted.stop_loss  # type: ignore[operator]


async def test_a_restart_recovers_the_fills_of_a_venue_exit_it_had_only_announced(
    sim: Simulator,
) -> None:
    """Killed after storing the venue's exit order but before its fills: the new process reads
    that order back by Bybit's own id (it has no link id) and recovers the fills."""
    async with trading(sim) as (broker, ledger):
        entry = await long_position(broker, ledger)
        broker.set_protection(
            "BTCUSDT", Protection(take_profit=(entry * D("1.02")).quantize(D("0.1")))
        )
        await wait_until(lambda: "BTCUSDT" in broker.protection.held, 5, "placed")
        sim.set_price("BTCUSDT", float(entry * D("1.04")))
        await wait_until(lambda: ledger.position() == 0, 5, "the exit")
    (exit_,) = ledger.exits
    stored = ledger.orders[exit_.client_order_id]
    fills = [f for f in ledger.fills if f.client_order_id == exit_.client_order_id]

    restarted = Ledger()
    restarted.emit(exit_)  # what the store held: the order, triggered, nothing filled
    async with trading(sim) as (second, _):
        second.bind(restarted.emit)
        state = await second.reconcile([restarted.orders[exit_.client_order_id]])
        restarted.apply_state(state.updates, state.fills)
    order = restarted.orders[exit_.client_order_id]
    assert order.status is OrderStatus.FILLED and order.filled_qty == stored.filled_qty
    assert sorted(restarted.exec_ids()) == sorted(f.exec_id for f in fills)
    assert restarted.errors == []
