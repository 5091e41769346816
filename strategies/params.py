"""A strategy's tunable parameters, declared on its class as typed fields with ranges.

A declaration says what a parameter is (integer, decimal or one of a few choices), the range a
search may explore and the default, so that one declaration serves three readers: the strategy
(an instance reads `self.lookback_hours` as a plain value), the config (`[strategy.params]`, or a
`[strategy]` key when `key=` names one, checked against the range) and hyperopt (the search space,
narrowed by `--space`). Pure: no I/O, no Optuna import (hyperopt maps these onto its own types).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")
N = TypeVar("N", bound=float)  # int or float


class ParamError(ValueError):
    """A parameter value or range that does not fit its declaration (the message names it)."""


@dataclass(frozen=True, slots=True)
class Range:
    """What a search may explore: `low`..`high` (numbers) or `choices` (categorical)."""

    low: float = 0.0
    high: float = 0.0
    step: float | None = None
    choices: tuple[str, ...] = ()


class Param(Generic[T]):
    """One declared parameter. `key` names a `[strategy]` key that holds the value (the vote's
    threshold, window...); without it the value lives in `[strategy.params]` under its name."""

    kind = ""

    def __init__(self, default: T, *, key: str | None = None, help: str = "") -> None:
        self.default = default
        self.key = key
        self.help = help
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type) -> Param[T]: ...

    @overload
    def __get__(self, instance: object, owner: type) -> T: ...

    def __get__(self, instance: object | None, owner: type) -> Param[T] | T:
        if instance is None:
            return self
        values: dict[str, Any] = instance.__dict__["param_values"]
        return values[self.name]

    @property
    def where(self) -> str:
        """Where a user sets it, for error lines."""
        return f"[strategy] {self.key}" if self.key else f"[strategy.params] {self.name}"

    @property
    def range(self) -> Range:
        raise NotImplementedError

    def check(self, value: object) -> T:
        """`value` as this parameter's type, or a ParamError naming the parameter."""
        raise NotImplementedError

    def narrow(self, text: str) -> Range:
        """The range `--space NAME=TEXT` asks for, inside the declared one."""
        raise NotImplementedError


class _Number(Param[N]):
    def __init__(
        self,
        low: N,
        high: N,
        default: N,
        *,
        step: N | None = None,
        key: str | None = None,
        help: str = "",
    ) -> None:
        super().__init__(default, key=key, help=help)
        if not low < high:
            raise ParamError(f"parameter range {low}..{high} is empty or inverted")
        self.low: N = low
        self.high: N = high
        self.step: N | None = step

    @property
    def range(self) -> Range:
        return Range(float(self.low), float(self.high), None if self.step is None else self.step)

    def _convert(self, value: object) -> N:
        raise NotImplementedError

    def check(self, value: object) -> N:
        if isinstance(value, bool):
            raise ParamError(f"{self.where}: {value!r} is not a number")
        try:
            number = self._convert(value)
        except (TypeError, ValueError):
            raise ParamError(f"{self.where}: {value!r} is not {self.kind}") from None
        if not self.low <= number <= self.high:
            raise ParamError(
                f"{self.where} = {value!r} is outside its range [{self.low}, {self.high}]"
            )
        return number

    def narrow(self, text: str) -> Range:
        low_text, sep, high_text = text.partition(":")
        if not sep:
            raise ParamError(f"--space {self.name}={text}: give a range LOW:HIGH")
        try:
            low, high = float(self._convert(low_text)), float(self._convert(high_text))
        except ValueError:
            raise ParamError(
                f"--space {self.name}={text}: LOW and HIGH must be {self.kind}"
            ) from None
        if low > high:
            raise ParamError(f"--space {self.name}={text}: the range is inverted ({low} > {high})")
        if low == high:
            raise ParamError(f"--space {self.name}={text}: the range is empty (LOW = HIGH)")
        if low < self.low or high > self.high:
            raise ParamError(
                f"--space {self.name}={text}: outside the declared range [{self.low}, {self.high}]"
            )
        return Range(low, high, self.range.step)


class IntParam(_Number[int]):
    """An integer in [low, high] (a multiple of `step` above `low` when given)."""

    kind = "an integer"

    def _convert(self, value: object) -> int:
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(value)
        return int(str(value)) if isinstance(value, str) else int(value)  # type: ignore[call-overload]


class DecimalParam(_Number[float]):
    """A decimal number in [low, high], searched on a grid of `step` when given (so a tuned
    value reads 0.65, not 0.6498213)."""

    kind = "a number"

    def _convert(self, value: object) -> float:
        return float(value)  # type: ignore[arg-type]


class CategoricalParam(Param[str]):
    """One of a few named choices."""

    kind = "one of the choices"

    def __init__(
        self, choices: Sequence[str], default: str, *, key: str | None = None, help: str = ""
    ) -> None:
        super().__init__(default, key=key, help=help)
        if default not in choices:
            raise ParamError(f"default {default!r} is not one of {list(choices)}")
        self.choices = tuple(choices)

    @property
    def range(self) -> Range:
        return Range(choices=self.choices)

    def check(self, value: object) -> str:
        if not isinstance(value, str) or value not in self.choices:
            raise ParamError(f"{self.where} = {value!r} is not one of {list(self.choices)}")
        return value

    def narrow(self, text: str) -> Range:
        chosen = tuple(c.strip() for c in text.split(",") if c.strip())
        if not chosen:
            raise ParamError(f"--space {self.name}={text}: the list of choices is empty")
        unknown = [c for c in chosen if c not in self.choices]
        if unknown:
            raise ParamError(
                f"--space {self.name}={text}: {', '.join(unknown)} not among {list(self.choices)}"
            )
        return Range(choices=chosen)


def declared(cls: type) -> dict[str, Param[Any]]:
    """Every parameter a strategy class declares, its bases' included (a subclass may redeclare
    one to change its range), in declaration order."""
    found: dict[str, Param[Any]] = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            if isinstance(value, Param):
                found[name] = value
    return found


def resolve(
    cls: type, strategy_keys: Mapping[str, object], params: Mapping[str, object]
) -> dict[str, Any]:
    """Each declared parameter's value: from its `[strategy]` key (as the config validated it:
    the declared range is the search's, narrower than the key's), else `[strategy.params]`
    (checked against the declared range), else its default. A `[strategy.params]` name the
    class does not declare is an error naming the ones it does."""
    declarations = declared(cls)
    own = {name for name, p in declarations.items() if p.key is None}
    unknown = sorted(set(params) - own)
    if unknown:
        known = ", ".join(sorted(own)) or "none"
        raise ParamError(
            f"[strategy.params] {unknown[0]}: {cls.__name__} has no such parameter "
            f"(it has: {known})"
        )
    values: dict[str, Any] = {}
    for name, param in declarations.items():
        if param.key is not None:  # the config checked it against the key's own range
            values[name] = strategy_keys.get(param.key, param.default)
        else:
            values[name] = param.check(params.get(name, param.default))
    return values
