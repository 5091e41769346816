"""The vote as a strategy: the confidence-weighted vote of `strategies.vote`, sized by
`strategies.sizing`, through the `NewsStrategy` base (strategies/protocol.py).

The engine only routes: it hands every signal to `on_signal` and asks `evaluate` for a symbol
when something that could change the decision happened (a signal, a re-vote timer). Everything
that *decides* — the window, the vote, the threshold, sizing and the rebalance band — lives in
the strategy, pure and clock-free (the engine passes the time), so replay, paper and live decide
identically and a strategy can be tested with no engine at all.

Its tunable parameters are `[strategy]` keys (`key=`), so a tuned vote is an ordinary config.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from bot.config import RiskConfig, StrategyConfig
from bot.events import Signal
from bot.symbols import Instrument
from strategies.exits import ExitRules, Level
from strategies.params import CategoricalParam, DecimalParam, IntParam
from strategies.protocol import Evaluation, Intent, NewsStrategy, View, vote_params
from strategies.risk import RiskParams
from strategies.vote import decide

__all__ = ["Evaluation", "VoteStrategy", "exit_rules", "risk_params", "vote_params"]


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


HOUR = 3600
#: The outcomes a re-vote can keep while the window's members stay: a keep, or a flat target
#: the position already is (never "no price", which the engine counts each time).
_STEADY = frozenset({"hold", "below threshold", "unchanged"})


class VoteStrategy(NewsStrategy):
    """Trade the composite vote: long on bullish, short on bearish (flat on spot), flat on
    neutral, sized by the composite confidence."""

    threshold = DecimalParam(0.3, 0.95, 0.6, step=0.05, key="threshold")
    window = IntParam(HOUR, 48 * HOUR, 6 * HOUR, step=HOUR, key="window", help="seconds")
    half_life = IntParam(0, 24 * HOUR, 2 * HOUR, step=HOUR, key="half_life", help="seconds")
    min_signals = IntParam(1, 5, 1, key="min_signals")
    fraction = DecimalParam(0.1, 2.0, 0.5, step=0.1, key="fraction")
    rebalance_band = DecimalParam(0.0, 0.5, 0.1, step=0.05, key="rebalance_band")
    below_threshold = CategoricalParam(("hold", "flat"), "hold", key="below_threshold")
    aggregation = CategoricalParam(("share", "evidence"), "evidence", key="aggregation")
    stop_loss = CategoricalParam(("", "2%", "5%", "2atr"), "", key="stop_loss")
    take_profit = CategoricalParam(("", "3%", "10%", "3atr"), "", key="take_profit")

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
        """The base's evaluation, with the span over which a kept target provably stays kept
        (`Evaluation.steady_until`) while `decide` is this class's own: one that looks at
        bars or prices (a subclass's) could change its mind without a signal."""
        evaluation = super().evaluate(
            symbol, now, instrument=instrument, price=price, equity=equity, current=current
        )
        if evaluation.outcome not in _STEADY or type(self).decide is not VoteStrategy.decide:
            return evaluation
        if evaluation.outcome == "unchanged" and current:
            return evaluation  # kept a position: a long or short, which no span covers
        window = self.signal_window
        span = window.steady_promise(symbol, now, evaluation.composite, instrument.can_short)
        if span is None:
            return evaluation
        outcome, composite, reason = evaluation.outcome, evaluation.composite, evaluation.reason
        return Evaluation(outcome, composite, reason, None, span.until, span.covering)

    def view_signals(self, symbol: str, now: datetime) -> Sequence[Signal]:
        """None for this class's own `decide`, which reads only the composite (a subclass's,
        like the trend vote's, gets the members)."""
        if type(self).decide is VoteStrategy.decide:
            return ()
        return super().view_signals(symbol, now)

    def decide(self, view: View) -> Intent | None:
        decision = decide(view.composite, self.vote_params, view.can_short)
        composite = view.composite
        if decision.direction is None:
            empty = composite.label is None or composite.n_signals < self.vote_params.min_signals
            return Intent(None, reason=decision.reason, weak=not empty)
        return Intent(decision.direction, composite.confidence, decision.reason)
