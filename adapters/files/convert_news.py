"""Turn a news file in someone else's layout into lorabot's canonical news JSONL.

The news files people have are not `timestamp,source,title`: the shared crypto news is
`;`-separated with `D-M-YYYY HH:MM` dates, newest first; others are tab-separated with ISO stamps.
Rather than teach every command every layout, one conversion names the layout once (delimiter,
which column is which, the time format and zone) and writes the format the recorder writes and
`lorabot backtest --news` reads: one `NewsItem` JSON object per line, oldest first, times in UTC.

Rows are checked the way the readers check them: a bad row is `file:line: what is wrong`. By
default one bad row refuses the whole file (nothing is written), because a file replayed with
holes gives numbers that look right and are not; `skip_bad_rows` keeps the good rows and returns
every bad one with its reason, so nothing is dropped without being named. The output is written
to a temporary file and renamed, so an interrupted conversion never leaves half a news file.
"""

from __future__ import annotations

import contextlib
import csv
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.errors import InputError, UserError
from bot.events import NewsItem, news_id

FIELDS = ("timestamp", "title", "body", "source", "link", "id")
REQUIRED = ("timestamp", "title")
MAX_REPORTED = 5
_DELIMITER_NAMES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}


@dataclass(frozen=True, slots=True)
class NewsLayout:
    """How to read one foreign news file: its delimiter, columns, time format and zone."""

    delimiter: str = ","
    columns: Mapping[str, str] = field(default_factory=dict)  # field -> input column; {} = same
    time_format: str = ""  # strptime format; empty: ISO-8601 or epoch seconds/milliseconds
    timezone: tzinfo = UTC  # the zone of stamps that carry none


@dataclass(frozen=True, slots=True)
class BadRow:
    path: Path
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


@dataclass(slots=True)
class Conversion:
    """What a conversion read: the items (oldest first), the rows it refused, the duplicates."""

    items: list[NewsItem]
    bad: list[BadRow]
    duplicates: int = 0


def parse_delimiter(text: str) -> str:
    """`;`, `,`, a tab, or a name for one (`tab`, `\\t`, `comma`, `semicolon`, `pipe`)."""
    value = _DELIMITER_NAMES.get(text.strip().lower(), text) if text.strip() else text
    if len(value) != 1 or value in '\r\n"':
        raise UserError(
            f"--delimiter {text!r}: give one character such as ';' or ',', or 'tab' for a tab"
        )
    return value


def parse_columns(text: str) -> dict[str, str]:
    """`timestamp=date,title=title,...`: which input column holds each canonical field."""
    columns: dict[str, str] = {}
    for part in (piece.strip() for piece in text.split(",")):
        if not part:
            continue
        name, sep, column = (side.strip() for side in part.partition("="))
        if not sep or not name or not column:
            raise UserError(f"--columns: {part!r} is not FIELD=COLUMN (e.g. timestamp=date)")
        if name not in FIELDS:
            raise UserError(f"--columns: unknown field {name!r} (fields: {', '.join(FIELDS)})")
        if name in columns:
            raise UserError(f"--columns: field {name!r} is given twice")
        columns[name] = column
    missing = [name for name in REQUIRED if name not in columns]
    if columns and missing:
        raise UserError(f"--columns: no column for {', '.join(missing)} (required)")
    return columns


def parse_timezone(name: str) -> tzinfo:
    if name.strip().upper() in ("UTC", "Z", "GMT"):
        return UTC
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise UserError(
            f"--timezone {name!r}: not a known time zone (e.g. UTC, Europe/Berlin)"
        ) from None


def read_foreign_news(path: Path, layout: NewsLayout) -> Conversion:
    """Every row of `path` as a `NewsItem`, or as a `BadRow` saying what is wrong with it.

    A file-level problem (missing, not UTF-8, no header, a named column absent) raises
    `InputError`: no row of such a file can be read right.
    """
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    items: list[NewsItem] = []
    bad: list[BadRow] = []
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            rows = _rows(path, csv.reader(handle, delimiter=layout.delimiter))
            header = next(rows, None)
            if header is None:
                raise InputError(f"{path}: empty file (no header row)")
            index = _column_index(path, header[1], layout.columns)
            width = len(header[1])
            for line, row in rows:
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != width:
                    bad.append(BadRow(path, line, f"expected {width} fields, found {len(row)}"))
                    continue
                try:
                    items.append(_item(row, index, layout))
                except ValueError as error:
                    bad.append(BadRow(path, line, str(error)))
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    return _in_time_order(items, bad)


