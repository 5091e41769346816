"""`lorabot backtest` end to end on the bundled sample and on the project's fixtures."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from bot.cli import main

REQUIRED = [
    "total_return",
    "buy_and_hold_return",
    "sharpe",
    "sortino",
    "max_drawdown",
    "win_rate",
    "profit_factor",
    "n_trades",
    "exposure",
    "fees_paid",
]


def run_cli(args: list[str]) -> None:
    try:
        main(args)
    except SystemExit as done:
        assert done.code in (0, None)


@pytest.fixture(scope="module")
def sample_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("sample")
    outs = (base / "a", base / "b")
    for out in outs:
        ledger = f"sqlite:///{base / 'ledger.sqlite'}"
        run_cli(["backtest", "--sample", "--out", str(out), "--no-progress", "--ledger", ledger])
    return outs


def test_sample_writes_the_whole_report(sample_runs: tuple[Path, Path]) -> None:
    out = sample_runs[0]
    for name in ("metrics.json", "trades.csv", "equity.csv", "equity.png", "config.toml"):
        assert (out / name).stat().st_size > 0, name
    metrics = json.loads((out / "metrics.json").read_text())
    for key in REQUIRED:
        assert isinstance(metrics[key], int | float) and not isinstance(metrics[key], bool), key
    assert all(
        isinstance(v, int | float) for k, v in metrics.items() if k not in ("notes", "symbols")
    )
    assert isinstance(metrics["notes"], list)
    assert metrics["n_days"] >= 30 and metrics["n_trades"] >= 5
    assert 0 < metrics["exposure"] < 1 and metrics["fees_paid"] > 0
    assert 0 <= metrics["max_drawdown"] < 1


def test_sample_buys_sells_and_goes_flat(sample_runs: tuple[Path, Path]) -> None:
    """With the real embedded model (the default backend) answering the sample's headlines."""
    import tomllib

    used = tomllib.loads((sample_runs[0] / "config.toml").read_text())
    assert used["model"]["backend"] == "embedded"
    rows = list(csv.DictReader((sample_runs[0] / "trades.csv").open()))
    assert {"buy", "sell"} <= {r["side"] for r in rows}
    assert any(r["position"].lstrip("-").strip("0.") == "" for r in rows)  # back to flat
    assert any(r["position"].startswith("-") for r in rows)  # a short on the perpetual
    equity = list(csv.DictReader((sample_runs[0] / "equity.csv").open()))
    flags = [r["exposed"] for r in equity]
    assert "0" in flags[flags.index("1") :]  # a flat period after having held a position
    assert set(rows[0]) == {
        "timestamp",
        "symbol",
        "side",
        "qty",
        "price",
        "notional",
        "fee",
        "liquidity",
        "realised_pnl",
        "position",
        "avg_entry",
        "reason",
    }


def test_two_runs_are_byte_identical(sample_runs: tuple[Path, Path]) -> None:
    a, b = sample_runs
    for name in ("trades.csv", "metrics.json", "equity.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_window_and_other_formats(
    fixtures: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "fx"
    run_cli(
        [
            "backtest",
            "--news",
            str(fixtures / "core" / "news.csv"),
            "--bars",
            str(fixtures / "core" / "bars_bybit.json"),
            "--from",
            "2024-01-01T00:20:00Z",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    printed = capsys.readouterr().out
    assert f"report: {out}" in printed.replace("\n", "")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_bars"] == 2  # bars are released at their close: 00:30 and 00:45
    assert metrics["n_news"] == 3


def test_sample_writes_every_decision_record(sample_runs: tuple[Path, Path]) -> None:
    """decisions.csv: one row per decision the engine published, columns the record's fields."""
    from dataclasses import fields

    from bot.events import Decision, parse_time

    out = sample_runs[0]
    with (out / "decisions.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == [f.name for f in fields(Decision)]
    metrics = json.loads((out / "metrics.json").read_text())
    news_rows = [r for r in rows if r["trigger"] == "news"]
    assert len({r["news_id"] for r in news_rows}) == metrics["n_news"]
    assert sum(r["outcome"] == "order" for r in rows) == metrics["n_orders"]
    times = [parse_time(r["ts"]) for r in rows]
    assert times == sorted(times) and all(r["ts"].endswith("Z") for r in rows)
    assert all(r["label"] in ("bearish", "neutral", "bullish") for r in news_rows)
    assert {r["trigger"] for r in rows} >= {"news", "revote"}


def test_sample_writes_a_self_contained_report_page(sample_runs: tuple[Path, Path]) -> None:
    import re

    page = (sample_runs[0] / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "data:image/png;base64," in page
    assert not re.search(r"<script[^>]*\bsrc=", page)  # plotly's script is inlined
    markup = re.sub(r"<script[^>]*>.*?</script>", "", page, flags=re.S)
    assert not re.search(r"""\s(src|href)=["']?https?:""", markup)  # nothing fetched
    for label in ("PSR (P[Sharpe &gt; 0])", "DSR (deflated)", "Sharpe 95% CI low", "Fills"):
        assert label in page, label
    metrics = json.loads((sample_runs[0] / "metrics.json").read_text())
    for key in ("psr", "dsr", "dsr_trials", "gross_return", "lag_sharpe", "training_overlap"):
        assert isinstance(metrics[key], float), key


def test_the_chart_marks_entries_and_exits_and_shows_the_composite(tmp_path: Path) -> None:
    """The equity chart's artists, drawn from a real replay's recording."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bot.backtest import LuckOptions
    from bot.report import _confidence_panel, _mark_trades
    from tests.core.luck_scenarios import backtest, lexicon_settings, write_scenario

    news, bars = write_scenario(tmp_path / "in", informative=True, days=5)
    options = LuckOptions(ledger_url=f"sqlite:///{tmp_path / 'l.sqlite'}", lag=False)
    recording = backtest(tmp_path, news, bars, "out", options, lexicon_settings(tmp_path)).recording
    figure, (top, panel) = plt.subplots(2, 1)
    _mark_trades(top, recording)
    _confidence_panel(panel, recording)
    marked = {c.get_label(): len(c.get_offsets()) for c in top.collections}
    exits = sum(t.position == 0 for t in recording.trades)
    longs = sum(t.position > 0 for t in recording.trades)  # each fill here opens or flips
    assert marked.get("exit", 0) == exits
    assert marked["entry long"] == longs > 0
    assert marked["entry short"] == len(recording.trades) - longs - exits > 0
    (line,) = panel.get_lines()[:1]
    assert len(line.get_xdata()) == len(recording.decisions) > 0
    assert set(line.get_ydata()) <= {-1.0, 0.0, 1.0} | {
        s * d.composite_confidence for d in recording.decisions for s in (-1, 1)
    }
    plt.close(figure)
