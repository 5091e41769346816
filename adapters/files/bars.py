"""Bar files for replay, checked row by row and released in time order.

A bar is released at its close, never its open. Layouts: the canonical CSV
`timestamp,open,high,low,close,volume` (bar open time, ISO-8601, naive = UTC; epoch seconds or
milliseconds also accepted; a UTF-8 byte order mark is fine), and the JSON layouts of
`adapters/files/bars_json.py`. Every row is checked (finite numbers in range, consistent
high/low, ascending times) and a file with a bad row is refused as a whole, naming its lines.
"""

from __future__ import annotations

import csv
import functools
import itertools
import operator
from collections import Counter
from collections.abc import Callable, Generator, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any, NoReturn

from adapters.files.bars_json import ALIASES, FIELDS, Row, rows_json
from adapters.files.problems import LIMIT, Problems, bad_values, not_utf8, open_text
from adapters.files.timestamps import LATEST, read_iso_time
from bot.events import Bar

HEAD = 200  # rows read before the interval is inferred
CHUNK = 256  # rows checked and built a column at a time (larger chunks fall out of the cache)
_FROMISO = datetime.fromisoformat
_TZINFO = operator.attrgetter("tzinfo")
_ZERO = Decimal(0)


def infer_interval(stamps: Sequence[datetime]) -> timedelta | None:
    gaps = Counter(b - a for a, b in itertools.pairwise(stamps) if b > a)
    if not gaps:
        return None
    return gaps.most_common(1)[0][0]


def iter_bars(
    path: str | Path,
    symbol: str,
    interval: timedelta | None = None,
    *,
    skip_bad_rows: bool = False,
) -> Iterator[Bar]:
    """Bars of one symbol, checked row by row, in time order (bad rows refuse the file, or are
    reported and left out with `skip_bad_rows`)."""
    file = Path(path).expanduser()
    problems = Problems(file, skip=skip_bad_rows)
    is_json = file.suffix.lower() in (".json", ".jsonl")
    with open_text(file) as handle:
        try:
            if not is_json:
                head = handle.read(1)
                handle.seek(0)
                is_json = head in ("[", "{")
            if is_json:
                rows = rows_json(handle.read(), problems)
                yield from _bars(rows, symbol, interval, problems)
            else:
                yield from _csv_rows(handle, symbol, interval, problems)
        except UnicodeDecodeError as error:
            raise not_utf8(file, error) from None
    problems.raise_if_any()


class _CsvLayout:
    """Where the columns are in a bars CSV, and the general (careful) row parser."""

    def __init__(self, header: Sequence[str], problems: Problems) -> None:
        lowered = [h.strip().lower() for h in header]
        indices: list[int] = []
        for name in FIELDS:
            found = next((lowered.index(a) for a in ALIASES[name] if a in lowered), None)
            if found is None:
                problems.fatal(
                    1,
                    f"the header needs timestamp,open,high,low,close,volume "
                    f"(no {name!r} column in {','.join(header)})",
                )
            indices.append(found)
        self.indices = tuple(indices)
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
            ts = read_iso_time(row[it])
        except ValueError as error:
            self.problems.add(number, str(error))
            return None
        try:
            values = tuple(Decimal(row[i]) for i in (io, ih, il, ic, iv))
        except InvalidOperation:
            self.problems.add(number, "a price or volume is not a number")
            return None
        return number, ts, values


class _Cursor:
    """Where the CSV path stands between chunks: the row number, the last bar's open time, and
    the text that makes the file's naive times UTC ("" until a naive time is seen)."""

    __slots__ = ("last", "number", "suffix")

    def __init__(self, number: int, last: datetime | None) -> None:
        self.number, self.last, self.suffix = number, last, ""


def _csv_rows(
    handle: IO[str], symbol: str, interval: timedelta | None, problems: Problems
) -> Iterator[Bar]:
    """The CSV path. It runs once per bar — a million times in a big replay — so after the first
    rows (which also give the interval) the lines are read in chunks: a chunk of plain lines (no
    quote, NUL or lone carriage return, so each line is one row and its commas are its fields)
    is split by `str.split`, twice as fast as the csv module; a chunk whose every row is clean
    is then checked and built a column at a time (`_clean_chunk`, C-level maps), and any other
    goes through the csv module and row by row (`_each_row`), which falls back to the careful
    parser for a row it does not like. From the first chunk that is not plain the csv module
    reads the rest of the file, as it always did. Every way gives the same bars, errors and
    line numbers."""
    reader = csv.reader(handle)
    try:
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
            if len(head) >= HEAD:
                break
    except csv.Error as error:
        _unreadable(problems, reader.line_num, error)
    if interval is None:
        interval = _head_interval(head, problems)
        if interval is None:
            return
    cursor = _Cursor(number, (yield from _bars(iter(head), symbol, interval, problems)))
    lines_read = reader.line_num  # physical lines, for the csv module's own errors
    while lines := list(itertools.islice(handle, CHUNK)):
        rows = _plain_rows(lines)
        if rows is None:  # the csv module reads the rest (quoted fields may span lines)
            rest = csv.reader(itertools.chain(lines, handle))
            yield from _csv_chunks(rest, lines_read, layout, cursor, symbol, interval, problems)
            return
        again = functools.partial(_csv_lines, lines, lines_read, problems)
        yield from _chunk(rows, again, layout, cursor, symbol, interval, problems)
        lines_read += len(lines)


