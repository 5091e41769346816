"""`Settings`, the whole configuration, and `Secrets`, which never comes from a file.

Secrets (exchange keys) come from the environment only, are held as `SecretStr` and never appear
in `repr`, logs or the config a backtest writes next to its report.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from bot.config.sections import (
    ApiConfig,
    BybitConfig,
    EngineConfig,
    LogConfig,
    ModelConfig,
    NewsConfig,
    PaperConfig,
    RiskConfig,
    StoreConfig,
    StrategyConfig,
    TelegramConfig,
    TrainingConfig,
)
from bot.config.symbol_table import SymbolConfig, default_symbols, merge_symbols
from bot.config.values import Section

APP_NAME = "lorabot"


class Settings(Section):
    engine: EngineConfig = EngineConfig()
    store: StoreConfig = StoreConfig()
    model: ModelConfig = ModelConfig()
    training: TrainingConfig = TrainingConfig()
    news: NewsConfig = NewsConfig()
    bybit: BybitConfig = BybitConfig()
    symbols: dict[str, SymbolConfig] = Field(default_factory=default_symbols)
    strategy: StrategyConfig = StrategyConfig()
    risk: RiskConfig = RiskConfig()
    paper: PaperConfig = PaperConfig()
    log: LogConfig = LogConfig()
    api: ApiConfig = ApiConfig()
    telegram: TelegramConfig = TelegramConfig()

    @model_validator(mode="before")
    @classmethod
    def _symbols_over_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict) and "symbols" in data:
            return {**data, "symbols": merge_symbols(data["symbols"])}
        return data

    @field_validator("symbols")
    @classmethod
    def _check_symbols(cls, symbols: dict[str, SymbolConfig]) -> dict[str, SymbolConfig]:
        for name in symbols:
            if not re.fullmatch(r"[A-Z0-9]{2,30}", name):
                raise ValueError(f"{name!r} is not an exchange symbol such as BTCUSDT")
        if not any(config.enabled for config in symbols.values()):
            raise ValueError("must enable at least one symbol")
        return symbols

    @property
    def enabled_symbols(self) -> dict[str, SymbolConfig]:
        """The symbols lorabot tags, streams and may trade, in table order."""
        return {name: config for name, config in self.symbols.items() if config.enabled}

    @property
    def data_dir(self) -> Path:
        return Path(self.store.data_dir or platformdirs.user_data_dir(APP_NAME)).expanduser()

    @property
    def cache_dir(self) -> Path:
        return Path(self.store.cache_dir or platformdirs.user_cache_dir(APP_NAME)).expanduser()

    @property
    def store_url(self) -> str:
        return self.store.url or f"sqlite:///{self.data_dir / 'lorabot.sqlite'}"

    @property
    def kill_switch_path(self) -> Path:
        return Path(self.risk.kill_switch_file or self.data_dir / "KILL").expanduser()

    @property
    def default_symbol(self) -> str:
        return next(iter(self.enabled_symbols))

    def to_toml_dict(self) -> dict[str, Any]:
        """A plain dict (Decimals as strings) for writing the config a run used."""
        return self.model_dump(mode="json")

    def with_overrides(self, **sections: dict[str, Any]) -> Settings:
        """A copy with some keys replaced, validated again (used by tests and the CLI).

        `symbols=` merges per symbol over this copy's table, as a file does over the defaults.
        """
        data = self.model_dump()
        for name, values in sections.items():
            if name == "symbols":
                data[name] = merge_symbols(values, data[name])
            elif isinstance(data.get(name), dict) and isinstance(values, dict):
                data[name] = {**data[name], **values}
            else:
                data[name] = values
        return Settings.model_validate(data)


class Secrets(BaseModel):
    """Exchange credentials, from the environment only."""

    model_config = ConfigDict(frozen=True)

    api_key: SecretStr | None = None
    api_secret: SecretStr | None = None

    @classmethod
    def from_env(cls, bybit: BybitConfig, env: dict[str, str] | None = None) -> Secrets:
        source = os.environ if env is None else env
        key = source.get(bybit.api_key_env) or None
        secret = source.get(bybit.api_secret_env) or None
        return cls(
            api_key=SecretStr(key) if key else None,
            api_secret=SecretStr(secret) if secret else None,
        )

    @property
    def complete(self) -> bool:
        return self.api_key is not None and self.api_secret is not None
