"""How long a vote's keep or flat provably lasts while no signal arrives, proved lazily.

`SignalWindow.steady_promise` (strategies/vote.py) proves the first span, up to the first
change of the window's members (the oldest ages out, or one still to come enters). Between two
such changes every member's weight decays by the same factor, so each share and each difference
of two shares moves one way only: what holds at both ends of the span, by a margin above the
float error of the sums, holds at every time inside it (`Check`). Members leave oldest first,
so after each age-out the sums of those left are the newest members' parts, added up from the
newest (no subtraction, so no cancellation: the error bound stays the one of a direct sum).
`SteadySpan` walks those later spans only when asked to cover a later time (`covering`): most
promises end with the next signal long before their members age out, so the walk is mostly
never needed, and a walk done up front for every evaluation would cost more than it saves.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from bot.events import Label

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

#: (received µs, its part of the bearish, neutral and bullish sums at the promise's start)
Member = tuple[int, float, float, float]


class Check:
    """What `decide` of the composite at the start of a promised span depends on, and the test
    that the sums (before the prior) of `count` members elsewhere in it decide alike."""

    __slots__ = ("below", "counts", "edge", "label", "lead", "min_signals", "prior", "threshold")

    def __init__(
        self,
        label: Label | None,
        n_signals: int,
        confidence: float,
        threshold: float,
        min_signals: int,
        prior: float,
        margin: float,
    ) -> None:
        self.label = label
        self.min_signals = min_signals
        self.counts = label is not None and n_signals >= min_signals
        self.threshold = threshold
        self.below = confidence < threshold
        self.prior = prior  # the neutral pseudo-signals' weight (0 under `share`)
        self.lead = 4 * margin  # how far the winner's share must lead every other class's
        self.edge = 2 * margin  # how far from the threshold it must stay

    def holds(self, w0: float, w1: float, w2: float, count: int) -> bool:
        """Whether these sums have the same winner, leading every other class by more than
        the lead (no tie a float error could turn), the same side of `min_signals` and, where
        the threshold counts, the same side of it by more than the edge. Shares are compared
        as sums against `x total` (no division: the same test to within an ulp or two, far
        inside the margin)."""
        label = self.label
        if count == 0:
            return label is None
        if label is None:
            return False
        w1 += self.prior
        total = w0 + w1 + w2
        if not total > 0:
            return False
        lead = self.lead * total
        if label == 1:
            top = w1
            ok = top - w0 > lead and top - w2 > lead
        elif label == 0:
            top = w0
            ok = top - w1 > lead and top - w2 > lead
        else:
            top = w2
            ok = top - w0 > lead and top - w1 > lead
        if not ok or (count >= self.min_signals) != self.counts:
            return False
        if not self.counts:
            return True
        edge = self.threshold * total
        return (top < edge) == self.below and abs(top - edge) > self.edge * total

    def lowest_decay(self, x0: float, x1: float, x2: float) -> float:
        """The smallest decay factor F (>= 0) down to which sums `F x` (before the prior) still
        pass `holds` with twice its margins, given they pass at the span's start: each test is
        linear in F, `alpha F + beta > 0`, so a test that decay can break (alpha > 0) bounds F
        from below at `-beta / alpha`. Twice the margins, so that the time worked out from it
        passes `holds` itself with room to spare for the rounding on the way."""
        label = self.label
        assert label is not None
        prior, lead = self.prior, 2 * self.lead
        xs, qs = (x0, x1, x2), (0.0, prior, 0.0)
        total = x0 + x1 + x2
        x_top, q_top = xs[label], qs[label]
        tests = [
            (x_top - xs[k] - lead * total, q_top - qs[k] - lead * prior)
            for k in range(3)
            if k != label
        ]
        if self.counts:
            if self.below:
                under = self.threshold - 2 * self.edge
                tests.append((under * total - x_top, under * prior - q_top))
            else:
                over = self.threshold + 2 * self.edge
                tests.append((x_top - over * total, q_top - over * prior))
        lowest = 0.0
        for alpha, beta in tests:
            if alpha > 0:
                lowest = max(lowest, -beta / alpha)
        return lowest


def last_holding(
    check: Check, sums: tuple[float, float, float], count: int, begins: int, ends: int,
    now: int, rate: float,
) -> int | None:  # fmt: skip
    """Where `check` holds at `begins` (µs) but not at `ends` under a decaying vote (`rate` µs
    a half-life, the sums' decay 1 at `now`): the last µs before `ends` up to which it still
    holds, found from `Check.lowest_decay` and checked with `holds` at that time (so its float
    result proves it as the span's ends always are); None when none is found after `begins`."""
    lowest = check.lowest_decay(*sums)
    if not 0 < lowest < 1:
        return None
    until = min(now + int(rate * math.log2(1 / lowest)), ends - 1)
    if until <= begins:
        return None
    f = 0.5 ** ((until - now) / rate)
    a, b, c = sums
    return until if check.holds(f * a, f * b, f * c, count) else None


class SteadySpan:
    """A promise proved up to `until`, walked on across age-outs when asked (`covering`)."""

    __slots__ = (
        "_check",
        "_decays",
        "_done",
        "_future",
        "_index",
        "_members",
        "_now",
        "_parts",
        "_rate",
        "_until",
        "_window",
    )

    def __init__(
        self,
        check: Check,
        members: list[Member],
        *,
        now_us: int,
        until_us: int,
        future_us: int,
        window_us: int,
        rate: float,
    ) -> None:
        """`members`: the members' parts at `now_us`; `until_us`: the first span's proved end;
        `future_us`: when the first member still to come enters; `rate`: µs per half-life
        under a decaying `evidence` vote, 0 where the shares do not move between age-outs."""
        self._check = check
        self._members = members
        self._now = now_us
        self._until = until_us
        self._future = future_us
        self._window = window_us
        self._rate = rate
        self._done = not members or until_us >= future_us - 1
        self._parts: list[Member] | None = None  # the sums of the newest members, once sorted
        self._index = 0  # the members that have left so far (sorted, oldest first)

    @property
    def until(self) -> datetime:
        return _EPOCH + timedelta(microseconds=self._until)

    def covering(self, at: datetime) -> datetime | None:
        """The end of the proved span once it reaches `at` (walking on across age-outs as far
        as needed), or None when it cannot be proved that far."""
        at_us = (at - _EPOCH) // _MICROSECOND
        while self._until < at_us:
            if not self._step():
                return None
        return _EPOCH + timedelta(microseconds=self._until)

    def furthest(self) -> datetime:
        """The end of the longest span that can be proved."""
        while self._step():
            pass
        return _EPOCH + timedelta(microseconds=self._until)

    def _step(self) -> bool:
        """Prove the span after the next age-out; False (for good) when it does not hold."""
        if self._done:
            return False
        parts = self._parts
        if parts is None:
            parts = self._parts = _newest_sums(sorted(self._members))
        index, left = self._index, len(parts)
        leaving = parts[index][0]
        while index < left and parts[index][0] == leaving:
            index += 1
        self._index = index
        begins = leaving + self._window  # the first µs without them
        if index == left or begins >= self._future:  # nobody left (the winner changes), or
            self._done = True  # a member still to come enters first
            return False
        received, a, b, c = parts[index]
        ends = min(received + self._window, self._future) - 1
        n, check, rate = left - index, self._check, self._rate
        if not rate:  # the shares stand still between age-outs
            if not check.holds(a, b, c, n):
                self._done = True
                return False
            self._until = ends
            return True
        f = 0.5 ** ((begins - self._now) / rate)
        g = 0.5 ** ((ends - self._now) / rate)
        if not check.holds(f * a, f * b, f * c, n):
            self._done = True
            return False
        if check.holds(g * a, g * b, g * c, n):
            self._until = ends
            return True
        self._done = True  # the decision changes inside this span: the promise ends before
        until = last_holding(check, (a, b, c), n, begins, ends, self._now, rate)
        if until is None:
            return False
        self._until = until
        return True


def _newest_sums(members: list[Member]) -> list[Member]:
    """Each member's received time with the sums of it and every newer one (oldest first)."""
    out: list[Member] = [(0, 0.0, 0.0, 0.0)] * len(members)
    a = b = c = 0.0
    for index in range(len(members) - 1, -1, -1):
        received, x, y, z = members[index]
        a, b, c = a + x, b + y, c + z
        out[index] = (received, a, b, c)
    return out
