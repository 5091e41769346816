"""Decision records: every news item and every re-vote ends in exactly one, with its outcome.

A trader's first question about a news bot is "why did that headline (not) trade?". The engine
answers it by opening a record when a signal or a timer asks the strategy, and closing it where
the path ends: the strategy holds, the risk gate refuses, the instrument rejects the size, or an
order is placed (its client order id in the record, the record's id on the order). A closed record
is published on the bus; the store journals it and a backtest writes it to `decisions.csv`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from bot.events import Decision, Outcome, Signal
from strategies.vote import Composite

# What the strategy's evaluation outcomes are called in a decision record.
EVALUATION_OUTCOMES = {
    "hold": Outcome.HOLD,
    "no price": Outcome.NO_PRICE,
    "unchanged": Outcome.UNCHANGED,
    "within band": Outcome.WITHIN_BAND,
    "below threshold": Outcome.BELOW_THRESHOLD,
}


def outcome_of_risk(reason: str) -> Outcome:
    return Outcome.KILL_SWITCH if "kill switch" in reason else Outcome.RISK_CAP


class Draft:
    """A decision record being made: what is known when the evaluation starts. Mutable and
    cheap (the engine opens one per news item and per re-vote); `DecisionLog.finish` turns it
    into the frozen `Decision` once, with its outcome."""

    __slots__ = ("cause", "composite", "id", "symbol", "target_before", "trigger", "ts")

    def __init__(
        self,
        id: str,
        ts: datetime,
        trigger: str,
        symbol: str | None,
        cause: Signal | None,
        composite: Composite | None,
        target_before: Decimal | None,
    ) -> None:
        self.id = id
        self.ts = ts
        self.trigger = trigger
        self.symbol = symbol
        self.cause = cause
        self.composite = composite
        self.target_before = target_before


class DecisionLog:
    """Opens, completes and publishes decision records; ids are `<prefix>-d<n>`, in order.

    `publish` None: a trial that only needs its equity (a null replay, a hyperopt trial) builds
    no `Decision` at all; the drafts still carry their ids, so orders are linked the same way.
    """

    def __init__(self, prefix: str, publish: Callable[[object], None] | None) -> None:
        self._prefix = prefix
        self._ids = itertools.count(1)
        self._publish = publish
        self._open: dict[str, Draft] = {}
        self.published = 0

    def start(
        self,
        now: datetime,
        symbol: str | None,
        cause: Signal | None,
        *,
        trigger: str = "",
        composite: Composite | None = None,
        target_before: Decimal | None = None,
    ) -> Draft:
        return Draft(
            f"{self._prefix}-d{next(self._ids):07d}",
            now,
            trigger or ("news" if cause is not None else "revote"),
            symbol,
            cause,
            composite,
            target_before,
        )

    def finish(
        self,
        draft: Draft,
        outcome: Outcome,
        reason: str,
        *,
        risk: str = "",
        target_after: Decimal | None = None,
        order_id: str = "",
    ) -> None:
        """Close a record with its outcome and publish it."""
        self._open.pop(draft.id, None)
        self.published += 1
        if self._publish is None:
            return
        cause, composite = draft.cause, draft.composite
        self._publish(
            Decision(
                id=draft.id,
                ts=draft.ts,
                trigger=draft.trigger,
                symbol=draft.symbol,
                outcome=outcome,
                reason=reason,
                news_id=cause.news_id if cause is not None else "",
                received=cause.received if cause is not None else None,
                label=cause.label if cause is not None else None,
                confidence=cause.confidence if cause is not None else 0.0,
                composite_label=composite.label if composite is not None else None,
                composite_confidence=composite.confidence if composite is not None else 0.0,
                target_before=draft.target_before,
                target_after=target_after,
                risk=risk,
                order_id=order_id,
                source=cause.source if cause is not None else "",
                model_id=cause.model_id if cause is not None else "",
            )
        )

    def hold_open(self, draft: Draft) -> None:
        """Keep a record open until the target it published reaches the risk gate."""
        self._open[draft.id] = draft

    def take(self, decision_id: str) -> Draft | None:
        return self._open.pop(decision_id, None)
