"""The search space: a strategy's declared parameters (strategies/params.py), narrowed by
`--space NAME=LOW:HIGH` (numbers) or `--space NAME=a,b` (choices), as Optuna distributions; and
a trial's values as the config that runs them.

A parameter with `key=` is a `[strategy]` key; the others go to `[strategy.params]`. So a tuned
trial is an ordinary configuration, and `best.toml` is the same configuration written out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import optuna

from bot.config import Settings
from bot.errors import UserError
from strategies.params import CategoricalParam, IntParam, Param, ParamError, Range


@dataclass(frozen=True)
class Space:
    params: dict[str, Param[Any]]
    ranges: dict[str, Range]

    def distributions(self) -> dict[str, optuna.distributions.BaseDistribution]:
        out: dict[str, optuna.distributions.BaseDistribution] = {}
        for name, param in self.params.items():
            r = self.ranges[name]
            if isinstance(param, CategoricalParam):
                out[name] = optuna.distributions.CategoricalDistribution(list(r.choices))
            elif isinstance(param, IntParam):
                every = int(r.step or 1)
                low = int(r.low)
                top = low + (int(r.high) - low) // every * every
                out[name] = optuna.distributions.IntDistribution(low, top, step=every)
            else:
                out[name] = _float_distribution(r)
        return out

    def describe(self) -> dict[str, object]:
        """The space as JSON (a study's attribute: the same study must keep its space)."""
        out: dict[str, object] = {}
        for name, r in self.ranges.items():
            out[name] = list(r.choices) if r.choices else [r.low, r.high, r.step]
        return out


def _float_distribution(r: Range) -> optuna.distributions.FloatDistribution:
    """On the declared grid where it fits the range (its top rounded down onto the grid)."""
    if r.step is not None:
        steps = math.floor((r.high - r.low) / r.step + 1e-9)
        high = round(r.low + steps * r.step, 10)
        if high > r.low:
            return optuna.distributions.FloatDistribution(r.low, high, step=r.step)
    return optuna.distributions.FloatDistribution(r.low, r.high)


def build_space(declared: Mapping[str, Param[Any]], narrowing: Sequence[str], use: str) -> Space:
    """The space to search, or one error line: nothing to tune, an unknown name, an empty or
    inverted range."""
    if not declared:
        raise UserError(f"[strategy] use = {use!r} declares no parameters: nothing to tune")
    ranges = {name: param.range for name, param in declared.items()}
    for entry in narrowing:
        name, sep, text = entry.partition("=")
        name = name.strip()
        if not sep or not name or not text.strip():
            raise UserError(f"--space {entry}: give NAME=LOW:HIGH (or NAME=a,b for choices)")
        if name not in declared:
            raise UserError(
                f"--space {name}: {use} has no parameter {name} (it has: {', '.join(declared)})"
            )
        try:
            ranges[name] = declared[name].narrow(text.strip())
        except ParamError as error:
            raise UserError(str(error)) from None
    return Space(dict(declared), ranges)


def trial_settings(base: Settings, space: Space, values: Mapping[str, Any]) -> Settings:
    """`base` with the trial's values: `[strategy]` keys set, `[strategy.params]` merged."""
    keys: dict[str, Any] = {}
    own: dict[str, Any] = dict(base.strategy.params)
    for name, value in values.items():
        param = space.params[name]
        plain = _plain(value)
        if param.key is not None:
            keys[param.key] = plain
        else:
            own[name] = plain
    return base.with_overrides(strategy={**keys, "params": own})


def _plain(value: Any) -> Any:
    """Optuna's values as config values (a float grid value rounded as it reads)."""
    if isinstance(value, float):
        return round(value, 10)
    return value
