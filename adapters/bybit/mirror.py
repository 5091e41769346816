"""The broker's mirror of the engine's orders, driven only by what Bybit says: no socket, no REST.

The engine owns the `Order` objects; the broker only reports what Bybit says, as `OrderUpdate`
and `Fill` events through `emit`, and it must never report something the engine's state machine
would refuse. Bybit's private messages can arrive late, twice, or in another order than they
happened (an execution before the order's New; a stale New after PartiallyFilled), so for every
order the mirror keeps the state the engine holds after applying what was emitted:

- a status is emitted only if it is a legal forward move from the mirrored state
  (`bot.orders.can_transition`); anything else is a stale or repeated message: logged, dropped;
- a fill is emitted once per execution id; before it, SUBMITTED or TRIGGERED is emitted when the
  mirror is still CREATED or UNTRIGGERED, so `Order.apply_fill` can always take it;
- when Bybit reports a cumulative filled quantity (`cumExecQty`) ahead of the executions seen,
  the order's status is held back (`pending`) and `on_gap` is called: the reconciliation side
  fetches the missing executions. The mirror itself never waits and never does I/O, which is what
  lets its tests feed it fixture messages and read what it emitted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from adapters.bybit.parse import Execution, VenueOrder, VenuePosition, Wallet
from bot.clock import Clock
from bot.events import Fill, OrderType, OrderUpdate, Side
from bot.log import get_logger
from bot.orders import TRANSITIONS, Order, OrderStatus, can_transition
from bot.protocols import Emit, VenueExit

log = get_logger(__name__)

S = OrderStatus
ZERO = Decimal(0)
VENUE_MADE_PREFIX = "bybit:"


def _epoch_ms(moment: datetime) -> int:
    """A store may hand back naive datetimes; lorabot's are always UTC."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return int(aware.timestamp() * 1000)


@dataclass
class TrackedOrder:
    """The mirror of one engine order, and what the venue last said about it."""

    client_order_id: str
    symbol: str
    side: Side
    qty: Decimal
    order_type: OrderType
    price: Decimal | None
    time_in_force: str
    reduce_only: bool
    created_ms: int = 0  # the order's creation on the run's clock: the in-flight deadline's base
    status: OrderStatus = S.CREATED
    filled: Decimal = ZERO
    exec_ids: set[str] = field(default_factory=set)
    venue_order_id: str = ""
    venue_cum: Decimal = ZERO
    pending: VenueOrder | None = None
    in_flight: bool = False
    cancel_requested: bool = False
    given_up: bool = False  # settled as never placed (after the in-flight deadline)
    last_heard: float = 0.0

    @property
    def venue_made(self) -> bool:
        """Bybit created this order itself (a protective exit): it has no orderLinkId, and
        lorabot names it after the venue's id (`VenueOrder.client_order_id`)."""
        return self.client_order_id.startswith(VENUE_MADE_PREFIX)

    @classmethod
    def from_order(cls, order: Order) -> TrackedOrder:
        return cls(
            client_order_id=order.client_order_id,
            symbol=order.symbol,
            side=order.side,
            qty=order.qty,
            order_type=order.order_type,
            price=order.price,
            time_in_force=order.time_in_force.value,
            reduce_only=order.reduce_only,
            created_ms=_epoch_ms(order.created),
            status=order.status,
            filled=order.filled_qty,
            exec_ids=set(order.exec_ids),
            venue_order_id=order.venue_order_id,
            venue_cum=order.filled_qty,
        )


@dataclass
class BrokerStats:
    orders_sent: int = 0
    rejected_locally: int = 0
    fills: int = 0
    duplicate_fills: int = 0
    stale_updates: int = 0
    gaps_detected: int = 0
    fills_recovered: int = 0
    unresolved_gaps: int = 0
    external_executions: int = 0
    late_reports: int = 0
    resyncs: int = 0


