"""Teaching one adapter what an ensemble knows (`lorabot train --teacher A --teacher B ...`).

`--teacher SET=FOLDER` limits a teacher to the named sets of a data mix.

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
from bot.manifest import Manifest, ManifestError, model_folder
from training.splits import Split


@dataclass(frozen=True)
class Teaching:
    """The ensemble's mean calibrated probabilities on each part of the student's split."""

    train: np.ndarray  # (n_train, 3), the soft targets
    valid: np.ndarray
    test: np.ndarray | None
    sources: list[dict[str, Any]] = field(default_factory=list)  # what the manifest records
    taught: tuple[str, ...] = ()  # the sets some teacher teaches; the others' targets are zeros


def source_record(folder: Path, source: Manifest) -> dict[str, Any]:
    """What a model that seeds or teaches this run learnt from (its manifest's own words)."""
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


@dataclass(frozen=True)
class TeacherSpec:
    """`--teacher FOLDER`, or `--teacher SET[,SET]=FOLDER`: a teacher of the named sets only."""

    folder: Path
    sets: tuple[str, ...] = ()  # empty: every set

    @classmethod
    def parse(cls, value: str) -> TeacherSpec:
        """A folder that exists is a folder even with `=` in its name; otherwise the text
        before the first `=` names the sets."""
        names: tuple[str, ...] = ()
        if Path(value).expanduser().is_dir() or "=" not in value:
            folder = model_folder(value)
        else:
            head, _, tail = value.partition("=")
            folder = model_folder(tail)
            names = tuple(name.strip() for name in head.split(",") if name.strip())
        if not folder.is_dir():
            raise UserError(f"--teacher {value}: {folder} is not a folder")
        return cls(folder, names)

    def teaches(self, name: str) -> bool:
        return not self.sets or name in self.sets


def teach(
    specs: Sequence[TeacherSpec],
    split: Split,
    name: str,
    *,
    batch_size: int,
    say: Callable[[str], None],
) -> Teaching:
    """For each set, the mean calibrated probabilities of the teachers that teach it, on
    every row of that set.

    A teacher can be limited to some sets because an ensemble is only as good as its members
    on each domain: a stock-tweet model averaged into the crypto rows teaches the crypto
    headlines it gets wrong. Teachers are loaded one at a time and dropped before the next,
    so an ensemble of any size needs the memory of one model beside the student. A set that no
    teacher teaches gets all-zero targets, which `losses.distilled_loss` reads as "the label
    alone": a domain expert can teach its own domain while the rest learn from their labels."""
    from training.classifier import load_model
    from training.per_set import parts_of

    parts = parts_of(split, name)  # `name`: what a split of one set calls it
    known = [part.name for part in parts]
    for spec in specs:
        unknown = [wanted for wanted in spec.sets if wanted not in known]
        if unknown:
            raise UserError(
                f"--teacher {spec.folder}: no set named {', '.join(unknown)} "
                f"(the sets: {', '.join(known)})"
            )
    taught = tuple(set_name for set_name in known if any(s.teaches(set_name) for s in specs))
    for set_name in known:
        if set_name not in taught:
            say(f"set {set_name}: no teacher, its rows learn from their labels alone")
    sides = {"train": split.train, "valid": split.valid, "test": split.test}
    sums = {side: np.zeros((len(rows), 3)) for side, rows in sides.items()}
    counts = {side: np.zeros((len(rows), 1)) for side, rows in sides.items()}
    sources = []
    for spec in specs:
        try:
            teacher = load_model(spec.folder, batch_size=batch_size)
        except ManifestError as error:
            raise UserError(f"--teacher {spec.folder}: {error}") from None
        assert teacher.manifest is not None  # load_model reads it
        record = source_record(spec.folder, teacher.manifest)
        for side, rows in sides.items():
            for part in parts:
                where = part.rows(side)
                texts = [e.text for e in rows[where]]
                if texts and spec.teaches(part.name):
                    sums[side][where] += teacher.predict_proba(texts)
                    counts[side][where] += 1
        record |= {"model_id": teacher.model_id, "temperature": teacher.temperature}
        record["sets"] = list(spec.sets) or known
        sources.append(record)
        say(
            f"teacher {spec.folder}: {teacher.model_id}, temperature {teacher.temperature:g}, "
            f"teaching {', '.join(record['sets'])}"
        )
        del teacher
    mean = {side: sums[side] / np.maximum(counts[side], 1) for side in sides}
    return Teaching(
        train=mean["train"],
        valid=mean["valid"],
        test=mean["test"] if split.test else None,
        sources=sources,
        taught=taught,
    )


def prepare_teaching(
    values: Sequence[str],
    split: Split,
    name: str,
    info: dict[str, Any],
    cfg: TrainingConfig,
    say: Callable[[str], None],
    warn: Callable[[str], None],
) -> tuple[Teaching, dict[str, Any]]:
    """The teachers' soft targets, and the split's description widened by what they saw."""
    specs = [TeacherSpec.parse(value) for value in values]
    for spec in specs:
        mismatch = split_mismatch(spec.folder, cfg)
        if mismatch:
            warn(
                f"warning: teacher {mismatch}: it may have trained on this run's validation "
                "rows, which makes the validation figures (the student's and the ensemble's) "
                "optimistic"
            )
    say(f"distilling {len(specs)} teacher(s), weight {cfg.distill_weight:g} on their answers")
    if cfg.num_threads:  # the teachers' passes run before the student sets it
        import torch

        torch.set_num_threads(cfg.num_threads)
    teaching = teach(specs, split, name, batch_size=cfg.eval_batch_size, say=say)
    info = dict(info)
    for source in teaching.sources:
        widen_spans(info, source)
    info["teachers"] = teaching.sources
    return teaching, info


def score_teachers(
    teaching: Teaching, split: Split, name: str, cfg: TrainingConfig, say: Callable[[str], None]
) -> dict[str, Any]:
    """The ensemble's own per-set scores on the student's rows: what the student is measured
    against (each teacher's temperature is already in the mean, hence none on top)."""
    from training.per_set import parts_of, per_set_scores, sets_summary

    sets = per_set_scores(
        split, name, teaching.valid, teaching.test, temperature=1.0, only=teaching.taught
    )
    title = f"the {len(teaching.sources)} teachers' mean (each with its own temperature)"
    say(sets_summary(sets, 1.0, title=title))
    untaught = [part.name for part in parts_of(split, name) if part.name not in teaching.taught]
    return {
        "models": teaching.sources,
        "distill_weight": cfg.distill_weight,
        "sets": sets,
        "untaught": untaught,
    }
