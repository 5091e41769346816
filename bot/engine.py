"""The engine: routes events between the strategy, the risk gate, the broker and the portfolio.

It owns the order book (the `Order` state machines) and decides nothing itself: the strategy
(strategies/protocol.py) turns signals into targets, the risk gate clips or refuses them.
Nothing here knows whether it is replaying or live: time comes from the injected clock, market
data and news arrive as events, and the broker reports back through events; `bot/assemble.py`
plugs in the clock, sources and broker of each mode. Per decision: Signal -> strategy ->
TargetPosition -> risk gate -> OrderRequest stored with its client order id -> broker.submit ->
OrderUpdate/Fill -> order state machine -> portfolio; the store journals from the bus.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from bot import protection, venue_sync
from bot.bus import Bus
from bot.clock import Clock
from bot.config import Settings
from bot.decisions import EVALUATION_OUTCOMES, DecisionLog, outcome_of_risk
from bot.events import (
    Bar,
    Fill,
    Label,
    NewsItem,
    OrderRequest,
    OrderType,
    OrderUpdate,
    Outcome,
    Side,
    Signal,
    TargetPosition,
    Ticker,
    Trade,
)
from bot.log import get_logger
from bot.order_terms import order_terms
from bot.orders import IllegalTransition, Order, OrderError, OrderStatus
from bot.portfolio import FillEffect, Portfolio
from bot.prices import Price
from bot.protocols import Broker, VenueState
from bot.signals import SignalService
from bot.steady import SteadyRevotes
from bot.symbols import SymbolTable
from strategies.exits import ExitBook
from strategies.margin import MarginRules
from strategies.protocol import Strategy
from strategies.risk import RiskGate

if TYPE_CHECKING:  # the store pulls in sqlmodel/sqlalchemy: imported where it is built
    from bot.store import AccountState, Store

log = get_logger("bot.engine")

ZERO = Decimal(0)


FillListener = Callable[[Fill, FillEffect], None]


class Engine:
    def __init__(
        self,
        *,
        settings: Settings,
        clock: Clock,
        bus: Bus,
        store: Store | None,
        symbols: SymbolTable,
        signals: SignalService,
        broker: Broker,
        portfolio: Portfolio,
        strategy: Strategy,
        risk: RiskGate,
        traded: Iterable[str],
        id_prefix: str,
        exits: ExitBook | None = None,
        margins: Mapping[str, MarginRules] | None = None,
        record_decisions: bool = True,
    ) -> None:
        # store None: a trial (null replay, hyperopt) keeps nothing; nor decisions when False
        self.settings = settings
        self.clock = clock
        self.bus = bus
        self.store = store
        self.symbols = symbols
        self.signals = signals
        self.broker = broker
        self.portfolio = portfolio
        self.strategy = strategy
        self.risk = risk
        self.exits = exits
        self.margins = dict(margins or {})
        # symbol -> where the venue would liquidate it (bot/protection.py, kept after each fill)
        self.liquidation_levels: dict[str, Decimal] = {}
        self.shared_margin = False
        # closed by a protective exit: re-entered on news about them, never by a re-vote
        self.exited: set[str] = set()
        self._last_revote: dict[str, tuple[str, Label | None]] = {}
        self.steady = SteadyRevotes(record_decisions)  # re-votes promised to end as the last
        self.traded = tuple(traded)
        self.orders: dict[str, Order] = {}
        self.open_orders: dict[str, dict[str, Order]] = {s: {} for s in self.traded}
        self.targets: dict[str, Decimal] = {}
        self.prices: dict[str, Price] = {}
        self.exec_ids: set[str] = set()
        self.fill_listeners: list[FillListener] = []
        self.refusals: dict[str, int] = {}
        self._ids = itertools.count(1)
        self._id_prefix = id_prefix
        self._snapshot_every = timedelta(seconds=settings.engine.snapshot_interval)
        self._timers_started = False
        self._has_positions = False
        self.decisions = DecisionLog(id_prefix, bus.publish if record_decisions else None)
        self.foreign_orders: set[str] = set()  # venue order ids of orders lorabot did not place
        # Called with each order the moment before the broker is asked to place it (the daemon's
        # news-to-order latency probe, bot/latency.py); empty in a replay.
        self.submit_listeners: list[Callable[[Order], None]] = []

        broker.bind(bus.publish)
        bus.subscribe(NewsItem, self._on_news)
        bus.subscribe(Signal, self._on_signal)
        bus.subscribe(Bar, self._on_bar)
        bus.subscribe(Trade, self._on_trade)
        bus.subscribe(Ticker, self._on_ticker)
        bus.subscribe(TargetPosition, self._on_target)
        bus.subscribe(OrderUpdate, self._on_order_update)
        bus.subscribe(Fill, self._on_fill)

    # -- start-up ----------------------------------------------------------------------------
    def start_timers(self) -> None:
        """Periodic work on the clock: re-votes (decay, expiry) and snapshots."""
        if self._timers_started:
            return
        self._timers_started = True
        every = self.strategy.reevaluate_every
        if every > timedelta(0):
            self.clock.schedule_every(every, self._reevaluate, "reevaluate")
        if self._snapshot_every > timedelta(0):
            self.clock.schedule_every(self._snapshot_every, self.snapshot, "snapshot")

    def resume(self, state: AccountState) -> None:
        """Rebuild from the store: positions and cash from the fills, open orders as stored."""
        venue_sync.resume(self, state)

    def apply_venue_state(self, state: VenueState) -> None:
        """Reconcile with the venue's truth: missed updates and fills first, then positions."""
        venue_sync.apply_venue_state(self, state)

    def note_positions(self) -> None:
        """Re-read the positions after a resume or a reconciliation: whether any is open
        (marking to market is skipped while none is) and where each would be liquidated."""
        self._has_positions = any(p.qty for p in self.portfolio.positions.values())
        for symbol in self.margins:
            protection.refresh_level(self, symbol)

    # -- news and signals ----------------------------------------------------------------------
    def _on_news(self, item: NewsItem) -> None:
        self.signals.on_news(item)

    def _on_signal(self, signal: Signal) -> None:
        now = self.clock.now()
        self.steady.clear()
        if not self.strategy.on_signal(signal):
            record = self.decisions.start(now, signal.symbol, signal)
            self.decisions.finish(record, Outcome.STALE, "stale news is never traded")
            return
        affected = (signal.symbol,) if signal.symbol is not None else self.traded
        for symbol in affected:
            if symbol in self.open_orders:
                self.evaluate(symbol, signal)
            else:
                record = self.decisions.start(now, symbol, signal)
                self.decisions.finish(record, Outcome.NOT_TRADED, f"{symbol} is not traded")

    def _reevaluate(self, now: datetime) -> None:
        due = self.steady.due(self.traded, now, self.targets)
        if due and self.strategy.wants_revote():
            for symbol in due:
                self.evaluate(symbol)

    def evaluate(self, symbol: str, cause: Signal | None = None) -> None:
        """Ask the strategy, and publish the new target when it gives one."""
        price = self.prices.get(symbol)
        now = self.clock.now()
        current = self.targets.get(symbol, ZERO)
        evaluation = self.strategy.evaluate(
            symbol,
            now,
            instrument=self.symbols.instrument(symbol),
            price=price.price if price is not None else None,
            equity=self.portfolio.equity,
            current=current,
        )
        target = evaluation.target
        if evaluation.outcome == "no price":
            self._refuse(symbol, evaluation.reason)
        if cause is None and target is None:
            # A re-vote that ends as the symbol's last re-vote did (same outcome, same winning
            # class) is not a new decision: it is not recorded again. Every news item is.
            again = (evaluation.outcome, evaluation.composite.label)
            self.steady.keep(symbol, evaluation, current)
            if self._last_revote.get(symbol) == again:
                return
            self._last_revote[symbol] = again
        else:
            self._last_revote.pop(symbol, None)
            self.steady.after_other(symbol, evaluation, target is None, current)
        record = self.decisions.start(
            now, symbol, cause, composite=evaluation.composite, target_before=current
        )
        if target is not None and symbol in self.exited:
            if cause is None and target.qty != 0:
                reason = "closed by a protective exit: waiting for news before re-entering"
                self.decisions.finish(record, Outcome.HOLD, reason)
                return
            self.exited.discard(symbol)
        if target is None:
            self.decisions.finish(
                record, EVALUATION_OUTCOMES[evaluation.outcome], evaluation.reason
            )
            return
        self.targets[symbol] = target.qty
        self.decisions.hold_open(record)
        self.bus.publish(replace(target, decision_id=record.id))

    # -- market data -------------------------------------------------------------------------
    def _on_bar(self, bar: Bar) -> None:
        symbol = bar.symbol
        price = self.prices.get(symbol)
        if price is None:
            self.prices[symbol] = Price(bar.close, bar.ts, bar.ts_open)
        else:  # updated in place: this runs once per bar
            price.price = bar.close
            price.ts = bar.ts
            price.opened = bar.ts_open
        self.broker.on_market(bar)
        self.strategy.on_bar(bar)
        if self._has_positions:
            self._mark(symbol, bar.close)
        if self.exits is not None:
            protection.on_bar(self, bar)
        elif self.shared_margin or bar.symbol in self.liquidation_levels:
            protection.check_liquidation(self, bar)

    def _on_trade(self, trade: Trade) -> None:
        self._on_price(trade, trade.symbol, trade.price)

    def _on_ticker(self, ticker: Ticker) -> None:
        if (price := ticker.last or ticker.mark) is not None:
            self._on_price(ticker, ticker.symbol, price)

    def _on_price(self, event: Trade | Ticker, symbol: str, price: Decimal) -> None:
        self.prices[symbol] = Price(price, event.ts, None)
        self.broker.on_market(event)
        if self._has_positions:
            self._mark(symbol, price)

    def _mark(self, symbol: str, price: Decimal) -> None:
        position = self.portfolio.positions.get(symbol)
        if position is None or not position.qty:
            return
        position.mark = price
        if self.risk.on_equity(self.clock.now(), self.portfolio.equity):
            log.warning("daily loss limit reached: flattening and halting for the day")
            self.flatten("daily loss limit")

    # -- targets and orders ------------------------------------------------------------------
    def flatten(self, reason: str) -> None:
        now = self.clock.now()
        for symbol, position in self.portfolio.positions.items():
            if position.qty:
                record = self.decisions.start(
                    now, symbol, None, trigger="risk", target_before=self.targets.get(symbol)
                )
                self.decisions.hold_open(record)
                self.targets[symbol] = ZERO
                self.bus.publish(
                    TargetPosition(now, symbol, ZERO, Label.NEUTRAL, 1.0, reason, record.id)
                )

    def halt(self) -> None:
        """Stop placing orders, leaving positions as they are (the store cannot record more)."""
        self.risk.kill_switch = True

    def set_kill_switch(self, active: bool) -> None:
        if active and not self.risk.kill_switch:
            log.warning("kill switch on: flattening and halting")
            self.risk.kill_switch = True
            self.flatten("kill switch")
        elif not active and self.risk.kill_switch:
            log.warning("kill switch off: trading resumes")
            self.risk.kill_switch = False

    def _refuse(self, symbol: str, reason: str) -> None:
        count = self.refusals.get(reason, 0) + 1
        self.refusals[reason] = count
        if count == 1 or count % 100 == 0:
            log.info("no order", symbol=symbol, reason=reason, times=count)

    def _on_target(self, target: TargetPosition) -> None:
        symbol = target.symbol
        now = self.clock.now()
        price = self.prices.get(symbol)
        instrument = self.symbols.instrument(symbol)
        current = self.portfolio.qty(symbol)
        record = self.decisions.take(target.decision_id) or self.decisions.start(
            now, symbol, None, trigger="target", target_before=current
        )
        decision = self.risk.check(
            symbol=symbol,
            now=now,
            current=current,
            target=target.qty,
            price=price.price if price else None,
            price_ts=price.ts if price else None,
            expected_every=price.every if price else None,
            instrument=instrument,
        )
        if decision.qty is None:
            self.targets[symbol] = current
            self._refuse(symbol, decision.reason)
            outcome = outcome_of_risk(decision.reason)
            self.decisions.finish(record, outcome, decision.reason, risk=decision.reason)
            return
        assert price is not None
        wanted = protection.within_margin(self, symbol, decision.qty, price.price)
        reason = decision.reason if wanted == decision.qty else f"clipped to the margin: {wanted}"
        risk = reason or "ok"
        if reason:
            log.info("target adjusted by the risk gate", symbol=symbol, reason=reason)
        # Working orders are replaced: the delta is taken against the position alone (a cancel
        # that loses the race with a fill leaves a position the next decision corrects).
        for order in list(self.open_orders.get(symbol, {}).values()):
            self.broker.cancel(order)
        delta = instrument.round_qty(wanted - current)
        finish = functools.partial(self.decisions.finish, record, risk=risk, target_after=wanted)
        if delta == 0:
            finish(Outcome.UNCHANGED, "the position is the target")
            return
        side = Side.BUY if delta > 0 else Side.SELL
        size = abs(delta)
        reducing = current != 0 and (current > 0) != (delta > 0) and size <= abs(current)
        problem = instrument.check(size, price.price)
        if problem:
            self._refuse(symbol, problem)
            finish(Outcome.REJECTED, problem)
            return
        if not self.risk.allow_order(now):
            self._refuse(symbol, "order rate limit")
            finish(Outcome.RISK_CAP, "order rate limit")
            return
        order_id = self.place(symbol, side, size, price.price, target.reason, reducing, record.id)
        finish(Outcome.ORDER, target.reason, order_id=order_id)

    def _next_id(self) -> str:
        return f"{self._id_prefix}-{next(self._ids):06d}"

    def place(
        self,
        symbol: str,
        side: Side,
        size: Decimal,
        price: Decimal,
        reason: str,
        reduce_only: bool,
        decision_id: str,
        order_type: OrderType | None = None,
    ) -> str:
        now = self.clock.now()
        strategy = self.settings.strategy
        instrument = self.symbols.instrument(symbol)
        order_type, limit_price = order_terms(strategy, instrument, side, price, order_type)
        request = OrderRequest(
            ts=now,
            client_order_id=self._next_id(),
            symbol=symbol,
            side=side,
            qty=size,
            order_type=order_type,
            price=limit_price,
            reduce_only=reduce_only,
            reason=reason,
            decision_id=decision_id,
        )
        order = Order.from_request(request)
        self.orders[order.client_order_id] = order
        self.open_orders.setdefault(symbol, {})[order.client_order_id] = order
        self._keep(order)  # stored (committed when durable) before it is sent
        self.bus.publish(request)
        for listener in self.submit_listeners:
            listener(order)
        self.broker.submit(order)
        if order.status is OrderStatus.CREATED:
            order.transition(OrderStatus.SUBMITTED, now)
            self._keep(order)
        if order_type is OrderType.LIMIT and strategy.limit_timeout > 0:
            self.clock.schedule_at(
                now + timedelta(seconds=strategy.limit_timeout),
                lambda _: self._expire(order.client_order_id),
                "limit-timeout",
            )
        return order.client_order_id

    def _keep(self, order: Order) -> None:
        if self.store is not None:
            self.store.record_order(order)

    def _expire(self, client_order_id: str) -> None:
        order = self.orders.get(client_order_id)
        if order is not None and order.is_open:
            self.broker.cancel(order)

    def _on_order_update(self, update: OrderUpdate) -> None:
        order = self.orders.get(update.client_order_id)
        if order is None:
            log.warning(
                "update for an unknown order",
                client_order_id=update.client_order_id,
                status=update.status,
            )
            return
        revived = order.settled_locally
        try:
            changed = order.transition(update.status, update.ts, update.reason, update.provisional)
        except IllegalTransition as error:
            log.error("order update ignored", error=str(error))
            return
        if revived and order.status is not OrderStatus.REJECTED:
            log.warning(
                "the venue has an order lorabot had settled as never placed: following the venue",
                client_order_id=order.client_order_id,
                status=order.status.value,
            )
            self._settle(order)
        try:
            amended = order.amend(
                update.ts, qty=update.qty, price=update.price, venue_order_id=update.venue_order_id
            )
        except OrderError as error:
            log.error("amend ignored", error=str(error))
            amended = False
        if not changed and not amended:
            return
        if order.status is OrderStatus.REJECTED:
            log.warning(
                "order rejected", client_order_id=order.client_order_id, reason=update.reason
            )
            self.targets[order.symbol] = self.portfolio.qty(order.symbol)
        self._settle(order)
        self._keep(order)

    def _settle(self, order: Order) -> None:
        """Keep `open_orders` in step with the order's state (a revived order comes back)."""
        if order.status.is_terminal:
            self.open_orders.get(order.symbol, {}).pop(order.client_order_id, None)
        else:
            self.open_orders.setdefault(order.symbol, {})[order.client_order_id] = order

    def _on_fill(self, fill: Fill) -> None:
        if fill.exec_id in self.exec_ids:
            return  # a venue resent it; applied once already
        order = self.orders.get(fill.client_order_id)
        if order is not None:
            if not order.apply_fill(fill):
                return
            self._settle(order)
            self._keep(order)
        else:
            log.warning(
                "fill for an order this account did not place",
                client_order_id=fill.client_order_id,
                exec_id=fill.exec_id,
            )
        self.exec_ids.add(fill.exec_id)
        effect = self.portfolio.apply_fill(fill)
        price = self.prices.get(fill.symbol)
        if price is not None:
            self.portfolio.mark(fill.symbol, price.price)
        if self.exits is not None:
            self.exits.on_position(fill.symbol, effect.position_qty, effect.avg_price, fill.ts)
        if self.margins:
            protection.refresh_level(self, fill.symbol)
        self._has_positions = any(p.qty for p in self.portfolio.positions.values())
        for listener in self.fill_listeners:
            listener(fill, effect)
        self.risk.on_equity(self.clock.now(), self.portfolio.equity)

    # -- snapshots ---------------------------------------------------------------------------
    def snapshot(self, now: datetime | None = None, source: str = "fills") -> None:
        ts = now or self.clock.now()
        snapshot = self.portfolio.snapshot(ts, source)
        self.risk.on_equity(ts, snapshot.equity)
        self.bus.publish(snapshot)  # journalled by the store (bot/journal.py)