class OrderMirror:
    """Order, execution, position and wallet state from venue messages; reports through `emit`.

    `now` is a monotonic reading (seconds) for "when was this order last heard of"; `clock`
    stamps the updates lorabot decides itself.
    """

    def __init__(self, clock: Clock, now: Callable[[], float]) -> None:
        self.clock = clock
        self.now = now
        self.orders: dict[str, TrackedOrder] = {}
        self.by_venue_id: dict[str, str] = {}
        self.venue_positions: dict[str, VenuePosition] = {}
        self.wallet: Wallet | None = None
        self.stats = BrokerStats()
        self.needs_reconcile = False
        self.emit: Emit | None = None
        self.on_gap: Callable[[TrackedOrder], None] = lambda _: None

    # -- what is tracked ---------------------------------------------------------------------------

    def track(self, order: Order) -> TrackedOrder:
        """The mirror of `order`, added from the engine's view if it is new here."""
        tracked = self.orders.get(order.client_order_id)
        if tracked is None:
            tracked = TrackedOrder.from_order(order)
            self.orders[order.client_order_id] = tracked
        if order.venue_order_id:
            self.by_venue_id[order.venue_order_id] = order.client_order_id
        return tracked

    def lookup(self, link_id: str, order_id: str) -> TrackedOrder | None:
        key = link_id if link_id in self.orders else self.by_venue_id.get(order_id, "")
        return self.orders.get(key)

    def status_of(self, client_order_id: str) -> OrderStatus | None:
        tracked = self.orders.get(client_order_id)
        return tracked.status if tracked else None

    # -- venue messages ----------------------------------------------------------------------------

    def on_venue_order(self, venue: VenueOrder) -> None:
        tracked = self.lookup(venue.link_id, venue.order_id)
        if tracked is None:
            log.debug(
                "bybit: update for an order lorabot does not track",
                order=venue.client_order_id,
                status=venue.venue_status,
            )
            return
        if tracked.given_up:
            self.revive(tracked, venue.venue_status)
        self.apply_venue(tracked, venue)

    def on_execution(self, execution: Execution) -> None:
        if not execution.is_trade:
            log.info(
                "bybit: non-trade execution (cash only)",
                exec_type=execution.exec_type,
                symbol=execution.symbol,
                fee=str(execution.fee),
            )
            return
        tracked = self.lookup(execution.link_id, execution.order_id)
        if tracked is not None and tracked.given_up:
            self.revive(tracked, f"execution {execution.exec_id}")
        if tracked is None and execution.protective:
            tracked = self.adopt_exit(execution)
        if tracked is None:
            self.stats.external_executions += 1
            self.needs_reconcile = True
            log.warning(
                "bybit: execution of an order lorabot does not hold open; the position "
                "changes outside lorabot until the next reconciliation",
                order=execution.link_id,
                exec_type=execution.exec_type,
                symbol=execution.symbol,
                side=execution.side.value,
                qty=str(execution.qty),
            )
            return
        self.emit_fill(tracked, execution)

    def adopt_exit(
        self, execution: Execution, exec_ids: tuple[str, ...] = (), qty: Decimal | None = None
    ) -> TrackedOrder:
        """The first execution of an order Bybit created from a position's protective level:
        tracked from now on under the venue's id, and announced as a `VenueExit` (before its
        fill) so the engine records the exit with its reason, as it records its own. A
        reconciliation that finds a finished one passes its executions' ids and total."""
        if qty is None:
            qty = execution.qty + (execution.leaves_qty or ZERO)
        tracked = TrackedOrder(
            client_order_id=execution.client_order_id,
            symbol=execution.symbol,
            side=execution.side,
            qty=qty,
            order_type=OrderType.STOP,
            price=None,
            time_in_force="IOC",
            reduce_only=True,
            created_ms=_epoch_ms(execution.ts),
            status=S.TRIGGERED,
            venue_order_id=execution.order_id,
            last_heard=self.now(),
        )
        self.orders[tracked.client_order_id] = tracked
        self.by_venue_id[execution.order_id] = tracked.client_order_id
        log.info(
            "bybit: a protective level closed the position",
            symbol=execution.symbol,
            reason=execution.protective,
            order=execution.order_id,
            qty=str(qty),
        )
        self._emit(
            VenueExit(
                ts=execution.ts,
                symbol=execution.symbol,
                client_order_id=tracked.client_order_id,
                venue_order_id=execution.order_id,
                side=execution.side,
                qty=qty,
                reason=execution.protective,
                exec_ids=exec_ids,
            )
        )
        return tracked

    def on_position(self, position: VenuePosition) -> None:
        self.venue_positions[position.symbol] = position

    def on_wallet(self, wallet: Wallet) -> None:
        self.wallet = wallet

    def revive(self, tracked: TrackedOrder, evidence: str) -> None:
        """Bybit reports an order lorabot had settled as never placed: it was placed after all.
        The venue is right: the order is tracked again, and its updates and fills flow as for
        any order (the engine's order revives from its provisional rejection: REVIVABLE in
        bot/orders.py)."""
        self.stats.late_reports += 1
        tracked.given_up = False
        tracked.status = S.SUBMITTED
        log.warning(
            "bybit: an order settled as never placed exists at Bybit: following it again",
            order=tracked.client_order_id,
            evidence=evidence,
        )

    # -- applying what the venue says --------------------------------------------------------------

    def note_venue_id(self, tracked: TrackedOrder, order_id: str) -> None:
        if not order_id or tracked.venue_order_id == order_id:
            return
        tracked.venue_order_id = order_id
        self.by_venue_id[order_id] = tracked.client_order_id
        if tracked.status is S.SUBMITTED:
            self._emit(
                OrderUpdate(
                    ts=self.clock.now(),
                    client_order_id=tracked.client_order_id,
                    status=S.SUBMITTED,
                    venue_order_id=order_id,
                )
            )

    def apply_venue(self, tracked: TrackedOrder, venue: VenueOrder) -> None:
        """An order report (stream, read-back or poll): fills first, then its status."""
        tracked.last_heard = self.now()
        self.note_venue_id(tracked, venue.order_id)
        if venue.cum_exec_qty > tracked.venue_cum:
            tracked.venue_cum = venue.cum_exec_qty
        if tracked.filled < venue.cum_exec_qty:
            if tracked.pending is None or venue.cum_exec_qty >= tracked.pending.cum_exec_qty:
                tracked.pending = venue
            self.on_gap(tracked)
            return
        self.apply_status(tracked, venue)

    def apply_status(self, tracked: TrackedOrder, venue: VenueOrder) -> None:
        status = venue.status
        changed = (venue.qty != tracked.qty) or (
            venue.price is not None and tracked.price is not None and venue.price != tracked.price
        )
        # Fills drive PartiallyFilled and Filled: a report of them ahead of the mirror is one the
        # executions already covered (the mirror follows the fills) or a stale one.
        if (
            status in (S.PARTIALLY_FILLED, S.FILLED)
            and status is not tracked.status
            and (not can_transition(tracked.status, status) or tracked.filled < venue.cum_exec_qty)
        ):
            self._stale(tracked, venue)
            return
        if status is tracked.status:
            if changed and status in TRANSITIONS[status]:
                self.emit_status(tracked, status, venue)
            return
        if not can_transition(tracked.status, status):
            self._stale(tracked, venue)
            return
        self.emit_status(tracked, status, venue)

    def apply_status_despite_gap(self, tracked: TrackedOrder, venue: VenueOrder) -> None:
        if venue.status.is_terminal and can_transition(tracked.status, venue.status):
            self.emit_status(tracked, venue.status, venue)

    def _stale(self, tracked: TrackedOrder, venue: VenueOrder) -> None:
        self.stats.stale_updates += 1
        log.info(
            "bybit: stale or reordered order update dropped",
            order=tracked.client_order_id,
            held=tracked.status.value,
            reported=venue.venue_status,
        )

    def emit_status(self, tracked: TrackedOrder, status: OrderStatus, venue: VenueOrder) -> None:
        tracked.status = status
        tracked.qty = venue.qty
        if venue.price is not None:
            tracked.price = venue.price
        self._emit(
            OrderUpdate(
                ts=venue.updated,
                client_order_id=tracked.client_order_id,
                status=status,
                venue_order_id=venue.order_id,
                filled_qty=tracked.filled,
                avg_price=venue.avg_price,
                reason=venue.reason,
                price=venue.price,
                qty=venue.qty,
            )
        )

    def set_status(
        self,
        tracked: TrackedOrder,
        status: OrderStatus,
        reason: str = "",
        provisional: bool = False,
    ) -> None:
        """A state lorabot decided itself (sent, refused before sending, refused by REST);
        `provisional` for a conclusion the venue may still overrule ("never placed")."""
        if status is tracked.status or not can_transition(tracked.status, status):
            return
        tracked.status = status
        self._emit(
            OrderUpdate(
                ts=self.clock.now(),
                client_order_id=tracked.client_order_id,
                status=status,
                venue_order_id=tracked.venue_order_id,
                reason=reason,
                provisional=provisional,
            )
        )

    def emit_fill(self, tracked: TrackedOrder, execution: Execution) -> None:
        if execution.exec_id in tracked.exec_ids:
            self.stats.duplicate_fills += 1
            log.debug("bybit: repeated execution dropped", exec_id=execution.exec_id)
            return
        tracked.last_heard = self.now()
        self.note_venue_id(tracked, execution.order_id)
        if tracked.status is S.CREATED:
            self.set_status(tracked, S.SUBMITTED)
        if tracked.status is S.UNTRIGGERED:
            self.set_status(tracked, S.TRIGGERED)
        new_filled = tracked.filled + execution.qty
        if new_filled > tracked.qty:
            log.error(
                "bybit: executions exceed the order quantity lorabot knows",
                order=tracked.client_order_id,
                filled=str(new_filled),
                qty=str(tracked.qty),
            )
        tracked.exec_ids.add(execution.exec_id)
        tracked.filled = new_filled
        if not tracked.status.is_terminal:
            tracked.status = S.FILLED if new_filled >= tracked.qty else S.PARTIALLY_FILLED
        self.stats.fills += 1
        fill: Fill = execution.to_fill(tracked.client_order_id)
        self._emit(fill)
        pending = tracked.pending
        if pending is not None and tracked.filled >= pending.cum_exec_qty:
            tracked.pending = None
            self.apply_status(tracked, pending)

    def _emit(self, event: object) -> None:
        if self.emit is None:
            raise RuntimeError("BybitBroker.bind(emit) was not called before trading")
        self.emit(event)
