"""`lorabot run --replay-news/--replay-bars` files with bad rows (issue 13.8): refused by default
with the rows named, before anything starts; with `--skip-bad-rows` each bad row is reported with
its reason and the others are played."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2024, 1, 1, tzinfo=UTC)


def _files(tmp_path: Path) -> tuple[Path, Path, Path]:
    bars = tmp_path / "bars.csv"
    rows = ["timestamp,open,high,low,close,volume"]
    for i in range(40):
        ts = (START + timedelta(minutes=i)).isoformat()
        price = 40000 + 10 * i
        high, low = (price - 50, price + 50) if i == 2 else (price + 30, price - 30)  # line 4: bad
        rows.append(f"{ts},{price},{high},{low},{price + 5},1")
    bars.write_text("\n".join(rows) + "\n", encoding="utf-8")
    news = tmp_path / "news.csv"
    news.write_text(
        "timestamp,source,title\n"
        f"{(START + timedelta(minutes=3)).isoformat()},wire,Bitcoin surges as ETF inflows jump\n"
        f"{(START + timedelta(minutes=5)).isoformat()},wire,\n"  # line 3: an empty title
        f"{(START + timedelta(minutes=9)).isoformat()},wire,Bitcoin plunges after exchange hack\n",
        encoding="utf-8",
    )
    config = tmp_path / "config.toml"
    config.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "store.sqlite"}"\ncommit_interval = "50ms"\n'
        f'cache_dir = "{tmp_path / "cache"}"\n'
        '[model]\nbackend = "lexicon"\nmax_wait = "5ms"\n[news]\nfeeds = []\n'
        '[log]\nformat = "json"\n',
        encoding="utf-8",
    )
    return news, bars, config


def _command(config: Path, news: Path, bars: Path, *extra: str) -> list[str]:
    return [
        *(sys.executable, "-m", "bot", "run", "--mode", "paper", "--config", str(config)),
        *("--replay-news", str(news), "--replay-bars", str(bars), "--speed", "600", *extra),
    ]


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "XDG_DATA_HOME": str(tmp_path / "data")}


def test_by_default_a_bad_row_refuses_the_file_in_one_line(tmp_path: Path) -> None:
    news, bars, config = _files(tmp_path)
    done = subprocess.run(
        _command(config, news, bars), env=_env(tmp_path), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"lorabot: error: {news}:3: "), done.stderr
    assert not (tmp_path / "store.sqlite").exists()  # refused before anything started


@pytest.mark.slow
def test_skip_bad_rows_reports_each_one_and_plays_the_rest(tmp_path: Path) -> None:
    news, bars, config = _files(tmp_path)
    err_path = tmp_path / "stderr.txt"

    def titles() -> list[str]:
        if not (tmp_path / "store.sqlite").exists():
            return []
        with sqlite3.connect(tmp_path / "store.sqlite") as db:
            try:
                return sorted(row[0] for row in db.execute("SELECT title FROM news_items"))
            except sqlite3.OperationalError:  # not migrated yet
                return []

    with err_path.open("w", encoding="utf-8") as err_file:
        daemon = subprocess.Popen(
            _command(config, news, bars, "--skip-bad-rows"),
            env=_env(tmp_path),
            stdout=subprocess.DEVNULL,
            stderr=err_file,
        )
        try:
            deadline = time.monotonic() + 60
            # 40 minutes of bars at 600x: 4 s of market, the news in its first second
            while len(titles()) < 2 or f"{bars}:4" not in err_path.read_text(encoding="utf-8"):
                assert daemon.poll() is None and time.monotonic() < deadline, err_path.read_text()
                time.sleep(0.1)
            daemon.send_signal(signal.SIGINT)
            daemon.wait(timeout=30)
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()
    err = err_path.read_text(encoding="utf-8")
    events = [json.loads(line) for line in err.splitlines()]
    skipped = {(e["where"], e["reason"]) for e in events if e["event"] == "bad row skipped"}
    wheres = {where for where, _ in skipped}
    assert wheres == {f"{news}:3", f"{bars}:4"}, err[-3000:]
    assert all(reason for _, reason in skipped)
    assert titles() == ["Bitcoin plunges after exchange hack", "Bitcoin surges as ETF inflows jump"]
