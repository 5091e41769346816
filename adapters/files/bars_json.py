"""Bars in JSON: a Bybit `/v5/market/kline` response (or its `list` rows, newest first), the
Binance/freqtrade `[[ms, o, h, l, c, v], ...]`, and the same rows one per line (JSON lines).

Rows may also be objects with the CSV's column names (`{"timestamp": ..., "open": ...}`). Rows are
sorted by time (Bybit lists newest first); each is named by its line and its 1-based row number.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from adapters.files.problems import LIMIT, Problems, to_decimal
from adapters.files.timestamps import read_time

Row = tuple[int | str, Any, tuple[Decimal, ...]]  # (where, bar open time, OHLCV)

FIELDS = ("timestamp", "open", "high", "low", "close", "volume")
ALIASES: dict[str, tuple[str, ...]] = {
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
EXPECTED = "expected [time, open, high, low, close, volume, ...]"
_ROW_START = re.compile(r'\[\s*"?-?\d')


def rows_json(text: str, problems: Problems) -> Iterator[Row]:
    """The rows of a JSON bars document (or of JSON lines), sorted by time."""
    try:
        data = json.loads(text, parse_float=Decimal, parse_int=Decimal)
    except json.JSONDecodeError as error:
        if error.msg == "Extra data":
            yield from _rows_json_lines(text, problems)
            return
        problems.fatal(error.lineno, f"not valid JSON ({error.msg})")
    except RecursionError:
        problems.fatal(1, "JSON nested too deeply")
    except ValueError as error:  # an integer of more digits than Python converts
        problems.fatal(1, f"not valid JSON ({error})")
    if isinstance(data, dict):
        result = data.get("result")
        rows = result.get("list") if isinstance(result, dict) else None
        if not isinstance(rows, list):
            problems.fatal(1, "a JSON object must be a Bybit kline response with result.list")
    elif isinstance(data, list):
        rows = data
    else:
        problems.fatal(1, "expected a list of [time, open, high, low, close, volume] rows")
    lines = _row_lines(text, len(rows))
    parsed: list[Row] = []
    for index, row in enumerate(rows):
        line = lines[index] if lines else 1
        parsed_row = _row(row, line, index + 1, problems)
        if parsed_row is not None:
            parsed.append(parsed_row)
    parsed.sort(key=lambda item: item[1])
    yield from parsed


def _rows_json_lines(text: str, problems: Problems) -> Iterator[Row]:
    parsed: list[Row] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line, parse_float=Decimal, parse_int=Decimal)
        except json.JSONDecodeError as error:
            problems.add(number, f"not valid JSON ({error.msg}; read as JSON lines)")
            continue
        except (RecursionError, ValueError):
            problems.add(number, "not valid JSON (read as JSON lines)")
            continue
        parsed_row = _row(row, number, None, problems)
        if parsed_row is not None:
            parsed.append(parsed_row)
    parsed.sort(key=lambda item: item[1])
    yield from parsed


def _row_lines(text: str, count: int) -> list[int] | None:
    """The line each row starts on, when every row can be found by its opening bracket."""
    starts = [match.start() for match in _ROW_START.finditer(text)]
    if len(starts) != count:
        return None
    lines: list[int] = []
    line, position = 1, 0
    for start in starts:
        line += text.count("\n", position, start)
        position = start
        lines.append(line)
    return lines


def _fields(row: object) -> list[object] | None:
    if isinstance(row, list):
        return row[:6] if len(row) >= 6 else None
    if isinstance(row, dict):
        lowered = {str(k).strip().lower(): v for k, v in row.items()}
        values: list[object] = []
        for name in FIELDS:
            found = next((lowered[a] for a in ALIASES[name] if a in lowered), None)
            if found is None:
                return None
            values.append(found)
        return values
    return None


def _row(row: object, line: int, position: int | None, problems: Problems) -> Row | None:
    """`position` is the row's 1-based number in a JSON document (None in JSON lines)."""
    where: int | str = line if position is None else f"{line}: row {position}"
    fields = _fields(row)
    if fields is None:
        problems.add(where, EXPECTED)
        return None
    try:
        ts = read_time(_epoch(fields[0]))
        values = tuple(_number(v) for v in fields[1:6])
    except ValueError as error:
        problems.add(where, str(error))
        return None
    return where, ts, values


def _number(value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise ValueError(f"{value!r} is not a number")
    return to_decimal(value)


def _epoch(stamp: object) -> object:
    """An epoch number (Bybit writes them as strings) as an int; anything else unchanged."""
    if isinstance(stamp, bool) or not isinstance(stamp, str | int | Decimal):
        return stamp
    try:
        number = to_decimal(stamp)
    except ValueError:
        return stamp  # an ISO-8601 text
    if not number.is_finite() or number.copy_abs() >= LIMIT:
        raise ValueError(f"time {stamp} is out of range")
    return int(number)
