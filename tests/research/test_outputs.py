"""analyze's output files: JSON that parses, Markdown tables, charts, a self-contained page."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from bot.research import report_html
from bot.research.analysis_output import write_analysis
from bot.research.event_study import StudyOptions, analyze
from bot.research.timeline import Bars
from tests.research.synthetic import synthetic


def test_write_analysis_writes_every_file(tmp_path: Path) -> None:
    data = synthetic(n_signals=400)
    eth = Bars.build(data.bars.open_time, data.bars.open / 20, data.bars.close / 20)
    document = analyze(
        data.signals,
        {"BTCUSDT": data.bars, "ETHUSDT": eth},
        StudyOptions(horizons=("1h", "4h"), draws=100),
    )
    written = write_analysis(document, tmp_path / "out")
    assert set(written) == {
        "analysis.json",
        "analysis.md",
        "event_study.png",
        "calibration.png",
        "ETHUSDT_event_study.png",
        "ETHUSDT_calibration.png",
        "report.html",
    }
    assert json.loads(written["analysis.json"].read_text())["label"] == document["label"]
    text = written["analysis.md"].read_text()
    assert "## BTCUSDT" in text and "## ETHUSDT" in text
    assert "| bullish | 4h |" in text
    for name in ("event_study.png", "calibration.png"):
        assert written[name].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = written["report.html"].read_text()
    assert page.count("data:image/png;base64,") == 4
    assert not re.search(r"(src|href)=\"https?:", page)
    assert html.escape(document["summary"]) in page


def test_report_escapes_outside_text_and_shows_missing_as_a_dash(tmp_path: Path) -> None:
    page = report_html.render(
        "t",
        {
            "<script>": [
                report_html.Text("a <b> & c"),
                report_html.Table(columns=("x",), rows=[(None,), (float("nan"),), (0.123456,)]),
            ]
        },
    )
    assert "<script>" not in page.split("</h1>", 1)[1]
    assert "a &lt;b&gt; &amp; c" in page
    assert page.count("<td>\u2014</td>") == 2
    assert "<td>0.1235</td>" in page
