"""The signals an analysis studies, as arrays.

The event study does not run the model: the replay driver turns news into `Signal` events once
(through the signal cache) and hands their fields here, one array per field, so that every
statistic is a vectorised numpy operation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from bot.events import Signal
from bot.research.timeline import to_seconds

LABELS = ("bearish", "neutral", "bullish")
MARKET_WIDE = ""


@dataclass(frozen=True)
class SignalArrays:
    """One row per signal. `probs` columns are (bearish, neutral, bullish); `label` indexes them.

    `symbol` is the tagged symbol or "" for a market-wide item; `key` is the text two copies of
    one headline share (its title), used to merge near-duplicates.
    """

    received: np.ndarray
    label: np.ndarray
    probs: np.ndarray
    source: np.ndarray
    symbol: np.ndarray
    key: np.ndarray

    @classmethod
    def build(
        cls,
        received: np.ndarray | Sequence[datetime] | Sequence[int],
        label: Sequence[str] | np.ndarray,
        probs: Sequence[Sequence[float]] | np.ndarray,
        source: Sequence[str] | np.ndarray,
        symbol: Sequence[str | None] | np.ndarray,
        key: Sequence[str] | np.ndarray,
    ) -> SignalArrays:
        """Checked arrays; labels may be names ("bullish") or indices into LABELS."""
        times = to_seconds(received)
        n = times.size
        labels = np.asarray(label)
        if labels.dtype.kind in "iu":
            codes = labels.astype(np.int64)
        else:
            lookup = {name: index for index, name in enumerate(LABELS)}
            unknown = [str(value) for value in labels if str(value) not in lookup]
            if unknown:
                raise ValueError(f"signals: unknown label {unknown[0]!r} (expected {LABELS})")
            codes = np.fromiter((lookup[str(v)] for v in labels), dtype=np.int64, count=n)
        matrix = np.asarray(probs, dtype=float).reshape(-1, 3) if n else np.zeros((0, 3))
        fields = {
            "label": codes.size,
            "probs": matrix.shape[0],
            "source": len(source),
            "symbol": len(symbol),
            "key": len(key),
        }
        for name, size in fields.items():
            if size != n:
                raise ValueError(f"signals: {n} received times but {size} {name} values")
        if codes.size and (codes.min() < 0 or codes.max() > 2):
            raise ValueError("signals: label index outside 0..2")
        return cls(
            received=times,
            label=codes,
            probs=matrix,
            source=np.asarray([str(s) for s in source], dtype=object),
            symbol=np.asarray([s or MARKET_WIDE for s in symbol], dtype=object),
            key=np.asarray([str(k) for k in key], dtype=object),
        )

    @classmethod
    def from_signals(
        cls, signals: Iterable[Signal], titles: Mapping[str, str] | None = None
    ) -> SignalArrays:
        """From the signal service's `Signal` events; `titles` maps a news id to its headline
        (the near-duplicate key; the news id itself where no title is known)."""
        rows = list(signals)
        known = titles or {}
        return cls.build(
            received=[row.received for row in rows],
            label=np.asarray([int(row.label) for row in rows], dtype=np.int64),
            probs=[row.probs for row in rows],
            source=[row.source for row in rows],
            symbol=[row.symbol for row in rows],
            key=[known.get(row.news_id, row.news_id) for row in rows],
        )

    def __len__(self) -> int:
        return int(self.received.size)

    def take(self, mask: np.ndarray) -> SignalArrays:
        return SignalArrays(
            received=self.received[mask],
            label=self.label[mask],
            probs=self.probs[mask],
            source=self.source[mask],
            symbol=self.symbol[mask],
            key=self.key[mask],
        )

    @property
    def score(self) -> np.ndarray:
        """The signed score p_bullish - p_bearish that the information coefficient ranks."""
        return self.probs[:, 2] - self.probs[:, 0]

    @property
    def confidence(self) -> np.ndarray:
        """The probability of the label given, the model's confidence in its own answer."""
        return self.probs[np.arange(len(self)), self.label]
