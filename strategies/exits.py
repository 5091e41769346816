"""Protective exits: stop-loss, take-profit, trailing stop and a maximum holding time.

Levels are a percent of the entry price (`"2%"`) or a multiple of the average true range at entry
(`"1.5atr"`), so one setting suits a quiet and a wild market. A bar decides intrabar from its high
and low, as a venue's trigger would:

- a bar that *opens* beyond a level (a gap) exits at the open: the level was never tradable;
- a bar whose range touches one level exits at that level;
- a bar whose range holds both the stop and the take-profit exits at the stop: the order of
  the touches inside the bar is unknown, and the pessimistic reading is the honest one;
- the trailing stop follows the best price seen *before* the bar (a bar's own high cannot raise
  the stop that the same bar then hits).

Pure: prices and times in, an exit (price, reason) or None out; the paper broker applies the fill
and the engine records the decision. Decimal throughout: an exit price becomes a fill.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

ZERO = Decimal(0)
_LEVEL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(%|atr)\s*$", re.IGNORECASE)


class ExitConfigError(ValueError):
    """A level that is neither a percent nor an ATR multiple."""


@dataclass(frozen=True, slots=True)
class Level:
    """A distance from the entry price: `value` percent, or `value` x ATR."""

    value: Decimal
    unit: str  # "%" or "atr"

    @classmethod
    def parse(cls, text: str, key: str) -> Level | None:
        """`""` (off), `"2%"`, `"1.5atr"`; anything else is an error naming `key`."""
        if not text.strip():
            return None
        match = _LEVEL.match(text)
        if match is None:
            raise ExitConfigError(
                f"{key} = {text!r}: use a percent like '2%' or an ATR multiple like '1.5atr'"
            )
        value = Decimal(match.group(1))
        if value <= 0:
            raise ExitConfigError(f"{key} = {text!r}: must be above zero")
        return cls(value, match.group(2).lower())

    def distance(self, entry: Decimal, atr: Decimal | None) -> Decimal | None:
        """The level's distance in price; None for an ATR level before any ATR is known."""
        if self.unit == "%":
            return entry * self.value / 100
        return None if atr is None else atr * self.value


@dataclass(frozen=True, slots=True)
class ExitRules:
    stop_loss: Level | None = None
    take_profit: Level | None = None
    trailing_stop: Level | None = None
    max_hold: timedelta | None = None

    @property
    def active(self) -> bool:
        return any((self.stop_loss, self.take_profit, self.trailing_stop, self.max_hold))


@dataclass(slots=True)
class Held:
    """What an exit needs to know about an open position."""

    side: int  # +1 long, -1 short
    entry: Decimal
    since: datetime
    atr: Decimal | None  # at entry
    best: Decimal  # the best price seen since entry, before the current bar


@dataclass(frozen=True, slots=True)
class Exit:
    price: Decimal
    reason: str  # "stop_loss", "take_profit", "trailing_stop", "max_hold"


@dataclass(frozen=True, slots=True)
class Levels:
    stop: Decimal | None
    stop_reason: str  # "stop_loss" or "trailing_stop": whichever is tighter now
    target: Decimal | None


def levels(rules: ExitRules, held: Held) -> Levels:
    """The stop (the tighter of the stop-loss and the trailing stop) and the take-profit now."""
    side = held.side
    stop: Decimal | None = None
    reason = "stop_loss"
    if rules.stop_loss is not None:
        distance = rules.stop_loss.distance(held.entry, held.atr)
        if distance is not None:
            stop = held.entry - side * distance
    if rules.trailing_stop is not None:
        distance = rules.trailing_stop.distance(held.entry, held.atr)
        if distance is not None:
            trail = held.best - side * distance
            if stop is None or (trail > stop if side > 0 else trail < stop):
                stop, reason = trail, "trailing_stop"
    target: Decimal | None = None
    if rules.take_profit is not None:
        distance = rules.take_profit.distance(held.entry, held.atr)
        if distance is not None:
            target = held.entry + side * distance
    return Levels(stop, reason, target)


