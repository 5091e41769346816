"""One life of a trading process, for the restart test (run as a real subprocess).

python -m tests.bybit.restart_child place SIM_URL STORE_URL
    places a market buy and two resting limit orders through `BybitBroker`, recording every
    order (before it is sent) and every fill in the store, prints READY and waits to be killed.
python -m tests.bybit.restart_child reconcile SIM_URL STORE_URL
    starts again from the store: its open orders are the known orders, its fills the
    position and cash; reconciles with the venue, applies what it missed, prints JSON.
python -m tests.bybit.restart_child inflight SIM_URL STORE_URL SPEC_JSON
    places one order (SPEC_JSON: cid, side, qty, price or null) and waits to be killed while
    its create is still on the way (the simulator delays it).
python -m tests.bybit.restart_child settle SIM_URL STORE_URL
    connects, prints WAITING and waits for a line on stdin (so it can be started before the
    kill), then reads the store and reconciles like `reconcile`, prints RECONCILED, stays until
    every known order has settled (nothing left created or submitted) and prints the same JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from decimal import Decimal

from adapters.bybit.factory import fetch_instruments, live_broker
from bot.clock import LiveClock
from bot.config import Settings
from bot.events import Side
from bot.log import setup_logging
from bot.orders import OrderStatus
from bot.portfolio import Portfolio
from bot.store import Store

from .harness import FAST, SIM_SECRETS, Ledger, make_order, wait_until

ACCOUNT = "live-restart"
CLOCK = LiveClock()
INITIAL = Decimal("100000")


async def place(settings: Settings, store: Store) -> None:
    instruments = await fetch_instruments(settings, ["BTCUSDT"], CLOCK)
    broker = live_broker(settings, SIM_SECRETS, instruments, CLOCK)
    ledger = Ledger(store=store)
    broker.bind(ledger.emit)
    await broker.start()
    bid = Decimal(sys.argv[4])
    orders = [
        ledger.submitted(broker, make_order("r-market", Side.BUY, "0.050")),
        # Far enough from the market (3%) that minutes of simulated drift do not reach them.
        ledger.submitted(broker, make_order("r-buy", Side.BUY, "0.030", price=str(bid - 2000))),
        ledger.submitted(broker, make_order("r-sell", Side.SELL, "0.020", price=str(bid + 2000))),
    ]
    await wait_until(
        lambda: (
            orders[0].status is OrderStatus.FILLED
            and all(o.status is OrderStatus.ACCEPTED for o in orders[1:])
        ),
        10,
        "placed",
    )
    print("READY", flush=True)
    await asyncio.Event().wait()  # until SIGKILL


async def inflight(settings: Settings, store: Store) -> None:
    spec = json.loads(sys.argv[4])
    instruments = await fetch_instruments(settings, ["BTCUSDT"], CLOCK)
    broker = live_broker(settings, SIM_SECRETS, instruments, CLOCK)
    ledger = Ledger(store=store)
    broker.bind(ledger.emit)
    await broker.start()
    side = Side.BUY if spec["side"] == "Buy" else Side.SELL
    ledger.submitted(broker, make_order(spec["cid"], side, spec["qty"], price=spec["price"]))
    print("SENDING", flush=True)
    await asyncio.Event().wait()  # until SIGKILL


async def reconcile(settings: Settings, store: Store, *, settle: bool = False) -> None:
    instruments = await fetch_instruments(settings, ["BTCUSDT"], CLOCK)
    broker = live_broker(settings, SIM_SECRETS, instruments, CLOCK)
    ledger = Ledger(store=store)
    broker.bind(ledger.emit)
    await broker.start()
    if settle:  # connected ahead of the kill, so the restart's reconciliation follows it at once
        print("WAITING", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    state = store.load_account(ACCOUNT)
    assert state is not None
    for order in state.open_orders:
        ledger.add(order)
    try:
        venue = await broker.reconcile(state.open_orders)
        ledger.apply_state(venue.updates, venue.fills)  # updates first, then fills
        print("RECONCILED", flush=True)
        if settle:  # what is still in flight settles through emit, after its deadline
            unsettled = (OrderStatus.CREATED, OrderStatus.SUBMITTED)
            await wait_until(
                lambda: all(o.status not in unsettled for o in ledger.orders.values()),
                30,
                "every order settled",
            )
            await asyncio.sleep(0.5)  # a fill reported right after its order's status
    finally:
        await broker.stop()
    fills = store.fills(ACCOUNT)
    portfolio = Portfolio.from_fills(INITIAL, fills)
    print(
        json.dumps(
            {
                "known": [o.client_order_id for o in state.open_orders],
                "fills_before": len(state.fills),
                "missed_fills": len(venue.fills),
                "updates": [u.status for u in venue.updates],
                "statuses": {o.client_order_id: o.status.value for o in store.orders(ACCOUNT)},
                "exec_ids": sorted(f.exec_id for f in fills),
                "position": str(portfolio.qty("BTCUSDT")),
                "venue_position": str(venue.positions["BTCUSDT"][0]),
                "cash": str(portfolio.cash),
                "venue_cash": str(venue.cash),
                "open_at_venue": [o.client_order_id for o in venue.open_orders],
                "errors": [str(e) for e in ledger.errors],
            }
        ),
        flush=True,
    )


def main() -> None:
    mode, sim_url, store_url = sys.argv[1:4]
    setup_logging("info", "json")  # to stderr: stdout carries only READY and the report
    settings = Settings().with_overrides(bybit={"rest_url": sim_url, **FAST})
    store = Store(store_url, account=ACCOUNT, run_id=f"{mode}-{datetime.now(UTC):%H%M%S}")
    store.open_account(ACCOUNT, "live", INITIAL, datetime.now(UTC))
    try:
        if mode == "place":
            asyncio.run(place(settings, store))
        elif mode == "inflight":
            asyncio.run(inflight(settings, store))
        else:
            asyncio.run(reconcile(settings, store, settle=mode == "settle"))
    finally:
        store.close()


if __name__ == "__main__":
    main()
