"""What closes a position without a vote: protective exits and, for leveraged perpetuals, the
venue's liquidation — in replay and paper mode, decided bar by bar from the bar's high and low.

Both close at once, at the level the bar reached (or its open where it gapped through), through
a reduce-only stop order the paper broker fills as a taker, and each leaves a decision record
with its reason. A protective exit is checked first: a stop sits above a long's liquidation
level, so a falling bar reaches it first. The rules themselves are pure and live in
`strategies/exits.py` and `strategies/margin.py`; this module only applies them to the engine.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from bot.events import Bar, OrderType, Outcome, Side
from bot.log import get_logger
from strategies.margin import liquidation_price, reaches

if TYPE_CHECKING:
    from bot.engine import Engine

log = get_logger("bot.engine")
ZERO = Decimal(0)


def on_bar(engine: Engine, bar: Bar) -> None:
    symbol = bar.symbol
    if engine.exits is not None:
        exit_ = engine.exits.on_bar(
            symbol, ts_open=bar.ts_open, open_=bar.open, high=bar.high, low=bar.low, close=bar.close
        )
        if exit_ is not None:
            close(engine, symbol, exit_.price, exit_.reason)
            return
    check_liquidation(engine, bar)


def refresh_level(engine: Engine, symbol: str) -> None:
    """Work out `symbol`'s liquidation level again (after a fill or a reconciliation: cross
    margin's level moves with the cash too). Cheap enough per fill, too dear per bar."""
    portfolio = engine.portfolio
    rules = engine.margins.get(symbol)
    position = portfolio.positions.get(symbol)
    if rules is None or position is None or not position.qty:
        engine.liquidation_levels.pop(symbol, None)
    else:
        mark = position.mark if position.mark is not None else position.avg_price
        rest = portfolio.equity - position.qty * mark
        level = liquidation_price(position.qty, position.avg_price, rules, rest_of_account=rest)
        if level is None:
            engine.liquidation_levels.pop(symbol, None)
        else:
            engine.liquidation_levels[symbol] = level
    # Several open positions on one cross margin move each other's levels bar by bar.
    shared = [
        s
        for s, p in portfolio.positions.items()
        if p.qty and s in engine.margins and engine.margins[s].mode == "cross"
    ]
    engine.shared_margin = len(shared) > 1


def check_liquidation(engine: Engine, bar: Bar) -> None:
    """Close a leveraged position whose liquidation level the bar reached."""
    symbol = bar.symbol
    if engine.shared_margin:
        refresh_level(engine, symbol)
    level = engine.liquidation_levels.get(symbol)
    if level is None:
        return
    qty = engine.portfolio.qty(symbol)
    if qty == 0 or not reaches(qty, level, bar.high, bar.low):
        return
    rules = engine.margins[symbol]
    gapped = bar.open <= level if qty > 0 else bar.open >= level
    price = bar.open if gapped else level
    log.warning(
        "liquidated: equity fell to the maintenance margin",
        symbol=symbol,
        qty=str(qty),
        price=str(price),
        margin_mode=rules.mode,
        leverage=str(rules.leverage),
    )
    close(engine, symbol, price, "liquidation")


def close(engine: Engine, symbol: str, price: Decimal, reason: str) -> None:
    """Flatten `symbol` at `price` now: cancel what works, send the stop, record the decision."""
    qty = engine.portfolio.qty(symbol)
    if qty == 0:
        return
    now = engine.clock.now()
    record = engine.decisions.start(
        now, symbol, None, trigger="exit", target_before=engine.targets.get(symbol)
    )
    engine.exited.add(symbol)
    engine.targets[symbol] = ZERO
    for order in list(engine.open_orders.get(symbol, {}).values()):
        engine.broker.cancel(order)
    side = Side.SELL if qty > 0 else Side.BUY
    rounded = engine.symbols.instrument(symbol).round_price(price, -side.sign)
    order_id = engine.place(
        symbol, side, abs(qty), rounded, reason, True, record.id, OrderType.STOP
    )
    engine.decisions.finish(record, Outcome.ORDER, reason, order_id=order_id, target_after=ZERO)


def within_margin(engine: Engine, symbol: str, target: Decimal, price: Decimal) -> Decimal:
    """`target` clipped so that its initial margin (notional / leverage) fits the equity, as a
    venue refuses an order the margin cannot carry."""
    rules = engine.margins.get(symbol)
    if rules is None or target == 0:
        return target
    others = sum(
        (p.notional for s, p in engine.portfolio.positions.items() if s != symbol and p.qty), ZERO
    )
    room = engine.portfolio.equity * rules.leverage - others
    if abs(target) * price <= room:
        return target
    capped = engine.symbols.instrument(symbol).round_qty(max(room, ZERO) / price)
    return capped if target > 0 else -capped
