"""Helpers for the Bybit tests: a simulator on a free port, settings pointing at it, and a strict
stand-in for the engine that applies every broker event through the real order state machine.

`Ledger` raises on any event the engine would refuse (an illegal transition, an overfill), so a
broker that emits a regression fails the test instead of being quietly forgiven.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import SecretStr

from adapters.bybit.sim import SimConfig, Simulator
from bot.config import Secrets, Settings
from bot.events import Fill, OrderType, OrderUpdate, Side, TimeInForce
from bot.orders import Order, OrderStatus
from bot.portfolio import Portfolio
from bot.protocols import VenueExit
from bot.store import Store

FAST = {
    "ping_interval": 0.2,
    "silence_timeout": 1.0,
    "connect_timeout": 2.0,
    "reconnect_initial": 0.05,
    "reconnect_max": 0.2,
    "rest_timeout": 2.0,
    "rest_backoff": 0.05,
    "rest_backoff_max": 0.5,
    "fill_gap_grace": 0.15,
    "order_poll_interval": 1.0,
    "clock_sync_interval": 60,
}

SIM_SECRETS = Secrets(api_key=SecretStr("sim-key"), api_secret=SecretStr("sim-secret"))


def sim_config(**overrides: Any) -> SimConfig:
    values: dict[str, Any] = {
        "port": 0,
        "speed": 60.0,
        "tick_interval": 0.05,
        "order_rate_limit": 50,
    }
    values.update(overrides)
    return SimConfig(**values)


def settings_for(sim: Simulator, **bybit: Any) -> Settings:
    return Settings().with_overrides(bybit={"rest_url": sim.url, **FAST, **bybit})


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        await asyncio.sleep(0.02)


def make_order(
    cid: str,
    side: Side = Side.BUY,
    qty: str = "0.010",
    *,
    symbol: str = "BTCUSDT",
    price: str | None = None,
    tif: TimeInForce = TimeInForce.GTC,
    reduce_only: bool = False,
) -> Order:
    return Order(
        client_order_id=cid,
        symbol=symbol,
        side=side,
        qty=Decimal(qty),
        created=datetime.now(UTC),
        order_type=OrderType.LIMIT if price else OrderType.MARKET,
        price=Decimal(price) if price else None,
        time_in_force=tif,
        reduce_only=reduce_only,
    )


@dataclass
class Ledger:
    """The engine's side of the broker contract, strict: it refuses what the engine refuses."""

    orders: dict[str, Order] = field(default_factory=dict)
    fills: list[Fill] = field(default_factory=list)
    updates: list[OrderUpdate] = field(default_factory=list)
    events: list[object] = field(default_factory=list)
    exits: list[VenueExit] = field(default_factory=list)
    errors: list[Exception] = field(default_factory=list)
    store: Store | None = None  # when set, every change is recorded as the engine does

    def add(self, order: Order) -> Order:
        self.orders[order.client_order_id] = order
        return order

    def submitted(self, broker: Any, order: Order) -> Order:
        """What the engine does: store, submit, then mark SUBMITTED if nothing happened yet."""
        self.add(order)
        if self.store is not None:
            self.store.record_order(order)  # stored (and committed) before it is sent
        broker.submit(order)
        if order.status is OrderStatus.CREATED:
            order.transition(OrderStatus.SUBMITTED)
            if self.store is not None:
                self.store.record_order(order)
        return order

    def emit(self, event: object) -> None:
        try:
            self._apply(event)
        except Exception as error:  # recorded: the broker's caller may swallow it
            self.errors.append(error)
            raise

    def _apply(self, event: object) -> None:
        self.events.append(event)
        if isinstance(event, OrderUpdate):
            self.updates.append(event)
            order = self.orders[event.client_order_id]
            order.transition(OrderStatus(event.status), event.ts, event.reason, event.provisional)
            if event.venue_order_id:
                order.venue_order_id = event.venue_order_id
            if self.store is not None:
                self.store.record_order(order)
        elif isinstance(event, Fill):
            order = self.orders[event.client_order_id]
            if order.apply_fill(event):
                self.fills.append(event)
                if self.store is not None:
                    self.store.record_fill(event)
                    self.store.record_order(order)
        elif isinstance(event, VenueExit):
            # What the engine does (bot/venue_exits.py): the venue's order joins the book.
            self.exits.append(event)
            order = Order(
                client_order_id=event.client_order_id,
                symbol=event.symbol,
                side=event.side,
                qty=event.qty,
                created=event.ts,
                order_type=OrderType.STOP,
                reduce_only=True,
                reason=event.reason,
                venue_order_id=event.venue_order_id,
            )
            for status in (OrderStatus.SUBMITTED, OrderStatus.UNTRIGGERED, OrderStatus.TRIGGERED):
                order.transition(status, event.ts)
            self.orders[order.client_order_id] = order
            if self.store is not None:
                self.store.record_order(order)
        else:
            raise AssertionError(f"the broker emitted {type(event).__name__}")

    def apply_state(self, updates: Any, fills: Any) -> None:
        for update in updates:
            self.emit(update)
        for fill in fills:
            self.emit(fill)

    def position(self, symbol: str = "BTCUSDT") -> Decimal:
        return sum((f.qty * f.side.sign for f in self.fills if f.symbol == symbol), Decimal(0))

    def portfolio(self, initial_cash: Decimal) -> Portfolio:
        return Portfolio.from_fills(initial_cash, self.fills)

    def exec_ids(self) -> list[str]:
        return [f.exec_id for f in self.fills]


def venue_position(sim: Simulator, symbol: str = "BTCUSDT") -> Decimal:
    position = sim.account.positions.get(symbol)
    return position.size if position else Decimal(0)


def venue_exec_ids(sim: Simulator, link_id: str | None = None) -> list[str]:
    return [
        e.exec_id for e in sim.account.executions if link_id is None or e.order.link_id == link_id
    ]
