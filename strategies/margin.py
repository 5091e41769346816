"""Leverage and margin for perpetuals in replay and paper mode, as Bybit computes them.

- Initial margin = notional / leverage: an order that would need more than the account's free
  equity is refused, as Bybit refuses it (110007, insufficient balance).
- Maintenance margin = notional x maintenance margin rate (`[symbols.X] maintenance_margin_rate`,
  by default Bybit's lowest risk-limit tier: 0.5% for BTCUSDT, 1% for ETHUSDT and the rest).
- Liquidation, isolated margin: the position alone carries its initial margin, so it is closed
  when its loss leaves less than the maintenance margin, at
  `entry x (1 - 1/leverage + mmr)` for a long and `entry x (1 + 1/leverage - mmr)` for a short.
- Liquidation, cross margin: the whole account carries it, so a position is closed when equity
  at that price would fall to the maintenance margin: `price = -cash_rest / (qty x (1 - mmr))` for
  a long, with `cash_rest` the cash plus the other positions' value (and the mirror for a short).

Fees and the insurance fund's bankruptcy-price details are left out: the level is where a venue
would start closing, not the last cent it would charge. Pure and in Decimal.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

ZERO = Decimal(0)
ONE = Decimal(1)


@dataclass(frozen=True, slots=True)
class MarginRules:
    leverage: Decimal = ONE
    mode: str = "cross"  # "isolated" or "cross"
    maintenance_rate: Decimal = Decimal("0.005")


def initial_margin(notional: Decimal, rules: MarginRules) -> Decimal:
    return abs(notional) / rules.leverage


def maintenance_margin(notional: Decimal, rules: MarginRules) -> Decimal:
    return abs(notional) * rules.maintenance_rate


def liquidation_price(
    qty: Decimal, entry: Decimal, rules: MarginRules, *, rest_of_account: Decimal
) -> Decimal | None:
    """Where the venue would liquidate a position of `qty` (signed) entered at `entry`.

    `rest_of_account` (cross margin only) is the cash plus the value of every other position,
    i.e. the account's equity less this position's `qty x price`. None: no such price (a position
    that equity can carry to a price of zero, or no position).
    """
    if qty == 0:
        return None
    mmr = rules.maintenance_rate
    if rules.mode == "isolated":
        step = ONE / rules.leverage
        price = entry * (ONE - step + mmr) if qty > 0 else entry * (ONE + step - mmr)
        return price if price > 0 else None
    # cross: rest + qty * p = |qty| * p * mmr
    denominator = qty - abs(qty) * mmr
    if denominator == 0:
        return None
    price = -rest_of_account / denominator
    return price if price > 0 else None


def reaches(qty: Decimal, level: Decimal, high: Decimal, low: Decimal) -> bool:
    """Whether a bar's range reaches a long's (below) or a short's (above) liquidation level."""
    return low <= level if qty > 0 else high >= level
