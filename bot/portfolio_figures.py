"""A portfolio backtest's parts: several symbols' bars as one stream, each symbol's prices as the
replay saw them, and each symbol's share of the account's result.

One engine and one account trade every symbol, as the daemon does; what this module adds is the
bookkeeping a report needs per symbol. The rule that makes the per-symbol figures add up: the
account's equity is `cash + sum(qty x mark)` (`bot.portfolio`), and cash moves only by fills
(`-signed qty x price - fee`) and funding, so a symbol's PnL is the cash its fills and funding
moved plus its open position at its last mark. The symbols' PnL then sums to the account's
exactly, with no allocation rule to argue about.

The equal-weight basket is the buy-and-hold to beat: the starting cash split evenly over the
symbols at each one's first close, held to the end.
"""

from __future__ import annotations

import bisect
import heapq
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from bot.events import Bar
from bot.metrics import RoundTrips
from bot.portfolio import Portfolio
from bot.recording import TradeRow, to_micros

ZERO = Decimal(0)


def merge_bars(streams: Mapping[str, Iterable[Bar]], clock_symbol: str) -> Iterator[Bar]:
    """Every symbol's bars in release order, one stream (each file streams, none is loaded).

    Bars that close at the same time come in the order the symbols were given, except that
    `clock_symbol`'s comes last: the replay records the account's equity at that symbol's bars,
    and by then every symbol has been marked at that time.
    """
    if len(streams) == 1:  # the stream itself: no layer for every bar
        return iter(next(iter(streams.values())))
    order = [s for s in streams if s != clock_symbol] + [clock_symbol]
    rank = {symbol: index for index, symbol in enumerate(order)}
    return heapq.merge(
        *(streams[symbol] for symbol in order), key=lambda bar: (bar.ts, rank[bar.symbol])
    )


@dataclass
class SymbolPrices:
    """Each symbol's bar closes as the replay saw them (a bus subscriber to bars): the price
    charts and the basket read them. About 16 bytes a bar."""

    stamps: dict[str, array[int]] = field(default_factory=dict)
    closes: dict[str, array[float]] = field(default_factory=dict)

    def on_bar(self, bar: Bar) -> None:
        symbol = bar.symbol
        stamps = self.stamps.get(symbol)
        if stamps is None:
            stamps = self.stamps[symbol] = array("q")
            self.closes[symbol] = array("d")
        stamps.append(to_micros(bar.ts))
        self.closes[symbol].append(float(bar.close))

    def close_at(self, symbol: str, micros: int) -> float | None:
        """The last close of `symbol` at or before `micros` (None before its first bar)."""
        stamps = self.stamps.get(symbol)
        if not stamps:
            return None
        index = bisect.bisect_right(stamps, micros) - 1
        return self.closes[symbol][index] if index >= 0 else None


def basket_equity(
    prices: SymbolPrices, symbols: Sequence[str], stamps: Sequence[int], initial: float
) -> list[float]:
    """The equal-weight basket's value at each of `stamps`: `initial / n` in each symbol from
    its first close (held as cash until then)."""
    firsts = {s: prices.closes[s][0] for s in symbols if prices.closes.get(s)}
    share = initial / len(symbols) if symbols else 0.0
    cursor = dict.fromkeys(firsts, 0)
    values: list[float] = []
    for micros in stamps:
        total = share * (len(symbols) - len(firsts))
        for symbol, first in firsts.items():
            own, index = prices.stamps[symbol], cursor[symbol]
            while index + 1 < len(own) and own[index + 1] <= micros:
                index += 1
            cursor[symbol] = index
            close = prices.closes[symbol][index] if own[index] <= micros else first
            total += share * close / first if first else share
        values.append(total)
    return values


def buy_and_hold_return(prices: SymbolPrices, symbol: str) -> float:
    closes = prices.closes.get(symbol)
    if not closes or closes[0] <= 0:
        return 0.0
    return closes[-1] / closes[0] - 1.0


def cash_flow(trade: TradeRow) -> Decimal:
    """What one row of trades.csv moved in or out of cash: a fill `-signed qty x price - fee`,
    a funding row `-charge`."""
    if trade.reason == "funding":
        return -trade.fee
    signed = trade.qty if trade.side == "buy" else -trade.qty
    return -signed * trade.price - trade.fee


def symbol_figures(
    trades: Sequence[TradeRow],
    portfolio: Portfolio,
    prices: SymbolPrices,
    symbols: Sequence[str],
    initial_cash: Decimal,
) -> dict[str, dict[str, float]]:
    """`metrics.json`'s `symbols.<SYMBOL>`: each symbol's PnL (cash moved by its fills and
    funding, plus its open position at its last mark), its return contribution (that PnL over
    the starting cash: the contributions add up to the total return), fills, fees, funding,
    turnover, round trips and its own buy-and-hold."""
    figures: dict[str, dict[str, float]] = {}
    for symbol in symbols:
        rows = [t for t in trades if t.symbol == symbol]
        fills = [t for t in rows if t.reason != "funding"]
        flows = sum((cash_flow(t) for t in rows), ZERO)
        position = portfolio.positions.get(symbol)
        qty = position.qty if position is not None else ZERO
        mark = position.mark if position is not None and position.mark is not None else ZERO
        held = qty * mark if qty else ZERO
        pnl = flows + held
        trips = RoundTrips()
        before = ZERO
        for fill in fills:
            trips.on_fill(
                symbol,
                float(fill.position),
                float(fill.realised_pnl),
                float(fill.fee),
                float(before),
            )
            before = fill.position
        figures[symbol] = {
            "pnl": float(pnl),
            "return_contribution": float(pnl / initial_cash) if initial_cash else 0.0,
            "realised_pnl": float(sum((t.realised_pnl for t in fills), ZERO)),
            "unrealised_pnl": float(position.unrealised_pnl) if position is not None else 0.0,
            "fees_paid": float(sum((t.fee for t in fills), ZERO)),
            "funding_paid": float(sum((t.fee for t in rows if t.reason == "funding"), ZERO)),
            "n_trades": len(fills),
            "n_round_trips": len(trips.closed),
            "win_rate": (
                sum(1 for p in trips.closed if p > 0) / len(trips.closed) if trips.closed else 0.0
            ),
            "turnover": float(sum((t.qty * t.price for t in fills), ZERO)),
            "final_position": float(qty),
            "buy_and_hold_return": buy_and_hold_return(prices, symbol),
            "n_bars": len(prices.stamps.get(symbol, ())),
        }
    return figures


def exact_pnl(trades: Sequence[TradeRow], portfolio: Portfolio, symbol: str) -> Decimal:
    """A symbol's PnL in Decimal (the figure `symbol_figures` reports as a float)."""
    flows = sum((cash_flow(t) for t in trades if t.symbol == symbol), ZERO)
    position = portfolio.positions.get(symbol)
    if position is None or not position.qty or position.mark is None:
        return flows
    return flows + position.qty * position.mark
