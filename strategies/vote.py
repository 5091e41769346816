"""The confidence-weighted vote over a sliding window of signals, per symbol.

Each signal adds `confidence x weight x source weight x age decay` to its class; the class with the
largest share of the total wins and its share is the composite confidence. Market-wide signals
(no symbol) count for every symbol, at the weight the signal service gave them. This module is
pure: it sees only signals and the time it is handed, so replay and live decide identically.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.events import Label, Signal


@dataclass(frozen=True, slots=True)
class VoteParams:
    window: timedelta
    half_life: timedelta | None
    threshold: float
    below_threshold: str = "hold"  # "hold" keeps the target, "flat" closes it
    min_signals: int = 1
    source_weights: Mapping[str, float] = field(default_factory=dict)
    trade_stale: bool = False


@dataclass(frozen=True, slots=True)
class Composite:
    """The vote's outcome: `label` None when no signal counts."""

    label: Label | None
    confidence: float
    shares: tuple[float, float, float]
    n_signals: int


EMPTY = Composite(None, 0.0, (0.0, 0.0, 0.0), 0)

# Ties go to neutral (the cautious reading), then bearish before bullish.
_TIE_ORDER = (Label.NEUTRAL, Label.BEARISH, Label.BULLISH)


def vote(signals: Iterable[Signal], now: datetime, params: VoteParams) -> Composite:
    weights = [0.0, 0.0, 0.0]
    count = 0
    horizon = now - params.window
    half_life = params.half_life.total_seconds() if params.half_life else 0.0
    for signal in signals:
        # Age is the news item's: an old item answered late (after a restart or a model outage)
        # counts as old, and replay and live agree however long the model took.
        if signal.received <= horizon or signal.received > now:
            continue
        if signal.stale and not params.trade_stale:
            continue
        weight = signal.confidence * signal.weight * params.source_weights.get(signal.source, 1.0)
        if half_life > 0:
            age = (now - signal.received).total_seconds()
            weight *= 0.5 ** (age / half_life)
        if weight <= 0:
            continue
        weights[signal.label] += weight
        count += 1
    total = sum(weights)
    if count == 0 or total <= 0:
        return EMPTY
    shares = (weights[0] / total, weights[1] / total, weights[2] / total)
    best = max(_TIE_ORDER, key=lambda label: shares[label])
    return Composite(best, shares[best], shares, count)


@dataclass(frozen=True, slots=True)
class Decision:
    """`direction` is -1, 0 or +1; None means keep whatever the target was."""

    direction: int | None
    composite: Composite
    reason: str


def decide(composite: Composite, params: VoteParams, can_short: bool) -> Decision:
    if composite.label is None or composite.n_signals < params.min_signals:
        if params.below_threshold == "flat":
            return Decision(0, composite, "no signals in the window: flat")
        return Decision(None, composite, "no signals in the window: hold")
    if composite.confidence < params.threshold:
        if params.below_threshold == "flat":
            return Decision(0, composite, f"composite {composite.confidence:.2f} below threshold")
        return Decision(None, composite, f"composite {composite.confidence:.2f} below threshold")
    if composite.label is Label.NEUTRAL:
        return Decision(0, composite, f"neutral {composite.confidence:.2f}: flat")
    if composite.label is Label.BULLISH:
        return Decision(1, composite, f"bullish {composite.confidence:.2f}")
    if can_short:
        return Decision(-1, composite, f"bearish {composite.confidence:.2f}")
    return Decision(0, composite, f"bearish {composite.confidence:.2f}: flat (spot is long-only)")


class SignalWindow:
    """The signals that can still count, per symbol plus the market-wide ones."""

    def __init__(self, params: VoteParams) -> None:
        self.params = params
        self._by_symbol: dict[str | None, deque[Signal]] = {}

    def add(self, signal: Signal) -> None:
        self._by_symbol.setdefault(signal.symbol, deque()).append(signal)

    def signals(self, symbol: str, now: datetime) -> list[Signal]:
        horizon = now - self.params.window
        out: list[Signal] = []
        for key in (symbol, None):
            queue = self._by_symbol.get(key)
            if not queue:
                continue
            while queue and queue[0].received <= horizon:
                queue.popleft()
            out.extend(queue)
        return out

    def composite(self, symbol: str, now: datetime) -> Composite:
        return vote(self.signals(symbol, now), now, self.params)

    def __bool__(self) -> bool:
        return any(self._by_symbol.values())
