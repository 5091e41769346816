"""The vote over a sliding window of signals, per symbol: two ways to add them up.

`evidence` (the default): each signal adds its whole probability vector, weighted by
`weight x source weight x age decay`, to a prior of `prior_weight` neutral pseudo-signals; the
class with the most evidence wins and its share of all of it is the composite confidence. So one
coin-flip headline (bullish 0.47 against bearish 0.47) is outweighed by the prior and barely moves
anything, while ten agreeing confident ones carry the composite near 1: confidence means evidence.

`share` (the fine-tuning chapter's vote, kept for comparison): each signal adds
`confidence x weight x source weight x age decay` to its own class only; the winner's share of the
total is the composite. One lone signal always has all of it (composite 1.00), however unsure the
model was.

Market-wide signals (no symbol) count for every symbol, at the weight the signal service gave
them. This module is pure: it sees only signals and the time it is handed, so replay and live
decide identically.
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
    aggregation: str = "evidence"  # "evidence" (the default) or "share" (for comparison)
    prior_weight: float = 0.25  # neutral pseudo-signals under `evidence` (config.toml says why)


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
    evidence = params.aggregation == "evidence"
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
        source_weight = params.source_weights.get(signal.source, 1.0)
        decay = 1.0
        if half_life > 0:
            decay = 0.5 ** ((now - signal.received).total_seconds() / half_life)
        if evidence:
            # the whole vector: an unsure answer spreads its weight, a sure one concentrates it
            weight = signal.weight * source_weight * decay
            if weight <= 0:
                continue
            p = signal.probs
            weights[0] += weight * p[0]
            weights[1] += weight * p[1]
            weights[2] += weight * p[2]
        else:
            weight = signal.confidence * signal.weight * source_weight
            if half_life > 0:
                weight *= decay
            if weight <= 0:
                continue
            weights[signal.label] += weight
        count += 1
    if count == 0:
        return EMPTY
    if evidence:
        weights[Label.NEUTRAL] += params.prior_weight
    total = sum(weights)
    if total <= 0:
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
