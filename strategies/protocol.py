"""The strategy interface: what the engine calls, and the small base class users write to.

`Strategy` is the protocol the engine holds (bot/engine.py): it is handed every signal and bar
and asked, when something could change a decision, for an `Evaluation` of one symbol. Replay,
paper and live call the same object, so they decide alike.

Most strategies only need to say *what* to do given what is known now; `NewsStrategy` does the
rest (the signal window, the composite vote, recent bars, sizing, the rebalance band) and calls
its `decide(view)`: given the composite vote, the signals in the window, recent bars, the
position and the clock's time, return an `Intent` (a direction and a strength) or None (keep the
target). Parameters are declared on the class (strategies/params.py). Pure: no I/O, no clock;
the time comes in the view.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple, Protocol, runtime_checkable

from bot.config import StrategyConfig
from bot.events import Bar, Label, Signal, TargetPosition
from bot.symbols import Instrument
from strategies.params import declared, resolve
from strategies.sizing import target_qty, within_band
from strategies.vote import Composite, SignalWindow, VoteParams


class Evaluation(NamedTuple):
    """What one evaluation made of the window: a new target, or why there is none.

    `outcome` is one of: `target` (publish `target`); `hold` (no signal counts: the target
    stays); `below threshold` (the composite is too weak to act on); `no price` (a decision,
    but nothing to size it against yet); `unchanged` (the sized target equals the current one);
    `within band` (too small a change to trade).

    `steady_until`: the strategy's promise that, while no signal arrives and the symbol's target
    stays `current`, every re-vote of it up to that time would end exactly as this one did (same
    outcome, same winning class, no target), whatever the price or equity, so the engine need
    not ask (None: no promise; `VoteStrategy` proves it from the window, strategies/vote.py).
    `steady_more`, when given, carries the promise on: asked for a later time, it returns the
    end of a span proved to reach it with the same promise, or None (strategies/steady_span.py).

    A NamedTuple, like `View` and `Intent`: as immutable and typed as a frozen dataclass and
    several times cheaper to build (one of each per evaluation, tens of thousands a replay).
    """

    outcome: str
    composite: Composite
    reason: str
    target: TargetPosition | None = None
    steady_until: datetime | None = None
    steady_more: Callable[[datetime], datetime | None] | None = None


@runtime_checkable
class Strategy(Protocol):
    """What the engine calls. `NewsStrategy` implements all of it around one `decide`."""

    @property
    def reevaluate_every(self) -> timedelta: ...

    def on_signal(self, signal: Signal) -> bool:
        """Take a signal in; True when it may change a decision now (False: stale, never traded)."""
        ...

    def on_bar(self, bar: Bar) -> None:
        """Take a closed bar in (for strategies that look at recent prices)."""
        ...

    def wants_revote(self) -> bool:
        """Whether a timer re-vote could change anything now."""
        ...

    def evaluate(
        self,
        symbol: str,
        now: datetime,
        *,
        instrument: Instrument,
        price: Decimal | None,
        equity: Decimal,
        current: Decimal,
    ) -> Evaluation: ...


#: What the engine needs of a strategy class; the loader names the ones a user class lacks.
ENGINE_METHODS = ("reevaluate_every", "on_signal", "on_bar", "wants_revote", "evaluate")


class Intent(NamedTuple):
    """What `decide` wants: `direction` +1 long, -1 short, 0 flat, None keep the current target;
    `strength` in [0, 1] scales the position (`[strategy] fraction x strength` of equity, capped
    by `max_fraction`); `weak` marks a keep because the evidence is too weak (recorded as
    "below threshold" rather than "hold")."""

    direction: int | None
    strength: float = 1.0
    reason: str = ""
    weak: bool = False


class Bars:
    """One symbol's recent closed bars, as far back as the strategy asked for."""

    def __init__(self, span: timedelta) -> None:
        self.span = span
        self.ts: list[datetime] = []
        self.close: list[float] = []
        self._start = 0

    def add(self, bar: Bar) -> None:
        self.ts.append(bar.ts)
        self.close.append(float(bar.close))
        horizon = bar.ts - self.span
        while self._start < len(self.ts) and self.ts[self._start] < horizon:
            self._start += 1
        if self._start > 4096:  # drop the expired front now and then, not every bar
            del self.ts[: self._start], self.close[: self._start]
            self._start = 0

    def closes_since(self, since: datetime) -> list[float]:
        """The closes of the bars that closed after `since`."""
        return self.close[max(self._start, bisect_right(self.ts, since)) :]

    def closes_between(self, since: datetime, until: datetime) -> list[float]:
        """The closes of the bars that closed after `since` and at or before `until`."""
        low = max(self._start, bisect_right(self.ts, since))
        return self.close[low : max(low, bisect_right(self.ts, until))]

    def close_at(self, when: datetime) -> float | None:
        """The close of the last bar closed at or before `when` (None before the history)."""
        index = bisect_right(self.ts, when) - 1
        return self.close[index] if index >= self._start else None

    def __len__(self) -> int:
        return len(self.ts) - self._start


