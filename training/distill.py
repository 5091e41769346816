"""Teaching one adapter what an ensemble knows (`lorabot train --teacher A --teacher B ...`).

An ensemble of adapters (different seeds, data mixes or ranks) often scores better than any of
its members, but it costs one forward pass per member, and the trading path has the budget of
one model call per headline. Distillation keeps the single-adapter latency: the members'
probabilities on every training row become soft targets, and the student learns
`(1 - w) x` the hard label's cross-entropy `+ w x` the cross-entropy against the members' mean.
The members' probabilities are calibrated (each with its own manifest temperature) because
those are what the vote weighs: the student is taught the ensemble's confidence, not whichever
member happens to have the largest logits.

The ensemble itself is scored on the student's validation and test rows, so the model card shows
what the student kept of it. A teacher saw its own training rows: one that trained on this run's
validation rows makes both figures optimistic, so a teacher split with other settings (seed,
validation fraction) is named in a warning. What the teachers learnt from is part of what the
student saw, so their training spans widen the student's (the research issue's overlap check).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bot.config import TrainingConfig
from bot.errors import UserError
from bot.manifest import ManifestError, read_manifest
from training.examples import Example


@dataclass(frozen=True)
class Teaching:
    """The ensemble's mean calibrated probabilities on each part of the student's split."""

    train: np.ndarray  # (n_train, 3), the soft targets
    valid: np.ndarray
    test: np.ndarray | None
    sources: list[dict[str, Any]] = field(default_factory=list)  # what the manifest records

    @property
    def folders(self) -> list[str]:
        return [str(source["folder"]) for source in self.sources]


def source_record(folder: Path, flag: str) -> dict[str, Any]:
    """What a model that seeds or teaches this run learnt from (its manifest's own words)."""
    try:
        source = read_manifest(folder)
    except ManifestError as error:
        raise UserError(f"{flag}: {error}") from None
    return {
        "folder": str(folder),
        "command": source.command,
        "data": source.data.get("train", ""),
        "span": source.data.get("span"),
        "span_unknown": list(source.data.get("span_unknown") or [])
        or ([] if source.data.get("span") else [str(source.data.get("train", folder))]),
    }


def widen_spans(info: dict[str, Any], seen: dict[str, Any]) -> None:
    """A model saw its own data and what its source or teachers saw: widen `span` to cover both
    and add their undated sets to `span_unknown`."""
    spans = [s for s in (info.get("span"), seen.get("span")) if s]
    if spans:
        info["span"] = {
            "start": min(s["start"] for s in spans),
            "end": max(s["end"] for s in spans),
        }
    unknown = [*info.get("span_unknown", []), *seen.get("span_unknown", [])]
    info["span_unknown"] = list(dict.fromkeys(unknown))


def split_mismatch(folder: Path, cfg: TrainingConfig) -> str | None:
    """Why a teacher's validation rows may not be this run's, or None when its settings agree.

    Only `training.json`'s settings are compared: a teacher trained on other data cannot be
    checked row by row here, and the warning says so rather than guess."""
    report = folder / "training.json"
    try:
        settings = json.loads(report.read_text(encoding="utf-8")).get("settings", {})
    except (OSError, ValueError):
        return f"{folder} has no readable training.json, so its split cannot be compared"
    ours = {"seed": cfg.seed, "valid_fraction": cfg.valid_fraction}
    differs = [f"{key} {settings.get(key)} (this run: {value})" for key, value in ours.items()
               if settings.get(key) != value]  # fmt: skip
    if differs:
        return f"{folder} was split with " + ", ".join(differs)
    return None


def teach(
    folders: Sequence[Path],
    train: Sequence[Example],
    valid: Sequence[Example],
    test: Sequence[Example],
    *,
    batch_size: int,
    say: Callable[[str], None],
) -> Teaching:
    """Each teacher's calibrated probabilities on every row, averaged over the teachers.

    Teachers are loaded one at a time and dropped before the next, so an ensemble of any size
    needs the memory of one model beside the student."""
    from training.classifier import load_model

    parts = (list(train), list(valid), list(test))
    sums = [np.zeros((len(rows), 3)) for rows in parts]
    sources = []
    for folder in folders:
        sources.append(source_record(folder, f"--teacher {folder}"))
        teacher = load_model(folder, batch_size=batch_size)
        for total, rows in zip(sums, parts, strict=True):
            if rows:
                total += teacher.predict_proba([e.text for e in rows])
        sources[-1]["model_id"] = teacher.model_id
        sources[-1]["temperature"] = teacher.temperature
        say(f"teacher {folder}: {teacher.model_id}, temperature {teacher.temperature:g}")
        del teacher
    count = len(folders)
    return Teaching(
        train=sums[0] / count,
        valid=sums[1] / count,
        test=sums[2] / count if test else None,
        sources=sources,
    )
