"""Historical sources for the backtest: news files and bar files, merged in release order.

Release times are what keep a backtest honest: a news item is released at `received` (when it
became known; `published` only if nothing else is known) and a bar at its close, never its open.
Ties go to bars, so a decision made on news at T can only fill on a bar that opens at T or later.

Every reader checks every row and names the file and line of what is wrong. A file with a bad row
is refused as a whole (with the first few problems listed) rather than replayed with holes.

Bar formats: the canonical CSV `timestamp,open,high,low,close,volume` (bar open time, ISO-8601,
naive = UTC; epoch seconds or milliseconds also accepted), Bybit's kline layout (a
`/v5/market/kline` response, or its `list` rows `[startMs, o, h, l, c, volume, turnover]`, newest
first), and the Binance/freqtrade JSON `[[ms, o, h, l, c, v], ...]`.
"""

from __future__ import annotations

import csv
import itertools
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from bot.errors import InputError
from bot.events import Bar, NewsItem, news_id, parse_time
from bot.symbols import SymbolTable

MAX_REPORTED = 5

Row = tuple[int, datetime, tuple[Decimal, ...]]  # (line, bar open time, OHLCV)


class _Problems:
    """Collects row errors so one message can name several, then raises."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.items: list[str] = []
        self.count = 0

    def add(self, line: int, message: str) -> None:
        self.count += 1
        if len(self.items) < MAX_REPORTED:
            self.items.append(f"{self.path}:{line}: {message}")

    def raise_if_any(self) -> None:
        if self.count:
            more = (
                f" (and {self.count - len(self.items)} more)"
                if self.count > len(self.items)
                else ""
            )
            raise InputError("; ".join(self.items) + more)


def _open_text(path: Path) -> Any:
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    return path.open(encoding="utf-8", newline="")


# -- news ------------------------------------------------------------------------------------


def read_news(path: str | Path, symbols: SymbolTable | None = None) -> list[NewsItem]:
    """All items of a JSONL or CSV news file, in release order (stable for equal times)."""
    file = Path(path).expanduser()
    problems = _Problems(file)
    items: list[NewsItem] = []
    try:
        with _open_text(file) as handle:
            first = handle.readline()
            handle.seek(0)
            if first.lstrip().startswith("{"):
                items = _read_news_jsonl(handle, problems)
            else:
                items = _read_news_csv(handle, problems)
    except UnicodeDecodeError as error:
        raise InputError(f"{file}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    problems.raise_if_any()
    seen: set[str] = set()
    unique: list[NewsItem] = []
    for item in items:
        if item.id in seen:
            continue
        seen.add(item.id)
        if symbols is not None and not item.symbols:
            tagged = symbols.tag(item.title, item.body)
            if tagged:
                item = _with_symbols(item, tagged)
        unique.append(item)
    unique.sort(key=lambda item: item.received)
    return unique


def _with_symbols(item: NewsItem, tagged: tuple[str, ...]) -> NewsItem:
    from dataclasses import replace

    return replace(item, symbols=tagged)


def _read_news_jsonl(handle: Iterable[str], problems: _Problems) -> list[NewsItem]:
    items: list[NewsItem] = []
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            items.append(NewsItem.from_json(line))
        except json.JSONDecodeError as error:
            problems.add(number, f"not valid JSON ({error.msg} at column {error.colno})")
        except (ValueError, KeyError, TypeError) as error:
            problems.add(number, f"bad news item: {error}")
    return items


def _read_news_csv(handle: Iterable[str], problems: _Problems) -> list[NewsItem]:
    reader = csv.reader(handle)
    header = next(reader, None)
    if header is None:
        return []
    columns = [h.strip().lower() for h in header]
    for required in ("timestamp", "source", "title"):
        if required not in columns:
            problems.add(
                1,
                f"the header needs 'timestamp,source,title[,body][,link]' "
                f"(missing {required!r}; got {','.join(columns)})",
            )
            return []
    index = {name: columns.index(name) for name in columns}
    items: list[NewsItem] = []
    for row in reader:
        number = reader.line_num
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) != len(columns):
            problems.add(number, f"expected {len(columns)} fields, found {len(row)}")
            continue
        title = row[index["title"]].strip()
        source = row[index["source"]].strip() or "unknown"
        if not title:
            problems.add(number, "empty title")
            continue
        try:
            received = parse_time(row[index["timestamp"]])
        except ValueError:
            problems.add(number, f"bad timestamp {row[index['timestamp']]!r} (use ISO-8601)")
            continue
        link = row[index["link"]].strip() if "link" in index else ""
        body = row[index["body"]].strip() if "body" in index else ""
        ident = link or news_id(source, f"{title}\x00{received.isoformat()}")
        items.append(
            NewsItem(
                id=ident,
                source=source,
                title=title,
                body=body,
                link=link,
                published=None,
                received=received,
            )
        )
    return items


# -- bars ------------------------------------------------------------------------------------

_ALIASES = {
    "timestamp": (
        "timestamp",
        "time",
        "date",
        "datetime",
        "open_time",
        "starttime",
        "start",
        "ts",
        "open time",
    ),
    "open": ("open", "openprice", "o"),
    "high": ("high", "highprice", "h"),
    "low": ("low", "lowprice", "l"),
    "close": ("close", "closeprice", "c"),
    "volume": ("volume", "vol", "v"),
}


def _column_map(header: Sequence[str], problems: _Problems) -> dict[str, int] | None:
    lowered = [h.strip().lower() for h in header]
    mapping: dict[str, int] = {}
    for name, aliases in _ALIASES.items():
        for alias in aliases:
            if alias in lowered:
                mapping[name] = lowered.index(alias)
                break
        else:
            problems.add(
                1,
                f"the header needs timestamp,open,high,low,close,volume "
                f"(no {name!r} column in {','.join(header)})",
            )
            return None
    return mapping


def _parse_ts(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return parse_time(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _rows_csv(handle: Any, problems: _Problems) -> Iterator[Row]:
    reader = csv.reader(handle)
    header = next(reader, None)
    if header is None:
        return
    mapping = _column_map(header, problems)
    if mapping is None:
        problems.raise_if_any()
        return
    it, io, ih, il, ic, iv = (
        mapping[k] for k in ("timestamp", "open", "high", "low", "close", "volume")
    )
    width = len(header)
    number = 1
    for row in reader:
        number += 1
        if len(row) != width:
            if not row:
                continue
            problems.add(number, f"expected {width} fields, found {len(row)}")
            continue
        try:
            ts = _parse_ts(row[it])
        except ValueError:
            problems.add(number, f"bad timestamp {row[it]!r}")
            continue
        try:
            values = (
                Decimal(row[io]),
                Decimal(row[ih]),
                Decimal(row[il]),
                Decimal(row[ic]),
                Decimal(row[iv]),
            )
        except InvalidOperation:
            problems.add(number, "a price or volume is not a number")
            continue
        yield number, ts, values


def _rows_json(path: Path, problems: _Problems) -> Iterator[Row]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal, parse_int=Decimal)
    except json.JSONDecodeError as error:
        problems.add(error.lineno, f"not valid JSON ({error.msg})")
        problems.raise_if_any()
        return
    if isinstance(data, dict):
        result = data.get("result")
        rows = result.get("list") if isinstance(result, dict) else None
        if not isinstance(rows, list):
            problems.add(1, "a JSON object must be a Bybit kline response with result.list")
            problems.raise_if_any()
            return
    elif isinstance(data, list):
        rows = data
    else:
        problems.add(1, "expected a list of [time, open, high, low, close, volume] rows")
        problems.raise_if_any()
        return
    parsed: list[Row] = []
    for index, row in enumerate(rows):
        position = f"row {index}"
        if not isinstance(row, list) or len(row) < 6:
            problems.add(1, f"{position}: expected [time, open, high, low, close, volume, ...]")
            continue
        try:
            stamp = int(Decimal(str(row[0])))
            ts = parse_time(stamp)
            values = tuple(Decimal(str(v)) for v in row[1:6])
        except (InvalidOperation, ValueError, OverflowError, OSError):
            problems.add(1, f"{position}: not numbers: {row[:6]}")
            continue
        parsed.append((index, ts, values))
    parsed.sort(key=lambda item: item[1])  # Bybit lists newest first
    yield from parsed


def infer_interval(stamps: Sequence[datetime]) -> timedelta | None:
    gaps = Counter(b - a for a, b in itertools.pairwise(stamps) if b > a)
    if not gaps:
        return None
    return gaps.most_common(1)[0][0]


def iter_bars(path: str | Path, symbol: str, interval: timedelta | None = None) -> Iterator[Bar]:
    """Bars of one symbol, checked row by row, in time order."""
    file = Path(path).expanduser()
    problems = _Problems(file)
    is_json = file.suffix.lower() == ".json"
    with _open_text(file) as handle:
        try:
            if not is_json:
                head = handle.read(1)
                handle.seek(0)
                is_json = head in ("[", "{")
            rows = _rows_json(file, problems) if is_json else _rows_csv(handle, problems)
            yield from _bars(rows, symbol, interval, problems, file)
        except UnicodeDecodeError as error:
            raise InputError(f"{file}: not UTF-8 text ({error.reason})") from None
    problems.raise_if_any()


def _bars(
    rows: Iterator[Row],
    symbol: str,
    interval: timedelta | None,
    problems: _Problems,
    file: Path,
) -> Iterator[Bar]:
    head: list[Row] = []
    if interval is None:
        for row in rows:
            head.append(row)
            if len(head) >= 200:
                break
        interval = infer_interval([ts for _, ts, _ in head])
        if interval is None:
            if len(head) == 1:
                problems.add(head[0][0], "one bar alone: its interval cannot be inferred")
            problems.raise_if_any()
            return

    def all_rows() -> Iterator[Row]:
        yield from head
        yield from rows

    last: datetime | None = None
    for number, ts_open, (o, h, low, c, v) in all_rows():
        if last is not None and ts_open <= last:
            problems.add(
                number,
                f"bar at {ts_open.isoformat()} is not after the previous one "
                f"({last.isoformat()}): bars must be in ascending time order",
            )
            continue
        if not (low <= o <= h and low <= c <= h) or low <= 0 or v < 0:
            problems.add(
                number, f"inconsistent bar (open {o}, high {h}, low {low}, close {c}, volume {v})"
            )
            continue
        last = ts_open
        if problems.count:
            continue  # keep checking, stop releasing: the file will be refused
        yield Bar(symbol, ts_open, ts_open + interval, o, h, low, c, v)


def merge(news: Sequence[NewsItem], bars: Iterable[Bar]) -> Iterator[NewsItem | Bar]:
    """News and bars by release time; on a tie the bar (closing at T) goes first.

    `news` is small and sorted; bars stream. A plain two-way merge keeps the per-bar cost to one
    comparison, which matters at a million bars.
    """
    index = 0
    count = len(news)
    for bar in bars:
        ts = bar.ts
        while index < count and news[index].received < ts:
            yield news[index]
            index += 1
        yield bar
    while index < count:
        yield news[index]
        index += 1


def window(
    events: Iterator[NewsItem | Bar], start: datetime | None, end: datetime | None
) -> Iterator[NewsItem | Bar]:
    """Only what is released within [start, end]."""
    for event in events:
        ts = event.ts
        if start is not None and ts < start:
            continue
        if end is not None and ts > end:
            return
        yield event
