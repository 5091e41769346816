"""The re-votes the engine may skip: those the strategy promised would end as the last one.

A re-vote on the timer (every 5 minutes by default) that ends as the symbol's previous re-vote
did is not recorded again, so it changes nothing; most re-votes of a replay are such. A strategy
that can prove it says so in its evaluation (`Evaluation.steady_until`, strategies/protocol.py):
while no signal arrives and the symbol's target stays what it was, every re-vote up to that time
would end the same. The engine keeps that promise here and asks the strategy only when it has
lapsed: its time passed, a signal arrived, the target moved, or an evaluation ended otherwise.

An engine that records no decisions (a null replay, a hyperopt trial: only its equity counts)
also keeps the promise of a signal's evaluation that set no target, so the first re-vote after
each signal is skipped too; where decisions are recorded that re-vote is a record of its own
(its composite at that time), so it is always asked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal

ZERO = Decimal(0)


class SteadyRevotes:
    """Per symbol: until when its re-votes would end as its last one, and at which target."""

    def __init__(self, records: bool = True) -> None:
        self._promises: dict[str, tuple[datetime, Decimal]] = {}
        self._records = records  # whether the engine records each decision

    def keep(self, symbol: str, until: datetime | None, target: Decimal) -> None:
        """After a re-vote that ended with no new target: its promise (None: none)."""
        if until is None:
            self._promises.pop(symbol, None)
        else:
            self._promises[symbol] = (until, target)

    def after_other(
        self, symbol: str, until: datetime | None, no_target: bool, target: Decimal
    ) -> None:
        """After a signal's evaluation, or one that set a target: its promise is kept only
        where nothing is recorded and it set no target (the module text says why)."""
        if no_target and not self._records:
            self.keep(symbol, until, target)
        else:
            self._promises.pop(symbol, None)

    def clear(self) -> None:
        """A signal arrived: every promise was made without it."""
        self._promises.clear()

    def due(
        self, symbols: Iterable[str], now: datetime, targets: Mapping[str, Decimal]
    ) -> list[str]:
        """The symbols whose re-vote at `now` must be asked (no promise covers it)."""
        promises = self._promises
        out = []
        for symbol in symbols:
            promise = promises.get(symbol)
            if promise is None or now > promise[0] or targets.get(symbol, ZERO) != promise[1]:
                out.append(symbol)
        return out
