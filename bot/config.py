"""Typed, frozen, validated configuration.

`config.toml` is parsed with `tomllib` into the models below. Every model forbids unknown keys, so
a typo fails at start-up with the key's dotted path instead of being silently ignored mid-trade.
The defaults here are the shipped `config.toml` (a test keeps them equal), so every command works
from any directory with no file at all.

Secrets (exchange keys) are never part of the file: they come from the environment only, are held
as `SecretStr` and never appear in `repr`, logs or the config a backtest writes next to its report.
"""

from __future__ import annotations

import os
import re
import tomllib
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Literal

import platformdirs
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

APP_NAME = "lorabot"
DEFAULT_CONFIG_NAME = "config.toml"

_DURATION = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


class ConfigError(Exception):
    """A configuration problem, phrased for the user: it names the file and the key."""


def parse_duration(value: Any) -> float:
    """Seconds from a number (seconds) or a string such as "500ms", "30s", "15m", "2h", "1d"."""
    if isinstance(value, bool):
        raise ValueError("a duration must be a number of seconds or a string like '15m'")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    raise ValueError(f"{value!r} is not a duration (use seconds, or e.g. '500ms', '15m', '2h')")


def parse_decimal(value: Any) -> Decimal:
    """A Decimal from a string or integer; a TOML float goes through its shortest repr."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a number")
    if isinstance(value, float):
        value = repr(value)
    try:
        result = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a decimal number") from None
    if not result.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    return result


Duration = Annotated[float, BeforeValidator(parse_duration)]
Dec = Annotated[Decimal, BeforeValidator(parse_decimal)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class EngineConfig(Section):
    mode: Literal["paper", "live"] = "paper"
    initial_cash: Dec = Decimal("10000")
    quote_currency: str = "USDT"
    snapshot_interval: Duration = 3600.0
    queue_size: int = Field(10_000, ge=1)
    market_overflow: Literal["block", "drop_oldest"] = "drop_oldest"
    retry_interval: Duration = 30.0
    shutdown_timeout: Duration = 10.0
    heartbeat_interval: Duration = 60.0
    reconcile_interval: Duration = 300.0


class StoreConfig(Section):
    url: str = ""
    data_dir: str = ""
    cache_dir: str = ""
    commit_every: int = Field(256, ge=1)
    commit_interval: Duration = 1.0
    sqlite_wal: bool = True


class ModelConfig(Section):
    backend: Literal["lexicon", "embedded", "vllm", "scripted"] = "embedded"
    path: str = ""
    base: str = ""
    batch_size: int = Field(32, ge=1)
    max_wait: Duration = 0.02
    max_pending: int = Field(10_000, ge=1)
    timeout: Duration = 30.0
    retries: int = Field(3, ge=0)
    retry_backoff: Duration = 0.5
    num_threads: int = Field(0, ge=0)
    cache: bool = True
    precision: Literal["auto", "fp32", "bf16", "int8"] = "auto"
    merge: bool = True
    trace: bool = True
    max_length: int = Field(0, ge=0)
    forward_batch_size: int = Field(128, ge=1)
    coalesce_wait: Duration = 0.0
    circuit_failures: int = Field(5, ge=1)
    circuit_reset: Duration = 30.0
    vllm_url: str = "http://127.0.0.1:8000"
    vllm_model: str = ""
    vllm_max_connections: int = Field(8, ge=1)
    vllm_env: str = ""
    vllm_dtype: Literal["float32", "bfloat16", "float16", "auto"] = "float32"
    vllm_kv_cache_gib: float = Field(1.0, gt=0)
    vllm_max_model_len: int = Field(512, ge=16)
    vllm_start_timeout: Duration = 600.0
    vllm_eager: bool = True
    vllm_args: tuple[str, ...] = ()
    scripted_file: str = ""


class TrainingConfig(Section):
    """Defaults of `lorabot train`, `compare` and `export`; every CLI flag can override them."""

    method: Literal["lora", "qlora", "prefix", "prompt", "adapter", "full"] = "lora"
    base: str = ""
    family: Literal["auto", "encoder", "decoder"] = "auto"
    max_length: int = Field(64, ge=8)
    batch_size: int = Field(32, ge=1)
    eval_batch_size: int = Field(128, ge=1)
    epochs: float = Field(5, gt=0)
    learning_rate: float = Field(0.0, ge=0)
    seed: int = 42
    scheduler: Literal["linear", "cosine", "constant"] = "linear"
    warmup_ratio: float = Field(0.06, ge=0, lt=1)
    weight_decay: float = Field(0.01, ge=0)
    max_grad_norm: float = Field(1.0, ge=0)
    grad_accum: int = Field(1, ge=1)
    group_by_length: bool = True
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    class_weights: Literal["none", "balanced", "sqrt"] = "sqrt"
    valid_fraction: float = Field(0.1, gt=0, lt=1)
    eval_every: int = Field(0, ge=0)
    patience: int = Field(2, ge=0)
    keep_best: Literal["macro_f1", "accuracy", "loss", "last"] = "macro_f1"
    checkpoint_every: int = Field(0, ge=0)
    keep_checkpoints: int = Field(2, ge=1)
    num_threads: int = Field(0, ge=0)
    lora_r: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)
    lora_dropout: float = Field(0.1, ge=0, lt=1)
    lora_targets: tuple[str, ...] = ()
    prefix_tokens: int = Field(16, ge=1)
    prefix_projection: bool = False
    prefix_hidden: int = Field(256, ge=1)
    prompt_tokens: int = Field(16, ge=1)
    adapter_size: int = Field(64, ge=1)
    adapter_targets: tuple[str, ...] = ()
    label_words: tuple[str, str, str] = ("negative", "neutral", "positive")
    prompt: str = ""
    fiqa_bearish_below: float = -0.1
    fiqa_bullish_above: float = 0.1
    phrasebank_agreement: Literal["50", "66", "75", "all"] = "50"

    @model_validator(mode="after")
    def _check_thresholds(self) -> TrainingConfig:
        if self.fiqa_bearish_below > self.fiqa_bullish_above:
            raise ValueError("fiqa_bearish_below must not exceed fiqa_bullish_above")
        return self


class FeedConfig(Section):
    """One RSS/Atom feed. Unset `interval`/`timeout` take the `[news]` defaults."""

    url: str
    name: str = ""  # the item's `source` (strategy source weights use it); empty: the URL's host
    interval: Duration | None = Field(default=None, gt=0)
    timeout: Duration | None = Field(default=None, gt=0)
    weight: float = Field(default=1.0, ge=0)
    enabled: bool = True

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        from urllib.parse import urlsplit

        value = value.strip()
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value


class NewsConfig(Section):
    feeds: tuple[FeedConfig, ...] = ()
    poll_interval: Duration = Field(default=120.0, gt=0)
    timeout: Duration = Field(default=15.0, gt=0)
    max_age: Duration = Field(default=21600.0, gt=0)
    user_agent: str = "lorabot/0.1 (+https://github.com/lorabot/lorabot)"
    per_host_concurrency: int = Field(default=2, ge=1)
    backoff_initial: Duration = Field(default=30.0, gt=0)
    backoff_max: Duration = Field(default=1800.0, gt=0)
    max_body_chars: int = Field(default=2000, ge=0)
    max_bytes: int = Field(default=5_000_000, ge=1024)
    jitter: float = Field(default=0.1, ge=0, le=0.5)
    max_redirects: int = Field(default=5, ge=0)
    title_dedup_window: Duration = Field(default=86400.0, ge=0)
    store_url: str = ""

    @model_validator(mode="after")
    def _unique_feeds(self) -> NewsConfig:
        seen: set[str] = set()
        for index, feed in enumerate(self.feeds):
            if feed.url in seen:
                raise ValueError(f"feeds[{index}]: {feed.url} is listed twice")
            seen.add(feed.url)
        if self.backoff_max < self.backoff_initial:
            raise ValueError("backoff_max must not be smaller than backoff_initial")
        return self


class BybitConfig(Section):
    """Bybit v5 connection, stream and broker settings (`adapters/bybit/`)."""

    network: Literal["demo", "testnet", "mainnet"] = "demo"
    category: Literal["linear", "spot"] = "linear"
    rest_url: str = ""
    ws_public_url: str = ""
    ws_private_url: str = ""
    kline_interval: str = "1"
    trades: bool = True
    tickers: bool = True
    recv_window: int = Field(default=5000, ge=1)
    rest_timeout: Duration = 10.0
    rest_concurrency: int = Field(default=4, ge=1)
    rest_retries: int = Field(default=3, ge=0)
    rest_backoff: Duration = 0.5
    rest_backoff_max: Duration = 10.0
    clock_sync_interval: Duration = 300.0
    ping_interval: Duration = 20.0
    silence_timeout: Duration = 30.0
    connect_timeout: Duration = 10.0
    reconnect_initial: Duration = 1.0
    reconnect_max: Duration = 60.0
    gap_fill: bool = True
    fill_gap_grace: Duration = 1.0
    order_poll_interval: Duration = 15.0
    account_type: str = "UNIFIED"
    settle_coin: str = "USDT"
    download_rate: float = Field(default=10.0, gt=0)
    api_key_env: str = "BYBIT_API_KEY"
    api_secret_env: str = "BYBIT_API_SECRET"

    @field_validator("kline_interval")
    @classmethod
    def _known_interval(cls, value: str) -> str:
        allowed = ("1", "3", "5", "15", "30", "60", "120", "240", "360", "720", "D", "W", "M")
        if value not in allowed:
            raise ValueError(f"must be one of Bybit's kline intervals {', '.join(allowed)}")
        return value


class SymbolConfig(Section):
    aliases: tuple[str, ...] = ()
    category: Literal["linear", "spot"] = "linear"
    trade: bool = True
    tick_size: Dec = Decimal("0.01")
    qty_step: Dec = Decimal("0.001")
    min_qty: Dec = Decimal("0.001")
    min_notional: Dec = Decimal("5")

    @field_validator("tick_size", "qty_step", "min_qty")
    @classmethod
    def _positive(cls, value: Decimal) -> Decimal:
        if value <= 0:
            raise ValueError("must be greater than 0")
        return value


class StrategyConfig(Section):
    window: Duration = 21600.0
    half_life: Duration = 7200.0
    threshold: float = Field(0.6, ge=0, le=1)
    below_threshold: Literal["hold", "flat"] = "hold"
    min_signals: int = Field(1, ge=1)
    market_wide_weight: float = Field(0.5, ge=0)
    source_weights: dict[str, float] = {}
    reevaluate_interval: Duration = 300.0
    trade_stale_news: bool = False
    fraction: float = Field(0.5, gt=0)
    max_fraction: float = Field(1.0, gt=0)
    order_type: Literal["market", "limit"] = "market"
    limit_offset_bps: float = Field(0.0, ge=0)
    limit_timeout: Duration = 300.0
    rebalance_band: float = Field(0.1, ge=0, le=1)


class RiskConfig(Section):
    max_notional: Dec = Decimal("50000")
    max_position: dict[str, Dec] = {}
    max_daily_loss: float = Field(0.05, gt=0, le=1)
    max_orders_per_minute: int = Field(20, ge=1)
    max_price_age: Duration = 120.0
    kill_switch_file: str = ""
    kill_switch_poll: Duration = 1.0


class PaperConfig(Section):
    slippage_bps: float = Field(2.0, ge=0)
    linear_maker_fee: Dec = Decimal("0.0002")
    linear_taker_fee: Dec = Decimal("0.00055")
    spot_maker_fee: Dec = Decimal("0.001")
    spot_taker_fee: Dec = Decimal("0.001")


class LogConfig(Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "console", "json"] = "auto"
    file: str = ""


def _default_symbols() -> dict[str, SymbolConfig]:
    return {
        "BTCUSDT": SymbolConfig(
            aliases=("bitcoin", "btc", "xbt", "satoshi"),
            tick_size=Decimal("0.1"),
            qty_step=Decimal("0.001"),
            min_qty=Decimal("0.001"),
            min_notional=Decimal("5"),
        ),
        "ETHUSDT": SymbolConfig(
            aliases=("ethereum", "eth", "ether", "vitalik"),
            tick_size=Decimal("0.01"),
            qty_step=Decimal("0.01"),
            min_qty=Decimal("0.01"),
            min_notional=Decimal("5"),
        ),
    }


class Settings(Section):
    engine: EngineConfig = EngineConfig()
    store: StoreConfig = StoreConfig()
    model: ModelConfig = ModelConfig()
    training: TrainingConfig = TrainingConfig()
    news: NewsConfig = NewsConfig()
    bybit: BybitConfig = BybitConfig()
    symbols: dict[str, SymbolConfig] = Field(default_factory=_default_symbols)
    strategy: StrategyConfig = StrategyConfig()
    risk: RiskConfig = RiskConfig()
    paper: PaperConfig = PaperConfig()
    log: LogConfig = LogConfig()

    @model_validator(mode="after")
    def _check_symbols(self) -> Settings:
        if not self.symbols:
            raise ValueError("[symbols] must name at least one symbol")
        for name in self.symbols:
            if not re.fullmatch(r"[A-Z0-9]{2,30}", name):
                raise ValueError(f"[symbols] {name!r} is not an exchange symbol such as BTCUSDT")
        return self

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
        return next(iter(self.symbols))

    def to_toml_dict(self) -> dict[str, Any]:
        """A plain dict (Decimals as strings) for writing the config a run used."""
        return self.model_dump(mode="json")

    def with_overrides(self, **sections: dict[str, Any]) -> Settings:
        """A copy with some keys replaced, validated again (used by tests and the CLI)."""
        data = self.model_dump()
        for name, values in sections.items():
            if isinstance(data.get(name), dict) and isinstance(values, dict):
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


def _format_validation_error(source: str, error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        location = [str(p) for p in item["loc"]]
        section = f"[{location[0]}]" if location else ""
        key = ".".join(location[1:])
        where = f"{section} {key}".strip() if key else section
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key (check its spelling against the shipped config.toml)"
        got = item.get("input")
        shown = "" if item["type"] in ("extra_forbidden", "missing") else f" (got {got!r})"
        parts.append(f"{where or 'top level'}: {message}{shown}")
    return f"{source}: " + "; ".join(parts)


def settings_from_dict(data: dict[str, Any], source: str = "config") -> Settings:
    try:
        return Settings.model_validate(data)
    except ValidationError as error:
        raise ConfigError(_format_validation_error(source, error)) from None


def find_config(explicit: str | Path | None) -> Path | None:
    """`--config PATH`, else `./config.toml` if present, else None (built-in defaults)."""
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        return path
    local = Path.cwd() / DEFAULT_CONFIG_NAME
    return local if local.is_file() else None


def load_settings(explicit: str | Path | None = None) -> Settings:
    path = find_config(explicit)
    if path is None:
        return Settings()
    return load_settings_file(path)


def load_settings_file(path: Path) -> Settings:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from None
    return settings_from_dict(data, str(path))


def dump_toml(data: dict[str, Any]) -> str:
    """A small TOML writer for the config a run used (tomllib only reads)."""
    lines: list[str] = []

    def scalar(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return repr(value)
        if isinstance(value, list | tuple):
            return "[" + ", ".join(scalar(v) for v in value) + "]"
        if value is None:
            return '""'
        text = str(value).replace("\\", "\\\\").replace('"', '\\"')
        return f'"{text}"'

    def table(prefix: str, values: dict[str, Any]) -> None:
        simple = {k: v for k, v in values.items() if not isinstance(v, dict) and not _is_aot(v)}
        nested = {k: v for k, v in values.items() if isinstance(v, dict)}
        arrays = {k: v for k, v in values.items() if _is_aot(v)}
        if prefix:
            lines.append(f"[{prefix}]")
        for key, value in simple.items():
            lines.append(f"{_key(key)} = {scalar(value)}")
        lines.append("")
        for key, value in nested.items():
            table(f"{prefix}.{_key(key)}" if prefix else _key(key), value)
        for key, items in arrays.items():
            for item in items:
                name = f"{prefix}.{_key(key)}" if prefix else _key(key)
                lines.append(f"[[{name}]]")
                for k, v in item.items():
                    lines.append(f"{_key(k)} = {scalar(v)}")
                lines.append("")

    table("", data)
    return "\n".join(lines).strip() + "\n"


def _is_aot(value: Any) -> bool:
    return (
        isinstance(value, list | tuple) and bool(value) and all(isinstance(v, dict) for v in value)
    )


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else f'"{key}"'
