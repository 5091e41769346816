"""`lorabot analyze` end to end: files in, signals through the real signal service (a scripted
model answering from a JSONL of labels), analysis.json and its companions out.

Each test runs the command in a subprocess on files it writes, so what is tested is the command a
user types: parsing, the replay that produces the signals, the study and the writer.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from adapters.model.scripted import ScriptedModel
from bot.clock import ReplayClock
from bot.config import Settings
from bot.events import Label
from bot.research.timeline import DAY
from bot.signals import SignalCache, SignalService
from bot.symbols import SymbolTable
from tests.research.synthetic import HOUR, START, synthetic

ROOT = Path(__file__).resolve().parents[2]
LABELS = ("bearish", "neutral", "bullish")


def iso(seconds: int) -> str:
    return datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_bars(path: Path, times: np.ndarray, opens: np.ndarray) -> Path:
    """Canonical bars CSV; each bar closes at the next bar's open."""
    closes = np.append(opens[1:], opens[-1])
    lines = ["timestamp,open,high,low,close,volume"]
    for t, o, c in zip(times, opens, closes, strict=True):
        lines.append(f"{iso(t)},{o:.4f},{max(o, c):.4f},{min(o, c):.4f},{c:.4f},1")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_news(
    folder: Path, received: np.ndarray, labels: np.ndarray, titles: list[str] | None = None
) -> tuple[Path, Path]:
    """A news JSONL and the scripted model's answers for it (text -> label, confidence)."""
    titles = titles or [f"headline number {i}" for i in range(received.size)]
    news, answers = [], []
    rng = np.random.default_rng(1)
    for i, (at, label) in enumerate(zip(received, labels, strict=True)):
        news.append(
            json.dumps({"id": f"n{i}", "source": "wire", "title": titles[i], "received": iso(at)})
        )
        confidence = round(float(rng.uniform(0.45, 0.95)), 3)
        answers.append(
            json.dumps({"text": titles[i], "label": LABELS[label], "confidence": confidence})
        )
    news_path, answers_path = folder / "news.jsonl", folder / "answers.jsonl"
    news_path.write_text("\n".join(news) + "\n", encoding="utf-8")
    answers_path.write_text("\n".join(answers) + "\n", encoding="utf-8")
    return news_path, answers_path


def write_config(folder: Path, answers: Path, extra: str = "") -> Path:
    config = folder / "config.toml"
    config.write_text(
        f'[store]\ndata_dir = "{folder / "data"}"\ncache_dir = "{folder / "cache"}"\n'
        f'[model]\nbackend = "scripted"\nscripted_file = "{answers}"\n{extra}',
        encoding="utf-8",
    )
    return config


def analyze(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "bot", "--config", str(config), "analyze", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )


