"""Synthetic news and bars for the luck figures' tests: headlines the lexicon model reads as
bullish or bearish, every 12 hours, over 1h bars whose next bars drift the headline's way
(informative) or a way of their own (random)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from bot.backtest import LuckOptions, run_backtest
from bot.config import Settings
from bot.recording import BacktestResult

T0 = datetime(2024, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
BULLISH = "Bitcoin surges in a strong rally"
BEARISH = "Bitcoin plunges in a crash"


def write_scenario(
    folder: Path,
    *,
    informative: bool,
    days: int = 60,
    drift_bars: int = 6,
    drift: float = 0.004,
    seed: int = 1,
) -> tuple[Path, Path]:
    """news.jsonl and bars.csv in `folder`; a news item 30 s after every 12th bar's open, the
    `drift_bars` bars after it moving `drift` a bar its label's way (or a random way)."""
    rng = np.random.default_rng(seed)
    n_bars = days * 24
    signs = np.zeros(n_bars)
    news = []
    for k in range(0, n_bars - drift_bars - 1, 12):
        label = 1 if rng.random() < 0.5 else -1
        move = label if informative else (1 if rng.random() < 0.5 else -1)
        signs[k + 1 : k + 1 + drift_bars] = move
        received = T0 + k * HOUR + timedelta(seconds=30)
        news.append(
            {
                "id": f"n{k}",
                "source": "desk",
                "title": BULLISH if label > 0 else BEARISH,
                "received": received.isoformat().replace("+00:00", "Z"),
                "published": received.isoformat().replace("+00:00", "Z"),
            }
        )
    folder.mkdir(parents=True, exist_ok=True)
    news_path = folder / "news.jsonl"
    news_path.write_text("".join(json.dumps(item) + "\n" for item in news), encoding="utf-8")
    bars_path = folder / "bars.csv"
    price = 40_000.0
    lines = ["timestamp,open,high,low,close,volume"]
    for i in range(n_bars):
        close = price * (1 + signs[i] * drift + rng.normal(0, 0.001))
        high, low = max(price, close) * 1.0005, min(price, close) * 0.9995
        ts = (T0 + i * HOUR).strftime("%Y-%m-%dT%H:%M:%S")
        lines.append(f"{ts},{price:.2f},{high:.2f},{low:.2f},{close:.2f},10")
        price = close
    bars_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return news_path, bars_path


def lexicon_settings(tmp: Path, **overrides: object) -> Settings:
    return Settings().with_overrides(
        model={"backend": "lexicon"},
        store={"cache_dir": str(tmp / "cache"), "data_dir": str(tmp / "data")},
        **overrides,  # type: ignore[arg-type]
    )


def backtest(
    tmp: Path,
    news: Path,
    bars: Path,
    out: str,
    luck: LuckOptions,
    settings: Settings | None = None,
) -> BacktestResult:
    return run_backtest(
        settings or lexicon_settings(tmp),
        bars_path=bars,
        news_path=news,
        out_dir=tmp / out,
        progress=False,
        luck=luck,
    )
