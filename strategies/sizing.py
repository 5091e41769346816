"""From a vote to a position size: a fraction of equity scaled by the composite confidence.

`target = direction x equity x min(fraction x confidence, max_fraction) / price`, rounded down to
the lot step so that rounding never makes a position larger than decided. Decimal throughout:
this number becomes an order.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

from bot.symbols import Instrument

ZERO = Decimal(0)


def target_qty(
    direction: int,
    confidence: float,
    equity: Decimal,
    price: Decimal,
    fraction: float,
    max_fraction: float,
    instrument: Instrument,
) -> Decimal:
    if direction == 0 or equity <= 0 or price <= 0:
        return ZERO
    notional = equity * _share(min(fraction * confidence, max_fraction))
    qty = instrument.round_qty(notional / price)
    if qty < instrument.min_qty:
        return ZERO
    return qty if direction > 0 else -qty


@lru_cache(maxsize=4096)
def _share(share: float) -> Decimal:
    """The share of equity as a Decimal of 6 places: shares repeat (a re-vote sizes the same
    composite again at a new price), and the conversion costs more than the rest of sizing."""
    return Decimal(repr(round(share, 6)))


def within_band(current: Decimal, target: Decimal, band: float) -> bool:
    """True when a target on the same side differs from the position by less than the band,
    so the strategy does not churn on small confidence changes."""
    if current == 0 or target == 0 or (current > 0) != (target > 0):
        return False
    return abs(target - current) < abs(current) * Decimal(repr(band))
