"""The interactive price charts (plotly), for report.html and `lorabot plot`'s trades.html.

Per symbol: closes with every fill as a marker (hover: time, side, qty, price, reason), the
composite confidence below, and each headline that moved the target as a point on it (hover:
its title). plotly's JavaScript is inlined once per page, so the file opens with no network;
the plotly logo link and every other outside reference is switched off.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from bot.chart_data import ChartData
from bot.trade_charts import reason_group

MAX_POINTS = 20_000  # per symbol's price line: a browser needs no more
_COLOURS = {"long": "#2ca02c", "short": "#d62728", "exit": "#333333", "reduce": "#ff7f0e"}
_SYMBOLS = {"long": "triangle-up", "short": "triangle-down", "exit": "x", "reduce": "circle"}
_CONFIG = {"displaylogo": False, "responsive": True}


def figure(data: ChartData, symbol: str) -> Any:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.72, 0.28], vertical_spacing=0.04
    )
    prices = data.prices[symbol]
    step = max(1, len(prices) // MAX_POINTS)
    fig.add_trace(
        go.Scatter(
            x=prices.stamps[::step],
            y=prices.values[::step],
            mode="lines",
            name=symbol,
            line={"color": "#555555", "width": 1},
        ),
        row=1,
        col=1,
    )
    trades = data.trades_of(symbol)
    for kind in ("long", "short", "exit", "reduce"):
        chosen = [t for t in trades if t.kind == kind]
        if not chosen:
            continue
        fig.add_trace(
            go.Scatter(
                x=[t.ts for t in chosen],
                y=[float(t.price) for t in chosen],
                mode="markers",
                name={"long": "entry long", "short": "entry short"}.get(kind, kind),
                marker={"symbol": _SYMBOLS[kind], "size": 9, "color": _COLOURS[kind]},
                text=[
                    f"{t.side} {t.qty} @ {t.price}<br>position {t.position}<br>"
                    f"{html.escape(t.reason)} ({html.escape(reason_group(t.reason))})"
                    for t in chosen
                ],
                hovertemplate="%{x}<br>%{text}<extra></extra>",
            ),
            row=1,
            col=1,
        )
    composite = data.composite.get(symbol)
    if composite is not None and len(composite):
        fig.add_trace(
            go.Scatter(
                x=composite.stamps,
                y=composite.values,
                mode="lines",
                line={"shape": "hv", "color": "#9467bd", "width": 1},
                name="composite",
            ),
            row=2,
            col=1,
        )
    headlines = data.headlines_of(symbol)
    if headlines:
        fig.add_trace(
            go.Scatter(
                x=[h.ts for h in headlines],
                y=[h.composite for h in headlines],
                mode="markers",
                name="headline that moved the target",
                marker={"size": 7, "color": "#1f77b4"},
                text=[
                    f"{html.escape(h.source)} · {h.label} {h.confidence:.2f}<br>"
                    f"{html.escape(h.title)}"
                    for h in headlines
                ],
                hovertemplate="%{x}<br>%{text}<extra></extra>",
            ),
            row=2,
            col=1,
        )
    fig.update_yaxes(title_text="close", row=1, col=1)
    fig.update_yaxes(title_text="composite", range=[-1.05, 1.05], row=2, col=1)
    fig.update_layout(
        title=f"{symbol}: fills and the news that moved the target",
        height=620,
        margin={"l": 60, "r": 20, "t": 50, "b": 40},
        hovermode="closest",
    )
    return fig


def fragments(data: ChartData) -> str:
    """The charts of every symbol as HTML divs, plotly's JavaScript inlined in the first."""
    parts = []
    for index, symbol in enumerate(data.symbols):
        parts.append(
            figure(data, symbol).to_html(
                full_html=False,
                include_plotlyjs=index == 0,
                include_mathjax=False,
                config=_CONFIG,
            )
        )
    return "\n".join(parts)


def write_page(data: ChartData, path: Path, title: str) -> Path:
    """A self-contained page of the interactive charts (`lorabot plot`'s trades.html)."""
    body = fragments(data)
    path = Path(path)
    path.write_text(
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head><body>\n<h1>{html.escape(title)}</h1>\n"
        f"{body}\n</body></html>\n",
        encoding="utf-8",
    )
    return path
