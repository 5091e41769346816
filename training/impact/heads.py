"""The numbers-only and fusion models: one small torch network, with or without a text input.

- numbers only: the standardised market features through a two-layer numeric encoder, then a
  small head to down / flat / up;
- fusion: the same numeric encoder, its output concatenated with the text encoder's pooled
  embedding of the headline (layer-normalised), then the head. The text encoder is the one the
  text-only model fine-tuned with LoRA on the same labels and split (frozen here), so the fusion
  adds the numbers to what the text model learnt instead of learning the text twice.

Why a torch MLP rather than gradient-boosted trees: the fusion needs the numeric encoder as a
layer anyway, and one network for both keeps the numbers-only model an exact ablation of the
fusion (the same features, preprocessing, loss and training loop; only the text input differs).

Training: mini-batch Adam on class-weighted cross-entropy (labels are balanced by construction
only roughly), early stopping on the validation loss, the best weights kept. Seeded: the same
data gives the same model. A folder holds `impact.json` (the manifest: kind, symbol, horizon,
feature names and their standardisation, sizes, scores, split) and `head.safetensors`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from training.impact.manifest import IMPACT_MANIFEST, read_impact_manifest

HEAD_WEIGHTS = "head.safetensors"
ENCODER_FOLDER = "encoder"


@dataclass(frozen=True)
class HeadSettings:
    hidden: int = 32
    epochs: int = 60
    batch_size: int = 128
    learning_rate: float = 3e-3
    weight_decay: float = 1e-3
    dropout: float = 0.1
    patience: int = 8
    seed: int = 42


@dataclass
class Standardiser:
    """Per-feature mean and spread from the training rows; NaN (an incomplete window) is 0
    after scaling, the training mean, and values are clipped to +-8 spreads."""

    mean: list[float]
    std: list[float]

    @classmethod
    def fit(cls, x: np.ndarray) -> Standardiser:
        with np.errstate(invalid="ignore"):
            mean = np.nanmean(x, axis=0) if x.size else np.zeros(x.shape[1])
            std = np.nanstd(x, axis=0) if x.size else np.ones(x.shape[1])
        mean = np.where(np.isfinite(mean), mean, 0.0)
        std = np.where(np.isfinite(std) & (std > 0), std, 1.0)
        return cls([float(v) for v in mean], [float(v) for v in std])

    def apply(self, x: np.ndarray) -> np.ndarray:
        scaled = (x - np.asarray(self.mean)) / np.asarray(self.std)
        return np.clip(np.nan_to_num(scaled, nan=0.0), -8.0, 8.0).astype(np.float32)


class ImpactNet(nn.Module):
    def __init__(self, n_features: int, text_dim: int, settings: HeadSettings) -> None:
        super().__init__()
        hidden = settings.hidden
        self.numeric = nn.Sequential(
            nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU()
        )
        self.text_norm = nn.LayerNorm(text_dim) if text_dim else None
        self.head = nn.Sequential(
            nn.Dropout(settings.dropout),
            nn.Linear(hidden + text_dim, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 3),
        )

    def forward(self, numbers: torch.Tensor, text: torch.Tensor | None = None) -> torch.Tensor:
        parts = [self.numeric(numbers)]
        if self.text_norm is not None:
            assert text is not None, "the fusion model needs the text embedding"
            parts.append(self.text_norm(text))
        return self.head(torch.cat(parts, dim=1))


@dataclass
class HeadModel:
    """A trained numbers-only or fusion network with what it needs to read new rows."""

    net: ImpactNet
    scaler: Standardiser
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def fusion(self) -> bool:
        return self.net.text_norm is not None

    def predict_proba(self, features: np.ndarray, text: np.ndarray | None = None) -> np.ndarray:
        if not len(features):
            return np.zeros((0, 3))
        self.net.eval()
        with torch.inference_mode():
            numbers = torch.from_numpy(self.scaler.apply(features))
            embedded = torch.from_numpy(text.astype(np.float32)) if text is not None else None
            logits = self.net(numbers, embedded)
            return torch.softmax(logits.double(), dim=-1).numpy()

    def save(self, folder: Path, manifest: dict[str, Any]) -> None:
        from safetensors.torch import save_file

        folder.mkdir(parents=True, exist_ok=True)
        state = {key: value.contiguous() for key, value in self.net.state_dict().items()}
        save_file(state, str(folder / HEAD_WEIGHTS))
        document = dict(manifest) | {"standardiser": asdict(self.scaler)}
        (folder / IMPACT_MANIFEST).write_text(
            json.dumps(document, indent=2) + "\n", encoding="utf-8"
        )
        self.manifest = document


def load_head(folder: Path) -> HeadModel:
    from safetensors.torch import load_file

    manifest = read_impact_manifest(folder)
    settings = HeadSettings(**manifest["head"])
    net = ImpactNet(len(manifest["feature_names"]), int(manifest["text_dim"]), settings)
    net.load_state_dict(load_file(str(folder / HEAD_WEIGHTS)))
    net.eval()
    scaler = Standardiser(**manifest["standardiser"])
    return HeadModel(net, scaler, manifest)


def fit_head(
    features: np.ndarray,
    labels: np.ndarray,
    valid: np.ndarray,
    settings: HeadSettings,
    text: np.ndarray | None = None,
) -> HeadModel:
    """Train on the rows not in `valid` (a boolean mask), stop early on the `valid` rows."""
    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    train = ~valid
    scaler = Standardiser.fit(features[train])
    numbers = torch.from_numpy(scaler.apply(features))
    embedded = torch.from_numpy(text.astype(np.float32)) if text is not None else None
    target = torch.from_numpy(labels.astype(np.int64))
    net = ImpactNet(features.shape[1], 0 if text is None else text.shape[1], settings)
    optimiser = torch.optim.AdamW(
        net.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay
    )
    loss_fn = nn.CrossEntropyLoss(weight=_class_weights(labels[train]))
    rows = torch.from_numpy(np.flatnonzero(train))
    held = torch.from_numpy(np.flatnonzero(valid))
    best, best_state, waited = float("inf"), None, 0
    for _ in range(settings.epochs):
        net.train()
        order = rows[torch.randperm(rows.numel(), generator=generator)]
        for start in range(0, order.numel(), settings.batch_size):
            batch = order[start : start + settings.batch_size]
            optimiser.zero_grad()
            logits = net(numbers[batch], None if embedded is None else embedded[batch])
            loss_fn(logits, target[batch]).backward()
            optimiser.step()
        if not held.numel():
            continue
        net.eval()
        with torch.no_grad():
            logits = net(numbers[held], None if embedded is None else embedded[held])
            loss = float(loss_fn(logits, target[held]))
        if loss < best - 1e-6:
            best, waited = loss, 0
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        else:
            waited += 1
            if waited >= settings.patience:
                break
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    return HeadModel(net, scaler)


def _class_weights(labels: np.ndarray) -> torch.Tensor:
    counts = np.bincount(labels, minlength=3).astype(float)
    weights = np.where(counts > 0, counts.sum() / (3 * np.maximum(counts, 1)), 0.0)
    return torch.tensor(weights, dtype=torch.float32)
