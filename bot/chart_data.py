"""What the price charts draw, written into the run folder and read back from it.

The charts are drawn from the run folder's files, never from the replay's memory, so that
`lorabot plot RUN_DIR --from --to` redraws exactly what `lorabot backtest` drew, for any window:
`prices.csv` (each symbol's bar closes), `trades.csv` (the fills and their reasons),
`decisions.csv` (the composite confidence over time) and `headlines.csv` (the news items whose
decision changed a target, with their titles).

`prices.csv` keeps every bar up to `MAX_PRICE_ROWS` per symbol, then every k-th close (and the
last), so that a million-bar run does not write a million rows per symbol. Its rows are written
and read back as columns (numpy), not row objects: at 100,000 rows a symbol the per-row
`datetime` and dict of the plain CSV modules cost more than the replay's own last 100,000 bars.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from itertools import repeat
from pathlib import Path
from typing import TextIO

import numpy as np
import numpy.typing as npt

from bot.errors import UserError
from bot.events import Decision, Label, Outcome, iso, parse_time
from bot.portfolio_figures import SymbolPrices
from bot.recording import from_micros, to_micros

MAX_PRICE_ROWS = 100_000
HEADLINE_COLUMNS = (
    "timestamp",
    "symbol",
    "source",
    "label",
    "confidence",
    "composite_label",
    "composite_confidence",
    "target_before",
    "target_after",
    "reason",
    "title",
)
_SIGN = {"bullish": 1.0, "bearish": -1.0}


def write_prices(path: Path, prices: SymbolPrices, symbols: Sequence[str]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["timestamp", "symbol", "close"])
        for symbol in symbols:
            stamps = np.frombuffer(prices.stamps.get(symbol, b""), dtype=np.int64)
            closes = prices.closes.get(symbol, ())
            n = len(stamps)
            step = max(1, math.ceil(n / MAX_PRICE_ROWS))
            indices = list(range(0, n, step))
            if n and indices[-1] != n - 1:
                indices.append(n - 1)
            texts = iso_texts(stamps[indices])
            writer.writerows(zip(texts, repeat(symbol), [repr(closes[i]) for i in indices]))


def iso_texts(micros: npt.NDArray[np.int64]) -> list[str]:
    """`iso()` of many epoch-microsecond stamps at once (whole seconds: numpy's formatter;
    otherwise one by one), character for character the same."""
    if len(micros) and not (micros % 1_000_000).any():
        seconds = micros.astype("datetime64[us]").astype("datetime64[s]")
        return [text + "Z" for text in np.datetime_as_string(seconds, unit="s").tolist()]
    return [iso(from_micros(int(m))) for m in micros.tolist()]


def write_headlines(path: Path, decisions: Sequence[Decision], titles: Mapping[str, str]) -> None:
    """The news items whose decision placed an order (the target moved), in time order."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(HEADLINE_COLUMNS)
        for d in decisions:
            if d.trigger != "news" or d.outcome is not Outcome.ORDER or not d.news_id:
                continue
            writer.writerow(
                [
                    iso(d.ts),
                    d.symbol or "",
                    d.source,
                    d.label.name.lower() if isinstance(d.label, Label) else "",
                    f"{d.confidence:.4f}",
                    d.composite_label.name.lower() if d.composite_label is not None else "",
                    f"{d.composite_confidence:.4f}",
                    format(d.target_before, "f") if d.target_before is not None else "",
                    format(d.target_after, "f") if d.target_after is not None else "",
                    d.reason,
                    titles.get(d.news_id, ""),
                ]
            )


@dataclass(frozen=True)
class TradeMark:
    """One fill on a price chart: an entry (opened, grown or flipped), an exit (back to flat) or
    a reduction, with the reason its order gave."""

    ts: datetime
    symbol: str
    side: str
    qty: Decimal
    price: Decimal
    position: Decimal
    kind: str  # "long", "short", "exit" or "reduce"
    reason: str


