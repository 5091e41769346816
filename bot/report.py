"""The backtest's run folder: metrics.json, trades.csv, decisions.csv, equity.csv, equity.png,
report.html and config.toml.

Everything written is a function of the inputs and the config: no run id, order id or wall-clock
column, numbers written with fixed formatting, so two runs of the same input are byte-identical
(trades.csv and metrics.json; the PNG depends on the matplotlib version). equity.csv has one row
per bar up to `MAX_EQUITY_ROWS`, then the last value of each coarser step, so that a million-bar
run does not write a million-row file; metrics are computed from every bar regardless.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime
from decimal import Decimal
from enum import Enum
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.config import Settings, dump_toml
from bot.events import Decision, Label, iso
from bot.recording import to_micros

if TYPE_CHECKING:
    from bot.engine import Engine
    from bot.recording import BacktestResult, Recording

MAX_EQUITY_ROWS = 20_000
EIGHT = Decimal("0.00000001")


def _plain(value: Decimal, quantum: Decimal | None = None) -> str:
    """Fixed-point text (never `0E-8`), optionally to a fixed number of places."""
    if quantum is not None:
        value = value.quantize(quantum)
    return format(value, "f")


def build_metrics(recording: Recording, engine: Engine, settings: Settings) -> dict[str, object]:
    from bot.metrics import compute

    store = engine.store
    assert store is not None, "a backtest's engine keeps its store"
    extra = {
        "n_news": float(recording.n_news),
        "n_signals": float(store.count("signals")),
        "n_orders": float(len(engine.orders)),
        "n_rejected": float(sum(1 for o in engine.orders.values() if o.status.value == "rejected")),
        "turnover": float(sum((t.qty * t.price for t in recording.trades), Decimal(0))),
    }
    extra = {k: int(v) if k.startswith("n_") else v for k, v in extra.items()}
    return compute(
        stamps=recording.stamps,
        equity=recording.equity,
        closes=recording.closes,
        exposed=recording.exposed,
        initial_cash=float(settings.engine.initial_cash),
        round_trips=recording.round_trips.closed,
        n_fills=len(recording.trades),
        fees=float(engine.portfolio.fees),
        extra=extra,
    )


def _number(value: Any) -> Any:
    if isinstance(value, dict):  # `symbols.<SYMBOL>`
        return {k: _number(v) for k, v in value.items()}
    if isinstance(value, float):
        if not math.isfinite(value):
            return 0.0
        return round(value, 10)
    return value


def write_report(result: BacktestResult) -> dict[str, Path]:
    out = result.out_dir
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "metrics": out / "metrics.json",
        "trades": out / "trades.csv",
        "decisions": out / "decisions.csv",
        "equity": out / "equity.csv",
        "plot": out / "equity.png",
        "config": out / "config.toml",
        "html": out / "report.html",
        "prices": out / "prices.csv",
        "headlines": out / "headlines.csv",
    }
    metrics = {k: _number(v) for k, v in result.metrics.items()}
    paths["metrics"].write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    _write_trades(paths["trades"], result.recording)
    write_decisions(paths["decisions"], result.recording.decisions)
    initial = float(result.settings.engine.initial_cash)
    hold = _hold(result, initial)
    _write_equity(paths["equity"], result.recording, hold)
    _plot(paths["plot"], result.recording, hold, " + ".join(result.symbols or [result.symbol]))
    paths["config"].write_text(dump_toml(result.settings.to_toml_dict()), encoding="utf-8")
    charts = _price_charts(result, paths)
    from bot.report_page import write_page

    write_page(result, paths["html"], paths["plot"], summary_rows(result.metrics), charts)
    return paths


def _hold(result: BacktestResult, initial: float) -> list[float]:
    """Buy-and-hold at each recorded bar: the equal-weight basket of the run's symbols (one
    symbol: that symbol)."""
    recording = result.recording
    if result.prices is not None and len(result.symbols) > 1:
        from bot.portfolio_figures import basket_equity

        return basket_equity(result.prices, result.symbols, recording.stamps, initial)
    first = recording.closes[0] if recording.closes else 0.0
    return [initial * close / first if first else 0.0 for close in recording.closes]


def _price_charts(result: BacktestResult, paths: dict[str, Path]) -> dict[str, object]:
    """prices.csv and headlines.csv, then the price charts drawn back from the folder's files
    (as `lorabot plot` draws them): PNG paths and the interactive markup."""
    if result.prices is None:
        return {}
    from bot import chart_data
    from bot.trade_charts import price_pngs
    from bot.trade_charts_html import fragments

    symbols = result.symbols or [result.symbol]
    chart_data.write_prices(paths["prices"], result.prices, symbols)
    chart_data.write_headlines(paths["headlines"], result.recording.decisions, result.titles)
    data = chart_data.load(result.out_dir)
    pngs = price_pngs(data, result.out_dir)
    for png in pngs:
        paths[png.stem] = png
    return {"pngs": pngs, "interactive": fragments(data)}


def _write_trades(path: Path, recording: Recording) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(
            [
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
            ]
        )
        for t in recording.trades:
            writer.writerow(
                [
                    iso(t.ts),
                    t.symbol,
                    t.side,
                    _plain(t.qty),
                    _plain(t.price),
                    _plain(t.qty * t.price),
                    _plain(t.fee),
                    t.liquidity,
                    _plain(t.realised_pnl, EIGHT),
                    _plain(t.position),
                    _plain(t.avg_entry, EIGHT),
                    t.reason,
                ]
            )


def _cell(value: object) -> str:
    """A decision field as CSV text: times ISO-8601, enums by name, nothing as empty."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, Label):
        return value.name.lower()
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, Decimal):
        return _plain(value)
    return str(value)


