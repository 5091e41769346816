"""Classification scores in the one label order, as numbers and as a readable report.

Accuracy alone flatters a model on news, where most items are neutral; macro-F1 weighs the rare
bearish and bullish classes (the ones that trade) as much as the common one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bot.manifest import LABELS


def evaluate_predictions(
    labels: Sequence[int], probs: np.ndarray, loss: float | None = None
) -> dict[str, Any]:
    """Scores for true `labels` against (N, 3) probabilities; fractions between 0 and 1."""
    from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

    truth = np.asarray(labels, dtype=np.int64)
    predicted = probs.argmax(axis=1) if len(probs) else np.zeros(0, dtype=np.int64)
    classes = [0, 1, 2]
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=classes, zero_division=0
    )
    result: dict[str, Any] = {
        "accuracy": float((truth == predicted).mean()) if len(truth) else 0.0,
        "macro_f1": float(
            f1_score(truth, predicted, labels=classes, average="macro", zero_division=0)
        ),
        "weighted_f1": float(
            f1_score(truth, predicted, labels=classes, average="weighted", zero_division=0)
        ),
        "n": len(truth),
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(LABELS)
        },
        "confusion_matrix": confusion_matrix(truth, predicted, labels=classes).tolist(),
        "labels": list(LABELS),
    }
    if len(truth):
        picked = probs[np.arange(len(truth)), truth]
        result["log_loss"] = float(-np.log(np.clip(picked, 1e-12, 1.0)).mean())
        result["mean_confidence"] = float(probs.max(axis=1).mean())
    if loss is not None:
        result["loss"] = float(loss)
    return result


def validation_by_set(
    parts: Sequence[Any], labels: Sequence[int], probs: np.ndarray
) -> dict[str, dict[str, float]]:
    """Each named set's (`training.splits.SetPart`) validation accuracy and macro-F1."""
    result = {}
    for part in parts:
        rows = part.rows("valid")
        scores = evaluate_predictions(labels[rows], probs[rows])
        result[part.name] = {
            "accuracy": round(scores["accuracy"], 5),
            "macro_f1": round(scores["macro_f1"], 5),
        }
    return result


def predicted_labels(scores: dict[str, Any]) -> tuple[str, ...]:
    """The classes a model predicted at least once (the confusion matrix's non-empty columns).

    One class alone means the model learnt no signal, whatever its accuracy says: on news that
    is mostly neutral, "always neutral" scores well and never trades.
    """
    columns = zip(*scores["confusion_matrix"], strict=True)
    return tuple(name for name, column in zip(LABELS, columns, strict=True) if sum(column))


def headline(scores: dict[str, Any]) -> str:
    return (
        f"accuracy {scores['accuracy']:.4f}  macro-F1 {scores['macro_f1']:.4f}  "
        f"weighted-F1 {scores['weighted_f1']:.4f}  (n={scores['n']})"
    )


def render_report(scores: dict[str, Any], title: str = "") -> str:
    """A plain-text report: headline scores, per-class table and the confusion matrix."""
    lines = []
    if title:
        lines.append(title)
    lines.append(headline(scores))
    lines.append("")
    lines.append(f"{'class':<10}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}")
    for name in LABELS:
        row = scores["per_class"][name]
        lines.append(
            f"{name:<10}{row['precision']:>10.4f}{row['recall']:>10.4f}{row['f1']:>10.4f}"
            f"{row['support']:>10d}"
        )
    lines.append("")
    lines.append("confusion matrix (rows: true, columns: predicted)")
    lines.append(" " * 10 + "".join(f"{name:>10}" for name in LABELS))
    for name, row in zip(LABELS, scores["confusion_matrix"], strict=True):
        lines.append(f"{name:<10}" + "".join(f"{value:>10d}" for value in row))
    return "\n".join(lines)
