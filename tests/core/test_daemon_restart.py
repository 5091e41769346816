"""SIGKILL the paper daemon mid-run, start it again: nothing persisted is lost or doubled, and the
positions are exactly what the stored fills say."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BAR = timedelta(milliseconds=250)


def write_scenario(tmp_path: Path, start: datetime) -> tuple[Path, Path, datetime]:
    bars = tmp_path / "bars.csv"
    rows = ["timestamp,open,high,low,close,volume"]
    for i in range(64):
        price = 40000 + 15 * i
        ts = start + BAR * i
        rows.append(f"{ts.isoformat()},{price},{price + 30},{price - 30},{price + 5},1")
    bars.write_text("\n".join(rows) + "\n")
    titles = [
        "Bitcoin surges as ETF inflows jump",
        "Bitcoin plunges after exchange hack",
        "Bitcoin rallies to a record high",
        "Bitcoin trades flat, markets unchanged",
        "Bitcoin tumbles as miners sell",
        "Bitcoin soars on strong demand",
    ]
    news = tmp_path / "news.jsonl"
    with news.open("w") as handle:
        for n, title in enumerate(titles):
            ts = (start + BAR * (4.5 + 9 * n)).isoformat()
            handle.write(
                json.dumps(
                    {
                        "id": f"k{n}",
                        "source": "test",
                        "title": title,
                        "received": ts,
                        "symbols": ["BTCUSDT"],
                    }
                )
                + "\n"
            )
    return news, bars, start + BAR * 64


def start_daemon(tmp_path: Path, news: Path, bars: Path, log: Path) -> subprocess.Popen[bytes]:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "store.sqlite"}"\ncommit_interval = "50ms"\n'
        f'cache_dir = "{tmp_path / "cache"}"\n'
        # the share vote: every headline trades, so the run keeps trading after the restart
        '[strategy]\nwindow = "2s"\nhalf_life = 0\nreevaluate_interval = 0\naggregation = "share"\n'
        '[risk]\nmax_price_age = "1s"\n[engine]\nsnapshot_interval = "500ms"\n'
        '[model]\nbackend = "lexicon"\nmax_wait = "5ms"\n[log]\nformat = "json"\n'
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_DATA_HOME": str(tmp_path / "data")}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bot",
            "run",
            "--mode",
            "paper",
            "--config",
            str(config),
            "--replay-news",
            str(news),
            "--replay-bars",
            str(bars),
            "--keep-times",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
        env=env,
        cwd=tmp_path,
    )


def snapshot(db: Path) -> dict[str, list[tuple[object, ...]]]:
    with sqlite3.connect(db) as connection:
        return {
            "signals": connection.execute("select news_id, symbol_key from signals").fetchall(),
            "orders": connection.execute(
                "select client_order_id, qty, filled_qty, status from orders"
            ).fetchall(),
            "fills": connection.execute(
                "select exec_id, client_order_id, side, qty, price from fills"
            ).fetchall(),
        }


def wait_for(condition: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


@pytest.mark.slow
def test_sigkill_then_restart_loses_and_doubles_nothing(tmp_path: Path) -> None:
    start = datetime.now(UTC) + timedelta(seconds=3)
    news, bars, end = write_scenario(tmp_path, start)
    db = tmp_path / "store.sqlite"
    log = tmp_path / "daemon.log"
    first = start_daemon(tmp_path, news, bars, log)

    def has_fills() -> bool:
        if not db.exists():
            return False
        try:
            return len(snapshot(db)["fills"]) >= 1
        except sqlite3.OperationalError:
            return False

    wait_for(has_fills, 30)
    time.sleep(0.7)  # let more happen, possibly with an order in flight
    before = snapshot(db)
    first.send_signal(signal.SIGKILL)
    first.wait(10)

    second = start_daemon(tmp_path, news, bars, log)
    wait_for(lambda: datetime.now(UTC) > end + timedelta(seconds=1), 60)
    second.send_signal(signal.SIGTERM)
    assert second.wait(30) == 0
    after = snapshot(db)

    for kind in ("signals", "fills"):
        assert set(before[kind]) <= set(after[kind]), f"lost {kind}"
        assert not [k for k, n in Counter(after[kind]).items() if n > 1], f"doubled {kind}"
    assert {o[0] for o in before["orders"]} <= {o[0] for o in after["orders"]}
    assert len({row[0] for row in after["fills"]}) == len(after["fills"])  # exec ids unique
    by_order: Counter[str] = Counter()
    for _, order_id, _, qty, _ in after["fills"]:
        by_order[order_id] += Decimal(qty)  # type: ignore[arg-type]
    for order_id, _, filled, _ in after["orders"]:
        assert Decimal(filled) == by_order.get(order_id, Decimal(0)), order_id  # type: ignore[arg-type]
    position = sum(
        (
            Decimal(q) * (1 if s == "buy" else -1)  # type: ignore[arg-type]
            for _, _, s, q, _ in after["fills"]
        ),
        Decimal(0),
    )
    with sqlite3.connect(db) as connection:
        last = connection.execute(
            "select qty from position_snapshots where symbol = 'BTCUSDT' order by ts desc, id desc"
        ).fetchone()
    assert last is not None and Decimal(last[0]) == position
    text = log.read_text()
    assert '"resumed account"' in text and text.count('"daemon starting"') == 2
    assert len(after["fills"]) > len(before["fills"])  # it kept trading after the restart
