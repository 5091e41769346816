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

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from decimal import Decimal

from strategies.protocol import Evaluation

ZERO = Decimal(0)
More = Callable[[datetime], datetime | None]


class SteadyRevotes:
    """Per symbol: until when its re-votes would end as its last one, at which target, and how
    to carry the promise on past that time (`Evaluation.steady_more`)."""

    def __init__(self, records: bool = True) -> None:
        self._promises: dict[str, tuple[datetime, Decimal, More | None]] = {}
        self._records = records  # whether the engine records each decision

    def keep(self, symbol: str, evaluation: Evaluation, target: Decimal) -> None:
        """After a re-vote that ended with no new target: its promise (if it made one)."""
        until = evaluation.steady_until
        if until is None:
            self._promises.pop(symbol, None)
        else:
            self._promises[symbol] = (until, target, evaluation.steady_more)

    def after_other(
        self, symbol: str, evaluation: Evaluation, no_target: bool, target: Decimal
    ) -> None:
        """After a signal's evaluation, or one that set a target: its promise is kept only
        where nothing is recorded and it set no target (the module text says why)."""
        if no_target and not self._records:
            self.keep(symbol, evaluation, target)
        else:
            self._promises.pop(symbol, None)

    def clear(self) -> None:
        """A signal arrived: every promise was made without it."""
        self._promises.clear()

    def due(
        self, symbols: Iterable[str], now: datetime, targets: Mapping[str, Decimal]
    ) -> list[str]:
        """The symbols whose re-vote at `now` must be asked (no promise covers it); a promise
        whose time passed is carried on where the strategy can (its `steady_more`)."""
        promises = self._promises
        out = []
        for symbol in symbols:
            promise = promises.get(symbol)
            if promise is None:
                out.append(symbol)
                continue
            target = targets.get(symbol, ZERO)  # the very object kept, unless it moved
            if target is not promise[1] and target != promise[1]:
                out.append(symbol)
            elif now > promise[0]:
                more = promise[2]
                until = more(now) if more is not None else None
                if until is None:
                    del promises[symbol]
                    out.append(symbol)
                else:
                    promises[symbol] = (until, promise[1], more)
        return out