@dataclass(frozen=True)
class Headline:
    ts: datetime
    symbol: str
    label: str
    confidence: float
    composite: float  # signed: + bullish, - bearish, 0 neutral
    title: str
    source: str
    composite_label: str = ""
    composite_confidence: float = 0.0


def _no_stamps() -> npt.NDArray[np.datetime64]:
    return np.empty(0, dtype="datetime64[us]")


def _no_values() -> npt.NDArray[np.float64]:
    return np.empty(0, dtype=np.float64)


@dataclass
class Series:
    """A line over time as two arrays: `stamps` numpy datetime64[us] (UTC: numpy keeps no time
    zone) and `values` float64, which both chart libraries take whole, with no per-point
    conversion of 100,000 `datetime`s."""

    stamps: npt.NDArray[np.datetime64] = field(default_factory=_no_stamps)
    values: npt.NDArray[np.float64] = field(default_factory=_no_values)

    @classmethod
    def of(cls, times: Sequence[datetime], values: Sequence[float]) -> Series:
        micros = np.array([to_micros(t) for t in times], dtype=np.int64)
        return cls(micros.astype("datetime64[us]"), np.array(values, dtype=np.float64))

    def __len__(self) -> int:
        return len(self.stamps)

    @property
    def times(self) -> list[datetime]:
        """The stamps as UTC datetimes (for tests and small windows: one object a point)."""
        return [from_micros(m) for m in self.stamps.astype(np.int64).tolist()]


@dataclass
class ChartData:
    """A run folder's chart inputs, within [start, end]."""

    symbols: list[str]
    prices: dict[str, Series]
    composite: dict[str, Series]
    trades: list[TradeMark]
    headlines: list[Headline]
    start: datetime | None = None
    end: datetime | None = None

    def trades_of(self, symbol: str) -> list[TradeMark]:
        return [t for t in self.trades if t.symbol == symbol]

    def headlines_of(self, symbol: str) -> list[Headline]:
        return [h for h in self.headlines if h.symbol in (symbol, "")]


