"""`[symbols.X]` tables override only their keys; new symbols follow the defaults (11.7)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from bot.config import ConfigError, Settings, dump_toml, load_settings_file, settings_from_dict
from bot.symbols import SymbolTable


def _load(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings_file(path)


def test_one_key_overrides_only_that_key(tmp_path: Path) -> None:
    settings = _load(tmp_path, '[symbols.BTCUSDT]\nmin_notional = "10"\n')
    assert list(settings.symbols) == ["BTCUSDT", "ETHUSDT"]
    btc = settings.symbols["BTCUSDT"]
    assert btc.min_notional == Decimal("10")
    assert btc.tick_size == Decimal("0.1") and btc.aliases == ("bitcoin", "btc", "xbt", "satoshi")
    assert settings.symbols["ETHUSDT"] == Settings().symbols["ETHUSDT"]


def test_a_new_symbol_is_added_after_the_defaults_in_file_order(tmp_path: Path) -> None:
    settings = _load(
        tmp_path,
        '[symbols.SOLUSDT]\naliases = ["solana"]\n[symbols.BTCUSDT]\ntrade = false\n'
        '[symbols.DOGEUSDT]\naliases = ["doge"]\n',
    )
    assert list(settings.symbols) == ["BTCUSDT", "ETHUSDT", "SOLUSDT", "DOGEUSDT"]
    table = SymbolTable.from_settings(settings)
    assert table.tag("Solana and Bitcoin rally") == ("BTCUSDT", "SOLUSDT")
    assert table.traded == ("ETHUSDT", "SOLUSDT", "DOGEUSDT")


def test_enabled_false_drops_a_default_symbol_and_trade_false_keeps_tagging(
    tmp_path: Path,
) -> None:
    settings = _load(
        tmp_path, "[symbols.BTCUSDT]\nenabled = false\n[symbols.ETHUSDT]\ntrade = false\n"
    )
    table = SymbolTable.from_settings(settings)
    assert table.symbols == ("ETHUSDT",) and table.traded == ()
    assert table.tag("Bitcoin and Ether") == ("ETHUSDT",)
    assert table.resolve("btc") is None
    assert settings.default_symbol == "ETHUSDT"


def test_the_config_a_run_writes_reads_back_the_same(tmp_path: Path) -> None:
    settings = _load(
        tmp_path, '[symbols.ETHUSDT]\nenabled = false\n[symbols.SOLUSDT]\ntick_size = "0.001"\n'
    )
    again = _load(tmp_path, dump_toml(settings.to_toml_dict()))
    assert again == settings


def test_no_enabled_symbol_and_bad_symbol_tables_are_named() -> None:
    with pytest.raises(ConfigError, match=r"\[symbols\]: .*at least one symbol"):
        settings_from_dict(
            {"symbols": {"BTCUSDT": {"enabled": False}, "ETHUSDT": {"enabled": False}}}
        )
    with pytest.raises(ConfigError, match=r"\[symbols\] BTCUSDT.enabled"):
        settings_from_dict({"symbols": {"BTCUSDT": {"enabled": "maybe"}}})
    with pytest.raises(ConfigError, match=r"\[symbols\] BTCUSDT:"):
        settings_from_dict({"symbols": {"BTCUSDT": 3}})
    with pytest.raises(ConfigError, match=r"\[symbols\]"):
        settings_from_dict({"symbols": 3})


def test_with_overrides_merges_a_symbol_over_the_current_table() -> None:
    base = Settings().with_overrides(symbols={"SOLUSDT": {"aliases": ["solana"]}})
    changed = base.with_overrides(symbols={"SOLUSDT": {"trade": False}})
    assert changed.symbols["SOLUSDT"].aliases == ("solana",)
    assert not changed.symbols["SOLUSDT"].trade
    assert list(changed.symbols) == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
