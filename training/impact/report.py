"""Out-of-sample scores of the impact models, and `impact_report.json` / `impact_report.md`.

Per model, on the test span only (every fold's test months for a walk-forward):
`{accuracy, macro_f1, ic, ic_ci_low, ic_ci_high, n_test}`. `ic` is Spearman's rank correlation
of the model's score p_up - p_down with the abnormal return the label was cut from, and its
interval is the event study's: a stationary bootstrap over calendar days (headlines cluster and
4h windows overlap, so items are not independent), 1,000 draws, seeded. Read an IC as evidence
of an edge only where the whole interval lies above zero.

The document also holds `split` (each fold's dates and sizes, purged and embargoed counts),
`embargo`, `horizon`, `threshold`, `symbol`, `features`, `label_counts` (train / test / all),
`counts` (the items left out, by reason), `seconds` (training time per model) and `edge`:
per model and predicted label (down / flat / up), the event study's `{n, mean_abnormal_bps,
ci_low_bps, ci_high_bps, hit_rate, pre_event_bps}` at the horizon.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bot.research.bootstrap import percentile_interval, stationary_weights
from bot.research.event_study import StudyOptions, analyze
from bot.research.rank_ic import resampled_spearman, spearman
from bot.research.signals import LABELS, SignalArrays
from bot.research.timeline import DAY, Bars
from training.metrics import evaluate_predictions

REPORT_JSON = "impact_report.json"
REPORT_MD = "impact_report.md"
PREDICTIONS_CSV = "impact_predictions.csv"
MODEL_ORDER = ("text", "numbers", "fusion", "sentiment")
LABEL_NAMES = ("down", "flat", "up")


def score(
    labels: np.ndarray,
    probs: np.ndarray,
    abnormal: np.ndarray,
    received: np.ndarray,
    *,
    draws: int = 1000,
    seed: int = 0,
    block_days: float = 5.0,
) -> dict[str, float | int | None]:
    """Accuracy, macro-F1 and the IC with its day-block interval, on these rows."""
    scores = evaluate_predictions([int(v) for v in labels], probs)
    signed = probs[:, 2] - probs[:, 0] if len(probs) else np.zeros(0)
    record: dict[str, float | int | None] = {
        "accuracy": round(float(scores["accuracy"]), 5),
        "macro_f1": round(float(scores["macro_f1"]), 5),
        "ic": None,
        "ic_ci_low": None,
        "ic_ci_high": None,
        "n_test": len(labels),
    }
    if len(labels) < 3:
        return record
    day = received // DAY
    unit = (day - day.min()).astype(np.int64)
    weights = stationary_weights(
        int(unit.max()) + 1, draws, block_days, np.random.default_rng(seed)
    )
    low, high = percentile_interval(resampled_spearman(signed, abnormal, unit, weights))
    record |= {"ic": _rounded(spearman(signed, abnormal)), "ic_ci_low": _rounded(low)}
    record["ic_ci_high"] = _rounded(high)
    return record


def edge_by_label(
    bars: Bars,
    received: np.ndarray,
    probs: np.ndarray,
    texts: Sequence[str],
    symbol: str,
    horizon: str,
) -> dict[str, dict[str, float | int | None]]:
    """The research issue's event study of one model's test predictions: per predicted label,
    the mean abnormal return over the horizon in bps with its day-block 95% interval (near-
    duplicate headlines merged, as `lorabot analyze` does)."""
    if len(received) < 2:
        return {}
    signals = SignalArrays.build(
        received=received,
        label=probs.argmax(axis=1),
        probs=probs,
        source=["impact"] * len(received),
        symbol=[symbol] * len(received),
        key=list(texts),
    )
    study = analyze(signals, {symbol: bars}, StudyOptions(horizons=(horizon,)))
    labels = study["label"]
    assert isinstance(labels, dict)
    keep = ("n", "mean_abnormal_bps", "ci_low_bps", "ci_high_bps", "hit_rate", "pre_event_bps")
    return {
        LABEL_NAMES[code]: {k: labels[name][horizon][k] for k in keep}
        for code, name in enumerate(LABELS)
    }


def write_report(out: Path, document: Mapping[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / REPORT_JSON).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    (out / REPORT_MD).write_text(render_markdown(document), encoding="utf-8")


def write_predictions(
    path: Path,
    received: np.ndarray,
    texts: Sequence[str],
    labels: np.ndarray,
    abnormal: np.ndarray,
    probs: Mapping[str, np.ndarray],
) -> None:
    """Every test item's label and each model's probabilities: the raw material of the scores
    (and what a reloaded model must reproduce)."""
    names = [m for m in MODEL_ORDER if m in probs]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        columns = [f"{m}_p_{c}" for m in names for c in ("down", "flat", "up")]
        writer.writerow(["received", "label", "abnormal_bps", *columns, "text"])
        for row in range(len(texts)):
            stamp = datetime.fromtimestamp(int(received[row]), UTC).isoformat()
            values = [f"{float(p):.9g}" for m in names for p in probs[m][row]]
            label = ("down", "flat", "up")[int(labels[row])]
            writer.writerow([stamp, label, f"{abnormal[row] * 1e4:.4f}", *values, texts[row]])


def render_markdown(document: Mapping[str, Any]) -> str:
    models: Mapping[str, Mapping[str, Any]] = document["models"]
    lines = [
        f"# Impact models: {document['symbol']}, horizon {document['horizon']}",
        "",
        f"Labels: abnormal log return over {document['horizon']} after the entry bar, "
        f"up / down beyond +-{document['threshold']} x the past 30 days' standard deviation "
        f"of {document['horizon']} returns. Embargo {document['embargo']}. "
        f"Features: {', '.join(document['features'])}.",
        "",
        "| model | accuracy | macro-F1 | IC | IC 95% interval | n test | training s |",
        "|---|---:|---:|---:|---|---:|---:|",
    ]
    seconds = document.get("seconds", {})
    for name in [m for m in MODEL_ORDER if m in models]:
        row = models[name]
        interval = (
            f"{row['ic_ci_low']:+.3f} to {row['ic_ci_high']:+.3f}"
            if row["ic_ci_low"] is not None
            else "n/a"
        )
        ic = f"{row['ic']:+.3f}" if row["ic"] is not None else "n/a"
        took = seconds.get(name)
        lines.append(
            f"| {name} | {row['accuracy']:.3f} | {row['macro_f1']:.3f} | {ic} | {interval} | "
            f"{row['n_test']} | {'' if took is None else f'{took:.1f}'} |"
        )
    edges = document.get("edge", {})
    if edges:
        lines += [
            "",
            f"Abnormal return over {document['horizon']} after each predicted label (bps, "
            "day-block 95% interval; the event study of `lorabot analyze`):",
            "",
            "| model | down: n | down: bps | up: n | up: bps |",
            "|---|---:|---|---:|---|",
        ]
        for name in [m for m in MODEL_ORDER if m in edges]:
            cells = [_edge_cells(edges[name].get(side, {})) for side in ("down", "up")]
            lines.append(f"| {name} | {cells[0]} | {cells[1]} |")
    lines += ["", "Split:", ""]
    for fold in document["split"]["folds"]:
        lines.append(
            f"- {fold['name']}: train before {fold['train_before']} ({fold['n_train']} items, "
            f"{fold['purged']} purged), test from {fold['test_from']}"
            f"{' to ' + fold['test_to'] if fold['test_to'] else ''} ({fold['n_test']} items, "
            f"{fold['embargoed']} in the embargo)"
        )
    counts = document["label_counts"]
    lines += [
        "",
        "Labels (down / flat / up): "
        + "; ".join(f"{part} {c['down']} / {c['flat']} / {c['up']}" for part, c in counts.items()),
    ]
    if document.get("left_out"):
        lines += ["", document["left_out"]]
    lines += ["", "An edge is claimed only where the IC interval excludes zero.", ""]
    return "\n".join(lines)


def _edge_cells(entry: Mapping[str, Any]) -> str:
    if not entry or entry.get("mean_abnormal_bps") is None:
        return f"{entry.get('n', 0)} | n/a"
    return (
        f"{entry['n']} | {entry['mean_abnormal_bps']:+.1f} ({entry['ci_low_bps']:+.1f} to "
        f"{entry['ci_high_bps']:+.1f})"
    )


def _rounded(value: float) -> float | None:
    return round(float(value), 5) if math.isfinite(value) else None
