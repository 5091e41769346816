"""Funding-rate history from /v5/market/funding/history into the JSON `lorabot backtest
--funding` reads: Bybit's own answer shape (`{"result": {"category", "list": [{"symbol",
"fundingRate", "fundingRateTimestamp"}]}}`), every page of the span in one list, newest first.

Bybit answers at most 200 settlements a page, newest first, for [startTime, endTime]; pages are
requested backwards from the end until the start, within `[bybit] download_rate`.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from adapters.bybit.endpoints import endpoints
from adapters.bybit.errors import BybitError
from adapters.bybit.rest import BybitRest
from bot.clock import Clock
from bot.config import Settings
from bot.errors import UserError
from bot.events import iso

PAGE = 200


@dataclass(frozen=True)
class FundingDownload:
    path: Path
    written: int
    requests: int


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


async def download_funding(
    settings: Settings,
    symbol: str,
    start: datetime,
    end: datetime,
    out: Path,
    *,
    category: str = "linear",
    clock: Clock,
) -> FundingDownload:
    """Every funding settlement of `symbol` in [start, end] into `out` (overwritten)."""
    if category == "spot":
        raise UserError("--funding: spot pays no funding (use --category linear)")
    if end <= start:
        raise UserError(f"--to ({iso(end)}) must be after --from ({iso(start)})")
    symbol = symbol.upper()
    start_ms, cursor = _ms(start), _ms(end)
    seen: dict[int, dict[str, Any]] = {}
    requests = 0
    pace = 1.0 / settings.bybit.download_rate
    next_request = 0.0
    async with BybitRest(settings.bybit, endpoints(settings).rest, clock) as rest:
        while cursor >= start_ms:
            wait = next_request - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            next_request = time.monotonic() + pace
            params = {"category": category, "symbol": symbol, "startTime": start_ms,
                      "endTime": cursor, "limit": PAGE}  # fmt: skip
            try:
                result = await rest.request("GET", "/v5/market/funding/history", params)
            except BybitError as error:
                raise UserError(f"funding download of {symbol} stopped: {error}") from None
            requests += 1
            rows = result.get("list") or []
            for row in rows:
                ms = int(row["fundingRateTimestamp"])
                if start_ms <= ms <= _ms(end):
                    seen[ms] = {"symbol": symbol, "fundingRate": str(row["fundingRate"]),
                                "fundingRateTimestamp": str(ms)}  # fmt: skip
            if len(rows) < PAGE:
                break
            cursor = min(int(r["fundingRateTimestamp"]) for r in rows) - 1
    listing = [seen[ms] for ms in sorted(seen, reverse=True)]
    document = {"retCode": 0, "retMsg": "OK",
                "result": {"category": category, "list": listing}}  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    return FundingDownload(out, len(listing), requests)
