"""Starting real `python -m bot run` daemons for the store's tests: replay files, config, logs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BAR = timedelta(milliseconds=250)


def replay_files(folder: Path, bars: int = 480) -> tuple[Path, Path]:
    """Bars every 250 ms from now on (two minutes by default) and a headline every 2 s."""
    start = datetime.now(UTC) + timedelta(seconds=2)
    bars_file = folder / "bars.csv"
    rows = ["timestamp,open,high,low,close,volume"]
    for i in range(bars):
        price = 40000 + 15 * (i % 40)
        ts = start + BAR * i
        rows.append(f"{ts.isoformat()},{price},{price + 30},{price - 30},{price + 5},1")
    bars_file.write_text("\n".join(rows) + "\n")
    titles = ["Bitcoin surges as ETF inflows jump", "Bitcoin plunges after exchange hack"]
    news_file = folder / "news.jsonl"
    with news_file.open("w") as handle:
        for n in range(bars // 8):
            ts = (start + BAR * (4.5 + 8 * n)).isoformat()
            item = {"id": f"k{n}", "source": "test", "title": titles[n % 2], "received": ts}
            handle.write(json.dumps({**item, "symbols": ["BTCUSDT"]}) + "\n")
    return news_file, bars_file


def write_config(folder: Path, store_url: str | None = None) -> Path:
    config = folder / "config.toml"
    store = f'url = "{store_url}"\n' if store_url else ""
    config.write_text(
        f'[store]\n{store}commit_interval = "50ms"\ncache_dir = "{folder / "cache"}"\n'
        '[strategy]\nwindow = "2s"\nhalf_life = 0\nreevaluate_interval = 0\n'
        '[risk]\nmax_price_age = "1s"\n[engine]\nsnapshot_interval = "200ms"\n'
        '[model]\nbackend = "lexicon"\nmax_wait = "5ms"\n[log]\nformat = "json"\n'
    )
    return config


def environment(data_home: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "XDG_DATA_HOME": str(data_home)}


def bot_command(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "bot", *(str(a) for a in args)]


def start_daemon(
    folder: Path, config: Path, data_home: Path, log: Path, news: Path, bars: Path
) -> subprocess.Popen[bytes]:
    command = bot_command(
        "run", "--mode", "paper", "--config", config, "--replay-news", news, "--replay-bars", bars
    )
    return subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
        env=environment(data_home),
        cwd=folder,
    )


def log_records(log: Path) -> list[dict[str, Any]]:
    """The JSON records of a daemon's stderr (other lines are skipped)."""
    records = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


def logged(log: Path, event: str) -> bool:
    return any(record.get("event") == event for record in log_records(log))
