"""`BybitBroker` against the simulator over loopback: the order flow and every injected fault.

Each test ends with the same invariants: the strict ledger (the engine's side) never saw an
illegal transition, every execution the venue made reached it exactly once, and its position is
the sum of its fills and equals the venue's.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from typing import Any

import pytest
from pydantic import SecretStr

from adapters.bybit.broker import BybitBroker
from adapters.bybit.errors import CredentialsError, NetworkError
from adapters.bybit.factory import fetch_instruments
from adapters.bybit.rest import BybitRest
from adapters.bybit.sim import Simulator
from bot.clock import LiveClock
from bot.config import Secrets
from bot.errors import FatalError
from bot.events import Fill, Liquidity, OrderUpdate, Side, Ticker
from bot.orders import OrderStatus

from .harness import (
    SIM_SECRETS,
    Ledger,
    make_order,
    settings_for,
    sim_config,
    venue_exec_ids,
    venue_position,
    wait_until,
)


@asynccontextmanager
async def trading(
    sim: Simulator, secrets: Secrets = SIM_SECRETS, **bybit: Any
) -> AsyncIterator[tuple[BybitBroker, Ledger]]:
    settings = settings_for(sim, **bybit)
    instruments = await fetch_instruments(settings, ["BTCUSDT", "ETHUSDT"], LiveClock())
    broker = BybitBroker(settings, secrets, instruments, LiveClock())
    ledger = Ledger()
    broker.bind(ledger.emit)
    await broker.start()
    try:
        yield broker, ledger
    finally:
        await broker.stop()


def assert_consistent(sim: Simulator, ledger: Ledger, broker: BybitBroker | None = None) -> None:
    assert ledger.errors == []
    assert sorted(ledger.exec_ids()) == sorted(venue_exec_ids(sim)), "a fill lost or doubled"
    assert ledger.position("BTCUSDT") == venue_position(sim, "BTCUSDT")
    if broker is not None:
        assert broker.private.connection.stats.handler_errors == 0


def creates(sim: Simulator) -> int:
    return sum(1 for method, path in sim.requests if path == "/v5/order/create")


def sim_order(sim: Simulator, link_id: str) -> Any:
    return next(o for o in sim.account.orders.values() if o.link_id == link_id)


async def test_market_order_execution_position_flow(sim: Simulator) -> None:
    async with trading(sim) as (broker, ledger):
        order = ledger.submitted(broker, make_order("m1", Side.BUY, "0.120"))
        await wait_until(lambda: order.status is OrderStatus.FILLED, 5, "the fill")
        await wait_until(lambda: "BTCUSDT" in broker.venue_positions, 5, "position push")
        assert broker.venue_positions["BTCUSDT"].qty == D("0.120")
    fills = [e for e in ledger.events if isinstance(e, Fill)]
    assert len(fills) == 3  # the order swept three synthetic book levels
    assert sum(f.qty for f in fills) == D("0.120")
    assert all(f.liquidity is Liquidity.TAKER and f.fee > 0 for f in fills)
    assert order.venue_order_id == sim_order(sim, "m1").order_id
    assert order.filled_qty == D("0.120") and order.fees == sum(f.fee for f in fills)
    statuses = [u.status for u in ledger.updates]
    assert statuses[0] == "submitted" and "filled" not in statuses[:1]
    assert_consistent(sim, ledger, broker)


async def test_resting_limit_fills_as_maker_when_the_market_trades_through(sim: Simulator) -> None:
    async with trading(sim) as (broker, ledger):
        market = sim.market.get("linear", "BTCUSDT")
        assert market is not None
        bid, _ = market.quotes(sim.market.now_ms())
        limit = str(bid - D(500))
        order = ledger.submitted(broker, make_order("l1", Side.BUY, "0.120", price=limit))
        await wait_until(lambda: order.status is OrderStatus.ACCEPTED, 5, "the New ack")
        sim.set_price("BTCUSDT", float(bid - D(800)))
        await wait_until(lambda: order.status is OrderStatus.FILLED, 5, "maker fills")
    fills = [e for e in ledger.events if isinstance(e, Fill)]
    assert [f.price for f in fills] == [D(limit)] * 3
    assert all(f.liquidity is Liquidity.MAKER for f in fills)
    assert "partially_filled" not in [u.status for u in ledger.updates]  # fills drive it
    assert_consistent(sim, ledger, broker)


async def test_cancel_and_amend(sim: Simulator) -> None:
    async with trading(sim) as (broker, ledger):
        market = sim.market.get("linear", "BTCUSDT")
        assert market is not None
        bid, _ = market.quotes(sim.market.now_ms())
        first = ledger.submitted(
            broker, make_order("c1", Side.BUY, "0.010", price=str(bid - D(1000)))
        )
        await wait_until(lambda: first.status is OrderStatus.ACCEPTED, 5, "accepted")
        broker.cancel(first)
        await wait_until(lambda: first.status is OrderStatus.CANCELLED, 5, "cancelled")
        assert first.reason == "cancelled (CancelByUser)"
        second = ledger.submitted(
            broker, make_order("a1", Side.BUY, "0.010", price=str(bid - D(1000)))
        )
        await wait_until(lambda: second.status is OrderStatus.ACCEPTED, 5, "accepted")
        broker.amend(second, qty=D("0.020"), price=bid - D(900))
        await wait_until(lambda: sim_order(sim, "a1").qty == D("0.020"), 5, "amended at venue")
        await wait_until(
            lambda: any(u.qty == D("0.020") for u in ledger.updates), 5, "amend reported"
        )
        amended = next(u for u in ledger.updates if u.qty == D("0.020"))
        assert amended.status == "accepted" and amended.price == bid - D(900)
    assert_consistent(sim, ledger, broker)


async def test_orders_the_venue_would_refuse_never_leave(sim: Simulator) -> None:
    async with trading(sim) as (broker, ledger):
        broker.on_market(Ticker("BTCUSDT", sim_order_ts(), last=D("60000")))
        tiny = ledger.submitted(broker, make_order("r1", Side.BUY, "0.0005"))
        small = ledger.submitted(
            broker, make_order("r2", Side.BUY, "0.001", price="1000.0")
        )  # 1 USDT notional
        off_step = ledger.submitted(broker, make_order("r3", Side.BUY, "0.0015"))
        await wait_until(
            lambda: all(o.status is OrderStatus.REJECTED for o in (tiny, small, off_step)),
            5,
            "local rejects",
        )
    assert "below the minimum" in tiny.reason
    assert "notional" in small.reason
    assert "lot step" in off_step.reason
    assert creates(sim) == 0
    assert broker.stats.rejected_locally == 3


def sim_order_ts() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


async def test_insufficient_balance_110007_rejects_with_the_reason(sim: Simulator) -> None:
    async with trading(sim) as (broker, ledger):
        huge = ledger.submitted(broker, make_order("b1", Side.BUY, "100.000"))
        await wait_until(lambda: huge.status is OrderStatus.REJECTED, 5, "rejected")
        assert "110007" in huge.reason and "ab not enough" in huge.reason
        sim.faults.fail_rest("/v5/order/create", 110007)
        forced = ledger.submitted(broker, make_order("b2", Side.BUY, "0.010"))
        await wait_until(lambda: forced.status is OrderStatus.REJECTED, 5, "rejected")
        assert "110007" in forced.reason
        after = ledger.submitted(broker, make_order("b3", Side.BUY, "0.010"))
        await wait_until(lambda: after.status is OrderStatus.FILLED, 5, "next order fills")
    assert not any(o.link_id in ("b1", "b2") for o in sim.account.orders.values())
    assert_consistent(sim, ledger, broker)


async def test_rate_limit_10006_backs_off_and_places_the_order_once(sim: Simulator) -> None:
    async with trading(sim) as (broker, ledger):
        sim.faults.fail_rest("/v5/order/create", 10006, count=2)
        order = ledger.submitted(broker, make_order("rl1", Side.BUY, "0.050"))
        await wait_until(lambda: order.status is OrderStatus.FILLED, 5, "filled")
        assert broker.rest.retries >= 2
    assert creates(sim) == 3
    assert [o.link_id for o in sim.account.orders.values()].count("rl1") == 1
    assert_consistent(sim, ledger, broker)


async def test_repeated_executions_are_counted_once(sim: Simulator) -> None:
    async with trading(sim) as (broker, ledger):
        sim.faults.duplicate_executions = 3
        order = ledger.submitted(broker, make_order("d1", Side.SELL, "0.120"))
        await wait_until(lambda: order.status is OrderStatus.FILLED, 5, "filled")
        await wait_until(lambda: broker.stats.duplicate_fills == 3, 5, "duplicates seen")
    assert len([e for e in ledger.events if isinstance(e, Fill)]) == 3
    assert ledger.position() == D("-0.120")
    assert_consistent(sim, ledger, broker)


async def test_reordered_messages_never_move_an_order_backwards(sim: Simulator) -> None:
    async with trading(sim) as (broker, ledger):
        market = sim.market.get("linear", "BTCUSDT")
        assert market is not None
        bid, _ = market.quotes(sim.market.now_ms())
        # The New ack is held back until after the first execution: the execution arrives
        # before the ack, and the ack arrives after PartiallyFilled (stale).
        sim.faults.reorder_private = 1
        order = ledger.submitted(
            broker, make_order("o1", Side.BUY, "0.120", price=str(bid - D(500)))
        )
        await asyncio.sleep(0.2)
        assert order.status is OrderStatus.SUBMITTED  # the ack has not arrived
        sim.set_price("BTCUSDT", float(bid - D(800)))
        await wait_until(lambda: order.status is OrderStatus.FILLED, 5, "filled")
    assert broker.stats.stale_updates >= 1
    assert "accepted" not in [u.status for u in ledger.updates]
    assert_consistent(sim, ledger, broker)


async def test_a_fill_before_the_create_answer_is_applied(sim: Simulator) -> None:
    async with trading(sim) as (broker, ledger):
        sim.faults.delay_rest(0.5, path="/v5/order/create", process_first=True)
        order = ledger.submitted(broker, make_order("e1", Side.BUY, "0.030"))
        await wait_until(lambda: order.status is OrderStatus.FILLED, 3, "filled")
        assert not order.venue_order_id or broker.mirror.orders["e1"].in_flight
        await wait_until(lambda: not broker.mirror.orders["e1"].in_flight, 3, "create answered")
    assert order.venue_order_id == sim_order(sim, "e1").order_id
    assert_consistent(sim, ledger, broker)


async def test_lost_executions_are_fetched_from_the_execution_list(sim: Simulator) -> None:
    async with trading(sim) as (broker, ledger):
        sim.faults.drop_executions = 2
        order = ledger.submitted(broker, make_order("g1", Side.BUY, "0.120"))
        await wait_until(lambda: order.status is OrderStatus.FILLED, 5, "filled")
    assert broker.stats.gaps_detected >= 1 and broker.stats.fills_recovered == 2
    assert ("GET", "/v5/execution/list") in sim.requests
    assert_consistent(sim, ledger, broker)


async def test_fills_while_the_private_stream_is_down_are_recovered(sim: Simulator) -> None:
    async with trading(sim) as (broker, ledger):
        market = sim.market.get("linear", "BTCUSDT")
        assert market is not None
        bid, _ = market.quotes(sim.market.now_ms())
        order = ledger.submitted(
            broker, make_order("p1", Side.BUY, "0.100", price=str(bid - D(500)))
        )
        await wait_until(lambda: order.status is OrderStatus.ACCEPTED, 5, "accepted")
        private, rest = broker.links()
        assert private.up and private.name == "bybit private websocket"
        assert rest.up and rest.name == "bybit rest" and rest.messages > 0 and rest.errors == 0
        sim.faults.reject_ws(1.0)
        assert sim.drop_connections("private") == 1
        sim.set_price("BTCUSDT", float(bid - D(800)))
        await wait_until(lambda: sim_order(sim, "p1").status == "Filled", 5, "venue fill")
        assert order.status is OrderStatus.ACCEPTED  # nobody told us yet
        await wait_until(lambda: order.status is OrderStatus.FILLED, 8, "recovered")
        await wait_until(lambda: broker.links()[0].up, 8, "the private link up again")
        assert broker.links()[0].reconnects >= 1
    assert broker.stats.resyncs >= 1 or broker.stats.fills_recovered >= 1
    assert_consistent(sim, ledger, broker)


async def test_a_malformed_private_frame_is_skipped(sim: Simulator) -> None:
    async with trading(sim) as (broker, ledger):
        sim.faults.send_malformed("private", 1)
        order = ledger.submitted(broker, make_order("x1", Side.BUY, "0.010"))
        await wait_until(lambda: order.status is OrderStatus.FILLED, 5, "filled")
        assert broker.private.connection.stats.malformed == 1
    assert_consistent(sim, ledger, broker)


async def test_a_lost_create_answer_is_read_back_not_resent(sim: Simulator) -> None:
    async with trading(sim, rest_timeout=0.4) as (broker, ledger):
        sim.faults.delay_rest(1.0, path="/v5/order/create", process_first=True)
        order = ledger.submitted(broker, make_order("t1", Side.BUY, "0.010"))
        await wait_until(lambda: order.status is OrderStatus.FILLED, 5, "filled")
        await wait_until(lambda: not broker.mirror.orders["t1"].in_flight, 5, "settled")
    assert creates(sim) == 1
    assert [o.link_id for o in sim.account.orders.values()].count("t1") == 1
    assert_consistent(sim, ledger, broker)


async def test_a_create_that_never_arrived_is_sent_again(sim: Simulator) -> None:
    async with trading(sim, rest_timeout=0.4) as (broker, ledger):
        sim.faults.delay_rest(1.0, path="/v5/order/create", process_first=False)
        order = ledger.submitted(broker, make_order("t2", Side.BUY, "0.010"))
        await wait_until(lambda: order.status is OrderStatus.FILLED, 5, "filled")
    assert [o.link_id for o in sim.account.orders.values()].count("t2") == 1
    assert_consistent(sim, ledger, broker)


async def test_clock_skew_is_measured_and_used_in_signing() -> None:
    async with Simulator(sim_config(clock_skew_ms=20_000)) as skewed:
        async with trading(skewed) as (broker, ledger):
            assert 19_000 < broker.rest.clock.offset_ms < 21_000
            order = ledger.submitted(broker, make_order("k1", Side.BUY, "0.010"))
            await wait_until(lambda: order.status is OrderStatus.FILLED, 5, "filled")
        assert_consistent(skewed, ledger)
        # The same request signed with the local clock is outside the 5 s window: 10002.
        from pybit.exceptions import InvalidRequestError
        from pybit.unified_trading import HTTP

        def plain() -> None:
            client = HTTP(
                api_key="sim-key", api_secret="sim-secret", max_retries=1, retry_codes={-1}
            )
            client.endpoint = skewed.url
            client.get_wallet_balance(accountType="UNIFIED")

        with pytest.raises(InvalidRequestError, match="10002"):
            await asyncio.to_thread(plain)


async def test_a_10002_resyncs_the_clock_and_retries(sim: Simulator) -> None:
    async with trading(sim) as (broker, ledger):
        syncs = sum(1 for _, path in sim.requests if path == "/v5/market/time")
        sim.faults.fail_rest("/v5/order/create", 10002)
        order = ledger.submitted(broker, make_order("k2", Side.BUY, "0.010"))
        await wait_until(lambda: order.status is OrderStatus.FILLED, 5, "filled")
        assert sum(1 for _, path in sim.requests if path == "/v5/market/time") == syncs + 1
    assert_consistent(sim, ledger, broker)


async def test_the_rest_link_shows_a_call_that_got_no_answer(sim: Simulator) -> None:
    import socket

    with socket.socket() as spare:  # a port nobody listens on once closed
        spare.bind(("127.0.0.1", 0))
        port = spare.getsockname()[1]
    config = settings_for(sim, rest_retries=0).bybit
    async with BybitRest(config, f"http://127.0.0.1:{port}", LiveClock()) as rest:
        with pytest.raises(NetworkError):
            await rest.request("GET", "/v5/market/time")
        link = rest.link()
        assert not link.up and link.errors == 1 and link.last_error
        assert link.last_error.startswith("/v5/market/time")
    async with BybitRest(config, sim.url, LiveClock()) as rest:
        await rest.request("GET", "/v5/market/time")
        assert rest.link().up and rest.link().errors == 0


async def test_bad_credentials_are_fatal(sim: Simulator) -> None:
    wrong = Secrets(api_key=SecretStr("sim-key"), api_secret=SecretStr("not-the-secret"))
    with pytest.raises(CredentialsError, match="10004") as raised:
        async with trading(sim, secrets=wrong):
            pass
    assert isinstance(raised.value, FatalError)
    unknown = Secrets(api_key=SecretStr("nobody"), api_secret=SecretStr("x"))
    with pytest.raises(FatalError, match="10003"):
        async with trading(sim, secrets=unknown):
            pass


async def test_reconcile_brings_a_restarted_broker_to_the_venue_state(sim: Simulator) -> None:
    """In-process restart: orders known from before, fills the new broker never saw."""
    async with trading(sim) as (broker, ledger):
        market = sim.market.get("linear", "BTCUSDT")
        assert market is not None
        _, ask = market.quotes(sim.market.now_ms())
        bought = ledger.submitted(broker, make_order("s1", Side.BUY, "0.100"))
        resting = ledger.submitted(
            broker, make_order("s2", Side.SELL, "0.060", price=str(ask + D(600)))
        )
        await wait_until(
            lambda: bought.status is OrderStatus.FILLED and resting.status is OrderStatus.ACCEPTED,
            5,
            "placed",
        )
    # The broker is gone; while nobody listens the resting order fills.
    sim.set_price("BTCUSDT", float(ask + D(900)))
    await wait_until(lambda: sim_order(sim, "s2").status == "Filled", 5, "venue fill")
    async with trading(sim) as (again, _):
        again.bind(ledger.emit)
        state = await again.reconcile([resting])
    assert len(state.fills) == 2 and state.updates == ()
    ledger.apply_state(state.updates, state.fills)
    assert resting.status is OrderStatus.FILLED
    assert state.positions["BTCUSDT"] == (D("0.040"), D(sim.account.positions["BTCUSDT"].avg))
    portfolio = ledger.portfolio(D("100000"))
    assert state.cash is not None and abs(portfolio.cash - state.cash) < D("0.000001")
    assert state.open_orders == ()
    assert_consistent(sim, ledger)


async def test_spot_orders_and_positions_from_the_wallet() -> None:
    async with Simulator(sim_config()) as spot_sim:
        settings = settings_for(spot_sim, category="spot")
        instruments = await fetch_instruments(settings, ["ETHUSDT"], LiveClock())
        assert instruments["ETHUSDT"].category == "spot"
        broker = BybitBroker(settings, SIM_SECRETS, instruments, LiveClock())
        ledger = Ledger()
        broker.bind(ledger.emit)
        await broker.start()
        try:
            buy = ledger.submitted(broker, make_order("sp1", Side.BUY, "0.5", symbol="ETHUSDT"))
            await wait_until(lambda: buy.status is OrderStatus.FILLED, 5, "bought")
            sell = ledger.submitted(broker, make_order("sp2", Side.SELL, "0.2", symbol="ETHUSDT"))
            await wait_until(lambda: sell.status is OrderStatus.FILLED, 5, "sold")
            state = await broker.reconcile([])
        finally:
            await broker.stop()
        assert ledger.errors == []
        assert state.positions["ETHUSDT"][0] == D("0.3") == ledger.position("ETHUSDT")
        assert state.cash == spot_sim.account.coins["USDT"]
        assert state.cash == ledger.portfolio(D("100000")).cash
        assert {o.link_id: o.qty for o in spot_sim.account.orders.values()} == {
            "sp1": D("0.5"),
            "sp2": D("0.2"),
        }


async def test_updates_are_only_ever_legal_forward_moves(sim: Simulator) -> None:
    """Many orders and faults at once; the ledger would raise on any regression."""
    async with trading(sim) as (broker, ledger):
        sim.faults.duplicate_executions = 5
        sim.faults.reorder_private = 3
        sim.faults.drop_executions = 1
        orders = [
            ledger.submitted(broker, make_order(f"z{i}", Side.BUY if i % 2 else Side.SELL, "0.070"))
            for i in range(6)
        ]
        await wait_until(
            lambda: all(o.status is OrderStatus.FILLED for o in orders), 8, "all filled"
        )
    updates = [e for e in ledger.events if isinstance(e, OrderUpdate)]
    assert all(u.status != "accepted" or u.client_order_id for u in updates)
    assert_consistent(sim, ledger, broker)


async def test_an_invalid_quantity_the_venue_refuses_rejects_with_its_reason(
    sim: Simulator,
) -> None:
    """Rules gone stale (a finer lot step than Bybit's): the order leaves, Bybit says 10001."""
    settings = settings_for(sim)
    instruments = await fetch_instruments(settings, ["BTCUSDT"], LiveClock())
    stale = {"BTCUSDT": replace(instruments["BTCUSDT"], qty_step=D("0.0001"), min_qty=D("0.0001"))}
    broker = BybitBroker(settings, SIM_SECRETS, stale, LiveClock())
    ledger = Ledger()
    broker.bind(ledger.emit)
    await broker.start()
    try:
        order = ledger.submitted(broker, make_order("q1", Side.BUY, "0.0015"))
        await wait_until(lambda: order.status is OrderStatus.REJECTED, 5, "rejected")
    finally:
        await broker.stop()
    assert "Qty invalid" in order.reason and "Bybit 10001" in order.reason
    assert creates(sim) == 1 and not sim.account.orders
    assert ledger.errors == []


async def test_the_injected_clock_stamps_updates_and_signatures(sim: Simulator) -> None:
    """A run's clock three hours off the system's: the broker's own updates carry its time, and
    signing measures the venue's offset against it (not against time.time()), so orders still
    pass Bybit's recv_window check."""
    ahead = LiveClock(offset=timedelta(hours=3))
    settings = settings_for(sim)
    instruments = await fetch_instruments(settings, ["BTCUSDT"], ahead)
    broker = BybitBroker(settings, SIM_SECRETS, instruments, ahead)
    ledger = Ledger()
    broker.bind(ledger.emit)
    await broker.start()
    try:
        assert broker.rest.clock.clock is ahead
        assert abs(broker.rest.clock.offset_ms + 3 * 3_600_000) < 2_000
        order = ledger.submitted(broker, make_order("clk1", Side.BUY, "0.010"))
        await wait_until(lambda: order.status is OrderStatus.FILLED, 5, "the fill")
    finally:
        await broker.stop()
    submitted = next(u for u in ledger.updates if u.status == OrderStatus.SUBMITTED.value)
    assert submitted.ts - datetime.now(UTC) > timedelta(hours=2, minutes=59)
    assert_consistent(sim, ledger)