class View(NamedTuple):
    """Everything `decide` may look at, at `now` (nothing later)."""

    now: datetime
    symbol: str
    composite: Composite
    signals: Sequence[Signal]
    bars: Bars | None
    position: Decimal  # the current target quantity
    price: Decimal | None
    equity: Decimal
    can_short: bool


class NewsStrategy:
    """Base class for strategies: override `decide`; declare parameters as class fields.

    The constructor is the one the loader calls: the `[strategy]` section, the feeds' weights
    and the `[strategy.params]` table. `bar_history` (a property) says how far back `view.bars`
    reaches; zero keeps no bars at all.
    """

    def __init__(
        self,
        config: StrategyConfig,
        feed_weights: Mapping[str, float] | None = None,
        params: Mapping[str, object] | None = None,
    ) -> None:
        self.config = config
        self.param_values: dict[str, Any] = resolve(
            type(self), config.model_dump(), params if params is not None else config.params
        )
        self.vote_params = vote_params(config, feed_weights)
        self.signal_window = SignalWindow(self.vote_params)
        self._history = self.bar_history
        self.bars: dict[str, Bars] = {}

    @classmethod
    def declared_params(cls) -> dict[str, Any]:
        return declared(cls)

    @property
    def bar_history(self) -> timedelta:
        return timedelta(0)

    @property
    def reevaluate_every(self) -> timedelta:
        return timedelta(seconds=self.config.reevaluate_interval)

    def on_signal(self, signal: Signal) -> bool:
        self.signal_window.add(signal)
        return not (signal.stale and not self.vote_params.trade_stale)

    def on_bar(self, bar: Bar) -> None:
        if not self._history:
            return
        history = self.bars.get(bar.symbol)
        if history is None:
            history = self.bars[bar.symbol] = Bars(self._history)
        history.add(bar)

    def wants_revote(self) -> bool:
        """A timer re-vote can change nothing while the window is empty and below-threshold
        means hold."""
        return bool(self.signal_window) or self.vote_params.below_threshold != "hold"

    def view_signals(self, symbol: str, now: datetime) -> Sequence[Signal]:
        """`view.signals`: the window's members (a strategy whose `decide` never reads them
        may hand over none, as the plain vote does)."""
        return self.signal_window.signals(symbol, now)

    def decide(self, view: View) -> Intent | None:
        raise NotImplementedError(f"{type(self).__name__} must define decide(self, view)")

    def evaluate(
        self,
        symbol: str,
        now: datetime,
        *,
        instrument: Instrument,
        price: Decimal | None,
        equity: Decimal,
        current: Decimal,
    ) -> Evaluation:
        composite = self.signal_window.composite(symbol, now)  # `vote(signals, ...)`, faster
        view = View(
            now,
            symbol,
            composite,
            self.view_signals(symbol, now),
            self.bars.get(symbol),
            current,
            price,
            equity,
            instrument.can_short,
        )
        intent = self.decide(view)
        if intent is None or intent.direction is None:
            reason = intent.reason if intent is not None else "no decision: hold"
            weak = intent is not None and intent.weak
            return Evaluation("below threshold" if weak else "hold", composite, reason)
        if price is None:
            return Evaluation("no price", composite, "no price yet")
        qty = target_qty(
            intent.direction,
            intent.strength,
            equity,
            price,
            self.config.fraction,
            self.config.max_fraction,
            instrument,
        )
        if qty == current:
            return Evaluation("unchanged", composite, intent.reason)
        if within_band(current, qty, self.config.rebalance_band):
            return Evaluation("within band", composite, intent.reason)
        label = composite.label if composite.label is not None else Label.NEUTRAL
        target = TargetPosition(now, symbol, qty, label, composite.confidence, intent.reason)
        return Evaluation("target", composite, intent.reason, target)


def vote_params(
    config: StrategyConfig, feed_weights: Mapping[str, float] | None = None
) -> VoteParams:
    """`[strategy]` as the vote's parameters. A feed's `weight` in [[news.feeds]] counts unless
    `[strategy] source_weights` names that source too."""
    return VoteParams(
        window=timedelta(seconds=config.window),
        half_life=timedelta(seconds=config.half_life) if config.half_life > 0 else None,
        threshold=config.threshold,
        below_threshold=config.below_threshold,
        min_signals=config.min_signals,
        source_weights={**(feed_weights or {}), **config.source_weights},
        trade_stale=config.trade_stale_news,
        aggregation=config.aggregation,
        prior_weight=config.prior_weight,
    )