def document(out: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((out / "analysis.json").read_text(encoding="utf-8"))
    return loaded


def synthetic_files(folder: Path, *, shuffle: bool) -> tuple[Path, Path, Path]:
    data = synthetic(effect_bps=30.0, shuffle_labels=shuffle)
    bars = write_bars(folder / "bars.csv", data.bars.open_time, data.bars.open)
    news, answers = write_news(folder, data.signals.received, data.labels)
    return news, bars, write_config(folder, answers)


@pytest.mark.slow
def test_recovers_a_known_drift_after_bullish_news(tmp_path: Path) -> None:
    news, bars, config = synthetic_files(tmp_path, shuffle=False)
    out = tmp_path / "out"
    done = analyze(config, "--news", str(news), "--bars", str(bars), "--out", str(out))
    assert done.returncode == 0, done.stderr
    result = document(out)
    bullish, bearish = result["label"]["bullish"]["4h"], result["label"]["bearish"]["4h"]
    assert bullish["ci_low_bps"] <= 30.0 <= bullish["ci_high_bps"]
    assert bullish["ci_low_bps"] > 0 and bullish["p_value_holm"] < 0.05
    assert bearish["ci_low_bps"] <= -30.0 <= bearish["ci_high_bps"] < 0
    assert result["ic"]["4h"]["ci_low"] > 0
    assert result["counts"]["signals"] == 900 and result["counts"]["studied"] == 900
    assert "bullish at 4h" in result["summary"]
    # The first symbol's document is also under symbols.<SYMBOL>; the files are all there.
    assert result["symbols"]["BTCUSDT"]["label"] == result["label"]
    for name in ("analysis.md", "event_study.png", "calibration.png", "report.html"):
        assert (out / name).stat().st_size > 0, name
    # stdout carries the summary sentence and the label table.
    assert result["summary"] in done.stdout
    assert "mean_abnormal_bps" in done.stdout and "bullish       4h" in done.stdout


@pytest.mark.slow
def test_shuffled_labels_find_nothing(tmp_path: Path) -> None:
    news, bars, config = synthetic_files(tmp_path, shuffle=True)
    out = tmp_path / "out"
    done = analyze(config, "--news", str(news), "--bars", f"BTCUSDT={bars}", "--out", str(out))
    assert done.returncode == 0, done.stderr
    result = document(out)
    for label in LABELS:
        for horizon in ("1h", "4h", "1d"):
            entry = result["label"][label][horizon]
            assert entry["ci_low_bps"] <= 0.0 <= entry["ci_high_bps"], (label, horizon)
    assert "no label's abnormal return" in result["summary"]


def small_market(folder: Path, n_bars: int = 24 * 40) -> tuple[np.ndarray, np.ndarray]:
    times = START + HOUR * np.arange(n_bars, dtype=np.int64)
    opens = 100.0 * np.exp(0.001 * np.sin(np.arange(n_bars)))
    return times, opens


@pytest.mark.slow
def test_signals_are_the_backtests_tagging_and_market_wide_weighting(tmp_path: Path) -> None:
    """Items naming a symbol count for it alone; market-wide ones for every symbol, and none at
    all when `[strategy] market_wide_weight = 0`, exactly as the backtest's signal service."""
    times, opens = small_market(tmp_path)
    btc = write_bars(tmp_path / "btc.csv", times, opens)
    eth = write_bars(tmp_path / "eth.csv", times, opens * 0.05)
    received = START + 35 * DAY + HOUR * np.arange(6)
    titles = [
        "Bitcoin rallies on ETF hopes",
        "Bitcoin miners sell coins",
        "Ethereum upgrade ships on time",
        "Crypto markets drift sideways",
        "Regulators meet exchanges",
        "Ether and bitcoin both fall",
    ]
    news, answers = write_news(tmp_path, received, np.array([2, 0, 2, 1, 0, 0]), titles)
    bars = ("--bars", f"BTCUSDT={btc}", "--bars", f"ETHUSDT={eth}")
    out = tmp_path / "out"
    done = analyze(write_config(tmp_path, answers), "--news", str(news), *bars, "--out", str(out))
    assert done.returncode == 0, done.stderr
    result = document(out)
    btc_counts = result["symbols"]["BTCUSDT"]["counts"]
    eth_counts = result["symbols"]["ETHUSDT"]["counts"]
    assert btc_counts["signals"] == 5  # 2 bitcoin + 1 both + 2 market-wide
    assert eth_counts["signals"] == 4  # 1 ethereum + 1 both + 2 market-wide
    assert result["symbols"]["BTCUSDT"]["scope"]["market"]["neutral"]["1h"]["n"] == 1
    assert result["inputs"]["news_items"] == 6
    no_market = write_config(tmp_path, answers, "[strategy]\nmarket_wide_weight = 0\n")
    out = tmp_path / "out2"
    done = analyze(no_market, "--news", str(news), *bars, "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert document(out)["symbols"]["BTCUSDT"]["counts"]["signals"] == 3


def test_bad_input_is_counted_and_reported(tmp_path: Path) -> None:
    """News before and after the bars, a gap in the bars and a horizon longer than the data:
    each counted in analysis.json and said on stdout, none silently dropped."""
    times, opens = small_market(tmp_path)
    keep = np.ones(times.size, dtype=bool)
    keep[24 * 36 : 24 * 36 + 3] = False  # a three-hour gap, a day after the item below
    bars = write_bars(tmp_path / "bars.csv", times[keep], opens[keep])
    received = np.array(
        [START - DAY, START + 35 * DAY + 60, START + 36 * DAY - 2 * HOUR, START + 90 * DAY]
    )
    news, answers = write_news(tmp_path, received, np.array([2, 2, 2, 0]))
    config = write_config(tmp_path, answers)
    out = tmp_path / "out"
    done = analyze(
        config,
        "--news",
        str(news),
        "--bars",
        str(bars),
        "--horizons",
        "1h,4h,8w",
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    result = document(out)
    counts = result["counts"]
    assert (counts["before_bars"], counts["after_bars"], counts["studied"]) == (1, 1, 2)
    assert counts["bar_gaps"] == 1
    assert counts["missing"]["4h"]["gap"] == 1  # the window across the gap: missing
    assert counts["missing"]["8w"]["beyond_end"] == 2
    assert "1 signals before the first bar and 1 after the last" in done.stdout
    assert "horizon 8w is longer than the bars' span" in done.stdout
    assert "gaps" in done.stdout


@pytest.mark.parametrize(
    ("horizons", "expected"),
    [
        ("1h,soon", "horizon 'soon' is not a number with a unit"),
        ("30m", "horizon 30m is shorter than the bars' interval 1h"),
        ("90m", "horizon 90m is not a whole number of the bars' interval 1h"),
    ],
)
def test_bad_horizon_is_one_clear_line(tmp_path: Path, horizons: str, expected: str) -> None:
    """Found before any model is built: here the scripted model's file does not even exist."""
    times, opens = small_market(tmp_path)
    bars = write_bars(tmp_path / "bars.csv", times, opens)
    news, _ = write_news(tmp_path, np.array([START + 35 * DAY]), np.array([2]))
    config = write_config(tmp_path, tmp_path / "absent.jsonl")
    done = analyze(config, "--news", str(news), "--bars", str(bars), "--horizons", horizons)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], done.stderr


def test_bars_of_an_unknown_symbol_are_refused(tmp_path: Path) -> None:
    times, opens = small_market(tmp_path)
    bars = write_bars(tmp_path / "bars.csv", times, opens)
    news, answers = write_news(tmp_path, np.array([START + 35 * DAY]), np.array([2]))
    done = analyze(write_config(tmp_path, answers), "--news", str(news), "--bars", f"DOGE={bars}")
    assert done.returncode != 0
    assert "DOGE is not in [symbols]" in done.stderr


class CountingModel(ScriptedModel):
    """The scripted model, counting how often its weights would be loaded."""

    loads = 0

    async def load(self) -> None:
        self.loads += 1


def test_a_warm_cache_never_loads_the_model(tmp_path: Path) -> None:
    """A second analysis of the same news reads every answer from the cache: the model's
    start-up (seconds for the embedded model) is not paid again."""
    texts = ["Bitcoin rallies", "Ether falls"]
    answers = {text: (Label.BULLISH, 0.8) for text in texts}
    emitted: list[object] = []
    for expected_loads in (1, 0):
        model = CountingModel(answers)
        cache = SignalCache(tmp_path / "signals.sqlite")
        symbols = SymbolTable.from_settings(Settings())
        service = SignalService(model, symbols, ReplayClock(), emitted.append, cache=cache)
        asyncio.run(service.prefetch(texts))
        cache.close()
        assert model.loads == expected_loads


@pytest.mark.slow
def test_a_bad_news_row_is_refused_or_skipped_and_reported(tmp_path: Path) -> None:
    times, opens = small_market(tmp_path)
    bars = write_bars(tmp_path / "bars.csv", times, opens)
    news, answers = write_news(tmp_path, np.array([START + 35 * DAY]), np.array([2]))
    bad = tmp_path / "bad.jsonl"
    bad.write_text(news.read_text(encoding="utf-8") + '{"id": "x", "title": ""}\n', "utf-8")
    config = write_config(tmp_path, answers)
    refused = analyze(config, "--news", str(bad), "--bars", str(bars), "--out", str(tmp_path / "a"))
    assert refused.returncode != 0
    assert f"{bad}:2: bad news item: 'title' is missing or empty" in refused.stderr
    out = tmp_path / "b"
    skipped = analyze(
        config, "--news", str(bad), "--bars", str(bars), "--out", str(out), "--skip-bad-rows"
    )
    assert skipped.returncode == 0, skipped.stderr
    assert f"{bad}:2" in skipped.stderr and "bad row skipped" in skipped.stderr
    assert document(out)["inputs"]["news_items"] == 1