def load(run_dir: Path, start: datetime | None = None, end: datetime | None = None) -> ChartData:
    """Read the chart inputs of a run folder; a missing or bad file is one line naming it."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: not a run folder (no such directory)")

    def inside(ts: datetime) -> bool:
        return (start is None or ts >= start) and (end is None or ts <= end)

    prices = _prices(run_dir / "prices.csv", start, end)
    symbols = list(prices)
    lines: dict[str, tuple[list[datetime], list[float]]] = {s: ([], []) for s in symbols}
    decisions = run_dir / "decisions.csv"
    for row in _rows(decisions, ("ts", "symbol", "composite_label", "composite_confidence")):
        ts = _time(row, decisions, "ts")
        if row["symbol"] in lines and inside(ts):
            sign = _SIGN.get(row["composite_label"], 0.0)
            lines[row["symbol"]][0].append(ts)
            lines[row["symbol"]][1].append(sign * float(row["composite_confidence"]))
    return ChartData(
        symbols,
        prices,
        {symbol: Series.of(*line) for symbol, line in lines.items()},
        [t for t in _trades(run_dir / "trades.csv") if inside(t.ts)],
        [h for h in _headlines(run_dir / "headlines.csv") if inside(h.ts)],
        start,
        end,
    )


def _prices(path: Path, start: datetime | None, end: datetime | None) -> dict[str, Series]:
    """prices.csv as one Series a symbol (in the file's order of first appearance), cut to
    [start, end]; a symbol with no row inside keeps an empty Series."""
    times, symbols, closes = _columns(path, ("timestamp", "symbol", "close"))
    stamps = _stamps(times, path)
    try:
        values = np.array(closes, dtype=np.float64)
    except ValueError:
        bad = next(c for c in closes if not _is_number(c))
        raise UserError(f"{path}: {bad!r} is not a close price") from None
    keep = np.ones(len(stamps), dtype=bool)
    if start is not None:
        keep &= stamps >= np.datetime64(to_micros(start), "us")
    if end is not None:
        keep &= stamps <= np.datetime64(to_micros(end), "us")
    names = np.array(symbols)
    series: dict[str, Series] = {}
    for symbol in dict.fromkeys(symbols):
        chosen = keep & (names == symbol)
        series[symbol] = Series(stamps[chosen], values[chosen])
    return series


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _stamps(texts: list[str], path: Path) -> npt.NDArray[np.datetime64]:
    """ISO-8601 times as datetime64[us]: our own `...Z` form parsed by numpy in one call, any
    other form (an offset, epoch numbers) one by one through `parse_time`."""
    if all(text.endswith("Z") for text in texts):
        try:
            return np.array([text[:-1] for text in texts], dtype="datetime64[us]")
        except ValueError:
            pass  # find the bad one below, with the message every other file gives
    micros = [to_micros(_parse_time(text, path)) for text in texts]
    return np.array(micros, dtype=np.int64).astype("datetime64[us]")


def _trades(path: Path) -> list[TradeMark]:
    marks: list[TradeMark] = []
    before: dict[str, Decimal] = {}
    columns = ("timestamp", "symbol", "side", "qty", "price", "position", "reason")
    for row in _rows(path, columns):
        if row["reason"] == "funding":
            continue
        try:
            position = Decimal(row["position"])
            qty, price = Decimal(row["qty"]), Decimal(row["price"])
        except InvalidOperation:
            raise UserError(f"{path}: a row with a bad number ({row})") from None
        old = before.get(row["symbol"], Decimal(0))
        before[row["symbol"]] = position
        if position == 0:
            kind = "exit"
        elif abs(position) > abs(old) or position * old < 0:
            kind = "long" if position > 0 else "short"
        else:
            kind = "reduce"
        marks.append(
            TradeMark(
                _time(row, path),
                row["symbol"],
                row["side"],
                qty,
                price,
                position,
                kind,
                row["reason"],
            )
        )
    return marks


def _headlines(path: Path) -> list[Headline]:
    return [
        Headline(
            _time(row, path),
            row["symbol"],
            row["label"],
            float(row["confidence"] or 0),
            _SIGN.get(row["composite_label"], 0.0) * float(row["composite_confidence"] or 0),
            row["title"],
            row["source"],
            row["composite_label"],
            float(row["composite_confidence"] or 0),
        )
        for row in _rows(path, HEADLINE_COLUMNS)
    ]


def _rows(path: Path, columns: Sequence[str]) -> list[dict[str, str]]:
    with _open(path) as handle:
        reader = csv.DictReader(handle)
        _require(path, reader.fieldnames or [], columns)
        return list(reader)


def _columns(path: Path, columns: Sequence[str]) -> list[list[str]]:
    """The named columns of a CSV as lists of text (one list a column, in `columns` order)."""
    with _open(path) as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        _require(path, header, columns)
        at = [header.index(c) for c in columns]
        width = max(at) + 1
        rows = [row for row in reader if row]
    short = next((row for row in rows if len(row) < width), None)
    if short is not None:
        raise UserError(f"{path}: a row with too few fields ({short})")
    return [[row[i] for row in rows] for i in at]


def _open(path: Path) -> TextIO:
    if not path.is_file():
        raise UserError(
            f"{path}: missing (a run folder written by `lorabot backtest` of this version has it)"
        )
    return path.open(encoding="utf-8", newline="")


def _require(path: Path, header: Sequence[str], columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in header]
    if missing:
        raise UserError(f"{path}: no column {', '.join(missing)}")


def _time(row: Mapping[str, str], path: Path, column: str = "timestamp") -> datetime:
    return _parse_time(row[column], path)


def _parse_time(text: str, path: Path) -> datetime:
    try:
        return parse_time(text)
    except ValueError:
        raise UserError(f"{path}: {text!r} is not a time") from None
