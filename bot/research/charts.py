"""The event-study and calibration charts, drawn from the analysis.json document.

matplotlib is imported inside the functions (Agg backend), so importing the research package
stays cheap and needs no display.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bot.research.signals import LABELS

_COLOURS = {"bearish": "#c0392b", "neutral": "#7f8c8d", "bullish": "#27ae60"}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _values(items: list[float | None]) -> list[float]:
    return [float("nan") if value is None else float(value) for value in items]


def event_study_png(document: Mapping[str, Any], path: Path) -> Path:
    """Cumulative mean abnormal return from -24h to +24h around the item, per label, 95% bands."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(9, 5))
    for label in LABELS:
        path_data = document["event_path"][label]
        hours = path_data["offset_hours"]
        axes.plot(hours, _values(path_data["mean_bps"]), color=_COLOURS[label], label=label)
        axes.fill_between(
            hours,
            _values(path_data["ci_low_bps"]),
            _values(path_data["ci_high_bps"]),
            color=_COLOURS[label],
            alpha=0.15,
        )
    axes.axvline(0.0, color="black", linewidth=0.8)
    axes.axhline(0.0, color="black", linewidth=0.5, linestyle=":")
    axes.set_xlabel("hours from the item's entry bar")
    axes.set_ylabel("cumulative mean abnormal log return (bps)")
    axes.set_title(f"{document.get('symbol', '')}: around the news (95% day-block bands)")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return Path(path)


def calibration_png(document: Mapping[str, Any], path: Path, horizon: str | None = None) -> Path:
    """Mean abnormal return by confidence bucket per label at one horizon, with 95% intervals."""
    plt = _pyplot()
    chosen = horizon or document["horizons"][0]
    figure, axes = plt.subplots(figsize=(9, 5))
    buckets = document.get("label_confidence", {})
    for offset, label in enumerate(LABELS):
        names = list(buckets.get(label, {}))
        means, lows, highs = [], [], []
        for name in names:
            entry = buckets[label][name][chosen]
            mean = entry["mean_abnormal_bps"]
            means.append(float("nan") if mean is None else mean)
            lows.append(0.0 if mean is None else mean - entry["ci_low_bps"])
            highs.append(0.0 if mean is None else entry["ci_high_bps"] - mean)
        positions = [index + (offset - 1) * 0.25 for index in range(len(names))]
        axes.errorbar(
            positions,
            means,
            yerr=[lows, highs],
            fmt="o",
            capsize=3,
            color=_COLOURS[label],
            label=label,
        )
        axes.set_xticks(range(len(names)), names)
    axes.axhline(0.0, color="black", linewidth=0.5, linestyle=":")
    axes.set_xlabel("model confidence in its label")
    axes.set_ylabel(f"mean abnormal log return over {chosen} (bps)")
    axes.set_title(f"{document.get('symbol', '')}: calibration of the signals")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return Path(path)
