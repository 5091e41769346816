"""Typed, frozen, validated configuration.

`config.toml` is parsed with `tomllib` into the models of this package. Every model forbids
unknown keys, so a typo fails at start-up with the key's dotted path instead of being silently
ignored mid-trade, and every number has a range, so an impossible one fails there too. The
defaults are the shipped `config.toml` (a test keeps them equal), so every command works from any
directory with no file at all.

- `values`: the value types (durations, money, paths) and `ConfigError`;
- `sections`: one model per table; `symbol_table`: `[symbols]`, merged over the defaults;
- `settings`: `Settings` and `Secrets` (environment only);
- `loader`: file or dict to settings, or one error line; `toml_dump`: the config a run used.
"""

from bot.config.loader import (
    DEFAULT_CONFIG_NAME,
    decode_config,
    find_config,
    load_settings,
    load_settings_file,
    settings_from_dict,
)
from bot.config.sections import (
    AnnouncementsConfig,
    ApiConfig,
    BybitConfig,
    EngineConfig,
    ExtraModelConfig,
    FeedConfig,
    LogConfig,
    ModelConfig,
    NewsConfig,
    PaperConfig,
    RiskConfig,
    StoreConfig,
    StrategyConfig,
    TelegramConfig,
    TrainingConfig,
    default_feeds,
)
from bot.config.settings import APP_NAME, Secrets, Settings
from bot.config.symbol_table import SymbolConfig, default_symbols, merge_symbols
from bot.config.toml_dump import dump_toml
from bot.config.values import (
    MAX_SECONDS,
    ConfigError,
    Dec,
    Duration,
    PositiveDuration,
    Section,
    parse_decimal,
    parse_duration,
)

__all__ = [
    "APP_NAME",
    "DEFAULT_CONFIG_NAME",
    "MAX_SECONDS",
    "AnnouncementsConfig",
    "ApiConfig",
    "BybitConfig",
    "ConfigError",
    "Dec",
    "Duration",
    "EngineConfig",
    "ExtraModelConfig",
    "FeedConfig",
    "LogConfig",
    "ModelConfig",
    "NewsConfig",
    "PaperConfig",
    "PositiveDuration",
    "RiskConfig",
    "Secrets",
    "Section",
    "Settings",
    "StoreConfig",
    "StrategyConfig",
    "SymbolConfig",
    "TelegramConfig",
    "TrainingConfig",
    "decode_config",
    "default_feeds",
    "default_symbols",
    "dump_toml",
    "find_config",
    "load_settings",
    "load_settings_file",
    "merge_symbols",
    "parse_decimal",
    "parse_duration",
    "settings_from_dict",
]
