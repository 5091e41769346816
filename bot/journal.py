"""The store as the bus's journal: what happened is written by one subscriber, not by every
handler that saw it.

One writer per record: the engine decides and the store remembers. Signals, fills, equity
snapshots and decision records reach the store because it subscribes to them, after the engine
(subscription order is dispatch order), so a handler that raises never leaves a record of an event
the engine did not apply. Two records keep their explicit writers: an order is written by the
engine *before* it is sent (that is the idempotency rule a restart relies on), and a news item by
the source that published it (the source de-duplicates against what it wrote).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.bus import Bus
from bot.events import Decision, EquitySnapshot, Fill, Signal

if TYPE_CHECKING:  # the store pulls in sqlmodel/sqlalchemy: imported where it is built
    from bot.store import Store


def journal_to(store: Store, bus: Bus, *, decisions: bool = True) -> None:
    """Subscribe `store` to every event it keeps. Call after the engine has subscribed.

    `decisions=False` for a replay: its decision records go to the run's `decisions.csv` (the
    recording subscribes to them), so the run's store does not keep a second copy.
    """
    bus.subscribe(Signal, store.record_signal)
    bus.subscribe(Fill, store.record_fill)
    bus.subscribe(EquitySnapshot, store.record_equity)
    if decisions:
        bus.subscribe(Decision, store.record_decision)
