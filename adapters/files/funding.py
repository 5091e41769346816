"""Funding-rate files for backtests of perpetuals: CSV `timestamp,symbol,rate` or Bybit's v5
funding history JSON (`{"result": {"list": [{"symbol", "fundingRate",
"fundingRateTimestamp"}]}}`, what `GET /v5/market/funding/history` answers).

Rates are `Decimal`s keyed by settlement time in integer microseconds since the epoch, per
symbol; a bad row is one line naming the file, the row and what is wrong.
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from bot.errors import InputError
from bot.events import parse_time
from bot.recording import to_micros

FundingRates = dict[str, dict[int, Decimal]]  # symbol -> settlement time (µs) -> rate


def read_funding(path: Path) -> FundingRates:
    """Every funding rate in `path` (CSV or Bybit JSON, told apart by the first character)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise InputError(f"--funding {path}: cannot read it ({error.strerror})") from None
    if text.lstrip().startswith("{"):
        return _from_bybit_json(path, text)
    return _from_csv(path, text)


def _rate(path: Path, where: str, value: object) -> Decimal:
    try:
        rate = Decimal(str(value))
    except InvalidOperation:
        raise InputError(f"{path}:{where}: rate {value!r} is not a number") from None
    if not rate.is_finite() or abs(rate) > 1:
        raise InputError(f"{path}:{where}: rate {value!r} is not a funding rate (|rate| <= 1)")
    return rate


def _from_csv(path: Path, text: str) -> FundingRates:
    rows = csv.DictReader(text.splitlines())
    if rows.fieldnames is None or not {"timestamp", "symbol", "rate"} <= set(rows.fieldnames):
        raise InputError(f"{path}: a funding CSV needs the columns timestamp,symbol,rate")
    rates: FundingRates = {}
    for line, row in enumerate(rows, start=2):
        try:
            ts = parse_time(row["timestamp"])
        except ValueError:
            raise InputError(
                f"{path}:{line}: timestamp {row['timestamp']!r} is not a time"
            ) from None
        rates.setdefault(row["symbol"], {})[to_micros(ts)] = _rate(path, str(line), row["rate"])
    return rates


def _from_bybit_json(path: Path, text: str) -> FundingRates:
    try:
        items = json.loads(text)["result"]["list"]
    except (ValueError, KeyError, TypeError):
        raise InputError(f"{path}: not Bybit funding history JSON (no result.list)") from None
    rates: FundingRates = {}
    for index, item in enumerate(items):
        where = f"result.list[{index}]"
        try:
            ms = int(item["fundingRateTimestamp"])
            symbol = str(item["symbol"])
        except (KeyError, TypeError, ValueError):
            raise InputError(f"{path}:{where}: needs symbol and fundingRateTimestamp") from None
        ts = datetime.fromtimestamp(ms / 1000, tz=UTC)
        rates.setdefault(symbol, {})[to_micros(ts)] = _rate(path, where, item.get("fundingRate"))
    return rates
