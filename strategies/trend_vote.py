"""The vote gated by trend, skipping reactive headlines (`[strategy] use = "trend"`).

Two filters on the plain vote, both from the research issue's findings on real crypto news:

- reactive headlines: "Bitcoin spikes to $20K" is bullish in words and reports the past. A
  signal whose label agrees with a move over the `reactive_hours` before it that already exceeds
  `reactive_sigma` standard deviations (of the bars' log returns over the trend window, scaled
  to that span) leaves the vote; 0 turns the filter off.
- trend: longs only while the price is above its `trend_hours` mean of closes, shorts only below;
  a vote against the trend goes flat instead.

Both read only bars closed by `now`, so nothing sees the future.
"""

from __future__ import annotations

import itertools
import math
from datetime import timedelta
from typing import Any

from bot.events import Label, Signal
from strategies.params import DecimalParam, IntParam
from strategies.protocol import Bars, Intent, View
from strategies.vote import decide, vote
from strategies.vote_strategy import VoteStrategy


class TrendGatedVote(VoteStrategy):
    """The vote, long only above the trend mean and short only below, without reactive news."""

    trend_hours = IntParam(6, 168, 24, step=6, help="hours of closes in the trend mean")
    reactive_hours = IntParam(1, 24, 4, help="hours before an item its prior move is measured")
    reactive_sigma = DecimalParam(0.0, 5.0, 2.0, step=0.25, help="0: keep reactive items")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._seen: dict[Signal, bool] = {}

    @property
    def bar_history(self) -> timedelta:
        hours = max(self.trend_hours, self.reactive_hours)
        return timedelta(hours=hours + self.vote_params.window.total_seconds() / 3600 + 1)

    def decide(self, view: View) -> Intent | None:
        bars = view.bars
        composite = view.composite
        if bars is not None and self.reactive_sigma > 0:
            kept = [s for s in view.signals if not self._reactive(s, bars)]
            if len(kept) != len(view.signals):
                composite = vote(kept, view.now, self.vote_params)
        decision = decide(composite, self.vote_params, view.can_short)
        if decision.direction is None:
            empty = composite.label is None or composite.n_signals < self.vote_params.min_signals
            return Intent(None, reason=decision.reason, weak=not empty)
        if decision.direction == 0 or bars is None or view.price is None:
            return Intent(decision.direction, composite.confidence, decision.reason)
        closes = bars.closes_since(view.now - timedelta(hours=self.trend_hours))
        if not closes:
            return Intent(decision.direction, composite.confidence, decision.reason)
        mean = sum(closes) / len(closes)
        price = float(view.price)
        if (decision.direction > 0 and price <= mean) or (decision.direction < 0 and price >= mean):
            side = "below" if decision.direction > 0 else "above"
            reason = f"{decision.reason}: flat, price {side} its {self.trend_hours}h mean"
            return Intent(0, composite.confidence, reason)
        return Intent(decision.direction, composite.confidence, decision.reason)

    def _reactive(self, signal: Signal, bars: Bars) -> bool:
        """Whether the price had already moved more than k sigma the signal's way before it
        (it reads only bars closed by the item's time, so it is worked out once per signal)."""
        if signal.label is Label.NEUTRAL:
            return False
        known = self._seen.get(signal)
        if known is None:
            if len(self._seen) > 50_000:
                self._seen.clear()
            known = self._seen[signal] = self._moved_before(signal, bars)
        return known

    def _moved_before(self, signal: Signal, bars: Bars) -> bool:
        at = bars.close_at(signal.received)
        before = bars.close_at(signal.received - timedelta(hours=self.reactive_hours))
        if at is None or before is None or at <= 0 or before <= 0:
            return False
        since = signal.received - timedelta(hours=self.trend_hours)
        closes = bars.closes_between(since, signal.received)
        steps = [math.log(b / a) for a, b in itertools.pairwise(closes) if a > 0]
        if len(steps) < 3:
            return False
        mean = sum(steps) / len(steps)
        sigma = math.sqrt(sum((x - mean) ** 2 for x in steps) / (len(steps) - 1))
        if sigma <= 0:
            return False
        per_bar = (bars.ts[-1] - bars.ts[-2]).total_seconds() if len(bars.ts) > 1 else 3600.0
        span = max(self.reactive_hours * 3600 / max(per_bar, 1.0), 1.0)
        move = math.log(at / before)
        sign = 1 if signal.label is Label.BULLISH else -1
        return sign * move > self.reactive_sigma * sigma * math.sqrt(span)
