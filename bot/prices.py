"""The last price the engine knows per symbol, when it came, and how often one comes.

The risk gate refuses a stale price: one whose next update is overdue. A bar says how often the
next one is due (its interval); a tick does not. The record is updated in place once per bar, so
it keeps the bar's open time rather than working out the interval every bar (a subtraction that
is only needed when an order is checked).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal


@dataclass(slots=True)
class Price:
    price: Decimal
    ts: datetime
    opened: datetime | None  # the bar's open time; None for a trade or ticker price

    @property
    def every(self) -> timedelta | None:
        """How often a new price is due (the bar interval), None for a tick."""
        return None if self.opened is None else self.ts - self.opened
