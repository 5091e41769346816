"""One labelled example, however its file spelled it: the shape every reader returns.

Labels are already in the project order (bearish=0, neutral=1, bullish=2), so nothing past a
reader has to know which scheme a file used; `origin` ("file:line") lets a later error point back
at the row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from bot.errors import InputError
from bot.events import Label

Format = Literal["auto", "csv", "jsonl", "tfns", "phrasebank", "fiqa"]
FORMATS: tuple[str, ...] = ("auto", "csv", "jsonl", "tfns", "phrasebank", "fiqa")


@dataclass(frozen=True, slots=True)
class Example:
    """One labelled text; `origin` ("file:line") lets any later error point back at the row."""

    text: str
    label: Label
    timestamp: datetime | None = None
    origin: str = ""


@dataclass(frozen=True)
class ReadOptions:
    """How to read formats whose labels need a rule (FiQA scores, PhraseBank agreement)."""

    fiqa_bearish_below: float = -0.1
    fiqa_bullish_above: float = 0.1
    phrasebank_agreement: str = "50"


class DataError(InputError):
    """A data file or data set name that cannot be read as asked."""


def label_counts(examples: Sequence[Example]) -> tuple[int, int, int]:
    counts = [0, 0, 0]
    for example in examples:
        counts[int(example.label)] += 1
    return counts[0], counts[1], counts[2]
