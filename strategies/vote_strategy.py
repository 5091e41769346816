"""The vote as a strategy object: signals in, a target position out (or the reason for none).

The engine only routes: it hands every signal to `on_signal` and asks `evaluate` for a symbol
when something that could change the decision happened (a signal, a re-vote timer). Everything
that *decides* — the window, the vote, the threshold, sizing and the rebalance band — lives here,
pure and clock-free (the engine passes the time), so replay, paper and live decide identically and
a strategy can be tested with no engine at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from bot.config import RiskConfig, StrategyConfig
from bot.events import Label, Signal, TargetPosition
from bot.symbols import Instrument
from strategies.exits import ExitRules, Level
from strategies.risk import RiskParams
from strategies.sizing import target_qty, within_band
from strategies.vote import Composite, SignalWindow, VoteParams, decide

ZERO = Decimal(0)


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


def exit_rules(config: StrategyConfig) -> ExitRules:
    """`[strategy]`'s protective exits (each "" or 0 when off)."""
    return ExitRules(
        stop_loss=Level.parse(config.stop_loss, "[strategy] stop_loss"),
        take_profit=Level.parse(config.take_profit, "[strategy] take_profit"),
        trailing_stop=Level.parse(config.trailing_stop, "[strategy] trailing_stop"),
        max_hold=timedelta(seconds=config.max_hold) if config.max_hold > 0 else None,
    )


def risk_params(config: RiskConfig) -> RiskParams:
    """`[risk]` as the risk gate's parameters."""
    return RiskParams(
        max_notional=config.max_notional,
        max_position=dict(config.max_position),
        max_daily_loss=config.max_daily_loss,
        max_orders_per_minute=config.max_orders_per_minute,
        max_price_age=timedelta(seconds=config.max_price_age),
    )


@dataclass(frozen=True, slots=True)
class Evaluation:
    """What one evaluation made of the window: a new target, or why there is none.

    `outcome` is one of: `target` (publish `target`); `hold` (no signal counts: the target
    stays); `below threshold` (the composite is too weak to act on); `no price` (a decision,
    but nothing to size it against yet); `unchanged` (the sized target equals the current one);
    `within band` (too small a change to trade).
    """

    outcome: str
    composite: Composite
    reason: str
    target: TargetPosition | None = None


class VoteStrategy:
    """The confidence-weighted vote of `strategies.vote`, sized by `strategies.sizing`."""

    def __init__(self, config: StrategyConfig, feed_weights: Mapping[str, float] | None = None):
        self.config = config
        self.params = vote_params(config, feed_weights)
        self.window = SignalWindow(self.params)

    @property
    def reevaluate_every(self) -> timedelta:
        return timedelta(seconds=self.config.reevaluate_interval)

    def on_signal(self, signal: Signal) -> bool:
        """Add a signal to the window; True when it may change a decision now."""
        self.window.add(signal)
        return not (signal.stale and not self.params.trade_stale)

    def wants_revote(self) -> bool:
        """A timer re-vote can change nothing while the window is empty and below-threshold
        means hold."""
        return bool(self.window) or self.params.below_threshold != "hold"

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
        composite = self.window.composite(symbol, now)
        decision = decide(composite, self.params, instrument.can_short)
        if decision.direction is None:
            empty = composite.label is None or composite.n_signals < self.params.min_signals
            return Evaluation("hold" if empty else "below threshold", composite, decision.reason)
        if price is None:
            return Evaluation("no price", composite, "no price yet")
        qty = target_qty(
            decision.direction,
            composite.confidence,
            equity,
            price,
            self.config.fraction,
            self.config.max_fraction,
            instrument,
        )
        if qty == current:
            return Evaluation("unchanged", composite, decision.reason)
        if within_band(current, qty, self.config.rebalance_band):
            return Evaluation("within band", composite, decision.reason)
        label = composite.label if composite.label is not None else Label.NEUTRAL
        target = TargetPosition(now, symbol, qty, label, composite.confidence, decision.reason)
        return Evaluation("target", composite, decision.reason, target)
