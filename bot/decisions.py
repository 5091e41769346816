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
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

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


class DecisionLog:
    """Opens, completes and publishes decision records; ids are `<prefix>-d<n>`, in order."""

    def __init__(self, prefix: str, publish: Callable[[object], None]) -> None:
        self._prefix = prefix
        self._ids = itertools.count(1)
        self._publish = publish
        self._open: dict[str, Decision] = {}
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
    ) -> Decision:
        decision = Decision(
            id=f"{self._prefix}-d{next(self._ids):07d}",
            ts=now,
            trigger=trigger or ("news" if cause is not None else "revote"),
            symbol=symbol,
            outcome=Outcome.HOLD,
            reason="",
            news_id=cause.news_id if cause is not None else "",
            received=cause.received if cause is not None else None,
            label=cause.label if cause is not None else None,
            confidence=cause.confidence if cause is not None else 0.0,
            composite_label=composite.label if composite is not None else None,
            composite_confidence=composite.confidence if composite is not None else 0.0,
            target_before=target_before,
            source=cause.source if cause is not None else "",
        )
        return decision

    def finish(self, decision: Decision, outcome: Outcome, reason: str, **fields: Any) -> None:
        """Close a record with its outcome and publish it."""
        self._open.pop(decision.id, None)
        self.published += 1
        self._publish(replace(decision, outcome=outcome, reason=reason, **fields))

    def hold_open(self, decision: Decision) -> None:
        """Keep a record open until the target it published reaches the risk gate."""
        self._open[decision.id] = decision

    def take(self, decision_id: str) -> Decision | None:
        return self._open.pop(decision_id, None)
