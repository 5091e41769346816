"""Everything `lorabot analyze --out DIR` writes, from one analysis.json document.

analysis.json (every number, the layout of bot/research/event_study.py), analysis.md (the
tables), event_study.png and calibration.png for the first symbol (and `<SYMBOL>_*.png` for
each further one), and report.html with all of it inline.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bot.research import charts, report_html
from bot.research.analysis_tables import markdown, tables


def write_analysis(document: Mapping[str, Any], out: Path) -> dict[str, Path]:
    """Write every output file into `out` (created) and return them by name."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    written["analysis.json"] = out / "analysis.json"
    written["analysis.json"].write_text(
        json.dumps(document, indent=2, allow_nan=False) + "\n", encoding="utf-8"
    )
    written["analysis.md"] = out / "analysis.md"
    written["analysis.md"].write_text(markdown(document), encoding="utf-8")
    sections: dict[str, list[report_html.Block]] = {}
    symbols: Mapping[str, Mapping[str, Any]] = document.get("symbols", {"": document})
    for index, (symbol, symbol_document) in enumerate(symbols.items()):
        prefix = "" if index == 0 else f"{symbol}_"
        event = charts.event_study_png(symbol_document, out / f"{prefix}event_study.png")
        calibration = charts.calibration_png(symbol_document, out / f"{prefix}calibration.png")
        written[event.name], written[calibration.name] = event, calibration
        blocks: list[report_html.Block] = [report_html.Text(symbol_document["summary"])]
        blocks.extend(report_html.Text(warning) for warning in symbol_document["warnings"])
        blocks.extend(tables(symbol_document))
        blocks.append(report_html.Image.from_file(event, "event study"))
        blocks.append(report_html.Image.from_file(calibration, "calibration"))
        sections[symbol or "analysis"] = blocks
    written["report.html"] = report_html.write(
        out / "report.html", "Does the news move the price?", sections
    )
    return written
