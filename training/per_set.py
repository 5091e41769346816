"""Scores per named data set: what `lorabot train` and `lorabot eval` report for each set.

One pooled score would let a big set hide a small one the model forgot (9,000 tweets beside 900
crypto headlines), so every table and `eval.json` carries each set's own accuracy, macro-F1 and
weighted F1, and its calibration (ECE before and after the temperature).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from training.calibration import calibration_entry, temper
from training.examples import Example, ReadOptions
from training.metrics import evaluate_predictions
from training.mix import DataSet, load_set
from training.splits import SetPart, Split

if TYPE_CHECKING:
    from training.classifier import SentimentClassifier

HEADLINE_KEYS = ("accuracy", "macro_f1", "weighted_f1", "n")


def parts_of(split: Split, name: str) -> tuple[SetPart, ...]:
    """The split's named sets, or the whole split as one set called `name`."""
    if split.sets:
        return split.sets
    return (
        SetPart(name, 1.0, len(split.train), len(split.valid), len(split.test), split.strategy),
    )


def score_rows(examples: Sequence[Example], raw: np.ndarray, temperature: float) -> dict[str, Any]:
    """Scores of (untempered) probabilities with the temperature applied, plus calibration."""
    labels = [int(e.label) for e in examples]
    scores = evaluate_predictions(labels, temper(raw, temperature))
    scores["calibration"] = calibration_entry(labels, raw, temperature)
    return scores


def per_set_scores(
    split: Split,
    name: str,
    valid_raw: np.ndarray,
    test_raw: np.ndarray | None,
    temperature: float,
    only: Collection[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """{set name: its test scores (valid if it has no test rows), with `valid` and `split`};
    `only` names the sets to score (the ones a teacher ensemble answered)."""
    result: dict[str, dict[str, Any]] = {}
    for part in parts_of(split, name):
        if only is not None and part.name not in only:
            continue
        rows = part.rows("valid")
        valid = score_rows(split.valid[rows], valid_raw[rows], temperature)
        test = None
        if part.n_test and test_raw is not None:
            rows = part.rows("test")
            test = score_rows(split.test[rows], test_raw[rows], temperature)
        main = dict(test or valid)
        main["split"] = "test" if test else "valid"
        main["valid"] = {key: valid[key] for key in HEADLINE_KEYS} | {
            "calibration": valid["calibration"]
        }
        result[part.name] = main
    return result


def headline_only(scores: dict[str, Any]) -> dict[str, Any]:
    return {key: scores[key] for key in HEADLINE_KEYS}


def render_sets_table(sets: dict[str, dict[str, Any]]) -> str:
    """One plain-text table, a row per set (what `lorabot eval` prints for several sets)."""
    lines = [
        f"{'set':<24}{'n':>7}{'accuracy':>10}{'macro-F1':>10}{'weighted-F1':>13}{'ECE':>8}",
    ]
    for name, scores in sets.items():
        calibration = scores.get("calibration", {})
        ece = calibration.get("ece_after")
        lines.append(
            f"{name[:23]:<24}{scores['n']:>7d}{scores['accuracy']:>10.4f}"
            f"{scores['macro_f1']:>10.4f}{scores['weighted_f1']:>13.4f}"
            + (f"{ece:>8.4f}" if ece is not None else f"{'':>8}")
        )
    return "\n".join(lines)


def sets_summary(sets: dict[str, dict[str, Any]], temperature: float, *, title: str = "") -> str:
    """The per-set lines of the progress output: scores and calibration of each set."""
    lines = [title or f"calibration: temperature {temperature:g} (fitted on the validation rows)"]
    for name, scores in sets.items():
        cal = scores["calibration"]
        lines.append(
            f"  {name} ({scores['split']}): accuracy {scores['accuracy']:.4f}  macro-F1 "
            f"{scores['macro_f1']:.4f}  (n={scores['n']})  ECE {cal['ece_before']:.4f} -> "
            f"{cal['ece_after']:.4f}"
        )
    return "\n".join(lines)


def write_eval_json(
    path: Path,
    scores: dict[str, Any],
    info: dict[str, Any] | None = None,
    valid: dict[str, Any] | None = None,
    *,
    sets: dict[str, dict[str, Any]] | None = None,
    temperature: float | None = None,
    teachers: dict[str, Any] | None = None,
) -> Path:
    """Scores with top-level `accuracy`, `macro_f1`, `weighted_f1` (fractions in [0, 1]); with
    `sets`, each named set's own under `sets.NAME`; with `temperature`, the calibration."""
    document: dict[str, Any] = dict(scores)
    if info is not None:
        document["data"] = info
    if valid is not None and valid is not scores:
        document["valid"] = {k: valid[k] for k in ("accuracy", "macro_f1", "weighted_f1", "n")}
    if sets is not None:
        document["sets"] = sets
    if temperature is not None:
        document["temperature"] = temperature
    if teachers is not None:
        document["teachers"] = teachers
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return path


def eval_rows(item: DataSet, options: ReadOptions) -> list[Example]:
    """What `lorabot eval` scores of a set: its test rows (a known set's held-out split, its
    `test` file or its rows from `test_from`), else all its rows."""
    rows, test = load_set(item, options, split="test")
    return test or rows


def evaluate_sets(
    classifier: SentimentClassifier,
    sets: Sequence[DataSet],
    options: ReadOptions,
    *,
    limit: int | None,
    seed: int,
) -> dict[str, dict[str, Any]]:
    """Each set scored by one loaded model, as served (its temperature applied), with the
    calibration before and after the temperature."""
    from training.data import sample

    result: dict[str, dict[str, Any]] = {}
    for item in sets:
        examples = sample(eval_rows(item, options), limit, seed)
        raw = classifier.predict_proba([e.text for e in examples], calibrated=False)
        result[item.name] = score_rows(examples, raw, classifier.temperature)
    return result
