"""Funding for perpetuals in a replay: charged at 00:00, 08:00 and 16:00 UTC on the position
held then, at that bar's close; a long pays a positive rate, a short receives it. Spot pays none.

The rate at each settlement comes from a funding file (`--funding FILE`, read by
adapters/files/funding.py through bot.assemble) or, without one, the flat `[paper]
funding_rate`. The charge, `qty * close * rate` in `Decimal`, leaves the portfolio's cash (so
the equity record carries it) and becomes a row of trades.csv with reason `funding`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from bot.events import Bar
from bot.portfolio import Portfolio
from bot.recording import TradeRow, to_micros

if TYPE_CHECKING:
    from bot.assemble import Parts

SETTLEMENT_HOURS = (0, 8, 16)
ZERO = Decimal(0)


@dataclass(frozen=True)
class FundingSchedule:
    """The rate at each settlement: from a file's table (per symbol), else a flat rate."""

    flat: Decimal = ZERO
    table: dict[str, dict[int, Decimal]] | None = None

    def rate(self, symbol: str, bar: Bar) -> Decimal | None:
        """The rate settled at this bar's close, None when it is no settlement time (or the
        file has no rate for it)."""
        if not _settles(bar):
            return None
        if self.table is None:
            return self.flat if self.flat else None
        return self.table.get(symbol, {}).get(to_micros(bar.ts))

    @property
    def active(self) -> bool:
        return self.table is not None or bool(self.flat)


@dataclass
class FundingCharger:
    """A bus subscriber to bars that charges the schedule's funding on `symbol`'s position."""

    portfolio: Portfolio
    symbol: str
    schedule: FundingSchedule
    rows: list[TradeRow] = field(default_factory=list)
    paid: Decimal = ZERO
    missing: int = 0  # settlement times the file had no rate for while a position was open

    def on_bar(self, bar: Bar) -> None:
        if bar.symbol != self.symbol:
            return
        position = self.portfolio.positions.get(self.symbol)
        if position is None or not position.qty:
            return
        rate = self.schedule.rate(self.symbol, bar)
        if rate is None:
            if self.schedule.table is not None and _settles(bar):
                self.missing += 1
            return
        charge = position.qty * bar.close * rate
        self.portfolio.cash -= charge
        self.paid += charge
        self.rows.append(
            TradeRow(
                ts=bar.ts,
                symbol=self.symbol,
                side="",
                qty=abs(position.qty),
                price=bar.close,
                fee=charge,
                liquidity="",
                realised_pnl=-charge,
                position=position.qty,
                avg_entry=position.avg_price,
                reason="funding",
            )
        )


def _settles(bar: Bar) -> bool:
    ts = bar.ts
    return ts.hour in SETTLEMENT_HOURS and not (ts.minute or ts.second or ts.microsecond)


def attach(
    schedule: FundingSchedule | None, symbol: str
) -> tuple[Callable[[Parts], None] | None, list[FundingCharger]]:
    """An `on_parts` hook for `bot.replay.replay` that subscribes a charger to the bars, and
    the list the charger lands in (empty when there is no funding to charge)."""
    chargers: list[FundingCharger] = []
    if schedule is None or not schedule.active:
        return None, chargers

    def hook(parts: Parts) -> None:
        charger = FundingCharger(parts.engine.portfolio, symbol, schedule)
        parts.bus.subscribe(Bar, charger.on_bar)
        chargers.append(charger)

    return hook, chargers


def attach_each(
    schedule: FundingSchedule | None, symbols: Sequence[str]
) -> tuple[Callable[[Parts], None] | None, list[FundingCharger]]:
    """`attach` for every symbol of a portfolio: one hook, one charger per symbol (in the
    list once the hook has run)."""
    pairs = [attach(schedule, symbol) for symbol in symbols]
    if all(hook is None for hook, _ in pairs):
        return None, []
    chargers: list[FundingCharger] = []

    def hook(parts: Parts) -> None:
        for one, own in pairs:
            if one is not None:
                one(parts)
                chargers.extend(own[-1:])

    return hook, chargers
