"""What a training run carries between its checkpoints: the loop's position and bests, the
fingerprint a resumption must match, and where the checkpoints lie.

Kept apart from the loop itself so that a resumption's rules (what may change between a run and
its resumption, which checkpoint is the latest complete one) read in one place.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.config import TrainingConfig
from training.precision import resolve_training_precision
from training.splits import Split

CHECKPOINTS = "checkpoints"
_FINGERPRINT_IGNORES = {
    "patience",
    "keep_checkpoints",
    "checkpoint_every",
    "eval_every",
    "num_threads",
    "eval_batch_size",
}


@dataclass
class LoopState:
    step: int = 0  # optimiser steps done
    epoch: int = 0
    micro: int = 0  # micro-batches done in `epoch`
    best_loss: float = math.inf  # for early stopping
    best_score: float = -math.inf  # of the `keep_best` measure, higher is better
    best_step: int = 0  # the kept weights' step
    bad_evals: int = 0
    stopped_early: bool = False
    train_seconds: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["best_loss"] = None if math.isinf(self.best_loss) else self.best_loss
        data["best_score"] = None if math.isinf(self.best_score) else self.best_score
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LoopState:
        state = cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
        if data.get("best_loss") is None:
            state.best_loss = math.inf
        if data.get("best_score") is None:
            state.best_score = -math.inf
        return state


@dataclass
class LoopResult:
    state: LoopState
    steps_per_epoch: int
    total_steps: int
    valid_scores: dict[str, Any]

    @property
    def epochs_done(self) -> float:
        return self.state.step / self.steps_per_epoch if self.steps_per_epoch else 0.0

    @property
    def seconds_per_epoch(self) -> float:
        return self.state.train_seconds / self.epochs_done if self.epochs_done else 0.0


def fingerprint(cfg: TrainingConfig, extra: dict[str, Any], split: Split) -> str:
    """What must not change between a run and its resumption."""
    settings = {
        k: v for k, v in cfg.model_dump(mode="json").items() if k not in _FINGERPRINT_IGNORES
    }
    if not extra.get("teachers"):
        # only a distilled run's loss reads it: older runs' checkpoints still resume
        settings.pop("distill_weight", None)
    settings.pop("precision", None)  # what it resolves to on this CPU counts, below
    if resolve_training_precision(cfg.precision, cfg.method) == "bf16":
        settings["precision"] = "bf16"  # fp32 (every run before the setting) adds nothing
    digest = hashlib.sha256(json.dumps([settings, extra], sort_keys=True, default=str).encode())
    for part in (split.train, split.valid):
        for example in part:
            digest.update(f"{example.label.value}\x00{example.text}\x01".encode())
    return digest.hexdigest()[:16]


def latest_checkpoint(folder: Path) -> Path | None:
    found = sorted(p for p in folder.glob("step-*[0-9]") if (p / "state.json").is_file())
    return found[-1] if found else None
