"""Walk-forward folds: each tunes on a past span and is scored on the next, unseen one.

The bars' span is cut into K + 1 equal chronological segments. Fold i (1..K) is scored
out-of-sample on segment i and tuned in-sample on segments 0..i-1 (`anchored`, the default: the
in-sample span grows) or on segment i-1 alone (`rolling`). Spans are half-open, [start, end): an
in-sample span ends where its out-of-sample span starts, so no bar or headline is in both, and the
out-of-sample spans tile the tail of the data without overlapping.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

WALKS = ("anchored", "rolling")


@dataclass(frozen=True, slots=True)
class Fold:
    index: int  # 1-based
    is_start: datetime
    is_end: datetime
    oos_start: datetime
    oos_end: datetime


def walk_forward(start: datetime, end: datetime, folds: int, walk: str = "anchored") -> list[Fold]:
    """The K folds over [start, end); ValueError on fewer than one fold or an unknown walk."""
    if folds < 1:
        raise ValueError(f"--folds {folds}: at least 1")
    if walk not in WALKS:
        raise ValueError(f"--walk {walk}: one of {', '.join(WALKS)}")
    if end <= start:
        raise ValueError(f"the data's span is empty ({start.isoformat()} to {end.isoformat()})")
    step = (end - start) / (folds + 1)
    if step < timedelta(hours=1):
        raise ValueError(f"{folds} folds cut {end - start} of data into segments under an hour")
    edges = [start + step * i for i in range(folds + 1)] + [end]
    out = []
    for i in range(1, folds + 1):
        is_start = edges[0] if walk == "anchored" else edges[i - 1]
        out.append(Fold(i, is_start, edges[i], edges[i], edges[i + 1]))
    return out
