"""The risk gate: the last word on a target before any order exists.

It clips a target to the per-symbol caps (quantity and notional), refuses to trade on a stale
price, limits the order rate, and halts — flattening what is open — on the kill switch or when the
day's loss passes the limit. Pure: the engine hands it the time, prices and equity, so a replay
hits the same limits at the same moments as a live run.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from bot.symbols import Instrument

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class RiskParams:
    max_notional: Decimal
    max_position: Mapping[str, Decimal] = field(default_factory=dict)
    max_daily_loss: float = 0.05
    max_orders_per_minute: int = 20
    max_price_age: timedelta = timedelta(minutes=2)


@dataclass(frozen=True, slots=True)
class RiskDecision:
    qty: Decimal | None  # the allowed target; None: no order at all
    reason: str = ""


class RiskGate:
    def __init__(self, params: RiskParams) -> None:
        self.params = params
        self.kill_switch = False
        # the limit as a Decimal, once: `on_equity` runs on every marked bar
        self._loss_limit = Decimal(repr(params.max_daily_loss))
        self._day: date | None = None
        self._day_start_equity: Decimal | None = None
        self._halted_day: date | None = None
        self._orders: deque[datetime] = deque()

    @property
    def halted(self) -> bool:
        return self.kill_switch or (self._halted_day is not None and self._halted_day == self._day)

    def halt_reason(self) -> str:
        if self.kill_switch:
            return "kill switch"
        if self.halted:
            return f"daily loss limit {self.params.max_daily_loss:.1%} reached"
        return ""

    def on_equity(self, now: datetime, equity: Decimal) -> bool:
        """Track the UTC day's starting equity; True when this update breaches the daily loss."""
        today = now.date()
        if today != self._day:
            self._day = today
            self._day_start_equity = equity
            return False
        start = self._day_start_equity
        if start is None or equity >= start or start <= 0 or self._halted_day == today:
            return False  # no loss (equity >= start) cannot breach a positive limit
        loss = (start - equity) / start
        if loss >= self._loss_limit:
            self._halted_day = today
            return True
        return False

    def price_is_stale(
        self, now: datetime, price_ts: datetime | None, expected_every: timedelta | None
    ) -> bool:
        """A price is stale when its next update is overdue by more than `max_price_age`."""
        if price_ts is None:
            return True
        due = price_ts + (expected_every or timedelta(0))
        return now - due > self.params.max_price_age

    def check(
        self,
        *,
        symbol: str,
        now: datetime,
        current: Decimal,
        target: Decimal,
        price: Decimal | None,
        price_ts: datetime | None,
        expected_every: timedelta | None,
        instrument: Instrument,
    ) -> RiskDecision:
        if price is None or self.price_is_stale(now, price_ts, expected_every):
            return RiskDecision(None, f"{symbol}: no fresh price (last at {price_ts})")
        if self.halted:
            # Halted: only ever towards flat.
            if current == 0:
                return RiskDecision(None, f"halted ({self.halt_reason()})")
            return RiskDecision(ZERO, f"halted ({self.halt_reason()}): flatten")
        reason = ""
        allowed = target
        cap_qty = self.params.max_position.get(symbol)
        if cap_qty is not None and abs(allowed) > cap_qty:
            allowed = cap_qty if allowed > 0 else -cap_qty
            reason = f"clipped to max position {cap_qty}"
        cap_notional = self.params.max_notional
        if abs(allowed) * price > cap_notional:
            capped = instrument.round_qty(cap_notional / price)
            allowed = capped if allowed > 0 else -capped
            reason = f"clipped to max notional {cap_notional}"
        return RiskDecision(allowed, reason)

    def allow_order(self, now: datetime) -> bool:
        """The order-rate limit; records the order when it is allowed."""
        horizon = now - timedelta(minutes=1)
        orders = self._orders
        while orders and orders[0] <= horizon:
            orders.popleft()
        if len(orders) >= self.params.max_orders_per_minute:
            return False
        orders.append(now)
        return True
