"""`[symbols.X] leverage` and `margin_mode` on Bybit: set when the live broker starts, checked
and set back on reconciliation, refused when a unified account cannot hold them; and the
simulator's liquidation follows the leverage it was given."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from adapters.bybit.broker import BybitBroker
from adapters.bybit.errors import AccountSetupError
from adapters.bybit.factory import fetch_instruments
from adapters.bybit.sim import Simulator
from bot.clock import LiveClock
from bot.config import Settings
from bot.errors import UserError
from bot.events import Side
from bot.orders import OrderStatus

from .harness import SIM_SECRETS, Ledger, make_order, settings_for, wait_until


def leveraged(sim: Simulator, leverage: str, mode: str, eth_mode: str | None = None) -> Settings:
    return settings_for(sim).with_overrides(
        symbols={
            "BTCUSDT": {"leverage": leverage, "margin_mode": mode},
            "ETHUSDT": {"leverage": "3", "margin_mode": eth_mode or mode},
        }
    )


async def broker_for(settings: Settings) -> tuple[BybitBroker, Ledger]:
    instruments = await fetch_instruments(settings, ["BTCUSDT", "ETHUSDT"], LiveClock())
    broker = BybitBroker(settings, SIM_SECRETS, instruments, LiveClock())
    ledger = Ledger()
    broker.bind(ledger.emit)
    return broker, ledger


async def test_start_sets_leverage_and_margin_mode_and_a_second_start_changes_nothing(
    sim: Simulator,
) -> None:
    settings = leveraged(sim, "5", "isolated")
    broker, _ = await broker_for(settings)
    await broker.start()
    try:
        assert sim.account.leverage_of("BTCUSDT") == 5
        assert sim.account.leverage_of("ETHUSDT") == 3
        assert sim.account.margin_mode == "ISOLATED_MARGIN"
        assert broker.margin.leverage_sets == 2
        assert sim.state()["marginMode"] == "ISOLATED_MARGIN"  # GET /sim/state says so too
    finally:
        await broker.stop()
    again, _ = await broker_for(settings)
    await again.start()  # 110043 "leverage not modified" twice: success
    try:
        assert again.margin.leverage_sets == 0
        assert ("POST", "/v5/account/set-margin-mode") in sim.requests
        assert sim.requests.count(("POST", "/v5/account/set-margin-mode")) == 1
    finally:
        await again.stop()


async def test_reconciliation_sets_back_a_leverage_changed_elsewhere(sim: Simulator) -> None:
    broker, ledger = await broker_for(leveraged(sim, "4", "cross"))
    await broker.start()
    try:
        entry = ledger.submitted(broker, make_order("l-entry", Side.BUY, "0.010"))
        await wait_until(lambda: entry.status is OrderStatus.FILLED, 5, "filled")
        sim.account.leverages["BTCUSDT"] = D(25)  # the web UI
        sim.account.margin_mode = "ISOLATED_MARGIN"
        await broker.reconcile(list(ledger.orders.values()))
        assert sim.account.leverage_of("BTCUSDT") == 4
        assert sim.account.margin_mode == "REGULAR_MARGIN"
        calls = sim.requests.count(("POST", "/v5/position/set-leverage"))
        await broker.reconcile(list(ledger.orders.values()))  # all in order now: nothing sent
        assert broker.venue_positions["BTCUSDT"].leverage == 4
        assert sim.requests.count(("POST", "/v5/position/set-leverage")) == calls
    finally:
        await broker.stop()


async def test_mixed_margin_modes_are_refused_with_the_keys_named(sim: Simulator) -> None:
    with pytest.raises(UserError, match=r"\[symbols.BTCUSDT\] margin_mode = 'isolated'"):
        await broker_for(leveraged(sim, "5", "isolated", eth_mode="cross"))


async def test_a_leverage_bybit_refuses_stops_the_start(sim: Simulator) -> None:
    broker, _ = await broker_for(leveraged(sim, "150", "cross"))  # the simulator's max is 100
    with pytest.raises(AccountSetupError, match=r"\[symbols.BTCUSDT\] leverage = 150"):
        await broker.start()


async def test_the_simulator_liquidates_an_isolated_position_at_its_leverage(
    sim: Simulator,
) -> None:
    broker, ledger = await broker_for(leveraged(sim, "50", "isolated"))
    await broker.start()
    try:
        entry = ledger.submitted(broker, make_order("x-entry", Side.BUY, "0.010"))
        await wait_until(lambda: entry.status is OrderStatus.FILLED, 5, "filled")
        position = sim.account.positions["BTCUSDT"]
        record = sim.exchange.position_record(sim.account, position)
        level = D(record["liqPrice"])
        assert level == position.avg * (1 - D(1) / 50 + D("0.005"))  # 1.5% below the entry
        sim.set_price("BTCUSDT", float(position.avg * D("0.99")))  # 1% down: not yet
        market = sim.market.get("linear", "BTCUSDT")
        assert market is not None
        await wait_until(lambda: (market.last_price or 0) < position.avg * D("0.995"), 5, "down")
        assert position.size == D("0.010")
        sim.set_price("BTCUSDT", float(position.avg * D("0.98")))  # past the level
        await wait_until(lambda: position.size == 0, 5, "liquidated")
        bust = [e.record() for e in sim.account.executions if e.order.exec_type == "BustTrade"]
        assert bust and bust[0]["createType"] == "CreateByTakeOverPassThrough"
        await wait_until(lambda: broker.needs_reconcile, 5, "the broker notices")
    finally:
        await broker.stop()
