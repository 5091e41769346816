"""The replay's per-bar figures (bot/replay.py `play`, which works a bar's stamp out from the
previous one and keeps the cash as a float between fills): exactly `float(close)` and
`float(equity)` of every bar, flat and while a position is open."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import pytest

from bot.backtest import LuckOptions
from tests.core.luck_scenarios import backtest, lexicon_settings, write_scenario


@pytest.mark.slow  # a backtest of 4,300 bars
def test_closes_and_equity_are_each_bars_floats(tmp_path: Path) -> None:
    days = 180  # 4,320 hourly bars
    news_path, bars_path = write_scenario(tmp_path / "in", informative=True, days=days)
    settings = lexicon_settings(tmp_path, strategy={"aggregation": "share"})
    result = backtest(tmp_path, news_path, bars_path, "out", LuckOptions(lag=False), settings)
    recording = result.recording
    with bars_path.open() as handle:
        closes = [Decimal(row["close"]) for row in csv.DictReader(handle)]
    assert recording.n_bars == len(closes) == days * 24
    assert list(recording.closes) == [float(close) for close in closes]

    # Equity bar by bar, worked out in Decimal from the fills: cash plus the position at the
    # bar's close (a fill at a bar's open counts from that bar on).
    cash, qty = Decimal(settings.engine.initial_cash), Decimal(0)
    trades = sorted(recording.trades, key=lambda row: row.ts)
    expected: list[float] = []
    held = 0
    for index, close in enumerate(closes):
        bar_close = recording.time_at(index)
        while trades and trades[0].ts < bar_close:
            row = trades.pop(0)
            signed = row.qty if row.side == "buy" else -row.qty
            cash -= signed * row.price + row.fee
            qty += signed
        held += bool(qty)
        expected.append(float(cash + qty * close) if qty else float(cash))
    assert held > 400, "positions are open over many bars"
    assert list(recording.equity) == expected