def write_decisions(path: Path, decisions: Sequence[Decision]) -> None:
    """Every decision record of the run, in the order the engine published them: the answer to
    "why did this headline not trade?" for each item."""
    columns = [f.name for f in fields(Decision)]
    values = attrgetter(*columns)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        for decision in decisions:
            writer.writerow([_cell(value) for value in values(decision)])


def _write_equity(path: Path, recording: Recording, hold: Sequence[float]) -> None:
    from bot.metrics import drawdown_series

    n = len(recording.stamps)
    step = max(1, math.ceil(n / MAX_EQUITY_ROWS))
    drawdown = drawdown_series(recording.equity)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["timestamp", "equity", "drawdown", "buy_and_hold", "close", "exposed"])
        indices = list(range(step - 1, n, step))
        if n and (not indices or indices[-1] != n - 1):
            indices.append(n - 1)
        for i in indices:
            writer.writerow(
                [
                    iso(recording.time_at(i)),
                    f"{recording.equity[i]:.8f}",
                    f"{drawdown[i]:.8f}",
                    f"{hold[i]:.8f}",
                    f"{recording.closes[i]:.8f}",
                    int(recording.exposed[i]),
                ]
            )


def _plot(path: Path, recording: Recording, hold_values: Sequence[float], symbol: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from bot.metrics import drawdown_series

    n = len(recording.stamps)
    step = max(1, math.ceil(n / 5000))  # a plot needs no more points than it has pixels
    times = [recording.time_at(i) for i in range(0, n, step)]
    equity = np.asarray(recording.equity)[::step]
    hold = np.asarray(hold_values)[::step]
    figure, (top, bottom, panel) = plt.subplots(
        3, 1, figsize=(10, 7.5), sharex=True, gridspec_kw={"height_ratios": [3, 1, 1]}
    )
    top.plot(times, equity, label="strategy", color="#1f77b4", linewidth=1.2)
    top.plot(times, hold, label=f"buy and hold {symbol}", color="#999999", linewidth=1.0)
    _mark_trades(top, recording)
    top.set_ylabel("equity")
    top.legend(loc="upper left")
    top.grid(alpha=0.3)
    top.set_title(f"lorabot backtest — {symbol}")
    bottom.fill_between(
        times, -drawdown_series(equity) * 100, 0, color="#d62728", alpha=0.4, label="strategy"
    )
    bottom.plot(
        times, -drawdown_series(hold) * 100, color="#999999", linewidth=0.8, label="buy and hold"
    )
    bottom.set_ylabel("drawdown %")
    bottom.grid(alpha=0.3)
    bottom.legend(loc="lower left")
    _confidence_panel(panel, recording)
    figure.autofmt_xdate()
    figure.tight_layout()
    figure.savefig(path, dpi=100, metadata={"Software": None, "Creation Time": None})
    plt.close(figure)


def _mark_trades(axes: Any, recording: Recording) -> None:
    """Entries (a position opened, grown or flipped: ▲ long, ▼ short) and exits (✕, back to
    flat) on the equity line, at the equity of the bar each fill happened in."""
    import bisect

    entries: dict[str, tuple[list[datetime], list[float]]] = {
        "long": ([], []),
        "short": ([], []),
        "exit": ([], []),
    }
    previous: dict[str, Decimal] = {}
    for trade in recording.trades:
        if trade.reason == "funding":
            continue
        before = previous.get(trade.symbol, Decimal(0))
        previous[trade.symbol] = trade.position
        if trade.position == 0:
            kind = "exit"
        elif abs(trade.position) > abs(before) or trade.position * before < 0:  # grown or flipped
            kind = "long" if trade.position > 0 else "short"
        else:
            continue  # a partial reduction: neither an entry nor an exit
        index = min(bisect.bisect_left(recording.stamps, to_micros(trade.ts)), recording.n_bars - 1)
        if index < 0:
            continue
        entries[kind][0].append(trade.ts)
        entries[kind][1].append(recording.equity[index])
    styles = {
        "long": ("^", "#2ca02c", "entry long"),
        "short": ("v", "#d62728", "entry short"),
        "exit": ("x", "#333333", "exit"),
    }
    for kind, (when, where) in entries.items():
        if when:
            marker, color, label = styles[kind]
            axes.scatter(when, where, marker=marker, color=color, s=28, zorder=3, label=label)


def _confidence_panel(axes: Any, recording: Recording) -> None:
    """The composite confidence the strategy acted on, signed: + bullish, − bearish."""
    signs: dict[Label | None, float] = {Label.BULLISH: 1.0, Label.BEARISH: -1.0}
    when = [d.ts for d in recording.decisions]
    value = [
        signs.get(d.composite_label, 0.0) * d.composite_confidence for d in recording.decisions
    ]
    if when:
        axes.step(when, value, where="post", color="#9467bd", linewidth=0.8)
    axes.axhline(0, color="#999999", linewidth=0.5)
    axes.set_ylim(-1.05, 1.05)
    axes.set_ylabel("composite")
    axes.grid(alpha=0.3)


SUMMARY_KEYS = [
    ("total_return", "Total return", "signed"),
    ("buy_and_hold_return", "Buy and hold", "signed"),
    ("annual_return", "Annual return", "signed"),
    ("sharpe", "Sharpe (daily, √365)", "num"),
    ("sortino", "Sortino", "num"),
    ("max_drawdown", "Max drawdown", "pct"),
    ("win_rate", "Win rate", "pct"),
    ("profit_factor", "Profit factor", "num"),
    ("n_trades", "Fills", "int"),
    ("n_round_trips", "Round trips", "int"),
    ("exposure", "Exposure", "pct"),
    ("fees_paid", "Fees paid", "money"),
    ("final_equity", "Final equity", "money"),
    ("n_news", "News items", "int"),
    ("n_signals", "Signals", "int"),
    ("n_bars", "Bars", "int"),
    ("gross_return", "Gross return (before costs)", "signed"),
    ("sharpe_ci_low", "Sharpe 95% CI low", "num"),
    ("sharpe_ci_high", "Sharpe 95% CI high", "num"),
    ("total_return_ci_low", "Total return 95% CI low", "signed"),
    ("total_return_ci_high", "Total return 95% CI high", "signed"),
    ("psr", "PSR (P[Sharpe > 0])", "num"),
    ("dsr", "DSR (deflated)", "num"),
    ("dsr_trials", "Trials on this data (N)", "int"),
    ("lag_sharpe", "Sharpe, decisions a bar later", "num"),
    ("lag_minutes_sharpe", "Sharpe, decisions --lag min later", "num"),
    ("null_p_value", "Null p-value (permuted labels)", "num"),
    ("coin_flip_p_value", "Null p-value (coin flips)", "num"),
    ("null_trials", "Null trials", "int"),
]


def format_value(value: object, kind: str) -> str:
    number = float(value)  # type: ignore[arg-type]
    if kind == "signed":
        return f"{number * 100:+.2f}%"
    if kind == "pct":
        return f"{number * 100:.2f}%"
    if kind == "int":
        return f"{int(number):,}"
    if kind == "money":
        return f"{number:,.2f}"
    return f"{number:.2f}"


def summary_rows(metrics: dict[str, object]) -> list[tuple[str, str]]:
    """The summary's (label, formatted value) rows, for the terminal table and report.html."""
    return [
        (label, format_value(metrics[key], kind))
        for key, label, kind in SUMMARY_KEYS
        if key in metrics
    ]


SYMBOL_COLUMNS = ("symbol", "PnL", "contribution", "fills", "fees", "funding", "buy and hold")


def symbol_rows(metrics: dict[str, object]) -> list[tuple[str, ...]]:
    """One row per symbol of `metrics["symbols"]`, formatted (terminal and report.html)."""
    figures = metrics.get("symbols")
    if not isinstance(figures, dict):
        return []
    return [
        (
            name,
            format_value(f["pnl"], "money"),
            format_value(f["return_contribution"], "signed"),
            format_value(f["n_trades"], "int"),
            format_value(f["fees_paid"], "money"),
            format_value(f["funding_paid"], "money"),
            format_value(f["buy_and_hold_return"], "signed"),
        )
        for name, f in figures.items()
    ]


def print_summary(result: BacktestResult, paths: dict[str, Path]) -> None:
    """The summary table and the report's path, on stdout (the command's result)."""
    from rich.console import Console
    from rich.table import Table

    console = Console(soft_wrap=True)
    names = " + ".join(result.symbols or [result.symbol])
    table = Table(title=f"Backtest {names}", show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for label, value in summary_rows(result.metrics):
        table.add_row(label, value)
    console.print(table)
    per_symbol = symbol_rows(result.metrics)
    if len(per_symbol) > 1:
        by_symbol = Table(title="Per symbol", show_header=True, header_style="bold")
        for column in SYMBOL_COLUMNS:
            by_symbol.add_column(column, justify="left" if column == "symbol" else "right")
        for row in per_symbol:
            by_symbol.add_row(*row)
        console.print(by_symbol)
    if result.metrics.get("training_overlap"):
        console.print("[bold]the replay overlaps the model's training data: see the note[/bold]")
    notes = result.metrics.get("notes") or []
    for note in notes:  # type: ignore[attr-defined]
        console.print(f"[dim]note: {note}[/dim]")
    console.print(f"report: {result.out_dir}")
