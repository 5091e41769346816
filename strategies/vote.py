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
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from bot.events import Label, Signal
from strategies.steady_span import Check, SteadySpan, last_holding


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


class Composite(NamedTuple):
    """The vote's outcome: `label` None when no signal counts.

    A NamedTuple, as immutable and typed as a frozen dataclass and about twice as cheap to
    build: every re-vote makes one (tens of thousands a replay).
    """

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
    return _composite(weights, count, params)


def _composite(weights: list[float], count: int, params: VoteParams) -> Composite:
    """The composite of the summed evidence of `count` signals (with the prior under `evidence`)."""
    if count == 0:
        return EMPTY
    if params.aggregation == "evidence":
        weights[Label.NEUTRAL] += params.prior_weight
    total = sum(weights)
    if total <= 0:
        return EMPTY
    shares = (weights[0] / total, weights[1] / total, weights[2] / total)
    best, top = Label.NEUTRAL, shares[1]  # max() over _TIE_ORDER, written out (it runs per vote)
    if shares[0] > top:
        best, top = Label.BEARISH, shares[0]
    if shares[2] > top:
        best, top = Label.BULLISH, shares[2]
    return Composite(best, top, shares, count)


class Decision(NamedTuple):
    """`direction` is -1, 0 or +1; None means keep whatever the target was (a NamedTuple for
    the reason `Composite` is one)."""

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
    """The signals that can still count, per symbol plus the market-wide ones.

    The engine re-votes on a timer (every 5 minutes by default: some 80,000 votes over a year of
    news), so `composite` is the hot path of a replay. Each signal's part of the vote that does
    not depend on the time (its weight x source weight, x confidence under `share`; whether it
    counts at all) is worked out once, when it arrives, with the very float operations `vote`
    does in the same order, and its time is kept in integer microseconds (exact, as datetimes
    are); `composite` then runs one tight loop over those terms and returns what `vote` would.
    """

    def __init__(self, params: VoteParams) -> None:
        self.params = params
        self._by_symbol: dict[str | None, deque[tuple[Signal, _Term]]] = {}
        self._window = params.window // _MICROSECOND
        self._half_life = params.half_life.total_seconds() if params.half_life else 0.0
        self._evidence = params.aggregation == "evidence"
        self._added = 0  # signals taken in so far: a vote remembered is of this many
        # the last composite's (symbol, µs, signals added, sums before the prior, count, the
        # last µs before its members change, the first µs a member still to come enters,
        # whether every member is safe) and its members' parts: `steady_until`
        self._last: tuple[str, int, int, float, float, float, int, int, int, bool] | None = None
        self._members: list[tuple[int, float, float, float]] = []

    def add(self, signal: Signal) -> None:
        params = self.params
        counts = not (signal.stale and not params.trade_stale)
        source_weight = params.source_weights.get(signal.source, 1.0)
        if self._evidence:
            base = signal.weight * source_weight
        else:
            base = signal.confidence * signal.weight * source_weight
        p = signal.probs
        received = (signal.received - _EPOCH) // _MICROSECOND
        # whether its weight stays far from zero and its probabilities sane (`steady_until`)
        safe = base <= 0 or (
            _SAFE_BASE <= base < _INF
            and 0 <= p[0] < _INF
            and 0 <= p[1] < _INF
            and 0 <= p[2] < _INF
            and p[0] + p[1] + p[2] >= _SAFE_MASS
        )
        term = (received, counts, int(signal.label), base, p[0], p[1], p[2], safe)
        self._by_symbol.setdefault(signal.symbol, deque()).append((signal, term))
        self._added += 1

    def _prune(self, key: str | None, horizon: datetime) -> deque[tuple[Signal, _Term]] | None:
        queue = self._by_symbol.get(key)
        while queue and queue[0][0].received <= horizon:
            queue.popleft()
        return queue

    def signals(self, symbol: str, now: datetime) -> list[Signal]:
        horizon = now - self.params.window
        out: list[Signal] = []
        for key in (symbol, None):
            queue = self._prune(key, horizon)
            if queue:
                out.extend(signal for signal, _ in queue)
        return out

    def composite(self, symbol: str, now: datetime) -> Composite:
        """`vote(self.signals(symbol, now), now, self.params)`, bit for bit, faster."""
        horizon = now - self.params.window
        now_us = (now - _EPOCH) // _MICROSECOND
        oldest = now_us - self._window
        half_life, evidence = self._half_life, self._evidence
        decays = half_life > 0
        w0 = w1 = w2 = 0.0  # the sums, each in the order `vote` adds them
        count = 0
        first = future = now_us + 2 * self._window  # the oldest member, the next to arrive
        steady = True
        members: list[tuple[int, float, float, float]] = []  # each member's part of the sums
        keep = members.append
        for key in (symbol, None):
            queue = self._prune(key, horizon)
            if not queue:
                continue
            for _, (received, counts, label, base, p0, p1, p2, safe) in queue:
                if received > now_us:
                    if received < future:
                        future = received
                    continue
                if received <= oldest or not counts:
                    continue
                if not safe:
                    steady = False
                # `base x decay` (`vote` multiplies by a decay of 1.0 without a half-life)
                if decays:
                    weight = base * 0.5 ** ((now_us - received) / 1_000_000 / half_life)
                else:
                    weight = base
                if weight <= 0:
                    continue
                if evidence:
                    a, b, c = weight * p0, weight * p1, weight * p2
                    w0 += a
                    w1 += b
                    w2 += c
                    keep((received, a, b, c))
                elif label == 0:
                    w0 += weight
                    keep((received, weight, 0.0, 0.0))
                elif label == 1:
                    w1 += weight
                    keep((received, 0.0, weight, 0.0))
                else:
                    w2 += weight
                    keep((received, 0.0, 0.0, weight))
                if received < first:
                    first = received
                count += 1
        change = min(first + self._window, future, now_us + self._window) - 1
        self._last = (symbol, now_us, self._added, w0, w1, w2, count, change, future, steady)
        self._members = members
        weights = [w0, w1, w2]
        return _composite(weights, count, self.params)

    def steady_promise(
        self, symbol: str, now: datetime, composite: Composite, can_short: bool
    ) -> SteadySpan | None:
        """The span over which, while no signal arrives, `decide` on this symbol's composite
        gives what it gives now, a keep (direction None) or a flat (0), with the same winning
        class, on the same side of the threshold and of `min_signals`; None when that cannot be
        proved. Sizing plays no part in either, so the evaluation ends the same while the
        target stays. Proved here up to the first change of the members, and on across
        age-outs as the engine asks (strategies/steady_span.py says why it holds).
        `composite` is this window's composite at `now` (its sums and parts are remembered).
        """
        params = self.params
        direction = decide(composite, params, can_short).direction
        if direction not in (None, 0):
            return None
        now_us = (now - _EPOCH) // _MICROSECOND
        if self._last is None or self._last[:3] != (symbol, now_us, self._added):
            self.composite(symbol, now)
        assert self._last is not None
        _, _, _, s0, s1, s2, count, last_us, future, steady = self._last
        ages = self._window / 1_000_000 / self._half_life if self._half_life > 0 else 0.0
        if not steady or last_us <= now_us or ages > _SAFE_AGES or not params.prior_weight >= 0:
            return None
        prior = params.prior_weight if self._evidence else 0.0
        margin = _STEADY_MARGIN * (count + 10 + ages)
        check = Check(
            composite.label,
            composite.n_signals,
            composite.confidence,
            params.threshold,
            params.min_signals,
            prior,
            margin,
        )
        if not check.holds(s0, s1, s2, count):
            return None
        rate = 1_000_000 * self._half_life if self._evidence and self._half_life > 0 else 0.0
        members = self._members
        if rate and count:  # the far end: every signal's weight x the same decay
            f = 0.5 ** ((last_us - now_us) / rate)
            if not check.holds(f * s0, f * s1, f * s2, count):
                # the decision changes before a member leaves: promised up to just before
                changes = last_holding(check, (s0, s1, s2), count, now_us, last_us, now_us, rate)
                if changes is None:
                    return None
                last_us, members = changes, []  # and no further
        return SteadySpan(
            check,
            members,
            now_us=now_us,
            until_us=last_us,
            future_us=future,
            window_us=self._window,
            rate=rate,
        )

    def steady_until(
        self, symbol: str, now: datetime, composite: Composite, can_short: bool
    ) -> datetime | None:
        """The end of the longest span `steady_promise` can prove (None: none)."""
        promise = self.steady_promise(symbol, now, composite, can_short)
        return None if promise is None else promise.furthest()

    def __bool__(self) -> bool:
        return any(self._by_symbol.values())


# (received µs, counts, label, weight part, p_bearish, p_neutral, p_bullish, safe); see
# SignalWindow
_Term = tuple[int, bool, int, float, float, float, float, bool]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_INF = float("inf")
# The steady span's guards. A share's float error is below (2n + 12 + 3 x ages) x 2^-53 for n
# terms whose oldest is `ages` half-lives old (pow, the age's division, the products, the sums,
# the ratio); the margin is 300 times that. A member's weight stays far from underflow while
# its base is at least 1e-200 and its decay at least 2^-160, and the sums stay far from
# underflow while its probabilities add up to at least 1e-6.
_STEADY_MARGIN = 1e-13
_SAFE_BASE = 1e-200
_SAFE_MASS = 1e-6
_SAFE_AGES = 160.0
