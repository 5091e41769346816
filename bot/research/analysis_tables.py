"""The analysis.json document as tables: for analysis.md and report.html alike.

One function builds the rows and two render them, so the Markdown file and the HTML page can
never disagree about a number.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bot.research.event_study import FIGURES
from bot.research.report_html import Table, format_cell
from bot.research.signals import LABELS

_LABEL_COLUMNS = ("n", "n_raw", *FIGURES)


def tables(document: Mapping[str, Any]) -> list[Table]:
    """Label x horizon, information coefficient, and label x confidence bucket tables."""
    symbol = document.get("symbol", "")
    horizons: Sequence[str] = document["horizons"]
    by_label = Table(
        columns=("label", "horizon", *_LABEL_COLUMNS),
        rows=[
            (label, horizon, *(document["label"][label][horizon][c] for c in _LABEL_COLUMNS))
            for label in LABELS
            for horizon in horizons
        ],
        caption=f"{symbol}: returns after each label (bps of log return; interval of the "
        "abnormal mean)",
    )
    ic_columns = ("n", "spearman", "ci_low", "ci_high", "p_value", "p_value_holm")
    information = Table(
        columns=("horizon", *ic_columns),
        rows=[(h, *(document["ic"][h][c] for c in ic_columns)) for h in horizons],
        caption=f"{symbol}: Spearman IC of p_bullish - p_bearish against forward returns",
    )
    buckets = document.get("label_confidence", {})
    confidence = Table(
        columns=(
            "label",
            "confidence",
            "horizon",
            "n",
            "mean_abnormal_bps",
            "ci_low_bps",
            "ci_high_bps",
        ),
        rows=[
            (
                label,
                bucket,
                h,
                *(entry[h][c] for c in ("n", "mean_abnormal_bps", "ci_low_bps", "ci_high_bps")),
            )
            for label in LABELS
            for bucket, entry in buckets.get(label, {}).items()
            for h in horizons
        ],
        caption=f"{symbol}: by the model's confidence in its label",
    )
    return [by_label, information, confidence]


def markdown(document: Mapping[str, Any]) -> str:
    """analysis.md: the summary sentence, the counts, the warnings and every table, per symbol."""
    parts: list[str] = []
    for symbol, symbol_document in document.get("symbols", {"": document}).items():
        parts.append(f"## {symbol}\n\n{symbol_document['summary']}\n")
        counts = symbol_document["counts"]
        parts.append(
            f"Signals {counts['signals']}, studied {counts['studied']}, merged duplicates "
            f"{counts['merged_duplicates']}, before the bars {counts['before_bars']}, after "
            f"them {counts['after_bars']}, gaps in the bars {counts['bar_gaps']}.\n"
        )
        parts.extend(f"- {warning}" for warning in symbol_document["warnings"])
        for table in tables(symbol_document):
            parts.append(f"\n**{table.caption}**\n")
            parts.append("| " + " | ".join(table.columns) + " |")
            parts.append("|" + "---|" * len(table.columns))
            parts.extend(
                "| " + " | ".join(format_cell(cell) for cell in row) + " |" for row in table.rows
            )
        parts.append("")
    return "\n".join(parts) + "\n"
