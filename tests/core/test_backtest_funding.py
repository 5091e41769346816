"""Funding on perpetuals in a backtest: charged at 00:00, 08:00 and 16:00 UTC on the position
held at that bar's close, longs paying a positive rate and shorts receiving it, in Decimal; rows
of trades.csv with reason `funding`; none on spot. Every expected charge is worked out here."""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path

import pytest

from adapters.files.funding import read_funding
from bot.backtest import LuckOptions, run_backtest
from bot.errors import InputError
from bot.report import write_report
from tests.core.luck_scenarios import BEARISH, BULLISH, lexicon_settings

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "core" / "funding_history.json"
PRICE = Decimal("40000")
# One headline, held to the end: the share vote keeps a lone signal's composite at 1.00 (the
# default evidence vote lets it fade into the neutral prior within hours).
HELD = {"reevaluate_interval": 3600.0, "aggregation": "share"}


def flat_market(folder: Path, title: str, hours: int = 30) -> tuple[Path, Path]:
    """A constant price from 2024-01-01 00:00 and one headline at 00:00:30 (filled at 01:00)."""
    folder.mkdir(parents=True, exist_ok=True)
    bars = folder / "bars.csv"
    rows = ["timestamp,open,high,low,close,volume"]
    rows += [f"2024-01-01T00:00:00,{PRICE},{PRICE},{PRICE},{PRICE},1".replace(
        "01T00", f"{1 + h // 24:02d}T{h % 24:02d}") for h in range(hours)]  # fmt: skip
    bars.write_text("\n".join(rows) + "\n", encoding="utf-8")
    news = folder / "news.jsonl"
    item = {"id": "n1", "source": "desk", "title": title, "received": "2024-01-01T00:00:30Z"}
    news.write_text(json.dumps(item) + "\n", encoding="utf-8")
    return news, bars


def run(tmp: Path, title: str, funding: Path | None = None, **paper: object):  # type: ignore[no-untyped-def]
    news, bars = flat_market(tmp / "in", title)
    settings = lexicon_settings(tmp, paper=paper, strategy=HELD)
    result = run_backtest(
        settings,
        bars_path=bars,
        news_path=news,
        out_dir=tmp / "out",
        progress=False,
        funding_path=funding,
        luck=LuckOptions(ledger_url=f"sqlite:///{tmp / 'l.sqlite'}", lag=False),
    )
    write_report(result)
    with (tmp / "out" / "trades.csv").open(encoding="utf-8") as handle:
        return result, list(csv.DictReader(handle))


def test_a_long_pays_the_flat_rate_at_each_settlement(tmp_path: Path) -> None:
    result, rows = run(tmp_path, BULLISH, funding_rate="0.0001")
    fills = [r for r in rows if r["reason"] != "funding"]
    charges = [r for r in rows if r["reason"] == "funding"]
    assert len(fills) == 1 and fills[0]["side"] == "buy"
    qty = Decimal(fills[0]["qty"])
    # bars close at 01:00 ... 06:00 on day 2; the position opens at 01:00: settlements at
    # 08:00, 16:00, 00:00 (day 2), each qty * 40000 * 0.0001
    assert [r["timestamp"] for r in charges] == [
        "2024-01-01T08:00:00Z",
        "2024-01-01T16:00:00Z",
        "2024-01-02T00:00:00Z",
    ]
    each = qty * PRICE * Decimal("0.0001")
    assert [Decimal(r["fee"]) for r in charges] == [each] * 3
    assert all(Decimal(r["position"]) == qty for r in charges)
    assert result.metrics["funding_paid"] == float(each * 3)
    portfolio = result.parts.engine.portfolio
    fill = result.recording.trades[0]
    assert portfolio.cash == Decimal("10000") - qty * fill.price - fill.fee - each * 3
    assert result.metrics["n_trades"] == 1  # funding rows are no fills


def test_a_short_receives_a_positive_rate(tmp_path: Path) -> None:
    result, rows = run(tmp_path, BEARISH, funding_rate="0.0001")
    charges = [r for r in rows if r["reason"] == "funding"]
    qty = -Decimal(next(r for r in rows if r["reason"] != "funding")["qty"])
    assert [Decimal(r["fee"]) for r in charges] == [qty * PRICE * Decimal("0.0001")] * 3
    assert result.metrics["funding_paid"] < 0  # type: ignore[operator]


def test_rates_from_bybit_funding_history_and_missing_ones_noted(tmp_path: Path) -> None:
    result, rows = run(tmp_path, BULLISH, funding=FIXTURE)
    qty = Decimal(next(r for r in rows if r["reason"] != "funding")["qty"])
    charges = {r["timestamp"]: Decimal(r["fee"]) for r in rows if r["reason"] == "funding"}
    # 00:00 day 1 comes before the position; 00:00 day 2 has no rate in the file
    assert charges == {
        "2024-01-01T08:00:00Z": qty * PRICE * Decimal("0.0003"),
        "2024-01-01T16:00:00Z": qty * PRICE * Decimal("-0.0002"),
    }
    assert any("no rate for 1 settlement times" in n for n in result.metrics["notes"])  # type: ignore[union-attr]
    gross = result.metrics["gross_return"]
    net = result.metrics["total_return"]
    costs = (
        result.metrics["fees_paid"]
        + result.metrics["slippage_paid"]
        + result.metrics["funding_paid"]
    )  # type: ignore[operator]
    assert gross == pytest.approx(net + costs / 10_000, abs=1e-9)  # type: ignore[operator]


def test_a_funding_csv_reads_like_the_json(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text(
        "timestamp,symbol,rate\n2024-01-01T08:00Z,BTCUSDT,0.0003\n"
        "2024-01-01T16:00Z,BTCUSDT,-0.0002\n2024-01-01T00:00Z,BTCUSDT,0.0001\n",
        encoding="utf-8",
    )
    assert read_funding(path) == read_funding(FIXTURE)
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,symbol,rate\n2024-01-01T08:00Z,BTCUSDT,lots\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"bad.csv:2: rate 'lots' is not a number"):
        read_funding(bad)


def test_spot_pays_no_funding(tmp_path: Path) -> None:
    news, bars = flat_market(tmp_path / "in", BULLISH)
    settings = lexicon_settings(
        tmp_path, paper={"funding_rate": "0.0001"}, strategy=HELD
    ).with_overrides(symbols={"BTCUSDT": {"category": "spot"}})
    result = run_backtest(
        settings,
        bars_path=bars,
        news_path=news,
        out_dir=tmp_path / "out",
        progress=False,
        luck=LuckOptions(ledger_url=f"sqlite:///{tmp_path / 'l.sqlite'}", lag=False),
    )
    assert result.recording.trades and result.metrics["funding_paid"] == 0.0
    assert all(t.reason != "funding" for t in result.recording.trades)
