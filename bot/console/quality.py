"""Signal quality so far: a live, running event study of the model's answers.

For every signal about a traded symbol, the price when it arrived is kept; once each horizon has
passed, the return since is credited to the signal's label, signed the way the label bets
(bullish: up is right; bearish: down is right; neutral: unsigned). The console shows, per label
and horizon, how many signals, their mean signed return in basis points and how often the
direction was right. It is the research issue's question (does the news move the price?) asked of
the run itself, with no bootstrap or correction: a first look, not a verdict (`lorabot analyze`
gives the verdict on a file).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from bot.events import Label, Signal

HORIZONS = (timedelta(minutes=1), timedelta(minutes=5), timedelta(hours=1))
MAX_PENDING = 50_000  # signals waiting for their last horizon; the oldest go first beyond it


@dataclass
class _Cell:
    n: int = 0
    signed_bps: float = 0.0
    right: int = 0


class SignalQuality:
    """Fed on the main loop: `on_signal` as signals pass, `tick` once a second. One queue per
    horizon, each in time order: a signal moves on to the next horizon's queue once credited."""

    def __init__(self, price: Callable[[str], Decimal | None]) -> None:
        self._price = price
        self._waiting: list[deque[tuple[datetime, str, Label, Decimal]]] = [
            deque() for _ in HORIZONS
        ]
        self._cells: dict[tuple[str, int], _Cell] = {}

    def on_signal(self, signal: Signal) -> None:
        if signal.symbol is None or signal.stale:
            return
        price = self._price(signal.symbol)
        if price is None or price <= 0:
            return
        first = self._waiting[0]
        if len(first) >= MAX_PENDING:
            first.popleft()
        first.append((signal.ts, signal.symbol, signal.label, price))

    def tick(self, now: datetime) -> None:
        for horizon, waiting in enumerate(self._waiting):
            while waiting and now - waiting[0][0] >= HORIZONS[horizon]:
                entry = waiting.popleft()
                _, symbol, label, start = entry
                price = self._price(symbol)
                if price is not None:
                    self._credit(label, horizon, float((price - start) / start) * 10_000)
                if horizon + 1 < len(HORIZONS):
                    self._waiting[horizon + 1].append(entry)

    def _credit(self, label: Label, horizon: int, move_bps: float) -> None:
        cell = self._cells.setdefault((label.word, horizon), _Cell())
        sign = {Label.BULLISH: 1, Label.BEARISH: -1}.get(label, 0)
        cell.n += 1
        cell.signed_bps += sign * move_bps if sign else abs(move_bps)
        cell.right += 1 if sign and sign * move_bps > 0 else 0

    def table(self) -> list[dict[str, Any]]:
        rows = []
        for (label, horizon), cell in sorted(self._cells.items()):
            directional = label != Label.NEUTRAL.word
            rows.append(
                {
                    "label": label,
                    "horizon_s": int(HORIZONS[horizon].total_seconds()),
                    "n": cell.n,
                    "mean_bps": round(cell.signed_bps / cell.n, 2),
                    "hit_rate": round(cell.right / cell.n, 3) if directional else None,
                }
            )
        return rows
