"""prices.csv written and read back as columns: the same text `iso()` writes, the window cut,
bad rows named, and the PNG line's envelope keeping what a stride would drop."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from bot import chart_data
from bot.errors import UserError
from bot.events import Bar, iso
from bot.portfolio_figures import SymbolPrices
from bot.trade_charts import envelope

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def _bar(symbol: str, ts: datetime, close: str) -> Bar:
    price = Decimal(close)
    return Bar(symbol, ts - timedelta(minutes=1), ts, price, price, price, price, Decimal(1))


def _run_folder(tmp_path: Path, prices: SymbolPrices, symbols: list[str]) -> Path:
    chart_data.write_prices(tmp_path / "prices.csv", prices, symbols)
    chart_data.write_headlines(tmp_path / "headlines.csv", [], {})
    (tmp_path / "trades.csv").write_text(
        "timestamp,symbol,side,qty,price,position,reason\n", encoding="utf-8"
    )
    (tmp_path / "decisions.csv").write_text(
        "ts,symbol,composite_label,composite_confidence\n", encoding="utf-8"
    )
    return tmp_path


def test_prices_round_trip_with_the_text_iso_writes(tmp_path: Path) -> None:
    prices = SymbolPrices()
    times = [T0 + timedelta(minutes=i) for i in range(5)]
    times.append(T0 + timedelta(minutes=5, microseconds=250))
    for i, ts in enumerate(times):
        prices.on_bar(_bar("BTCUSDT", ts, f"{100 + i}.5"))
        prices.on_bar(_bar("ETHUSDT", ts, f"{10 + i}.25"))
    run = _run_folder(tmp_path, prices, ["BTCUSDT", "ETHUSDT"])
    lines = (run / "prices.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "timestamp,symbol,close"
    assert lines[1] == f"{iso(times[0])},BTCUSDT,100.5"
    assert lines[6] == f"{iso(times[5])},BTCUSDT,105.5"  # a fractional second: iso()'s form
    data = chart_data.load(run, T0 + timedelta(minutes=1), T0 + timedelta(minutes=3))
    assert data.symbols == ["BTCUSDT", "ETHUSDT"]
    assert data.prices["BTCUSDT"].times == times[1:4]
    assert data.prices["ETHUSDT"].values.tolist() == [11.25, 12.25, 13.25]
    whole = chart_data.load(run)
    assert whole.prices["BTCUSDT"].times == times
    assert len(chart_data.load(run, T0 + timedelta(days=1)).prices["ETHUSDT"]) == 0


def test_whole_second_stamps_format_like_iso() -> None:
    stamps = [T0, T0 + timedelta(seconds=59), datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC)]
    micros = np.array([int(ts.timestamp()) * 1_000_000 for ts in stamps], dtype=np.int64)
    assert chart_data.iso_texts(micros) == [iso(ts) for ts in stamps]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("yesterday,BTCUSDT,100", "'yesterday' is not a time"),
        ("2024-03-01T00:00:00Z,BTCUSDT,cheap", "'cheap' is not a close price"),
        ("2024-03-01T00:00:00Z,BTCUSDT", "a row with too few fields"),
    ],
)
def test_a_bad_prices_row_is_named(tmp_path: Path, row: str, message: str) -> None:
    run = _run_folder(tmp_path, SymbolPrices(), [])
    (run / "prices.csv").write_text(
        f"timestamp,symbol,close\n2024-03-01T00:01:00Z,BTCUSDT,1\n{row}\n", encoding="utf-8"
    )
    with pytest.raises(UserError, match=message) as raised:
        chart_data.load(run)
    assert "prices.csv" in str(raised.value)


def test_offsets_and_epoch_times_still_read(tmp_path: Path) -> None:
    run = _run_folder(tmp_path, SymbolPrices(), [])
    (run / "prices.csv").write_text(
        "timestamp,symbol,close\n2024-03-01T01:00:00+01:00,BTCUSDT,1\n1709251260,BTCUSDT,2\n",
        encoding="utf-8",
    )
    series = chart_data.load(run).prices["BTCUSDT"]
    assert series.times == [T0, T0 + timedelta(minutes=1)]


def test_the_envelope_keeps_spikes_ends_and_order() -> None:
    values = np.random.default_rng(7).normal(size=50_000).cumsum()
    values[12_345], values[40_001] = 1e6, -1e6
    stamps = np.arange(50_000).astype("datetime64[m]").astype("datetime64[us]")
    kept_stamps, kept = envelope(stamps, values, 1_000)
    assert len(kept) <= 2 * 1_000 + 2
    assert kept.max() == 1e6 and kept.min() == -1e6  # every 25th point would miss both
    assert kept_stamps[0] == stamps[0] and kept_stamps[-1] == stamps[-1]
    assert (np.diff(kept_stamps.astype(np.int64)) > 0).all()
    short_stamps, short = envelope(stamps[:1_500], values[:1_500], 1_000)
    assert len(short) == 1_500 and short_stamps is not None
