"""Train / validation / test splits that do not leak, and class weights for imbalanced data.

Duplicates (texts equal after case and whitespace folding) are kept together as one group, so the
same headline never sits on both sides of a split and inflates the score. With timestamps the split
is temporal (the newest items are held out, as they would be in live use); without them it is a
seeded split stratified by label.
"""

from __future__ import annotations

import math
import random
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from bot.log import get_logger
from training.data import DataError, Example, label_counts

log = get_logger(__name__)
_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    return _SPACE.sub(" ", text.strip().lower())


@dataclass(frozen=True)
class SetPart:
    """One named data set's share of a combined split: its rows sit, in this order, at
    `offset` onwards of each of the split's lists."""

    name: str
    weight: float
    n_train: int
    n_valid: int
    n_test: int
    strategy: str
    train_offset: int = 0
    valid_offset: int = 0
    test_offset: int = 0

    def rows(self, which: str) -> slice:
        if which == "train":
            return slice(self.train_offset, self.train_offset + self.n_train)
        if which == "valid":
            return slice(self.valid_offset, self.valid_offset + self.n_valid)
        return slice(self.test_offset, self.test_offset + self.n_test)


@dataclass(frozen=True)
class Split:
    train: list[Example]
    valid: list[Example]
    test: list[Example]
    strategy: str  # "temporal", "stratified", "given" or "per set"
    dropped_overlap: int = 0
    sets: tuple[SetPart, ...] = ()  # several named data sets (empty: one set)

    def example_weights(self) -> list[float] | None:
        """Each training row's loss weight (its set's), or None when every weight is 1."""
        if all(part.weight == 1.0 for part in self.sets):
            return None
        weights = [1.0] * len(self.train)
        for part in self.sets:
            weights[part.rows("train")] = [part.weight] * part.n_train
        return weights


def combine_sets(named: Sequence[tuple[str, float, Split]]) -> Split:
    """One split from several sets' own splits, each set's rows kept together and named.

    A text held out by any set (validation or test) is dropped from every set's training rows,
    so a headline that two sets share cannot leak across them."""
    held = {normalise(e.text) for _, _, s in named for e in (*s.valid, *s.test)}
    train: list[Example] = []
    valid: list[Example] = []
    test: list[Example] = []
    parts = []
    dropped = 0
    for name, weight, split in named:
        kept = [e for e in split.train if normalise(e.text) not in held]
        dropped += split.dropped_overlap + len(split.train) - len(kept)
        if not kept:
            raise DataError(f"set {name!r}: no training rows left after removing held-out texts")
        parts.append(
            SetPart(
                name=name,
                weight=weight,
                n_train=len(kept),
                n_valid=len(split.valid),
                n_test=len(split.test),
                strategy=split.strategy,
                train_offset=len(train),
                valid_offset=len(valid),
                test_offset=len(test),
            )
        )
        train.extend(kept)
        valid.extend(split.valid)
        test.extend(split.test)
    return Split(train, valid, test, "per set", dropped, tuple(parts))


def split_examples(
    examples: Sequence[Example], fraction: float, seed: int
) -> tuple[list[Example], list[Example], str]:
    """Hold out about `fraction` of the examples; returns (kept, held_out, strategy)."""
    if not 0 < fraction < 1:
        raise ValueError("fraction must be between 0 and 1")
    groups: dict[str, list[Example]] = defaultdict(list)
    for example in examples:
        groups[normalise(example.text)].append(example)
    if len(groups) < 2:
        raise DataError("need at least two distinct texts to split off a validation set")
    if all(e.timestamp is not None for e in examples):
        return (*_temporal(list(groups.values()), fraction), "temporal")
    return (*_stratified(list(groups.values()), fraction, seed), "stratified")


def _temporal(groups: list[list[Example]], fraction: float) -> tuple[list[Example], list[Example]]:
    # A duplicate group goes where its earliest occurrence falls: it was known from then on.
    ordered = sorted(groups, key=lambda g: min(e.timestamp for e in g if e.timestamp))
    total = sum(len(g) for g in ordered)
    target = max(1, round(total * fraction))
    held: list[Example] = []
    while ordered and len(held) < target and len(ordered) > 1:
        held[:0] = ordered.pop()
    kept = [e for g in ordered for e in g]
    return kept, held


def _stratified(
    groups: list[list[Example]], fraction: float, seed: int
) -> tuple[list[Example], list[Example]]:
    rng = random.Random(seed)
    by_label: dict[int, list[list[Example]]] = defaultdict(list)
    for group in groups:
        majority = max(range(3), key=lambda k: sum(1 for e in group if int(e.label) == k))
        by_label[majority].append(group)
    kept: list[Example] = []
    held: list[Example] = []
    for label in sorted(by_label):
        bucket = by_label[label]
        rng.shuffle(bucket)
        size = sum(len(g) for g in bucket)
        target = round(size * fraction)
        if target == 0 and size >= 2:
            target = 1
        taken = 0
        for group in bucket:
            if taken < target:
                held.extend(group)
                taken += len(group)
            else:
                kept.extend(group)
    if not kept or not held:
        raise DataError("too few examples to split off a validation set")
    rng.shuffle(kept)
    rng.shuffle(held)
    return kept, held


def make_split(
    train: Sequence[Example],
    *,
    valid: Sequence[Example] | None = None,
    test: Sequence[Example] | None = None,
    valid_fraction: float = 0.1,
    seed: int = 42,
) -> Split:
    """The three sets for one run. Given files are used as they are; training rows whose text
    also appears in a given validation or test set are dropped from training."""
    held_texts = {normalise(e.text) for e in [*(valid or ()), *(test or ())]}
    clean = [e for e in train if normalise(e.text) not in held_texts]
    dropped = len(train) - len(clean)
    if dropped:
        log.info("dropped training rows also in the held-out data", rows=dropped)
    if not clean:
        raise DataError("no training rows left after removing those in the held-out data")
    if valid:
        return Split(clean, list(valid), list(test or ()), "given", dropped)
    kept, held, strategy = split_examples(clean, valid_fraction, seed)
    return Split(kept, held, list(test or ()), strategy, dropped)


def class_weights(examples: Sequence[Example], scheme: str) -> list[float] | None:
    """Loss weights per class (our order). "balanced" is n / (3 * count); "sqrt" its square
    root, which lifts the minority classes without giving up much accuracy on the majority.
    Weights are normalised to average 1 over the examples, so the learning rate means the same."""
    if scheme == "none":
        return None
    counts = label_counts(examples)
    total = sum(counts)
    raw = [total / (3 * c) if c else 0.0 for c in counts]
    if scheme == "sqrt":
        raw = [math.sqrt(w) for w in raw]
    elif scheme != "balanced":
        raise ValueError(f"unknown class weight scheme {scheme!r}")
    mean = sum(w * c for w, c in zip(raw, counts, strict=True)) / total
    return [w / mean for w in raw]
