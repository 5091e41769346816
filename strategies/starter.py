"""The starter file `lorabot new-strategy NAME` writes: a documented strategy that runs as is."""

from __future__ import annotations

import keyword
import re

TEMPLATE = '''"""{name}: a lorabot strategy (written by `lorabot new-strategy`; edit freely).

Use it with, in config.toml:

    [strategy]
    use = "{file}:{name}"

    [strategy.params]          # optional: values for the parameters declared below
    lookback_hours = 24

and tune it with `lorabot hyperopt --news NEWS --bars BARS --trials 100`.

A strategy is handed a `View` of what is known at `view.now` and nothing later:
  view.composite  the confidence-weighted vote of the signals in the window ([strategy] window):
                  .label (Label.BEARISH / NEUTRAL / BULLISH, None when no signal counts),
                  .confidence (0..1), .shares (bearish, neutral, bullish), .n_signals
  view.signals    those signals (label, confidence, probs, source, received, symbol, ...)
  view.bars       recent closed bars of the symbol, as far back as `bar_history`
                  (.closes_since(t), .close_at(t), .ts, .close), or None before the first bar
  view.position   the current target quantity; view.price the last price (None before any)
  view.equity, view.can_short (False on spot)

`decide` returns an Intent(direction, strength, reason): direction +1 long, -1 short, 0 flat;
strength 0..1 scales the position to [strategy] fraction x strength of equity (capped by
max_fraction); or None to keep the current target. Sizing, the rebalance band, the risk gate,
exits and orders are lorabot's: the same object runs in backtests, paper and live trading.

Parameters are class fields with a range and a default (IntParam, DecimalParam,
CategoricalParam); read them as plain values (self.lookback_hours). Keep decide pure: no files,
no network, no clock (use view.now).
"""

from __future__ import annotations

from datetime import timedelta

from bot.events import Label
from strategies.params import DecimalParam, IntParam
from strategies.protocol import Intent, NewsStrategy, View


class {name}(NewsStrategy):
    """Follow confident bullish news, only while the price is above its recent mean."""

    lookback_hours = IntParam(2, 168, 24, help="hours of closes in the mean")
    min_confidence = DecimalParam(0.5, 0.95, 0.6, step=0.05, help="composite needed to act")

    @property
    def bar_history(self) -> timedelta:
        return timedelta(hours=self.lookback_hours + 1)

    def decide(self, view: View) -> Intent | None:
        vote = view.composite
        if vote.label is None:
            return None  # nothing in the window: keep the target
        if vote.confidence < self.min_confidence:
            return Intent(None, reason=f"composite {{vote.confidence:.2f}} too weak", weak=True)
        if vote.label is not Label.BULLISH:
            return Intent(0, reason=f"{{vote.label.name.lower()}} news: flat")
        if view.bars is None or view.price is None:
            return None
        closes = view.bars.closes_since(view.now - timedelta(hours=self.lookback_hours))
        if not closes or float(view.price) <= sum(closes) / len(closes):
            return Intent(0, reason="bullish, but below the mean: flat")
        return Intent(1, vote.confidence, f"bullish {{vote.confidence:.2f}} above the mean")
'''


def class_name(name: str) -> str:
    """`news momentum`, `news_momentum` or `NewsMomentum` as a class name; ValueError if none."""
    parts = [p for p in re.split(r"[^0-9A-Za-z]+", name) if p]
    text = "".join(p[:1].upper() + p[1:] for p in parts)
    if not text or not text.isidentifier() or keyword.iskeyword(text) or text[0].isdigit():
        raise ValueError(f"{name!r} does not make a Python class name")
    return text


def file_name(cls: str) -> str:
    """`NewsMomentum` -> `news_momentum.py`."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", cls).lower() + ".py"


def starter(cls: str, file: str) -> str:
    return TEMPLATE.format(name=cls, file=file)
