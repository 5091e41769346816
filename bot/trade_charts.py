"""Price charts of a run, one PNG per symbol (`price_<SYMBOL>.png`): freqtrade's
`plot-dataframe`, for news.

Top: the symbol's closes with every fill marked where it filled (▲ entry long, ▼ entry short,
✕ exit to flat, • a reduction), coloured by the reason its order gave (the vote's label, or the
protective exit that closed it). Middle: the composite confidence the strategy acted on, signed
(+ bullish, − bearish). Below: the headlines that moved the target, by time, as text. Drawn from
`bot.chart_data.ChartData`, i.e. from the run folder's files.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bot.chart_data import ChartData, TradeMark

MAX_HEADLINES = 30
LINE_BUCKETS = 2_000  # a PNG's price line: the low and high of each, about two a pixel column
MAX_LABELLED = 40  # above this many fills in the window, reasons go in the legend only
_MARKERS = {"long": "^", "short": "v", "exit": "X", "reduce": "o"}
_PALETTE = ("#1f77b4", "#8c564b", "#e377c2", "#bcbd22", "#17becf", "#7f7f7f")
_KNOWN = {  # the reasons every run has, always in the same colour
    "bullish": "#2ca02c",
    "bearish": "#d62728",
    "neutral": "#7f7f7f",
    "stop_loss": "#ff7f0e",
    "trailing_stop": "#ffbb78",
    "take_profit": "#9467bd",
    "max_hold": "#17becf",
    "liquidation": "#000000",
}


def reason_group(reason: str) -> str:
    """A fill's reason without its numbers ("bullish 0.73" -> "bullish"): the colour key."""
    words = re.sub(r"[-+]?\d[\d.,%]*", "", reason).replace(":", " ").split()
    return " ".join(words[:3]) or "other"


def price_png(data: ChartData, symbol: str, path: Path) -> Path:
    plt = _pyplot()
    prices = data.prices[symbol]
    headlines = data.headlines_of(symbol)
    shown = headlines[:MAX_HEADLINES]
    text_lines = [_headline_line(h) for h in shown]
    if len(headlines) > len(shown):
        text_lines.append(f"... and {len(headlines) - len(shown)} more (headlines.csv)")
    if not text_lines:
        text_lines = ["no headline moved the target in this window"]
    text_height = 0.125 * len(text_lines) + 0.3
    figure = plt.figure(figsize=(11, 7.0 + text_height))
    # the third row is a spacer for the dates under the composite panel
    grid = figure.add_gridspec(4, 1, height_ratios=[3.2, 1.1, 0.55, text_height], hspace=0.1)
    top = figure.add_subplot(grid[0])
    middle = figure.add_subplot(grid[1], sharex=top)
    bottom = figure.add_subplot(grid[3])
    stamps, values = envelope(prices.stamps, prices.values, LINE_BUCKETS)
    top.plot(stamps, values, color="#555555", linewidth=0.9, label=symbol)
    _mark(top, data.trades_of(symbol))
    window = ""
    if data.start is not None or data.end is not None:
        first = data.start.date() if data.start else "start"
        last = data.end.date() if data.end else "end"
        window = f" ({first} to {last})"
    top.set_title(f"{symbol}: fills and the news that moved the target{window}")
    bottom.set_title(
        "headlines that moved the target: signal label and confidence -> composite",
        fontsize=8,
        loc="left",
    )
    top.set_ylabel("close")
    top.grid(alpha=0.3)
    top.legend(loc="upper left", fontsize=7, ncol=2)
    composite = data.composite.get(symbol)
    if composite is not None and len(composite):
        middle.step(composite.stamps, composite.values, where="post", color="#9467bd", lw=0.8)
    for h in headlines:
        middle.axvline(h.ts, color="#bbbbbb", linewidth=0.5, zorder=0)
    middle.axhline(0, color="#999999", linewidth=0.5)
    middle.set_ylim(-1.05, 1.05)
    middle.set_ylabel("composite")
    middle.grid(alpha=0.3)
    bottom.axis("off")
    bottom.text(
        0.0, 1.0, "\n".join(text_lines), va="top", ha="left", fontsize=7, family="monospace"
    )
    top.tick_params(labelbottom=False)
    for label in middle.get_xticklabels():
        label.set_rotation(25)
        label.set_horizontalalignment("right")
    figure.savefig(
        path,
        dpi=100,
        bbox_inches="tight",
        metadata={"Software": None, "Creation Time": None},
    )
    plt.close(figure)
    return Path(path)


def price_pngs(data: ChartData, out_dir: Path) -> list[Path]:
    """`price_<SYMBOL>.png` for every symbol of the run, in `out_dir`."""
    return [price_png(data, s, Path(out_dir) / f"price_{s}.png") for s in data.symbols]


def _mark(axes: Any, trades: list[TradeMark]) -> None:
    groups = sorted({reason_group(t.reason) for t in trades})
    others = [g for g in groups if g.split()[0] not in _KNOWN]
    colour = {g: _KNOWN.get(g.split()[0], "") for g in groups}
    colour.update({g: _PALETTE[i % len(_PALETTE)] for i, g in enumerate(others)})
    seen: set[tuple[str, str]] = set()
    for trade in trades:
        group = reason_group(trade.reason)
        key = (trade.kind, group)
        label = None if key in seen else f"{trade.kind}: {group}"
        seen.add(key)
        axes.scatter(
            [trade.ts],
            [float(trade.price)],
            marker=_MARKERS[trade.kind],
            color=colour[group],
            s=36,
            zorder=3,
            label=label,
            edgecolors="black",
            linewidths=0.4,
        )
        if len(trades) <= MAX_LABELLED:
            axes.annotate(
                trade.reason,
                (trade.ts, float(trade.price)),
                textcoords="offset points",
                xytext=(4, 6 if trade.kind != "exit" else -10),
                fontsize=6,
                color=colour[group],
            )


def envelope(
    stamps: npt.NDArray[np.datetime64], values: npt.NDArray[np.float64], buckets: int
) -> tuple[npt.NDArray[np.datetime64], npt.NDArray[np.float64]]:
    """The points a line drawn at this width shows: each bucket's lowest and highest, in time
    order, and the first and last point (a spike survives, unlike every k-th point). Up to
    2 x `buckets` points pass whole."""
    n = len(values)
    if n <= 2 * buckets:
        return stamps, values
    size = -(-n // buckets)  # ceil
    starts = np.arange(0, n, size)
    lows = np.minimum.reduceat(values, starts)
    highs = np.maximum.reduceat(values, starts)
    chosen = [0, n - 1]
    for first, low, high in zip(starts.tolist(), lows.tolist(), highs.tolist(), strict=True):
        part = values[first : first + size]
        chosen += (first + int(np.argmax(part == low)), first + int(np.argmax(part == high)))
    index = np.unique(np.array(chosen))
    return stamps[index], values[index]


def _headline_line(h: Any) -> str:
    title = textwrap.shorten(h.title or "(no title)", width=110, placeholder="...")
    vote = f"{h.composite_label} {h.composite_confidence:.2f}"
    return f"{h.ts:%Y-%m-%d %H:%M}  {h.label:<7} {h.confidence:.2f} -> {vote:<12} {title}"


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