def _plain_rows(lines: list[str]) -> list[list[str]] | None:
    """The rows of `lines` as the csv module would read them, when every line is plain (one row,
    split at its commas, a CRLF or LF ending, shorter than the csv module's field limit); None
    otherwise. A blank line gives `[""]` here where the csv module gives `[]`: that chunk is
    never clean, so it is read again by `_csv_lines`."""
    if max(map(len, lines)) > csv.field_size_limit():  # the csv module's error, if it is one
        return None
    text = "".join(lines)
    if '"' in text or "\0" in text:
        return None
    if "\r" in text:
        text = text.replace("\r\n", "\n")
        if "\r" in text:
            return None
    parts = text.split("\n")
    if parts[-1] == "":
        parts.pop()
    return list(map(str.split, parts, itertools.repeat(",")))


def _unreadable(problems: Problems, line: int, error: csv.Error) -> NoReturn:
    problems.fatal(line, f"not a readable CSV row ({error})")


def _csv_lines(lines: list[str], lines_read: int, problems: Problems) -> list[list[str]]:
    """Plain lines through the csv module (each is one row, so they parse alone)."""
    reader = csv.reader(lines)
    try:
        return list(reader)
    except csv.Error as error:
        _unreadable(problems, lines_read + reader.line_num, error)


def _csv_chunks(
    reader: Any,
    lines_read: int,
    layout: _CsvLayout,
    cursor: _Cursor,
    symbol: str,
    interval: timedelta,
    problems: Problems,
) -> Iterator[Bar]:
    """The rest of the file through the csv module, in chunks of rows."""
    while True:
        try:
            chunk = list(itertools.islice(reader, CHUNK))
        except csv.Error as error:
            _unreadable(problems, lines_read + reader.line_num, error)
        if not chunk:
            return
        yield from _chunk(chunk, None, layout, cursor, symbol, interval, problems)


def _chunk(
    rows: list[list[str]],
    again: Callable[[], list[list[str]]] | None,
    layout: _CsvLayout,
    cursor: _Cursor,
    symbol: str,
    interval: timedelta,
    problems: Problems,
) -> Iterator[Bar]:
    """One chunk's bars: built a column at a time when every row is clean, else row by row,
    on the rows `again` gives (the csv module's reading of split lines) or on `rows`."""
    bars = _clean_chunk(rows, layout, cursor, symbol, interval)
    if bars is None:
        yield from _each_row(again() if again else rows, layout, cursor, symbol, interval, problems)
        return
    cursor.number += len(rows)
    cursor.last = bars[-1].ts_open
    if not problems.refused:  # keep checking, stop releasing: the file will be refused
        yield from bars


def _clean_chunk(
    chunk: list[list[str]],
    layout: _CsvLayout,
    cursor: _Cursor,
    symbol: str,
    interval: timedelta,
) -> list[Bar] | None:
    """The chunk's bars if every row is clean (the right width, UTC times in ascending order,
    finite prices in range with low <= open, close <= high), else None: the caller then takes
    the chunk row by row, which says what is wrong where. Nothing here is Python-level per value
    but the range check: the columns come from one `zip`, the numbers from `map(Decimal, ...)`."""
    if set(map(len, chunk)) != {layout.width}:
        return None
    it, io, ih, il, ic, iv = layout.indices
    columns = list(zip(*chunk, strict=True))
    try:
        texts = columns[it]
        if cursor.suffix:  # naive times, which mean UTC (an offset of its own cannot parse)
            stamps = list(map(_FROMISO, map(str.__add__, texts, itertools.repeat(cursor.suffix))))
        else:  # times with their offsets: all UTC, or the row loop converts (or learns naive)
            stamps = list(map(_FROMISO, texts))
            if set(map(_TZINFO, stamps)) != {UTC}:
                return None
        opens, highs, lows, closes, volumes = (
            list(map(Decimal, columns[i])) for i in (io, ih, il, ic, iv)
        )
        for o, h, low, c, v in zip(opens, highs, lows, closes, volumes, strict=True):
            # NaN compares by raising InvalidOperation; inf and 1e400 fail the limits.
            if not (_ZERO < low <= o <= h < LIMIT and low <= c <= h and _ZERO <= v < LIMIT):
                return None
    except (ValueError, InvalidOperation):
        return None  # a time with an offset of its own, or a number that is not one
    following = stamps[1:]
    if not all(map(operator.lt, stamps, following)) or not stamps[-1] < LATEST:
        return None
    if cursor.last is not None and not cursor.last < stamps[0]:
        return None
    closing = map(operator.add, stamps, itertools.repeat(interval))
    rows = zip(itertools.repeat(symbol), stamps, closing, opens, highs, lows, closes, volumes)
    return list(map(tuple.__new__, itertools.repeat(Bar), rows))  # what Bar._make does


