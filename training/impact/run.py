"""Train the three impact models on the same folds and score them out of sample.

Per fold: the last tenth of the training span (chronologically) validates (early stopping); the
text model is fine-tuned first, the fusion reads its encoder's pooled embeddings, the numbers
model reads the features alone. Every fold's test predictions are kept, so a walk-forward scores
a whole history out of sample; the models saved are the last fold's (trained on the most data).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bot.config import TrainingConfig
from bot.errors import InputError
from bot.events import iso
from bot.research.timeline import spell
from training.impact.dataset import ImpactData
from training.impact.heads import ENCODER_FOLDER, HeadModel, HeadSettings, fit_head
from training.impact.split import Fold
from training.impact.text import copy_encoder, pooled_embeddings, train_text

MODELS = ("text", "numbers", "fusion")
MIN_TRAIN = 20
LABEL_MEANING = {"bearish": "down", "neutral": "flat", "bullish": "up"}


@dataclass
class Outcome:
    """Every model's out-of-sample probabilities, on the rows `tested` (indices into the data)."""

    tested: np.ndarray
    probs: dict[str, np.ndarray]
    seconds: dict[str, float] = field(default_factory=dict)


def train_folds(
    data: ImpactData,
    folds: Sequence[Fold],
    cfg: TrainingConfig,
    out: Path,
    *,
    models: Sequence[str] = MODELS,
    head: HeadSettings | None = None,
    describe: dict[str, Any] | None = None,
    progress: bool = False,
    echo: Callable[[str], None] = print,
) -> Outcome:
    settings = head or HeadSettings(seed=cfg.seed)
    chosen = [m for m in MODELS if m in models]
    probs: dict[str, list[np.ndarray]] = {name: [] for name in chosen}
    seconds = dict.fromkeys(chosen, 0.0)
    tested: list[np.ndarray] = []
    for number, fold in enumerate(folds):
        if fold.train.size < MIN_TRAIN:
            raise InputError(
                f"fold {fold.name}: {fold.train.size} training items after the purge "
                f"(at least {MIN_TRAIN} needed); move --split-date later"
            )
        last = number == len(folds) - 1
        where = out if last else out / ".folds" / fold.name
        echo(f"fold {fold.name}: {fold.train.size} training items, {fold.test.size} test items")
        fitted = _train_fold(data, fold, cfg, settings, where, chosen, describe or {}, progress)
        for name in chosen:
            probs[name].append(fitted.probs[name])
            seconds[name] += fitted.seconds[name]
        tested.append(fold.test)
        if last:
            _save_heads(data, fold, fitted.heads, settings, out, describe or {})
    shutil.rmtree(out / ".folds", ignore_errors=True)
    return Outcome(
        tested=np.concatenate(tested),
        probs={name: np.concatenate(parts) for name, parts in probs.items()},
        seconds={name: round(value, 2) for name, value in seconds.items()},
    )


@dataclass
class _Fitted:
    probs: dict[str, np.ndarray]
    seconds: dict[str, float]
    heads: dict[str, HeadModel]


def _train_fold(
    data: ImpactData,
    fold: Fold,
    cfg: TrainingConfig,
    settings: HeadSettings,
    where: Path,
    models: Sequence[str],
    describe: dict[str, Any],
    progress: bool,
) -> _Fitted:
    rows = fold.train
    n_valid = max(1, rows.size // 10)
    valid_rows, fit_rows = rows[-n_valid:], rows[:-n_valid]
    valid_mask = np.zeros(rows.size, dtype=bool)
    valid_mask[-n_valid:] = True
    probs: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    heads: dict[str, HeadModel] = {}
    classifier = None
    if "text" in models or "fusion" in models:
        text_info = describe | {"split": fold.describe(), "label_meaning": LABEL_MEANING}
        trained = train_text(
            cfg,
            data.texts,
            data.label,
            fit_rows,
            valid_rows,
            where / "text",
            text_info,
            span=(int(data.received[rows].min()), int(data.window_end[rows].max())),
            progress=progress,
        )
        classifier = trained.classifier
        seconds["text"] = trained.seconds
        if "text" in models:
            probs["text"] = classifier.predict_proba([data.texts[i] for i in fold.test])
    if "numbers" in models:
        began = time.perf_counter()
        heads["numbers"] = fit_head(data.features[rows], data.label[rows], valid_mask, settings)
        seconds["numbers"] = time.perf_counter() - began
        probs["numbers"] = heads["numbers"].predict_proba(data.features[fold.test])
    if "fusion" in models:
        assert classifier is not None
        began = time.perf_counter()
        wanted = np.concatenate((rows, fold.test))
        embedded = pooled_embeddings(classifier, [data.texts[i] for i in wanted])
        train_text_rows, test_text_rows = embedded[: rows.size], embedded[rows.size :]
        heads["fusion"] = fit_head(
            data.features[rows], data.label[rows], valid_mask, settings, text=train_text_rows
        )
        # the fusion's own time, on top of the text encoder's fine-tuning it reuses
        seconds["fusion"] = time.perf_counter() - began + seconds.get("text", 0.0)
        probs["fusion"] = heads["fusion"].predict_proba(data.features[fold.test], test_text_rows)
        copy_encoder(where / "text", where / "fusion" / ENCODER_FOLDER)
    if "text" not in models:
        seconds.pop("text", None)
    return _Fitted(probs, seconds, heads)


def _save_heads(
    data: ImpactData,
    fold: Fold,
    heads: dict[str, HeadModel],
    settings: HeadSettings,
    out: Path,
    describe: dict[str, Any],
) -> None:
    for kind, model in heads.items():
        text_dim = 0 if model.net.text_norm is None else model.net.text_norm.normalized_shape[0]
        manifest = {
            "format": 1,
            "task": "impact",
            "kind": kind,
            "symbol": data.symbol,
            "horizon": spell(data.options.horizon_s),
            "horizon_s": data.options.horizon_s,
            "threshold": data.options.threshold,
            "features": list(data.spec.groups),
            "feature_names": list(data.spec.names),
            "bar_interval_s": data.bar_interval_s,  # live bars are folded into this spacing
            "labels": ["bearish", "neutral", "bullish"],
            "label_meaning": LABEL_MEANING,
            "text_dim": int(text_dim),
            "encoder": ENCODER_FOLDER if kind == "fusion" else None,
            "head": asdict(settings),
            "split": fold.describe(),
            "created": iso(datetime.now(UTC)),
            **{k: v for k, v in describe.items() if k in ("news", "bars", "command")},
        }
        model.save(out / kind, manifest)