def convert_news(
    source: Path, target: Path, layout: NewsLayout, *, skip_bad_rows: bool = False
) -> Conversion:
    """Read `source` in `layout` and write the canonical JSONL to `target`, oldest first.

    Strict by default: any bad row raises `InputError` naming the first few by file and line,
    and nothing is written. With `skip_bad_rows` the good rows are written and the bad ones are
    returned, each with its reason, for the caller to report.
    """
    if source.resolve() == target.resolve():
        raise UserError(f"{target}: the output would overwrite the input")
    conversion = read_foreign_news(source, layout)
    if conversion.bad and not skip_bad_rows:
        shown = "; ".join(str(row) for row in conversion.bad[:MAX_REPORTED])
        more = len(conversion.bad) - MAX_REPORTED
        raise InputError(
            shown
            + (f" (and {more} more)" if more > 0 else "")
            + " (--skip-bad-rows writes the other rows and reports each bad one)"
        )
    if not conversion.items:
        raise InputError(f"{source}: no news rows to convert")
    _write_atomically(target, conversion.items)
    return conversion


def _rows(path: Path, reader: Iterator[list[str]]) -> Iterator[tuple[int, list[str]]]:
    """Rows with the line each starts on (a quoted field may span lines)."""
    line = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise InputError(f"{path}:{line}: unreadable row ({error})") from None
        yield line, row
        line = reader.line_num + 1  # type: ignore[attr-defined]


def _column_index(path: Path, header: list[str], columns: Mapping[str, str]) -> dict[str, int]:
    names = [name.strip().lower() for name in header]
    wanted = dict(columns) or {name: name for name in FIELDS if name in names}
    index: dict[str, int] = {}
    for name, column in wanted.items():
        key = column.strip().lower()
        if key not in names:
            shown = ", ".join(repr(n) for n in header)
            raise InputError(
                f"{path}:1: no column {column!r} for {name} (the header has {shown}; "
                "name the columns with --columns FIELD=COLUMN,...)"
            )
        index[name] = names.index(key)
    missing = [name for name in REQUIRED if name not in index]
    if missing:
        raise InputError(
            f"{path}:1: no {' or '.join(repr(m) for m in missing)} column; "
            "name the columns with --columns timestamp=...,title=..."
        )
    return index


def _item(row: list[str], index: Mapping[str, int], layout: NewsLayout) -> NewsItem:
    def cell(name: str) -> str:
        return row[index[name]].strip() if name in index else ""

    title = cell("title")
    if not title:
        raise ValueError("empty title")
    stamp = cell("timestamp")
    if not stamp:
        raise ValueError("empty timestamp")
    when = _parse_stamp(stamp, layout)
    source = cell("source") or "unknown"
    link = cell("link")
    ident = cell("id") or link or news_id(source, f"{title}\x00{when.isoformat()}")
    return NewsItem(
        id=ident,
        source=source,
        title=title,
        body=cell("body"),
        link=link,
        published=when,
        received=when,
    )


def _parse_stamp(text: str, layout: NewsLayout) -> datetime:
    try:
        if layout.time_format:
            value = datetime.strptime(text, layout.time_format)
        elif text.lstrip("-").isdigit():
            number = int(text)
            seconds = number / 1000 if abs(number) > 1e11 else number
            return datetime.fromtimestamp(seconds, UTC)
        else:
            value = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
        if value.tzinfo is None:
            value = value.replace(tzinfo=layout.timezone)
        return value.astimezone(UTC)
    except (ValueError, OverflowError, OSError):
        expected = (
            f"--time-format {layout.time_format!r}"
            if layout.time_format
            else "ISO-8601 or epoch seconds; give --time-format for other layouts"
        )
        raise ValueError(f"bad timestamp {text!r} (expected {expected})") from None


def _in_time_order(items: list[NewsItem], bad: list[BadRow]) -> Conversion:
    """Oldest first; a newest-first file is reversed first so equal times keep their order."""
    if len(items) > 1 and items[0].received > items[-1].received:
        items.reverse()
    items.sort(key=lambda item: item.received)
    unique: list[NewsItem] = []
    seen: set[str] = set()
    for item in items:
        if item.id not in seen:
            seen.add(item.id)
            unique.append(item)
    return Conversion(unique, bad, duplicates=len(items) - len(unique))


def _write_atomically(target: Path, items: list[NewsItem]) -> None:
    temporary = target.with_name(f".{target.name}.part")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with temporary.open("w", encoding="utf-8", newline="\n") as handle:
            for item in items:
                handle.write(item.to_json() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except OSError as error:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise InputError(f"{target}: cannot write the news file: {error.strerror}") from None
