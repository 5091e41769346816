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
from collections.abc import Generator, Iterable, Iterator, Sequence
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


class _CsvLayout:
    """Where the columns are in a bars CSV, and the general (careful) row parser."""

    def __init__(self, header: Sequence[str], problems: _Problems) -> None:
        mapping = _column_map(header, problems)
        if mapping is None:
            problems.raise_if_any()
            raise InputError(f"{problems.path}: bad header")
        self.indices = tuple(
            mapping[k] for k in ("timestamp", "open", "high", "low", "close", "volume")
        )
        self.width = len(header)
        self.problems = problems

    def parse(self, row: list[str], number: int) -> Row | None:
        """One row, or None after recording what is wrong with it."""
        if len(row) != self.width:
            if row:
                self.problems.add(number, f"expected {self.width} fields, found {len(row)}")
            return None
        it, io, ih, il, ic, iv = self.indices
        try:
            ts = _parse_ts(row[it])
        except ValueError:
            self.problems.add(number, f"bad timestamp {row[it]!r}")
            return None
        try:
            values = (
                Decimal(row[io]),
                Decimal(row[ih]),
                Decimal(row[il]),
                Decimal(row[ic]),
                Decimal(row[iv]),
            )
        except InvalidOperation:
            self.problems.add(number, "a price or volume is not a number")
            return None
        return number, ts, values


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
            if is_json:
                yield from _bars(_rows_json(file, problems), symbol, interval, problems)
            else:
                yield from _csv_bars(handle, symbol, interval, problems)
        except UnicodeDecodeError as error:
            raise InputError(f"{file}: not UTF-8 text ({error.reason})") from None
    problems.raise_if_any()


def _csv_bars(
    handle: Any, symbol: str, interval: timedelta | None, problems: _Problems
) -> Iterator[Bar]:
    """The CSV path. It runs once per bar — a million times in a big replay — so after the first
    rows (which also give the interval) parsing and checking are fused into one tight loop that
    falls back to the careful parser for any row it does not like."""
    reader = csv.reader(handle)
    header = next(reader, None)
    if header is None:
        return
    layout = _CsvLayout(header, problems)
    number = 1
    head: list[Row] = []
    for row in reader:
        number += 1
        parsed = layout.parse(row, number)
        if parsed is not None:
            head.append(parsed)
        if len(head) >= 200:
            break
    if interval is None:
        interval = infer_interval([ts for _, ts, _ in head])
        if interval is None:
            if len(head) == 1:
                problems.add(head[0][0], "one bar alone: its interval cannot be inferred")
            problems.raise_if_any()
            return
    last = yield from _bars(iter(head), symbol, interval, problems)
    it, io, ih, il, ic, iv = layout.indices
    width = layout.width
    fromiso = datetime.fromisoformat
    suffix = ""  # becomes "+00:00" once the file shows naive times (naive means UTC)
    make = Bar
    dec = Decimal
    for row in reader:
        number += 1
        try:
            if len(row) != width:
                raise ValueError
            ts_open = fromiso(row[it] + suffix) if suffix else fromiso(row[it])
            if ts_open.tzinfo is not UTC:
                if ts_open.tzinfo is not None or suffix:
                    raise ValueError  # another offset: the careful parser converts it
                suffix = "+00:00"
                ts_open = ts_open.replace(tzinfo=UTC)
            o, h, low, c, v = dec(row[io]), dec(row[ih]), dec(row[il]), dec(row[ic]), dec(row[iv])
        except (ValueError, InvalidOperation):
            parsed = layout.parse(row, number)
            if parsed is None:
                continue
            _, ts_open, (o, h, low, c, v) = parsed
        if last is not None and ts_open <= last:
            problems.add(number, _order_message(ts_open, last))
            continue
        if not (low <= o <= h and low <= c <= h) or low <= 0 or v < 0:
            problems.add(number, _inconsistent(o, h, low, c, v))
            continue
        last = ts_open
        if problems.count:
            continue  # keep checking, stop releasing: the file will be refused
        yield make(symbol, ts_open, ts_open + interval, o, h, low, c, v)


def _order_message(ts_open: datetime, last: datetime) -> str:
    return (
        f"bar at {ts_open.isoformat()} is not after the previous one ({last.isoformat()}): "
        "bars must be in ascending time order"
    )


def _inconsistent(o: Decimal, h: Decimal, low: Decimal, c: Decimal, v: Decimal) -> str:
    return f"inconsistent bar (open {o}, high {h}, low {low}, close {c}, volume {v})"


def _bars(
    rows: Iterator[Row],
    symbol: str,
    interval: timedelta | None,
    problems: _Problems,
    last: datetime | None = None,
) -> Generator[Bar, None, datetime | None]:
    """Checked bars from parsed rows; returns the last bar's open time."""
    head: list[Row] = []
    if interval is None:
        head = list(itertools.islice(rows, 200))
        interval = infer_interval([ts for _, ts, _ in head])
        if interval is None:
            if len(head) == 1:
                problems.add(head[0][0], "one bar alone: its interval cannot be inferred")
            problems.raise_if_any()
            return last
    for number, ts_open, (o, h, low, c, v) in itertools.chain(head, rows):
        if last is not None and ts_open <= last:
            problems.add(number, _order_message(ts_open, last))
            continue
        if not (low <= o <= h and low <= c <= h) or low <= 0 or v < 0:
            problems.add(number, _inconsistent(o, h, low, c, v))
            continue
        last = ts_open
        if problems.count:
            continue  # keep checking, stop releasing: the file will be refused
        yield Bar(symbol, ts_open, ts_open + interval, o, h, low, c, v)
    return last


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
