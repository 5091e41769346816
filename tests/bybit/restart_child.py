"""One life of a trading process, for the restart test (run as a real subprocess).

python -m tests.bybit.restart_child place SIM_URL STORE_URL
    places a market buy and two resting limit orders through `BybitBroker`, recording every
    order (before it is sent) and every fill in the store, prints READY and waits to be killed.
python -m tests.bybit.restart_child reconcile SIM_URL STORE_URL
    starts again from the store: its open orders are the known orders, its fills the
    position and cash; reconciles with the venue, applies what it missed, prints JSON.
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


async def reconcile(settings: Settings, store: Store) -> None:
    state = store.load_account(ACCOUNT)
    assert state is not None
    instruments = await fetch_instruments(settings, ["BTCUSDT"], CLOCK)
    broker = live_broker(settings, SIM_SECRETS, instruments, CLOCK)
    ledger = Ledger(store=store)
    for order in state.open_orders:
        ledger.add(order)
    broker.bind(ledger.emit)
    await broker.start()
    try:
        venue = await broker.reconcile(state.open_orders)
    finally:
        await broker.stop()
    ledger.apply_state(venue.updates, venue.fills)  # updates first, then fills
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
        asyncio.run(place(settings, store) if mode == "place" else reconcile(settings, store))
    finally:
        store.close()


if __name__ == "__main__":
    main()
