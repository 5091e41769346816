"""What kind of order a target becomes, and at what price: the one place the `[strategy]
order_type` and `limit_offset_bps` keys are read, so the engine only routes.

A protective exit (`OrderType.STOP`) keeps the level its bar reached as its price; a limit
order is priced `limit_offset_bps` inside the reference price and rounded to the tick toward
the passive side (a buy down, a sell up), so the offset never turns it aggressive; everything
else is a market order with no price."""

from __future__ import annotations

from decimal import Decimal

from bot.config import StrategyConfig
from bot.events import OrderType, Side
from bot.symbols import Instrument

BPS = Decimal(10_000)


def order_terms(
    strategy: StrategyConfig,
    instrument: Instrument,
    side: Side,
    price: Decimal,
    order_type: OrderType | None,
) -> tuple[OrderType, Decimal | None]:
    """The order's type and its limit (or trigger) price, None for a market order."""
    if order_type is OrderType.STOP:
        return order_type, price
    if strategy.order_type == "limit":
        offset = Decimal(repr(strategy.limit_offset_bps)) / BPS
        raw = price * (1 - side.sign * offset)
        return OrderType.LIMIT, instrument.round_price(raw, side.sign)
    return OrderType.MARKET, None
