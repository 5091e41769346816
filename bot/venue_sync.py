"""Bringing the engine's account in line with what is true elsewhere: the store after a restart,
the venue after a reconnect or on the reconciliation timer.

The venue is the truth for positions and cash; lorabot's own records are the truth for which
orders it placed. Differences are adopted and logged, never silently: a trader reading the log
knows every time the two disagreed and which side won.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from bot.log import get_logger
from bot.orders import OrderStatus
from bot.protocols import VenueState

if TYPE_CHECKING:
    from bot.engine import Engine
    from bot.store import AccountState  # sqlmodel/sqlalchemy: not on the import path

log = get_logger("bot.engine")

# The quote currency's precision on the venue (USDT and USDC wallets: 8 decimals). Cash that agrees
# to it is the same cash: a difference of 1e-22 left by Decimal division is not news.
CASH_PRECISION = Decimal("1e-8")


def _differs_at_precision(venue: Decimal, mine: Decimal) -> bool:
    return abs(venue - mine) >= CASH_PRECISION


def resume(engine: Engine, state: AccountState) -> None:
    """Rebuild from the store: positions and cash from the fills, open orders as stored."""
    for fill in state.fills:
        engine.exec_ids.add(fill.exec_id)
        engine.portfolio.apply_fill(fill)
    for order in state.open_orders:
        engine.orders[order.client_order_id] = order
        engine.open_orders.setdefault(order.symbol, {})[order.client_order_id] = order
    for symbol, position in engine.portfolio.positions.items():
        engine.targets[symbol] = position.qty
    engine.note_positions()
    used = [o.client_order_id for o in state.open_orders]
    log.info(
        "resumed account",
        account=state.name,
        fills=len(state.fills),
        open_orders=len(used),
        cash=str(engine.portfolio.cash),
        positions={s: str(p.qty) for s, p in engine.portfolio.positions.items() if p.qty},
    )


def apply_venue_state(engine: Engine, state: VenueState) -> None:
    """Reconcile with the venue's truth: missed updates and fills first, then positions."""
    for update in state.updates:
        engine.bus.publish(update)
    for fill in state.fills:
        engine.bus.publish(fill)
    for symbol, (qty, avg_price) in state.positions.items():
        mine = engine.portfolio.qty(symbol)
        if mine != qty:
            log.warning(
                "position differs from the venue: adopting the venue's",
                symbol=symbol,
                store=str(mine),
                venue=str(qty),
            )
            engine.portfolio.set_position(symbol, qty, avg_price)
            engine.targets[symbol] = qty
    venue_open = {o.client_order_id for o in state.open_orders}
    for foreign in state.open_orders:
        if (
            foreign.client_order_id not in engine.orders
            and foreign.venue_order_id not in engine.foreign_orders
        ):
            # Someone else (the web UI, another bot) trades this account: lorabot leaves it be
            # but a trader must know, once per order.
            engine.foreign_orders.add(foreign.venue_order_id)
            log.warning(
                "an order on the venue that lorabot did not place",
                venue_order_id=foreign.venue_order_id,
                client_order_id=foreign.client_order_id or None,
                symbol=foreign.symbol,
                side=foreign.side.value,
                qty=str(foreign.qty),
            )
    for cid, order in list(engine.orders.items()):
        if order.is_open and order.status is not OrderStatus.CREATED and cid not in venue_open:
            log.warning("order open here but not at the venue", client_order_id=cid)
    if state.cash is not None and _differs_at_precision(state.cash, engine.portfolio.cash):
        log.info(
            "venue cash differs; adopting it",
            store=str(engine.portfolio.cash),
            venue=str(state.cash),
        )
        engine.portfolio.cash = state.cash
    engine.note_positions()