def check_bar(
    rules: ExitRules,
    held: Held,
    *,
    ts_open: datetime,
    open_: Decimal,
    high: Decimal,
    low: Decimal,
) -> Exit | None:
    """The exit this bar triggers, if any (see the module docstring for the rules)."""
    now = levels(rules, held)
    stop, target = now.stop, now.target
    long = held.side > 0
    if stop is not None and (open_ <= stop if long else open_ >= stop):
        return Exit(open_, now.stop_reason)  # gapped through the stop
    if target is not None and (open_ >= target if long else open_ <= target):
        return Exit(open_, "take_profit")
    if stop is not None and (low <= stop if long else high >= stop):
        return Exit(stop, now.stop_reason)  # first, even when the target lies in the bar too
    if target is not None and (high >= target if long else low <= target):
        return Exit(target, "take_profit")
    if rules.max_hold is not None and ts_open - held.since >= rules.max_hold:
        return Exit(open_, "max_hold")
    return None


def after_bar(held: Held, high: Decimal, low: Decimal) -> None:
    """Let the trailing stop follow the bar once it is over."""
    if held.side > 0:
        held.best = max(held.best, high)
    else:
        held.best = min(held.best, low)


class TrueRange:
    """The average true range over the last `period` bars (Wilder's smoothing), from past bars
    only: the value after a bar is what the next bar's decisions may use."""

    def __init__(self, period: int = 14) -> None:
        self.period = period
        self._previous_close: Decimal | None = None
        self._count = 0
        self._atr: Decimal | None = None
        self._sum = ZERO

    @property
    def value(self) -> Decimal | None:
        return self._atr

    def update(self, high: Decimal, low: Decimal, close: Decimal) -> None:
        previous = self._previous_close
        if previous is None:
            true_range = high - low
        else:
            true_range = max(high - low, abs(high - previous), abs(low - previous))
        self._previous_close = close
        self._count += 1
        if self._count <= self.period:
            self._sum += true_range
            if self._count == self.period:
                self._atr = self._sum / self.period
            return
        assert self._atr is not None
        self._atr = (self._atr * (self.period - 1) + true_range) / self.period


class ExitBook:
    """The open positions' exit state per symbol, fed the position changes and the bars."""

    def __init__(self, rules: ExitRules, atr_period: int = 14) -> None:
        self.rules = rules
        self._held: dict[str, Held] = {}
        self._atr: dict[str, TrueRange] = {}
        self._period = atr_period
        # the ATR is kept (Decimal work on every bar) only where a level is an ATR multiple
        levels = (rules.stop_loss, rules.take_profit, rules.trailing_stop)
        self._keeps_atr = any(level is not None and level.unit == "atr" for level in levels)

    def on_position(self, symbol: str, qty: Decimal, avg_price: Decimal, now: datetime) -> None:
        """A fill changed the position: a new entry starts a new exit state; flat forgets it."""
        if qty == 0:
            self._held.pop(symbol, None)
            return
        side = 1 if qty > 0 else -1
        held = self._held.get(symbol)
        if held is None or held.side != side:
            atr = self._atr.get(symbol)
            self._held[symbol] = Held(side, avg_price, now, atr.value if atr else None, avg_price)
        else:
            held.entry = avg_price  # added to or reduced: the levels follow the average entry

    def on_bar(
        self,
        symbol: str,
        *,
        ts_open: datetime,
        open_: Decimal,
        high: Decimal,
        low: Decimal,
        close: Decimal,
    ) -> Exit | None:
        """The exit this bar triggers for `symbol` (its state is then forgotten), if any."""
        held = self._held.get(symbol)
        exit_ = None
        if held is not None:
            exit_ = check_bar(self.rules, held, ts_open=ts_open, open_=open_, high=high, low=low)
            if exit_ is None:
                after_bar(held, high, low)
            else:
                del self._held[symbol]
        if self._keeps_atr:
            atr = self._atr.get(symbol)
            if atr is None:
                atr = self._atr[symbol] = TrueRange(self._period)
            atr.update(high, low, close)
        return exit_
