"""Headlines with their labels and features: the table the three impact models learn from.

Which items are labelled against which symbol: one run trains on one symbol's bars (`--symbol`,
default the first `--bars`). Items tagged with that symbol and market-wide items (tagged with
none) are labelled against it; items tagged only with other symbols are left out and counted
(`other_symbols`), as the event study does. Market-wide news is labelled against the traded
symbol rather than per symbol because the model is served for the symbol it was trained on: a
BTC model answers every headline the BTC engine sees, the market-wide ones included.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from bot.errors import InputError
from bot.events import NewsItem
from bot.research.timeline import spell
from training.impact.features import FeatureSpec, MarketBars, compute_features
from training.impact.labels import DROP_REASONS, LabelOptions, label_items

_WHY = {
    "before_bars": "received before the first bar",
    "no_history": "without 30 days of bars before them (the drift and threshold)",
    "after_bars": "received after the last bar",
    "beyond_end": "whose horizon runs past the last bar",
    "gap": "whose horizon crosses a gap in the bars",
}


@dataclass
class ImpactData:
    """One row per labelled headline, in release order."""

    symbol: str
    spec: FeatureSpec
    options: LabelOptions
    texts: list[str]
    received: np.ndarray
    features: np.ndarray
    label: np.ndarray
    abnormal: np.ndarray
    window_end: np.ndarray
    counts: dict[str, int] = field(default_factory=dict)
    bar_interval_s: int = 0  # the bars' spacing the features were computed on

    def __len__(self) -> int:
        return len(self.texts)


def build_dataset(
    news: Sequence[NewsItem], bars: MarketBars, spec: FeatureSpec, options: LabelOptions
) -> ImpactData:
    """Label and describe every item that can be; a file pair that labels none is an error."""
    relevant = [item for item in news if not item.symbols or bars.symbol in item.symbols]
    received = np.fromiter(
        (int(item.received.timestamp()) for item in relevant), np.int64, len(relevant)
    )
    labels = label_items(bars.research(), received, options)
    counts = {
        "news_items": len(news),
        "other_symbols": len(news) - len(relevant),
        **labels.dropped,
        "labelled": len(labels),
    }
    if not len(labels):
        raise InputError(
            f"no headline could be labelled against {bars.symbol}'s bars "
            f"({_bars_span(bars)}): {describe_drops(counts) or 'no news given'}"
        )
    rows = labels.index
    at = received[rows]
    return ImpactData(
        symbol=bars.symbol,
        spec=spec,
        options=options,
        texts=[relevant[i].text for i in rows],
        received=at,
        features=compute_features(bars, at, spec),
        label=labels.label,
        abnormal=labels.abnormal,
        window_end=labels.window_end,
        counts=counts,
        bar_interval_s=bars.interval,
    )


def describe_drops(counts: dict[str, int]) -> str:
    """One line: how many items were left out, and why."""
    parts = [f"{counts[name]} {_WHY[name]}" for name in DROP_REASONS if counts.get(name)]
    if counts.get("other_symbols"):
        parts.append(f"{counts['other_symbols']} tagged only with other symbols")
    if not parts:
        return ""
    left = sum(counts.get(name, 0) for name in (*DROP_REASONS, "other_symbols"))
    return f"{left} of {counts['news_items']} items left out: " + ", ".join(parts)


def _bars_span(bars: MarketBars) -> str:
    from datetime import UTC, datetime

    def day(seconds: int) -> str:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M")

    return (
        f"{len(bars)} {spell(bars.interval)} bars from {day(int(bars.open_time[0]))} "
        f"to {day(int(bars.open_time[-1]))}"
    )
