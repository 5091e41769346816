"""The value types every config section is built from, and the one rule they share.

Every number read from a config file is finite and inside its range, or loading fails with the
key's name: an impossible number (a negative fee, a NaN duration, an infinite fraction) must stop
the start-up, not turn up mid-trade as an inverted risk gate or a fill that pays. The ranges are
written next to each key in the shipped `config.toml`, and a test checks them against these models.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

MAX_SECONDS = 365 * 86400.0
"""The longest duration any key accepts (365d): longer ones overflow dates, so they are typos."""

_DURATION = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


class ConfigError(Exception):
    """A configuration problem, phrased for the user: it names the file and the key."""


def parse_duration(value: Any) -> float:
    """Seconds from a number (seconds) or a string such as "500ms", "30s", "15m", "2h", "1d"."""
    if isinstance(value, bool):
        raise ValueError("a duration must be a number of seconds or a string like '15m'")
    seconds: float | None = None
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:
            seconds = math.inf
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds is None:
        raise ValueError(f"{value!r} is not a duration (use seconds, or e.g. '500ms', '15m', '2h')")
    if not math.isfinite(seconds) or abs(seconds) > MAX_SECONDS:
        raise ValueError(f"{_short(value)} is not a duration of at most 365d")
    return seconds


def parse_decimal(value: Any) -> Decimal:
    """A Decimal from a string or integer; a TOML float goes through its shortest repr."""
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError('expected a number (write money as a string, e.g. "0.001")')
    else:
        try:
            result = Decimal(repr(value) if isinstance(value, float) else str(value).strip())
        except (InvalidOperation, ValueError):
            raise ValueError(f"{_short(value)} is not a decimal number") from None
    if not result.is_finite():
        raise ValueError(f"{_short(value)} is not a finite number")
    return result


def check_path(value: str) -> str:
    """A path key must be usable as written: no NUL byte, and `~user` must exist."""
    if "\x00" in value:
        raise ValueError("a path cannot contain a NUL character")
    try:
        Path(value).expanduser()
    except RuntimeError:
        raise ValueError(f"{value!r}: cannot expand its ~ (no such user or no home)") from None
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


Duration = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]
"""Seconds, 0 to 365d; where 0 means something (off, no wait) the key's comment says what."""
PositiveDuration = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]
"""Seconds, above 0 and at most 365d: an interval or a timeout that cannot be zero."""
Dec = Annotated[Decimal, BeforeValidator(parse_decimal)]
PathStr = Annotated[str, BeforeValidator(lambda v: check_path(v) if isinstance(v, str) else v)]

MONEY_MAX = Decimal("1000000000000")
"""The largest amount of money a key accepts (1e12 of the quote currency)."""
Money = Annotated[Decimal, BeforeValidator(parse_decimal), Field(gt=0, le=MONEY_MAX)]
Fee = Annotated[Decimal, BeforeValidator(parse_decimal), Field(ge=0, le=Decimal("0.1"))]
Weight = Annotated[float, Field(ge=0, le=1000)]


class Section(BaseModel):
    """A config table: unknown keys are errors, values are frozen, NaN and infinity refused."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False
    )
