"""What a replay records for its report: one compact row per bar, one row per fill.

A backtest of millions of bars must not hold millions of Python objects: per bar it keeps the
time (integer microseconds since the epoch), the equity and the close (C doubles) and whether a
position was open (one byte), about 25 bytes a bar in `array`s, so memory stays bounded by a
small constant per bar however big the input is. Fills are few and keep their `Decimal`s.

`Recording`, `TradeRow` and `BacktestResult` live here, apart from the driver and the report,
so that both can import them without importing each other.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from bot.metrics import RoundTrips

if TYPE_CHECKING:
    from bot.assemble import Parts
    from bot.config import Settings
    from bot.engine import Engine
    from bot.events import Decision, Fill
    from bot.portfolio import FillEffect
    from bot.portfolio_figures import SymbolPrices

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def to_micros(ts: datetime) -> int:
    """Exact integer microseconds since the epoch (a float timestamp would round)."""
    return (ts - EPOCH) // MICROSECOND


def from_micros(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


@dataclass
class TradeRow:
    ts: datetime
    symbol: str
    side: str
    qty: Decimal
    price: Decimal
    fee: Decimal
    liquidity: str
    realised_pnl: Decimal
    position: Decimal
    avg_entry: Decimal
    reason: str


@dataclass
class Recording:
    """What the report needs, gathered as the replay runs (per bar of the recorded symbol)."""

    stamps: array[int] = field(default_factory=lambda: array("q"))  # bar close, µs since epoch
    equity: array[float] = field(default_factory=lambda: array("d"))
    closes: array[float] = field(default_factory=lambda: array("d"))
    exposed: bytearray = field(default_factory=bytearray)
    trades: list[TradeRow] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)  # one per news item and re-vote
    round_trips: RoundTrips = field(default_factory=RoundTrips)
    n_news: int = 0
    n_bars: int = 0
    listening: set[int] = field(default_factory=set, repr=False)  # engines that feed `trades`

    def time_at(self, index: int) -> datetime:
        return from_micros(self.stamps[index])

    @property
    def times(self) -> list[datetime]:
        """Every bar's time as a datetime: for small runs and tests (a list of objects)."""
        return [from_micros(micros) for micros in self.stamps]


@dataclass
class BacktestResult:
    run_id: str
    symbol: str
    out_dir: Path
    settings: Settings
    recording: Recording
    metrics: dict[str, object]
    parts: Parts
    elapsed_s: float = 0.0  # the whole call (reporting only; nothing decides on it)
    replay_s: float = 0.0  # the event loop alone
    replay_cpu_s: float = 0.0  # the same in CPU seconds (for benchmarks on a shared machine)
    # A portfolio's symbols (the first is `symbol`), each one's closes, and the news titles by
    # id: what the price charts draw (empty for a result built without them).
    symbols: list[str] = field(default_factory=list)
    prices: SymbolPrices | None = None
    titles: dict[str, str] = field(default_factory=dict)


def trade_recorder(recording: Recording, engine: Engine) -> Callable[[Fill, FillEffect], None]:
    """A fill listener that adds each fill to `recording` (trades.csv and the round trips)."""

    def record(fill: Fill, effect: FillEffect) -> None:
        order = engine.orders.get(fill.client_order_id)
        before = effect.position_qty - (fill.qty if fill.side.sign > 0 else -fill.qty)
        recording.trades.append(
            TradeRow(
                ts=fill.ts,
                symbol=fill.symbol,
                side=fill.side.value,
                qty=fill.qty,
                price=fill.price,
                fee=fill.fee,
                liquidity=fill.liquidity.value,
                realised_pnl=effect.realised_pnl,
                position=effect.position_qty,
                avg_entry=effect.avg_price,
                reason=order.reason if order is not None else "",
            )
        )
        recording.round_trips.on_fill(
            fill.symbol,
            float(effect.position_qty),
            float(effect.realised_pnl),
            float(fill.fee),
            float(before),
        )

    return record