def _each_row(
    rows: list[list[str]],
    layout: _CsvLayout,
    cursor: _Cursor,
    symbol: str,
    interval: timedelta,
    problems: Problems,
) -> Iterator[Bar]:
    """A chunk row by row: a fused fast check per row, the careful parser for any other."""
    it, io, ih, il, ic, iv = layout.indices
    width = layout.width
    fromiso = _FROMISO
    make = tuple.__new__  # what Bar._make does, without its Python-level frame (once a bar)
    dec = Decimal
    latest, limit, zero = LATEST, LIMIT, _ZERO  # Decimal with Decimal compares fastest
    refused = problems.refused  # changes only when a problem is added (read once a bar is slow)
    number, last, suffix = cursor.number, cursor.last, cursor.suffix
    for row in rows:
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
            # NaN compares by raising InvalidOperation; inf and 1e400 fail the limits.
            if not (
                zero < low <= o <= h < limit
                and low <= c <= h
                and zero <= v < limit
                and ts_open < latest
            ):
                raise ValueError
            checked = True
        except (ValueError, InvalidOperation):
            parsed = layout.parse(row, number)
            if parsed is None:
                continue
            _, ts_open, (o, h, low, c, v) = parsed
            checked = False
        if last is not None and ts_open <= last:
            problems.add(number, _order_message(ts_open, last))
            refused = problems.refused
            continue
        if not checked and (problem := bad_values(o, h, low, c, v)):
            problems.add(number, problem)
            refused = problems.refused
            continue
        last = ts_open
        if refused:
            continue  # keep checking, stop releasing: the file will be refused
        yield make(Bar, (symbol, ts_open, ts_open + interval, o, h, low, c, v))
    cursor.number, cursor.last, cursor.suffix = number, last, suffix


def _head_interval(head: list[Row], problems: Problems) -> timedelta | None:
    """The bar interval from the first rows, or None after saying why there is none."""
    interval = infer_interval([ts for _, ts, _ in head])
    if interval is None:
        if len(head) == 1:
            problems.fatal(head[0][0], "one bar alone: its interval cannot be inferred")
        if len(head) >= 2:
            (_, before, _), (line, after, _) = head[0], head[1]
            descending = " (the file is in descending time order)" if after < before else ""
            problems.fatal(line, _order_message(after, before) + descending)
        problems.raise_if_any()
    return interval


def _order_message(ts_open: datetime, last: datetime) -> str:
    return (
        f"bar at {ts_open.isoformat()} is not after the previous one ({last.isoformat()}): "
        "bars must be in ascending time order"
    )


def _bars(
    rows: Iterator[Row],
    symbol: str,
    interval: timedelta | None,
    problems: Problems,
    last: datetime | None = None,
) -> Generator[Bar, None, datetime | None]:
    """Checked bars from parsed rows; returns the last bar's open time."""
    head: list[Row] = []
    if interval is None:
        head = list(itertools.islice(rows, HEAD))
        interval = _head_interval(head, problems)
        if interval is None:
            problems.raise_if_any()
            return last
    for number, ts_open, (o, h, low, c, v) in itertools.chain(head, rows):
        if last is not None and ts_open <= last:
            problems.add(number, _order_message(ts_open, last))
            continue
        problem = bad_values(o, h, low, c, v)
        if problem:
            problems.add(number, problem)
            continue
        last = ts_open
        if problems.refused:
            continue  # keep checking, stop releasing: the file will be refused
        yield Bar(symbol, ts_open, ts_open + interval, o, h, low, c, v)
    return last


def estimate_rows(path: Path, sample: int = 1 << 16) -> int:
    """About how many rows a file has: its size over the mean line length of its first 64 KiB."""
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(sample)
    except OSError:
        return 0
    lines = head.count(b"\n")
    if not head or not lines:
        return 1 if head else 0
    return max(0, round(size * lines / len(head)) - 1)
