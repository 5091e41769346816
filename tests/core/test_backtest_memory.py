"""A backtest's memory must not grow with its input beyond a few bytes a bar (issue 11 point 8:
per-bar Python objects made 200 MB of bars peak at 1 GB). bench/backtest_memory.py measures the
200 MB case end to end; this test holds the marginal cost per bar."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.backtest import LuckOptions, run_backtest
from bot.config import Settings

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def bars_file(path: Path, count: int) -> Path:
    with path.open("w") as out:
        out.write("timestamp,open,high,low,close,volume\n")
        for i in range(count):
            ts = (T0 + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%S")
            price = 40000 + (i * 37) % 900
            out.write(f"{ts},{price},{price + 20},{price - 20},{price + 5},1.5\n")
    return path


def peak_bytes(tmp_path: Path, count: int) -> int:
    bars = bars_file(tmp_path / f"bars{count}.csv", count)
    settings = Settings().with_overrides(
        model={"backend": "lexicon"}, store={"cache_dir": str(tmp_path / "cache")}
    )
    tracemalloc.start()
    try:
        result = run_backtest(
            settings,
            bars_path=bars,
            news_path=None,
            out_dir=tmp_path / f"o{count}",
            progress=False,
            luck=LuckOptions(ledger_url=f"sqlite:///{tmp_path / 'ledger.sqlite'}", lag=False),
        )
        assert result.recording.n_bars == count
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.slow
def test_memory_per_bar_is_a_few_bytes(tmp_path: Path) -> None:
    peak_bytes(tmp_path, 500)  # imports and first-use caches, which are no cost of a bar
    small, big = 10_000, 40_000
    low = peak_bytes(tmp_path, small)
    per_bar = (peak_bytes(tmp_path, big) - low) / (big - small)
    assert per_bar < 100, f"{per_bar:.0f} bytes per bar"
