"""Chronological splits that cannot leak a label: purging and an embargo (Lopez de Prado, 2018).

A training item's label is the return over [entry, entry + horizon]. For a split at time S:
- train: items received before S whose whole label window ended by S; those received before S
  whose window reaches past S are *purged* (their labels hold test-span prices);
- embargo: items received in [S, S + embargo) are scored by nobody (returns are serially
  correlated, so the first test items would still be "known" through the last training labels);
- test: items received from S + embargo on (up to the fold's end).

`--walk-forward 1M` repeats this every month from the first split on: each fold trains on
everything before its month and predicts that month, so a whole history is scored out of sample
(the purge and embargo apply at every fold's start). Times are epoch seconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from bot.research.timeline import parse_horizon

_MONTHS = re.compile(r"^\s*(\d+)\s*M\s*$")


@dataclass(frozen=True)
class Fold:
    """One train / test split: indices into the labelled items, and what was left out."""

    name: str
    train: np.ndarray
    test: np.ndarray
    split: int
    test_start: int
    test_end: int | None
    purged: int
    embargoed: int

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name,
            "train_before": _iso(self.split),
            "test_from": _iso(self.test_start),
            "test_to": _iso(self.test_end) if self.test_end is not None else None,
            "n_train": int(self.train.size),
            "n_test": int(self.test.size),
            "purged": self.purged,
            "embargoed": self.embargoed,
        }


def split_at(
    received: np.ndarray,
    window_end: np.ndarray,
    split: int,
    embargo: int,
    test_end: int | None = None,
    name: str = "test",
) -> Fold:
    """The fold at `split`: purged training items before it, embargoed test items after it."""
    before = received < split
    train = before & (window_end <= split)
    in_embargo = (received >= split) & (received < split + embargo)
    test = received >= split + embargo
    if test_end is not None:
        test &= received < test_end
        in_embargo &= received < test_end
    return Fold(
        name=name,
        train=np.flatnonzero(train),
        test=np.flatnonzero(test),
        split=split,
        test_start=split + embargo,
        test_end=test_end,
        purged=int(np.count_nonzero(before & ~train)),
        embargoed=int(np.count_nonzero(in_embargo)),
    )


def default_split(received: np.ndarray) -> int:
    """Without --split-date: the time by which 80% of the items had arrived."""
    return int(np.quantile(received, 0.8))


def parse_step(text: str) -> tuple[int, int]:
    """`1M` (calendar months) or a duration (`2w`, `7d`): (months, seconds), one of them 0."""
    match = _MONTHS.match(text)
    if match:
        months = int(match.group(1))
        if months < 1:
            raise ValueError(f"--walk-forward {text!r}: at least 1 month")
        return months, 0
    try:
        return 0, parse_horizon(text)
    except ValueError:
        raise ValueError(
            f"--walk-forward {text!r}: expected months (1M) or a duration (2w, 7d)"
        ) from None


def walk_forward(
    received: np.ndarray, window_end: np.ndarray, start: int, step: str, embargo: int
) -> list[Fold]:
    """Folds from `start` to the last item, one `step` each."""
    months, seconds = parse_step(step)
    last = int(received.max()) if received.size else start
    folds: list[Fold] = []
    begin = start
    while begin <= last:
        end = _add_months(begin, months) if months else begin + seconds
        fold = split_at(received, window_end, begin, embargo, end, name=_iso(begin)[:10])
        if fold.test.size:
            folds.append(fold)
        begin = end
    return folds


def _add_months(at: int, months: int) -> int:
    moment = datetime.fromtimestamp(at, UTC)
    month = moment.month - 1 + months
    year, month = moment.year + month // 12, month % 12 + 1
    day = min(moment.day, 28)
    return int(moment.replace(year=year, month=month, day=day).timestamp())


def _iso(at: int) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")
