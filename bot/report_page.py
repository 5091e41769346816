"""The backtest's report.html: one self-contained page (tables and the equity chart inline, no
network) with the summary, the luck figures and how to read them, the notes and the fills.

Written through `bot.research.report_html`, the page writer `lorabot analyze` uses too, so both
reports look alike and escape every text that came from outside.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from bot.events import iso
from bot.research.report_html import Block, Html, Image, Table, Text, write

if TYPE_CHECKING:
    from bot.recording import BacktestResult

MAX_FILL_ROWS = 500

READING = (
    "How to read the luck figures: a 95% interval that covers 0 means the run cannot tell its "
    "Sharpe (or return) from none. PSR is the probability that the true Sharpe is above 0 given "
    "the daily returns' length, skew and fat tails; DSR the same against the best Sharpe luck "
    "would give after N configurations tried on the same data (dsr_trials, from the trial "
    "ledger). lag_sharpe is the Sharpe with every decision a bar later: far lower, and the "
    "result lives on a speed a live bot may not have. null_p_value is the share of label "
    "permutations reaching the real Sharpe: above 0.05, the labels' timing explains nothing."
)


def write_page(
    result: BacktestResult,
    path: Path,
    plot: Path,
    rows: list[tuple[str, str]],
    charts: Mapping[str, object] | None = None,
) -> Path:
    """report.html from the summary rows (label, formatted value), the charts and the fills.
    `charts`: the price charts (`pngs`, a list of paths, and `interactive`, plotly's markup)."""
    from bot.report import SYMBOL_COLUMNS, symbol_rows

    metrics = result.metrics
    notes = metrics.get("notes") or []
    assert isinstance(notes, list)
    sections: dict[str, list[Block]] = {
        "Summary": [Table(columns=("metric", "value"), rows=rows)],
    }
    per_symbol = symbol_rows(metrics)
    if len(per_symbol) > 1:
        sections["Per symbol"] = [Table(columns=SYMBOL_COLUMNS, rows=per_symbol)]
    sections["Equity"] = [Image.from_file(plot, "equity, drawdown and composite confidence")]
    charts = charts or {}
    interactive = charts.get("interactive")
    if isinstance(interactive, str) and interactive:
        sections["Prices and trades (interactive)"] = [Html(interactive)]
    pngs = charts.get("pngs")
    if isinstance(pngs, list) and pngs:
        sections["Prices and trades"] = [
            Image.from_file(png, f"{Path(png).stem}: fills, composite and headlines")
            for png in pngs
        ]
    sections.update(
        {
            "Is it luck?": [Text(READING)],
            "Notes": [Text(str(note)) for note in notes] or [Text("none")],
        }
    )
    fills = [
        (
            iso(t.ts),
            t.symbol,
            t.side,
            format(t.qty, "f"),
            format(t.price, "f"),
            format(t.fee, "f"),
            t.reason,
        )
        for t in result.recording.trades[:MAX_FILL_ROWS]
    ]
    caption = f"first {MAX_FILL_ROWS} of {len(result.recording.trades)} fills (all in trades.csv)"
    sections["Fills"] = [
        Table(
            columns=("time", "symbol", "side", "qty", "price", "fee", "reason"),
            rows=fills,
            caption=caption if len(result.recording.trades) > MAX_FILL_ROWS else "",
        )
    ]
    names = " + ".join(result.symbols or [result.symbol])
    return write(path, f"lorabot backtest — {names}", sections)
