"""The one order state machine, shared by the paper broker, the Bybit broker and the store.

The legal moves are a table, not scattered `if`s, so that a venue message that would move an order
somewhere impossible is caught at once and named (both states in the error) instead of quietly
corrupting a position. Fills are applied once per execution id: venues resend executions after a
reconnect, and counting one twice would double a position.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from bot.events import TERMINAL, Fill, OrderRequest, OrderStatus, OrderType, Side, TimeInForce

__all__ = [
    "REVIVABLE",
    "TERMINAL",
    "TRANSITIONS",
    "IllegalTransition",
    "Order",
    "OrderError",
    "OrderStatus",
]


S = OrderStatus

# from-state -> the states it may move to. A repeated state is allowed where a venue resends it
# (an amend re-reports New/PartiallyFilled); a terminal state moves nowhere.
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.CREATED: frozenset({S.SUBMITTED, S.REJECTED, S.CANCELLED}),
    S.SUBMITTED: frozenset(
        {
            S.SUBMITTED,
            S.ACCEPTED,
            S.UNTRIGGERED,
            S.PARTIALLY_FILLED,
            S.FILLED,
            S.CANCELLED,
            S.REJECTED,
            S.EXPIRED,
        }
    ),
    S.ACCEPTED: frozenset(
        {S.ACCEPTED, S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.REJECTED, S.EXPIRED}
    ),
    S.UNTRIGGERED: frozenset({S.UNTRIGGERED, S.TRIGGERED, S.CANCELLED, S.REJECTED, S.EXPIRED}),
    S.TRIGGERED: frozenset(
        {S.TRIGGERED, S.ACCEPTED, S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.REJECTED, S.EXPIRED}
    ),
    S.PARTIALLY_FILLED: frozenset(
        {S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.REJECTED, S.EXPIRED}
    ),
    S.FILLED: frozenset(),
    S.CANCELLED: frozenset(),
    S.REJECTED: frozenset(),
    S.EXPIRED: frozenset(),
}


# An order lorabot itself settled as rejected, because the venue did not know it once a create
# could no longer land ("never placed"), is the one case where REJECTED is not the end: should the
# venue report it after all, the venue is right and the order comes back to where it says.
REVIVABLE: frozenset[OrderStatus] = frozenset(
    {S.SUBMITTED, S.ACCEPTED, S.UNTRIGGERED, S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.EXPIRED}
)


class OrderError(Exception):
    """Base of order state errors."""


class IllegalTransition(OrderError):
    def __init__(self, client_order_id: str, current: OrderStatus, new: OrderStatus) -> None:
        super().__init__(
            f"order {client_order_id}: illegal transition {current.value} -> {new.value}"
        )
        self.client_order_id = client_order_id
        self.current = current
        self.new = new


class Overfill(OrderError):
    pass


def can_transition(current: OrderStatus, new: OrderStatus) -> bool:
    return new in TRANSITIONS[current]


@dataclass
class Order:
    """The live state of one order, driven only through `transition` and `apply_fill`."""

    client_order_id: str
    symbol: str
    side: Side
    qty: Decimal
    created: datetime
    order_type: OrderType = OrderType.MARKET
    price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    reduce_only: bool = False
    status: OrderStatus = OrderStatus.CREATED
    venue_order_id: str = ""
    filled_qty: Decimal = Decimal(0)
    avg_price: Decimal | None = None
    fees: Decimal = Decimal(0)
    reason: str = ""
    updated: datetime | None = None
    exec_ids: set[str] = field(default_factory=set)
    decision_id: str = ""
    settled_locally: bool = False  # REJECTED by lorabot's own conclusion, not the venue's word

    @classmethod
    def from_request(cls, request: OrderRequest) -> Order:
        return cls(
            client_order_id=request.client_order_id,
            symbol=request.symbol,
            side=request.side,
            qty=request.qty,
            created=request.ts,
            order_type=request.order_type,
            price=request.price,
            time_in_force=request.time_in_force,
            reduce_only=request.reduce_only,
            reason=request.reason,
            updated=request.ts,
            decision_id=request.decision_id,
        )

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.filled_qty

    @property
    def is_open(self) -> bool:
        return self.status.is_open

    def transition(
        self,
        new: OrderStatus,
        ts: datetime | None = None,
        reason: str = "",
        provisional: bool = False,
    ) -> bool:
        """Move to `new`; returns False for a repeat of the current state (nothing changed).

        `provisional`: a rejection that is lorabot's conclusion ("never placed"), which a later
        report from the venue may overrule (`REVIVABLE`). Raises `IllegalTransition` naming both
        states for a move the table does not allow.
        """
        if new == self.status and new in TRANSITIONS[new]:
            return False
        revived = self.settled_locally and self.status is S.REJECTED and new in REVIVABLE
        if not revived and not can_transition(self.status, new):
            raise IllegalTransition(self.client_order_id, self.status, new)
        self.settled_locally = provisional and new is S.REJECTED
        self.status = new
        if ts is not None:
            self.updated = ts
        if reason:
            self.reason = reason
        return True

    def amend(
        self,
        ts: datetime,
        *,
        qty: Decimal | None = None,
        price: Decimal | None = None,
        venue_order_id: str = "",
    ) -> bool:
        """Take the venue's word on size, price or its own id; returns True when any changed.

        A quantity below what is already filled is impossible and raises `OrderError` naming
        both numbers (the caller logs it and keeps the order as it was).
        """
        changed = False
        if qty is not None and qty != self.qty:
            if qty < self.filled_qty:
                raise OrderError(
                    f"order {self.client_order_id}: amend to {qty} is below the filled "
                    f"{self.filled_qty}"
                )
            self.qty = qty
            changed = True
        if price is not None and price != self.price:
            self.price = price
            changed = True
        if venue_order_id and venue_order_id != self.venue_order_id:
            self.venue_order_id = venue_order_id
            changed = True
        if changed:
            self.updated = ts
        return changed

    def apply_fill(self, fill: Fill) -> bool:
        """Apply an execution once. Returns False (and changes nothing) for a repeated exec id."""
        if fill.exec_id in self.exec_ids:
            return False
        if fill.qty <= 0:
            raise OrderError(
                f"order {self.client_order_id}: fill {fill.exec_id} has qty {fill.qty}"
            )
        new_filled = self.filled_qty + fill.qty
        if new_filled > self.qty:
            raise Overfill(
                f"order {self.client_order_id}: fill {fill.exec_id} of {fill.qty} would make "
                f"{new_filled} filled of {self.qty}"
            )
        previous_value = (self.avg_price or Decimal(0)) * self.filled_qty
        self.avg_price = (previous_value + fill.price * fill.qty) / new_filled
        self.filled_qty = new_filled
        self.fees += fill.fee
        self.exec_ids.add(fill.exec_id)
        self.updated = fill.ts
        # An execution that raced a cancel is still real money: it is counted, and the order
        # keeps its terminal state.
        target = OrderStatus.FILLED if new_filled == self.qty else OrderStatus.PARTIALLY_FILLED
        if self.settled_locally and self.status is S.REJECTED:
            self.settled_locally = False  # it was placed after all: the fill proves it
            self.status = target
        elif self.status is not target and not self.status.is_terminal:
            if not can_transition(self.status, target):
                raise IllegalTransition(self.client_order_id, self.status, target)
            self.status = target
        return True
