"""Positions, cash, realised and unrealised PnL, fees and equity — all in exact decimals.

One accounting rule covers spot and linear perpetuals: buying `q` at `p` moves `q*p` (plus the
fee) out of cash and selling moves it back, so equity is always `cash + sum(qty * mark)`. For a
perpetual that equals wallet balance plus unrealised PnL; for spot it is the usual mark-to-market.
Realised PnL uses the average-entry method (what Bybit reports), for the trade log.

The portfolio is rebuilt on restart by replaying the stored fills over the initial cash, so its
state is always a pure function of what the store holds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from bot.events import EquitySnapshot, Fill, PositionSnapshot

ZERO = Decimal(0)


@dataclass
class Position:
    symbol: str
    qty: Decimal = ZERO
    avg_price: Decimal = ZERO
    realised_pnl: Decimal = ZERO
    fees: Decimal = ZERO
    mark: Decimal | None = None

    @property
    def unrealised_pnl(self) -> Decimal:
        if self.mark is None or not self.qty:
            return ZERO
        return (self.mark - self.avg_price) * self.qty

    @property
    def notional(self) -> Decimal:
        price = self.mark if self.mark is not None else self.avg_price
        return abs(self.qty) * price


@dataclass(frozen=True, slots=True)
class FillEffect:
    """What one fill did: the realised PnL it closed (for the trade log) and the new position."""

    realised_pnl: Decimal
    position_qty: Decimal
    avg_price: Decimal


@dataclass
class Portfolio:
    initial_cash: Decimal
    cash: Decimal = ZERO
    positions: dict[str, Position] = field(default_factory=dict)
    fees: Decimal = ZERO
    n_fills: int = 0

    def __post_init__(self) -> None:
        if not self.cash:
            self.cash = self.initial_cash

    @classmethod
    def from_fills(cls, initial_cash: Decimal, fills: Iterable[Fill]) -> Portfolio:
        portfolio = cls(initial_cash)
        for fill in fills:
            portfolio.apply_fill(fill)
        return portfolio

    def position(self, symbol: str) -> Position:
        position = self.positions.get(symbol)
        if position is None:
            position = self.positions[symbol] = Position(symbol)
        return position

    def qty(self, symbol: str) -> Decimal:
        position = self.positions.get(symbol)
        return position.qty if position is not None else ZERO

    def apply_fill(self, fill: Fill) -> FillEffect:
        position = self.position(fill.symbol)
        signed = fill.qty if fill.side.sign > 0 else -fill.qty
        self.cash -= signed * fill.price + fill.fee
        self.fees += fill.fee
        position.fees += fill.fee
        self.n_fills += 1
        realised = ZERO
        old = position.qty
        new = old + signed
        if old == 0 or (old > 0) == (signed > 0):
            # Opening or adding: a new weighted average entry.
            position.avg_price = (position.avg_price * abs(old) + fill.price * abs(signed)) / abs(
                new
            )
        else:
            closed = min(abs(signed), abs(old))
            direction = 1 if old > 0 else -1
            realised = (fill.price - position.avg_price) * closed * direction
            position.realised_pnl += realised
            if new == 0:
                position.avg_price = ZERO
            elif (new > 0) != (old > 0):
                # Flipped through zero: the remainder opens at this fill's price.
                position.avg_price = fill.price
        position.qty = new
        if position.mark is None:
            position.mark = fill.price
        return FillEffect(realised, new, position.avg_price)

    def mark(self, symbol: str, price: Decimal) -> None:
        position = self.positions.get(symbol)
        if position is not None:
            position.mark = price

    def set_position(self, symbol: str, qty: Decimal, avg_price: Decimal) -> None:
        """Adopt a venue's position (reconciliation), moving cash as if it had traded there."""
        position = self.position(symbol)
        delta = qty - position.qty
        self.cash -= delta * avg_price
        position.qty = qty
        position.avg_price = avg_price if qty else ZERO

    @property
    def unrealised_pnl(self) -> Decimal:
        return sum((p.unrealised_pnl for p in self.positions.values()), ZERO)

    @property
    def realised_pnl(self) -> Decimal:
        return sum((p.realised_pnl for p in self.positions.values()), ZERO)

    @property
    def equity(self) -> Decimal:
        total = self.cash
        for position in self.positions.values():
            if position.qty:
                price = position.mark if position.mark is not None else position.avg_price
                total += position.qty * price
        return total

    @property
    def gross_exposure(self) -> Decimal:
        return sum((p.notional for p in self.positions.values() if p.qty), ZERO)

    def snapshot(self, ts: datetime, source: str = "fills") -> EquitySnapshot:
        positions = tuple(
            PositionSnapshot(
                ts=ts,
                symbol=p.symbol,
                qty=p.qty,
                avg_price=p.avg_price,
                realised_pnl=p.realised_pnl,
                unrealised_pnl=p.unrealised_pnl,
                mark=p.mark,
            )
            for p in self.positions.values()
        )
        return EquitySnapshot(
            ts=ts,
            cash=self.cash,
            equity=self.equity,
            realised_pnl=self.realised_pnl,
            unrealised_pnl=self.unrealised_pnl,
            fees=self.fees,
            positions=positions,
            source=source,
        )
