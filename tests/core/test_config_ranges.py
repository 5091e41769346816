"""Every number in config is finite and inside the range its config.toml comment states (11.5)."""

from __future__ import annotations

import re
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.config import ConfigError, Settings, parse_duration, settings_from_dict

ROOT = Path(__file__).resolve().parents[2]
_RANGE = re.compile(r"\(range ([\[(])([^,]+), ([^\])]+)([\])])\)\s*$")
_SECTION = re.compile(r"^\[([a-z_]+)(?:\.([A-Za-z0-9_]+))?\]")
_KEY = re.compile(r"^([a-z_]+) = ([^#]+?)\s+#")


def _ranged_keys() -> list[tuple[str, str | None, str, str, tuple[str, ...]]]:
    """(section, symbol, key, default as written, (open, low, high, close)) per ranged line."""
    found = []
    section: str | None = None
    symbol: str | None = None
    for line in (ROOT / "config.toml").read_text(encoding="utf-8").splitlines():
        if header := _SECTION.match(line):
            section, symbol = header.group(1), header.group(2)
            continue
        key, bounds = _KEY.match(line), _RANGE.search(line)
        if key and bounds and section:
            found.append((section, symbol, key.group(1), key.group(2), bounds.groups()))
    return found


RANGED = _ranged_keys()


def _numeric_keys() -> set[tuple[str, str]]:
    """Every key whose value is a number, from the models (so a new key must get a range)."""
    from bot.config import SymbolConfig

    keys = set()
    for section, field in Settings.model_fields.items():
        model: Any = SymbolConfig if section == "symbols" else field.annotation
        for name, info in model.model_fields.items():
            if info.annotation in (int, float, Decimal):
                keys.add((section, name))
    return keys


def test_every_number_in_config_toml_states_its_range() -> None:
    stated = {(section, key) for section, _, key, _, _ in RANGED}
    assert _numeric_keys() - stated == set()


def _number(text: str, default: str) -> Any:
    """A bound as a value of the key's own kind: seconds for durations, Decimal for money."""
    if text.endswith("d") or re.search(r"^\"[0-9.]+[a-z]+\"$", default):
        return parse_duration(text)
    if default.startswith('"'):
        return Decimal(text)
    return float(text) if "." in default else int(Decimal(text))


def _data(section: str, symbol: str | None, key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, Decimal):
        value = str(value)
    if symbol:
        return {section: {symbol: {key: value}}}
    return {section: {key: value}}


def _error_for_key(section: str, symbol: str | None, key: str, value: Any) -> str | None:
    """The error naming this key for `value`, or None (other keys' rules may still object)."""
    try:
        settings_from_dict(_data(section, symbol, key, value), "t.toml")
    except ConfigError as error:
        where = f"[{section}] {symbol + '.' if symbol else ''}{key}:"
        return str(error) if where in str(error) else None
    return None


def _step(bound: Any) -> Any:
    if isinstance(bound, int):
        return 1
    if isinstance(bound, Decimal):
        return max(abs(bound) * Decimal("0.001"), Decimal("1E-15"))
    return max(abs(bound) * 0.001, 1e-6)


@pytest.mark.parametrize(
    ("section", "symbol", "key", "default", "bounds"),
    RANGED,
    ids=[f"{s}.{y + '.' if y else ''}{k}" for s, y, k, _, _ in RANGED],
)
def test_the_stated_range_is_the_enforced_one(
    section: str, symbol: str | None, key: str, default: str, bounds: tuple[str, ...]
) -> None:
    opening, low_text, high_text, closing = bounds
    low, high = _number(low_text, default), _number(high_text, default)
    below, above = low - _step(low), high + _step(high)
    if isinstance(high, float) and high_text.endswith("d"):
        above = high + 1
    assert _error_for_key(section, symbol, key, below), f"{key} accepted {below!r}"
    assert _error_for_key(section, symbol, key, above), f"{key} accepted {above!r}"
    low_error = _error_for_key(section, symbol, key, low)
    high_error = _error_for_key(section, symbol, key, high)
    assert (low_error is None) == (opening == "["), f"{key} at its low bound {low!r}: {low_error}"
    assert (high_error is None) == (closing == "]"), (
        f"{key} at its high bound {high!r}: {high_error}"
    )


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({"risk": {"max_position": {"BTCUSDT": "-1"}}}, "[risk] max_position.BTCUSDT"),
        ({"paper": {"linear_taker_fee": "-0.0005"}}, "[paper] linear_taker_fee"),
        ({"strategy": {"fraction": float("inf")}}, "[strategy] fraction"),
        ({"strategy": {"fraction": float("nan")}}, "[strategy] fraction"),
        ({"strategy": {"source_weights": {"x": float("nan")}}}, "[strategy] source_weights.x"),
        ({"strategy": {"window": float("nan")}}, "[strategy] window"),
        ({"strategy": {"window": 0}}, "[strategy] window"),
        ({"engine": {"heartbeat_interval": "-5s"}}, "[engine] heartbeat_interval"),
        ({"engine": {"retry_interval": 0}}, "[engine] retry_interval"),
        ({"engine": {"initial_cash": "0"}}, "[engine] initial_cash"),
        ({"engine": {"initial_cash": "-100"}}, "[engine] initial_cash"),
        ({"engine": {"initial_cash": "NaN"}}, "[engine] initial_cash"),
        ({"risk": {"max_price_age": 10**400}}, "[risk] max_price_age"),
        ({"news": {"max_age": "9" * 400 + "d"}}, "[news] max_age"),
        ({"symbols": {"BTCUSDT": {"min_notional": "-5"}}}, "[symbols] BTCUSDT.min_notional"),
        ({"symbols": {"BTCUSDT": {"tick_size": "1e999999"}}}, "[symbols] BTCUSDT.tick_size"),
        ({"news": {"feeds": [{"url": "https://a.example/f", "weight": -1}]}}, "feeds.0.weight"),
        ({"store": {"data_dir": "~no-such-user-lorabot/x"}}, "[store] data_dir"),
        ({"log": {"file": "logs/\x00.log"}}, "[log] file"),
    ],
)
def test_impossible_numbers_are_key_named_errors(data: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_dict(data, "my.toml")
    message = str(caught.value)
    assert message.startswith("my.toml: ") and named in message and "\n" not in message


def test_nan_and_inf_written_in_toml_are_refused(tmp_path: Path) -> None:
    from bot.config import load_settings_file

    for text in ("nan", "inf", "-inf", "1e400"):
        path = tmp_path / "c.toml"
        path.write_text(f"[strategy]\nthreshold = {text}\nfraction = {text}\n")
        assert tomllib.loads(path.read_text())["strategy"]["fraction"] != 0.5
        with pytest.raises(ConfigError, match=r"\[strategy\] threshold.*\[strategy\] fraction"):
            load_settings_file(path)
