"""Splitting several named data sets for one run, and describing the result for the manifest.

Each set is split on its own: its test rows first (a file, its rows from `test_from`, or a
known set's held-out split), then a validation share of the rest, temporal when every row has a
date (the later rows validate, as they would in live use), stratified otherwise. The manifest
records each set's date span (`data.span` over all dated sets, what a backtest checks for
overlap); an undated set's span is unknown and named in `data.span_unknown`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from training.data import sample
from training.examples import Example, ReadOptions, label_counts
from training.mix import DataSet, load_set, span
from training.splits import Split, combine_sets, make_split


def split_sets(
    sets: Sequence[DataSet],
    options: ReadOptions,
    *,
    valid_fraction: float,
    seed: int,
    limit: int | None = None,
    test_limit: int | None = None,
) -> tuple[Split, dict[str, Any]]:
    """The combined split of `sets` and its description (`limit`: per set, seeded)."""
    named: list[tuple[str, float, Split]] = []
    described: list[dict[str, Any]] = []
    for item in sets:
        rows, test = load_set(item, options)
        rows = sample(rows, limit, seed)
        test = sample(test, test_limit, seed)
        valid = read_valid(item, options)
        split = make_split(rows, valid=valid, test=test, valid_fraction=valid_fraction, seed=seed)
        named.append((item.name, item.weight, split))
        described.append(_describe_set(item, split))
    combined = combine_sets(named)
    for entry, part in zip(described, combined.sets, strict=True):
        entry["n_train"] = part.n_train  # after cross-set overlap removal
    return combined, describe_sets(combined, described, limit)


def read_valid(item: DataSet, options: ReadOptions) -> list[Example] | None:
    from training.mix import read_set_file

    return read_set_file(item, item.valid, options, "test") if item.valid else None


def _describe_set(item: DataSet, split: Split) -> dict[str, Any]:
    seen = [*split.train, *split.valid]
    entry: dict[str, Any] = {
        "name": item.name,
        "path": item.path,
        "format": "columns" if item.by_columns else item.fmt,
        "weight": item.weight,
        "n_train": len(split.train),
        "n_valid": len(split.valid),
        "n_test": len(split.test),
        "split": split.strategy,
        "valid": item.valid or f"{_share(split)} of its training rows ({split.strategy})",
        "test": item.test or (f"rows dated from {item.test_from}" if item.test_from else ""),
        "train_counts": list(label_counts(split.train)),
        "span": span(seen),
    }
    if not entry["test"] and split.test:
        entry["test"] = f"{item.path} (its held-out split)"
    if split.test:
        entry["test_span"] = span(split.test)
    return entry


def _share(split: Split) -> str:
    total = len(split.train) + len(split.valid)
    return f"{len(split.valid) / total:.0%}" if total else "0%"


def describe_sets(split: Split, sets: list[dict[str, Any]], limit: int | None) -> dict[str, Any]:
    """What the manifest, card and eval.json say about the data of a multi-set run."""
    names = " + ".join(s["name"] for s in sets)
    dated = [s["span"] for s in sets if s["span"]]
    info: dict[str, Any] = {
        "train": names,
        "format": "mix",
        "valid": "per set: " + "; ".join(f"{s['name']} {s['valid']}" for s in sets),
        "test": "; ".join(f"{s['name']} {s['test']}" for s in sets if s["n_test"]),
        "limit": limit or 0,
        "n_train": len(split.train),
        "n_valid": len(split.valid),
        "n_test": len(split.test),
        "train_counts": list(label_counts(split.train)),
        "dropped_overlap": split.dropped_overlap,
        "split": split.strategy,
        "sets": sets,
        "span_unknown": [s["name"] for s in sets if not s["span"]],
    }
    if dated:
        info["span"] = {
            "start": min(s["start"] for s in dated),
            "end": max(s["end"] for s in dated),
        }
    return info
