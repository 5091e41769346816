"""Protective exits in live mode on perpetuals: the venue holds the levels, lorabot records them.

In replay and paper mode the engine closes a position itself when a bar reaches its stop-loss,
take-profit or trailing stop (bot/protection.py). Live, Bybit watches every trade and keeps
acting while lorabot is down, so the levels are placed on the venue instead and the engine's
own bar check keeps only `max_hold` (assemble.py builds its `ExitBook` that way):

- after every fill that leaves a position open, and once the venue's state has been adopted
  (a restart, a reconciliation: the "venue" equity snapshot), the levels are worked out from
  the position's average entry (`strategies/exits.py`'s percent or ATR distances, the ATR taken
  when the position opened, or the first one known after it), rounded to the tick toward the
  market (the safe side) and handed to the broker, which sends what differs from what the
  venue holds;
- a level the venue triggers comes back as a `VenueExit` before its fills: it is recorded as
  the engine records its own exits (a decision with trigger "exit" and the reason, an order
  with that reason that the fills then fill, the target set to flat, re-entry only on news).
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING

from bot.events import Bar, EquitySnapshot, Fill, OrderRequest, OrderType, Outcome
from bot.log import get_logger
from bot.orders import Order, OrderStatus
from bot.portfolio import FillEffect
from bot.protocols import LiveBroker, Protection, VenueExit
from strategies.exits import ExitRules, Level, TrueRange

if TYPE_CHECKING:
    from bot.engine import Engine

log = get_logger("bot.engine")
ZERO = Decimal(0)


def venue_levels(
    rules: ExitRules, side: int, entry: Decimal, atr: Decimal | None
) -> tuple[Decimal | None, Decimal | None, Decimal | None]:
    """(stop-loss price, take-profit price, trailing distance) for a position entered at
    `entry` (`side` +1 long, -1 short); None where a level is off or its ATR is not known yet."""

    def distance(level: Level | None) -> Decimal | None:
        return None if level is None else level.distance(entry, atr)

    stop = distance(rules.stop_loss)
    target = distance(rules.take_profit)
    return (
        None if stop is None else entry - side * stop,
        None if target is None else entry + side * target,
        distance(rules.trailing_stop),
    )


class VenueExits:
    """Keeps the venue's levels in step with the engine's positions, and records their exits."""

    def __init__(
        self, engine: Engine, broker: LiveBroker, rules: ExitRules, atr_period: int = 14
    ) -> None:
        self.engine = engine
        self.broker = broker
        self.rules = rules
        self._period = atr_period
        self._atr: dict[str, TrueRange] = {}
        self._entry_atr: dict[str, Decimal | None] = {}
        self._side: dict[str, int] = {}
        self._sent: dict[str, Protection] = {}
        engine.bus.subscribe(Bar, self._on_bar)
        engine.bus.subscribe(VenueExit, self._on_venue_exit)
        engine.bus.subscribe(EquitySnapshot, self._on_snapshot)
        engine.fill_listeners.append(self._on_fill)

    # -- levels ------------------------------------------------------------------------------

    def protection(self, symbol: str) -> Protection:
        """The levels `symbol`'s open position should carry on the venue now (empty if flat)."""
        position = self.engine.portfolio.positions.get(symbol)
        if position is None or not position.qty:
            return Protection()
        side = 1 if position.qty > 0 else -1
        atr = self._entry_atr.get(symbol)
        stop, target, trail = venue_levels(self.rules, side, position.avg_price, atr)
        instrument = self.engine.symbols.instrument(symbol)
        tick = instrument.tick_size
        return Protection(
            # toward the market: a stop a tick tighter, a target a tick nearer, never further
            None if stop is None else instrument.round_price(stop, -side),
            None if target is None else instrument.round_price(target, side),
            None if trail is None else max(tick, (trail / tick).quantize(1, ROUND_DOWN) * tick),
        )

    def sync(self, symbol: str) -> None:
        wanted = self.protection(symbol)
        if self._sent.get(symbol) == wanted:
            return
        self._sent[symbol] = wanted
        self.broker.set_protection(symbol, wanted)

    def _on_fill(self, fill: Fill, effect: FillEffect) -> None:
        symbol = fill.symbol
        qty = effect.position_qty
        side = 0 if qty == 0 else (1 if qty > 0 else -1)
        if side != self._side.get(symbol, 0):
            self._side[symbol] = side
            atr = self._atr.get(symbol)
            self._entry_atr[symbol] = atr.value if atr is not None and side else None
        self.sync(symbol)

    def _on_bar(self, bar: Bar) -> None:
        atr = self._atr.get(bar.symbol)
        if atr is None:
            atr = self._atr[bar.symbol] = TrueRange(self._period)
        atr.update(bar.high, bar.low, bar.close)
        if (
            atr.value is not None
            and self._entry_atr.get(bar.symbol) is None
            and self.engine.portfolio.qty(bar.symbol)
        ):
            # Opened before any ATR was known, or resumed after a restart (the entry's ATR is
            # not stored): the first one known stands for it, so ATR levels still protect it.
            self._entry_atr[bar.symbol] = atr.value
            self.sync(bar.symbol)

    def _on_snapshot(self, snapshot: EquitySnapshot) -> None:
        if snapshot.source != "venue":
            return
        for symbol, position in self.engine.portfolio.positions.items():
            if position.qty:
                self._sent.pop(symbol, None)  # the broker compares with what the venue holds
                self.sync(symbol)

    # -- exits the venue made ----------------------------------------------------------------

    def _on_venue_exit(self, exit_: VenueExit) -> None:
        engine = self.engine
        symbol = exit_.symbol
        if exit_.client_order_id in engine.orders:
            return  # announced again (a replayed message)
        if exit_.exec_ids and all(e in engine.exec_ids for e in exit_.exec_ids):
            return  # found again by a reconciliation: recorded in an earlier life
        now = engine.clock.now()
        record = engine.decisions.start(
            now, symbol, None, trigger="exit", target_before=engine.targets.get(symbol)
        )
        engine.exited.add(symbol)
        engine.targets[symbol] = ZERO
        for working in list(engine.open_orders.get(symbol, {}).values()):
            engine.broker.cancel(working)
        request = OrderRequest(
            ts=exit_.ts,
            client_order_id=exit_.client_order_id,
            symbol=symbol,
            side=exit_.side,
            qty=exit_.qty,
            order_type=OrderType.STOP,
            reduce_only=True,
            reason=exit_.reason,
            decision_id=record.id,
        )
        order = Order.from_request(request)
        order.venue_order_id = exit_.venue_order_id
        for status in (OrderStatus.SUBMITTED, OrderStatus.UNTRIGGERED, OrderStatus.TRIGGERED):
            order.transition(status, exit_.ts)
        engine.orders[order.client_order_id] = order
        engine.open_orders.setdefault(symbol, {})[order.client_order_id] = order
        if engine.store is not None:  # live mode always has one; a trial replay has no venue
            engine.store.record_order(order)
        self._sent.pop(symbol, None)
        log.info(
            "protective exit on the venue",
            symbol=symbol,
            reason=exit_.reason,
            qty=str(exit_.qty),
            venue_order_id=exit_.venue_order_id,
        )
        engine.decisions.finish(
            record, Outcome.ORDER, exit_.reason, order_id=order.client_order_id, target_after=ZERO
        )
