"""Near-identical headlines counted once.

Aggregators republish the same story within hours, sometimes with the words reordered or a
different punctuation. Counting each copy as an independent observation overstates the sample, so
the event study keeps the first of each near-identical group and reports how many it merged.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

_WORD = re.compile(r"[a-z0-9]+")


def normalise(text: str) -> str:
    """The set of a headline's lower-case words, sorted: reorderings and punctuation vanish."""
    return " ".join(sorted(set(_WORD.findall(text.lower()))))


def merged_mask(keys: Sequence[str], received: np.ndarray, window: int = 86_400) -> np.ndarray:
    """True for every item that repeats an earlier kept item's words within `window` seconds.

    Items are visited in received order; an empty key (no words) is never merged.
    """
    merged = np.zeros(len(keys), dtype=bool)
    kept_at: dict[str, int] = {}
    for index in np.argsort(received, kind="stable"):
        key = normalise(str(keys[index]))
        when = int(received[index])
        if key and key in kept_at and when - kept_at[key] <= window:
            merged[index] = True
        else:
            kept_at[key] = when
    return merged
