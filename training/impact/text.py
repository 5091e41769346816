"""The text side: LoRA (or any method of the table) on the encoder through the one training loop,
with the impact labels in place of sentiment, and the encoder's pooled embedding of a headline.

The text-only model is an ordinary `lorabot train` folder (`lorabot.json`, the adapter, the
model card): the embedded backend and vLLM serve it as they serve any sentiment model, its
bearish / neutral / bullish meaning down / flat / up over the horizon.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bot.config import TrainingConfig
from bot.events import Label
from training.examples import Example, label_counts
from training.splits import Split

if TYPE_CHECKING:
    from training.classifier import SentimentClassifier


@dataclass
class TextModel:
    classifier: SentimentClassifier
    seconds: float


def train_text(
    cfg: TrainingConfig,
    texts: Sequence[str],
    labels: np.ndarray,
    train: np.ndarray,
    valid: np.ndarray,
    out: Path,
    describe: dict[str, Any],
    *,
    span: tuple[int, int] | None = None,
    progress: bool = False,
    echo: Callable[[str], None] | None = None,
) -> TextModel:
    """Fine-tune on rows `train`, validate (early stopping, best weights) on rows `valid`."""
    from training.pipeline import DataRequest, train_model

    def examples(rows: np.ndarray) -> list[Example]:
        return [Example(texts[i], Label(int(labels[i])), origin=f"item {i}") for i in rows]

    split = Split(examples(train), examples(valid), [], "impact: purged, chronological")
    info = {
        "train": describe.get("news", ""),
        "format": "impact",
        "valid": "the last 10% of the training span, chronologically",
        "test": "",
        "limit": 0,
        "n_train": len(split.train),
        "n_valid": len(split.valid),
        "n_test": 0,
        "train_counts": list(label_counts(split.train)),
        "dropped_overlap": 0,
        "split": split.strategy,
        "impact": describe,
    }
    if span is not None:  # what a backtest checks its replay against (training overlap)
        info["span"] = {"start": _iso(span[0]), "end": _iso(span[1])}
    outcome = train_model(
        cfg,
        DataRequest(data=str(describe.get("news", "impact"))),
        out,
        overwrite=True,
        progress=progress,
        split=(split, info),
        echo=echo,
        command=str(describe.get("command", "")),
    )
    return TextModel(outcome.classifier, outcome.seconds)


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def pooled_embeddings(
    classifier: SentimentClassifier, texts: Sequence[str], batch_size: int = 64
) -> np.ndarray:
    """The mean of the encoder's last hidden states over each text's tokens (N x hidden)."""
    import torch

    from training.families import collate

    rows = classifier.encode(texts)
    if not rows:
        return np.zeros((0, 0), dtype=np.float32)
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
    model = classifier.model
    model.eval()
    out: np.ndarray | None = None
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            batch = collate([rows[i] for i in chunk], classifier.tokenizer.pad_token_id or 0)
            hidden = model(**batch, output_hidden_states=True).hidden_states[-1]
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)
            if out is None:
                out = np.zeros((len(rows), pooled.shape[1]), dtype=np.float32)
            out[chunk] = pooled.float().numpy()
    assert out is not None
    return out


def copy_encoder(text_folder: Path, target: Path) -> None:
    """The text model's folder inside the fusion folder: the fusion is served on its own."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(text_folder, target, ignore=shutil.ignore_patterns("checkpoints"))
