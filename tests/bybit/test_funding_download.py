"""`download-data --funding`: paging /v5/market/funding/history (the simulator serves it) into
the JSON that `lorabot backtest --funding` reads."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from adapters.bybit.funding_download import download_funding
from adapters.bybit.sim import Simulator
from adapters.files.funding import read_funding
from bot.clock import LiveClock
from bot.errors import UserError
from bot.recording import to_micros

from .harness import settings_for

START = datetime(2024, 1, 1, tzinfo=UTC)


async def test_funding_history_pages_into_backtest_json(sim: Simulator, tmp_path: Path) -> None:
    out = tmp_path / "funding.json"
    end = START + timedelta(days=80)  # 240 settlements: two pages of at most 200
    got = await download_funding(
        settings_for(sim, download_rate=100), "btcusdt", START, end, out, clock=LiveClock()
    )
    assert got.written == 241 and got.requests == 2  # both ends included
    document = json.loads(out.read_text())
    listing = document["result"]["list"]
    stamps = [int(row["fundingRateTimestamp"]) for row in listing]
    assert stamps == sorted(stamps, reverse=True) and len(set(stamps)) == 241
    rates = read_funding(out)["BTCUSDT"]
    expected = {to_micros(START + timedelta(hours=8 * i)): Decimal("0.0001") for i in range(241)}
    assert rates == expected


async def test_spot_has_no_funding(sim: Simulator, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="spot pays no funding"):
        await download_funding(
            settings_for(sim), "BTCUSDT", START, START + timedelta(days=1), tmp_path / "f.json",
            category="spot", clock=LiveClock(),
        )  # fmt: skip
