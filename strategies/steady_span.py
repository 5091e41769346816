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
        if rate:
            f = 0.5 ** ((begins - self._now) / rate)
            g = 0.5 ** ((ends - self._now) / rate)
            holds = check.holds(f * a, f * b, f * c, n) and check.holds(g * a, g * b, g * c, n)
        else:
            holds = check.holds(a, b, c, n)
        if not holds:
            self._done = True
            return False
        self._until = ends
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
