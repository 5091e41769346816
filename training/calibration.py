"""Calibrated confidence: a temperature fitted on validation data, and how to see that it worked.

The vote treats a model's probabilities as evidence, so a model that says 0.98 when it is right
70% of the time trades on noise as if it were news. Dividing the logits by one temperature T
(Guo et al. 2017, "On calibration of modern neural networks") fixes most of that without
changing a single answer: the argmax of z/T is the argmax of z, so accuracy and F1 are untouched
and only the confidence moves. T is fitted after training by minimising the validation
log-loss, stored in the manifest (`temperature`) and applied by every backend.

The expected calibration error (ECE) is the share-weighted gap between confidence and accuracy
over equal-width confidence bins; the reliability diagram draws the same bins.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

BINS = 10
T_BOUNDS = (0.05, 20.0)


def temper(probs: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log(p) / T): the same as softmax(logits / T), from probabilities."""
    if temperature == 1.0 or not len(probs):
        return probs
    logs = np.log(np.clip(probs, 1e-300, 1.0)) / temperature
    logs -= logs.max(axis=1, keepdims=True)
    scaled = np.exp(logs)
    result: np.ndarray = scaled / scaled.sum(axis=1, keepdims=True)
    return result


def nll(labels: Sequence[int], probs: np.ndarray) -> float:
    picked = probs[np.arange(len(labels)), np.asarray(labels, dtype=np.int64)]
    return float(-np.log(np.clip(picked, 1e-300, 1.0)).mean())


def fit_temperature(labels: Sequence[int], probs: np.ndarray) -> float:
    """The T in [0.05, 20] that minimises the log-loss of `probs` tempered by T."""
    if not len(labels):
        return 1.0
    from scipy.optimize import minimize_scalar

    low, high = np.log(T_BOUNDS[0]), np.log(T_BOUNDS[1])
    found = minimize_scalar(
        lambda log_t: nll(labels, temper(probs, float(np.exp(log_t)))),
        bounds=(low, high),
        method="bounded",
        options={"xatol": 1e-4},
    )
    return round(float(np.exp(found.x)), 4)


def reliability(labels: Sequence[int], probs: np.ndarray, bins: int = BINS) -> list[dict[str, Any]]:
    """Equal-width bins of top-class confidence: count, mean confidence, accuracy."""
    truth = np.asarray(labels, dtype=np.int64)
    confidence = probs.max(axis=1) if len(probs) else np.zeros(0)
    correct = probs.argmax(axis=1) == truth if len(probs) else np.zeros(0, dtype=bool)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    rows = []
    for k in range(bins):
        inside = which == k
        count = int(inside.sum())
        rows.append(
            {
                "low": round(float(edges[k]), 4),
                "high": round(float(edges[k + 1]), 4),
                "n": count,
                "confidence": round(float(confidence[inside].mean()), 5) if count else None,
                "accuracy": round(float(correct[inside].mean()), 5) if count else None,
            }
        )
    return rows


def ece(labels: Sequence[int], probs: np.ndarray, bins: int = BINS) -> float:
    """Expected calibration error: sum over bins of |accuracy - confidence| x share of rows."""
    total = len(labels)
    if not total:
        return 0.0
    gap = 0.0
    for row in reliability(labels, probs, bins):
        if row["n"]:
            gap += abs(row["accuracy"] - row["confidence"]) * row["n"] / total
    return round(gap, 5)


def calibration_entry(labels: Sequence[int], raw: np.ndarray, temperature: float) -> dict[str, Any]:
    """ECE and reliability bins of one set's rows, before and after the temperature."""
    tempered = temper(raw, temperature)
    return {
        "n": len(labels),
        "ece_before": ece(labels, raw),
        "ece_after": ece(labels, tempered),
        "log_loss_before": round(nll(labels, raw), 5) if len(labels) else 0.0,
        "log_loss_after": round(nll(labels, tempered), 5) if len(labels) else 0.0,
        "bins_before": reliability(labels, raw),
        "bins_after": reliability(labels, tempered),
    }


def reliability_chart(path: Path, entries: dict[str, dict[str, Any]], temperature: float) -> Path:
    """One panel per set: accuracy against confidence per bin, before and after, and the
    diagonal a calibrated model follows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    count = max(1, len(entries))
    figure, axes = plt.subplots(1, count, figsize=(4.2 * count, 4.2), squeeze=False)
    for axis, (name, entry) in zip(axes[0], entries.items(), strict=False):
        axis.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
        for key, colour, label in (
            ("bins_before", "tab:red", f"T=1 (ECE {entry['ece_before']:.3f})"),
            ("bins_after", "tab:blue", f"T={temperature:g} (ECE {entry['ece_after']:.3f})"),
        ):
            points = [(b["confidence"], b["accuracy"]) for b in entry[key] if b["n"]]
            if points:
                xs, ys = zip(*points, strict=True)
                axis.plot(xs, ys, marker="o", color=colour, label=label)
        axis.set_title(f"{name} (n={entry['n']})")
        axis.set_xlabel("confidence")
        axis.set_ylabel("accuracy")
        axis.set_xlim(0.3, 1.0)
        axis.set_ylim(0.0, 1.0)
        axis.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path
