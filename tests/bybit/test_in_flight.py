"""An order whose create is still on its way when a (restarted) broker reconciles (issue 11.2):
it stays SUBMITTED until Bybit can no longer take the request, then follows what Bybit did.

The crashed process is played by a bare REST client whose create the simulator holds back; the
answer is never read. One process, real sockets; the kill -9 version is in test_restart.py."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from adapters.bybit.broker import BybitBroker
from adapters.bybit.factory import fetch_instruments
from adapters.bybit.rest import BybitRest
from adapters.bybit.sim import Simulator
from bot.clock import LiveClock
from bot.events import Side
from bot.orders import Order, OrderStatus

from .harness import (
    SIM_SECRETS,
    Ledger,
    make_order,
    settings_for,
    venue_exec_ids,
    venue_position,
    wait_until,
)

CLOCK = LiveClock()


async def send_and_crash(sim: Simulator, order: Order, delay: float) -> float:
    """What a process killed mid-request leaves behind: a create on its way, nobody waiting."""
    sim.faults.delay_rest(delay, path="/v5/order/create", process_first=False)
    rest = BybitRest(
        settings_for(sim).bybit, sim.url, CLOCK, api_key="sim-key", api_secret="sim-secret"
    )
    params: dict[str, Any] = {
        "category": "linear",
        "symbol": order.symbol,
        "side": "Buy" if order.side is Side.BUY else "Sell",
        "orderType": "Market",
        "qty": str(order.qty),
        "orderLinkId": order.client_order_id,
        "positionIdx": 0,
    }
    sending = asyncio.create_task(rest.place_order(params))
    await wait_until(lambda: ("POST", "/v5/order/create") in sim.requests, 5, "the create sent")
    arrived = time.monotonic()
    sending.cancel()  # the process is gone: its answer is never read
    await asyncio.gather(sending, return_exceptions=True)
    await rest.close()
    return arrived + delay  # when the venue acts on it


async def restarted(sim: Simulator, order: Order) -> tuple[BybitBroker, Ledger]:
    settings = settings_for(sim)
    broker = BybitBroker(
        settings, SIM_SECRETS, await fetch_instruments(settings, ["BTCUSDT"], CLOCK), CLOCK
    )
    ledger = Ledger()
    ledger.add(order)
    broker.bind(ledger.emit)
    await broker.start()
    return broker, ledger


def in_flight_order(cid: str) -> Order:
    order = make_order(cid, Side.BUY, "0.010")
    order.transition(OrderStatus.SUBMITTED)  # stored as sent, then the process died
    return order


async def test_an_order_still_in_flight_at_reconcile_is_not_declared_never_placed(
    sim: Simulator,
) -> None:
    order = in_flight_order("fly1")
    await send_and_crash(sim, order, delay=3.0)
    broker, ledger = await restarted(sim, order)
    try:
        venue = await broker.reconcile([order])
        assert not any(u.status == OrderStatus.REJECTED.value for u in venue.updates)
        ledger.apply_state(venue.updates, venue.fills)
        assert order.status is OrderStatus.SUBMITTED  # pending, not guessed
        await wait_until(lambda: order.status is OrderStatus.FILLED, 10, "the venue's fill")
    finally:
        await broker.stop()
    assert ledger.errors == []
    assert ledger.exec_ids() == venue_exec_ids(sim, "fly1")
    assert ledger.position() == venue_position(sim)


@pytest.mark.slow
async def test_a_create_that_arrives_after_recv_window_is_never_placed(sim: Simulator) -> None:
    order = in_flight_order("fly2")
    acted = await send_and_crash(sim, order, delay=7.0)  # refused: older than recv_window (5 s)
    broker, ledger = await restarted(sim, order)
    try:
        venue = await broker.reconcile([order])
        ledger.apply_state(venue.updates, venue.fills)
        assert order.status is OrderStatus.SUBMITTED
        await wait_until(lambda: order.status is OrderStatus.REJECTED, 10, "the deadline")
        assert "never placed" in order.reason
        await asyncio.sleep(max(0.0, acted + 0.3 - time.monotonic()))  # the venue has refused it
    finally:
        await broker.stop()
    assert not any(o.link_id == "fly2" for o in sim.account.orders.values())
    assert ledger.errors == [] and ledger.position() == venue_position(sim) == 0
