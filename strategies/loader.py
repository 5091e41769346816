"""`[strategy] use`: which strategy class trades, built-in or the user's own.

`use` is a built-in name (`vote`, `trend`), a file path and class (`my_strategies.py:NewsMomentum`,
relative to the working directory) or a module path and class (`mypackage.strats:NewsMomentum`).
This is the one place lorabot loads user code (DESIGN.md allows it). A class that does not fit
the protocol (strategies/protocol.py) is refused with a line naming what it lacks; so is a
`[strategy.params]` entry it does not declare or a value outside a declared range.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bot.config import StrategyConfig
from strategies.params import Param, ParamError, declared
from strategies.protocol import ENGINE_METHODS, NewsStrategy, Strategy
from strategies.trend_vote import TrendGatedVote
from strategies.vote_strategy import VoteStrategy

BUILT_IN: dict[str, type[NewsStrategy]] = {"vote": VoteStrategy, "trend": TrendGatedVote}


class StrategyError(ValueError):
    """`[strategy] use` names something that cannot trade (the message says why)."""


def strategy_class(use: str) -> type[Any]:
    """The class `use` names, checked against the protocol."""
    if use in BUILT_IN:
        return BUILT_IN[use]
    where, sep, name = use.rpartition(":")
    if not sep or not where or not name:
        raise StrategyError(
            f"[strategy] use = {use!r}: a built-in ({', '.join(BUILT_IN)}) or FILE.py:Class or "
            "module.path:Class"
        )
    module = _load_module(where, use)
    cls = module.__dict__.get(name)
    if cls is None:
        found = [n for n, v in vars(module).items() if inspect.isclass(v) and not n.startswith("_")]
        raise StrategyError(
            f"[strategy] use = {use!r}: {where} has no {name} (classes there: "
            f"{', '.join(found) or 'none'})"
        )
    check_fits(cls, use)
    return cls


def check_fits(cls: object, use: str) -> None:
    """Refuse what is not a strategy class, naming the first thing missing."""
    if not inspect.isclass(cls):
        raise StrategyError(f"[strategy] use = {use!r}: {cls!r} is not a class")
    missing = [m for m in ENGINE_METHODS if m not in dir(cls)]
    if missing:
        raise StrategyError(
            f"[strategy] use = {use!r}: {cls.__name__} does not fit the strategy protocol: it "
            f"has no {', '.join(missing)} (subclass strategies.protocol.NewsStrategy and "
            "define decide)"
        )
    if issubclass(cls, NewsStrategy) and cls.decide is NewsStrategy.decide:
        raise StrategyError(
            f"[strategy] use = {use!r}: {cls.__name__} does not define decide(self, view)"
        )


def _load_module(where: str, use: str) -> Any:
    if where.endswith(".py") or "/" in where or "\\" in where:
        path = Path(where).expanduser()
        if not path.is_file():
            raise StrategyError(f"[strategy] use = {use!r}: no such file {path}")
        name = f"lorabot_user_strategy_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise StrategyError(f"[strategy] use = {use!r}: {path} is not a Python file")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses and pickling look the module up by name
        try:
            spec.loader.exec_module(module)
        except Exception as error:
            sys.modules.pop(name, None)
            raise StrategyError(
                f"[strategy] use = {use!r}: {path} failed to load: {type(error).__name__}: {error}"
            ) from None
        return module
    try:
        return importlib.import_module(where)
    except ImportError as error:
        raise StrategyError(f"[strategy] use = {use!r}: cannot import {where} ({error})") from None


def build_strategy(
    config: StrategyConfig, feed_weights: Mapping[str, float] | None = None
) -> Strategy:
    """The strategy `[strategy] use` names, with `[strategy.params]` bound to its declarations."""
    cls = strategy_class(config.use)
    try:
        strategy = cls(config, feed_weights, config.params)
    except ParamError as error:
        raise StrategyError(str(error)) from None
    if not isinstance(strategy, Strategy):
        raise StrategyError(f"[strategy] use = {config.use!r}: it does not fit the protocol")
    return strategy


def parameters(use: str) -> dict[str, Param[Any]]:
    """The parameters the strategy `use` names declares (hyperopt's space, `lorabot config`)."""
    return declared(strategy_class(use))


def describe_parameters(config: StrategyConfig) -> list[str]:
    """`lorabot config`'s lines on the strategy's parameters: the value each has and the range
    hyperopt searches (a `[strategy]` key is marked as such)."""
    cls = strategy_class(config.use)
    try:
        values = cls(config, None, config.params).param_values
    except ParamError as error:
        raise StrategyError(str(error)) from None
    lines = [f"# strategy {config.use!r} ({cls.__name__}): its parameters and hyperopt's ranges"]
    for name, param in declared(cls).items():
        r = param.range
        span = ", ".join(repr(c) for c in r.choices) if r.choices else f"{r.low:g}..{r.high:g}"
        where = f"[strategy] {param.key}" if param.key else f"[strategy.params] {name}"
        lines.append(f"#   {where} = {values[name]!r}  ({span})")
    return lines
