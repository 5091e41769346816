"""The config tables other than `[symbols]`: one frozen model per table, each number with its range.

Defaults here are the shipped `config.toml` (a test keeps them equal); the bounds are the ranges
its comments state. Zero is accepted only where the comment says what it means (off, no wait).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from bot.config.values import (
    MONEY_MAX,
    Dec,
    Duration,
    Fee,
    Money,
    PathStr,
    PositiveDuration,
    Section,
    Weight,
)

_MILLION = 1_000_000


class EngineConfig(Section):
    mode: Literal["paper", "live"] = "paper"
    initial_cash: Money = Decimal("10000")
    quote_currency: str = "USDT"
    snapshot_interval: Duration = 3600.0
    queue_size: int = Field(10_000, ge=1, le=10 * _MILLION)
    market_overflow: Literal["block", "drop_oldest"] = "drop_oldest"
    retry_interval: PositiveDuration = 30.0
    shutdown_timeout: Duration = 10.0
    heartbeat_interval: PositiveDuration = 60.0
    reconcile_interval: Duration = 300.0


class StoreConfig(Section):
    url: str = ""
    data_dir: PathStr = ""
    cache_dir: PathStr = ""
    commit_every: int = Field(256, ge=1, le=_MILLION)
    commit_interval: PositiveDuration = 1.0
    sqlite_wal: bool = True


ModelBackend = Literal["lexicon", "embedded", "vllm", "scripted"]


class ExtraModelConfig(Section):
    """One more model that reads every news item beside `[model]`'s (`[[model.extra]]`): its
    signals carry its own model id. Unset keys take `[model]`'s values; `weight` scales how
    much its signals count in the vote (0: recorded in the store and the decision log, never
    voted), so a user strategy can also tell the models apart by `Signal.model_id`."""

    backend: ModelBackend = "embedded"
    path: PathStr = ""
    base: str = ""
    scripted_file: PathStr = ""
    vllm_url: str = ""
    vllm_model: str = ""
    weight: Weight = 1.0


class ModelConfig(Section):
    backend: ModelBackend = "embedded"
    path: PathStr = ""
    base: str = ""
    batch_size: int = Field(32, ge=1, le=100_000)
    max_wait: Duration = 0.0  # news arrives one item at a time: waiting for company only delays it
    max_pending: int = Field(10_000, ge=1, le=10 * _MILLION)
    timeout: PositiveDuration = 30.0
    retries: int = Field(3, ge=0, le=100)
    retry_backoff: Duration = 0.5
    num_threads: int = Field(0, ge=0, le=1024)
    cache: bool = True
    precision: Literal["auto", "fp32", "bf16", "int8"] = "auto"
    merge: bool = True
    trace: bool = True
    runtime: Literal["onnx", "torch"] = "onnx"
    max_length: int = Field(0, ge=0, le=_MILLION)
    forward_batch_size: int = Field(128, ge=1, le=100_000)
    coalesce_wait: Duration = 0.0
    circuit_failures: int = Field(5, ge=1, le=_MILLION)
    circuit_reset: PositiveDuration = 30.0
    vllm_url: str = "http://127.0.0.1:8000"
    vllm_model: str = ""
    vllm_max_connections: int = Field(8, ge=1, le=10_000)
    vllm_env: PathStr = ""
    vllm_dtype: Literal["float32", "bfloat16", "float16", "auto"] = "float32"
    vllm_kv_cache_gib: float = Field(1.0, gt=0, le=100_000)
    vllm_max_model_len: int = Field(512, ge=16, le=10 * _MILLION)
    vllm_start_timeout: PositiveDuration = 600.0
    vllm_eager: bool = True
    vllm_args: tuple[str, ...] = ()
    scripted_file: PathStr = ""
    extra: tuple[ExtraModelConfig, ...] = ()


class TrainingConfig(Section):
    """Defaults of `lorabot train`, `compare` and `export`; every CLI flag can override them."""

    method: Literal["lora", "qlora", "prefix", "prompt", "adapter", "full"] = "lora"
    base: str = ""
    family: Literal["auto", "encoder", "decoder"] = "auto"
    max_length: int = Field(64, ge=8, le=_MILLION)
    batch_size: int = Field(32, ge=1, le=_MILLION)
    eval_batch_size: int = Field(128, ge=1, le=_MILLION)
    epochs: float = Field(5, gt=0, le=100_000)
    learning_rate: float = Field(0.0, ge=0, le=10)
    seed: int = Field(42, ge=0, le=2**32 - 1)
    scheduler: Literal["linear", "cosine", "constant"] = "linear"
    warmup_ratio: float = Field(0.06, ge=0, lt=1)
    weight_decay: float = Field(0.01, ge=0, le=10)
    max_grad_norm: float = Field(1.0, ge=0, le=_MILLION)
    grad_accum: int = Field(1, ge=1, le=100_000)
    group_by_length: bool = True
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    distill_weight: float = Field(0.5, ge=0, le=1)
    class_weights: Literal["none", "balanced", "sqrt"] = "sqrt"
    valid_fraction: float = Field(0.1, gt=0, lt=1)
    eval_every: int = Field(0, ge=0, le=10**9)
    patience: int = Field(2, ge=0, le=_MILLION)
    keep_best: Literal["macro_f1", "accuracy", "loss", "last"] = "macro_f1"
    checkpoint_every: int = Field(0, ge=0, le=10**9)
    keep_checkpoints: int = Field(2, ge=1, le=_MILLION)
    num_threads: int = Field(0, ge=0, le=1024)
    # bf16 autocast of the training forward passes; auto: where the CPU has native bf16
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    lora_r: int = Field(16, ge=1, le=65_536)
    lora_alpha: int = Field(32, ge=1, le=_MILLION)
    lora_dropout: float = Field(0.1, ge=0, lt=1)
    lora_targets: tuple[str, ...] = ()
    prefix_tokens: int = Field(16, ge=1, le=100_000)
    prefix_projection: bool = False
    prefix_hidden: int = Field(256, ge=1, le=_MILLION)
    prompt_tokens: int = Field(16, ge=1, le=100_000)
    adapter_size: int = Field(64, ge=1, le=_MILLION)
    adapter_targets: tuple[str, ...] = ()
    label_words: tuple[str, str, str] = ("negative", "neutral", "positive")
    prompt: str = ""
    fiqa_bearish_below: float = Field(-0.1, ge=-1, le=1)
    fiqa_bullish_above: float = Field(0.1, ge=-1, le=1)
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
    interval: PositiveDuration | None = None
    timeout: PositiveDuration | None = None
    weight: Weight = 1.0
    enabled: bool = True

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        from urllib.parse import urlsplit

        value = value.strip()
        try:
            parts = urlsplit(value)
            has_host = bool(parts.hostname)
        except ValueError:  # a malformed netloc, e.g. an unclosed IPv6 bracket
            has_host = False
        if not has_host or parts.scheme not in ("http", "https"):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value


def default_feeds() -> tuple[FeedConfig, ...]:
    """Public crypto news, from each outlet's own published RSS/Atom endpoint.

    Shipped enabled so that a paper daemon started from the README has news to trade on; a file's
    `[[news.feeds]]` (or `feeds = []`) replaces the whole list, and tests always pin their own.
    """
    return tuple(
        FeedConfig(url=url, name=name)
        for name, url in (
            ("coindesk", "https://www.coindesk.com/arc/outboundfeeds/rss/"),
            ("cointelegraph", "https://cointelegraph.com/rss"),
            ("decrypt", "https://decrypt.co/feed"),
            ("bitcoinmagazine", "https://bitcoinmagazine.com/.rss/full/"),
            ("theblock", "https://www.theblock.co/rss.xml"),
        )
    )


class NewsConfig(Section):
    feeds: tuple[FeedConfig, ...] = Field(default_factory=default_feeds)
    poll_interval: PositiveDuration = 120.0
    timeout: PositiveDuration = 15.0
    max_age: PositiveDuration = 21600.0
    user_agent: str = "lorabot/0.1 (+https://github.com/lorabot/lorabot)"
    per_host_concurrency: int = Field(default=2, ge=1, le=1000)
    backoff_initial: PositiveDuration = 30.0
    backoff_max: PositiveDuration = 1800.0
    max_body_chars: int = Field(default=2000, ge=0, le=10 * _MILLION)
    max_bytes: int = Field(default=5_000_000, ge=1024, le=10**10)
    jitter: float = Field(default=0.1, ge=0, le=0.5)
    max_redirects: int = Field(default=5, ge=0, le=100)
    title_dedup_window: Duration = 86400.0
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


class AnnouncementsConfig(Section):
    """`[bybit.announcements]`: Bybit's own announcements as a news source
    (`adapters/bybit/announcements.py`), polled from `/v5/announcements/index`."""

    enabled: bool = True
    interval: PositiveDuration = 60.0
    types: tuple[str, ...] = ()
    locale: str = "en-US"
    page_size: int = Field(default=20, ge=1, le=100)
    max_pages: int = Field(default=5, ge=1, le=100)

    @field_validator("types")
    @classmethod
    def _type_keys(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for key in value:
            if not key or not key.replace("_", "").isalnum() or key != key.lower():
                raise ValueError(
                    f"{key!r} is not a Bybit announcement type key (e.g. new_crypto, delistings)"
                )
        return value

    @field_validator("locale")
    @classmethod
    def _locale(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must name a locale, e.g. en-US")
        return value.strip()


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
    recv_window: int = Field(default=5000, ge=1, le=60_000)
    rest_timeout: PositiveDuration = 10.0
    rest_concurrency: int = Field(default=4, ge=1, le=1000)
    rest_retries: int = Field(default=3, ge=0, le=100)
    rest_backoff: Duration = 0.5
    rest_backoff_max: Duration = 10.0
    clock_sync_interval: PositiveDuration = 300.0
    ping_interval: PositiveDuration = 20.0
    silence_timeout: PositiveDuration = 30.0
    connect_timeout: PositiveDuration = 10.0
    reconnect_initial: PositiveDuration = 1.0
    reconnect_max: PositiveDuration = 60.0
    gap_fill: bool = True
    fill_gap_grace: Duration = 1.0
    order_poll_interval: PositiveDuration = 15.0
    account_type: str = "UNIFIED"
    settle_coin: str = "USDT"
    download_rate: float = Field(default=10.0, gt=0, le=10_000)
    api_key_env: str = "BYBIT_API_KEY"
    api_secret_env: str = "BYBIT_API_SECRET"
    announcements: AnnouncementsConfig = AnnouncementsConfig()

    @field_validator("kline_interval")
    @classmethod
    def _known_interval(cls, value: str) -> str:
        allowed = ("1", "3", "5", "15", "30", "60", "120", "240", "360", "720", "D", "W", "M")
        if value not in allowed:
            raise ValueError(f"must be one of Bybit's kline intervals {', '.join(allowed)}")
        return value


class StrategyConfig(Section):
    window: PositiveDuration = 21600.0
    half_life: Duration = 7200.0
    threshold: float = Field(0.6, ge=0, le=1)
    below_threshold: Literal["hold", "flat"] = "hold"
    min_signals: int = Field(1, ge=1, le=_MILLION)
    market_wide_weight: Weight = 0.5
    source_weights: dict[str, Weight] = Field(default_factory=dict)
    reevaluate_interval: Duration = 300.0
    trade_stale_news: bool = False
    fraction: float = Field(0.5, gt=0, le=100)
    max_fraction: float = Field(1.0, gt=0, le=100)
    order_type: Literal["market", "limit"] = "market"
    limit_offset_bps: float = Field(0.0, ge=0, le=10_000)
    limit_timeout: Duration = 300.0
    rebalance_band: float = Field(0.1, ge=0, le=1)
    aggregation: Literal["share", "evidence"] = "evidence"
    prior_weight: float = Field(0.25, ge=0, le=1000)  # chosen on the shared data: config.toml
    stop_loss: str = ""
    take_profit: str = ""
    trailing_stop: str = ""
    max_hold: Duration = 0.0
    atr_period: int = Field(14, ge=1, le=1000)
    # which strategy trades (strategies/loader.py) and its own declared parameters
    use: str = Field("vote", min_length=1)
    params: dict[str, int | float | str] = Field(default_factory=dict)

    @field_validator("stop_loss", "take_profit", "trailing_stop")
    @classmethod
    def _exit_level(cls, value: str) -> str:
        from strategies.exits import Level

        Level.parse(value, "level")  # a ValueError names the value; pydantic adds the key
        return value


PositionCap = Annotated[Dec, Field(ge=0, le=MONEY_MAX)]


class RiskConfig(Section):
    max_notional: Money = Decimal("50000")
    max_position: dict[str, PositionCap] = Field(default_factory=dict)
    max_daily_loss: float = Field(0.05, gt=0, le=1)
    max_orders_per_minute: int = Field(20, ge=1, le=100_000)
    max_price_age: PositiveDuration = 120.0
    kill_switch_file: PathStr = ""
    kill_switch_poll: PositiveDuration = 1.0
    max_leverage: Dec = Field(Decimal("10"), ge=1, le=200)


class PaperConfig(Section):
    slippage_bps: float = Field(2.0, ge=0, le=10_000)
    linear_maker_fee: Fee = Decimal("0.0002")
    linear_taker_fee: Fee = Decimal("0.00055")
    spot_maker_fee: Fee = Decimal("0.001")
    spot_taker_fee: Fee = Decimal("0.001")
    funding_rate: Annotated[Dec, Field(ge=Decimal("-0.01"), le=Decimal("0.01"))] = Decimal("0")


class LogConfig(Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "console", "json"] = "auto"
    file: PathStr = ""


class ApiConfig(Section):
    """`[api]`: the operator's console (`bot/console/`), served by the daemon itself.

    Binding to anything but loopback is refused at start-up unless `LORABOT_API_TOKEN` is set
    (`bot/console/auth.py`): the console shows positions and decisions to whoever reaches it."""

    enabled: bool = True
    listen: str = "127.0.0.1:8080"
    stale_after: PositiveDuration = 30.0

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"{value!r} is not host:port (e.g. '127.0.0.1:8080')")
        return value


class TelegramConfig(Section):
    """`[telegram]`: notifications and commands (`adapters/telegram/`); the bot token comes from
    `LORABOT_TELEGRAM_TOKEN` only, and commands are answered only in `chat_id`."""

    enabled: bool = False
    chat_id: int = Field(0, ge=-(10**15), le=10**15)
    daily_summary_at: str = "00:00"
    api_url: str = "https://api.telegram.org"

    @field_validator("daily_summary_at")
    @classmethod
    def _check_time(cls, value: str) -> str:
        hours, sep, minutes = value.partition(":")
        if not (sep and hours.isdigit() and minutes.isdigit()) or not (
            0 <= int(hours) < 24 and 0 <= int(minutes) < 60 and len(minutes) == 2
        ):
            raise ValueError(f"{value!r} is not a UTC time of day such as '08:30'")
        return value

    @model_validator(mode="after")
    def _chat_when_enabled(self) -> TelegramConfig:
        if self.enabled and not self.chat_id:
            raise ValueError("enabled = true needs chat_id (the one chat the bot answers)")
        return self
