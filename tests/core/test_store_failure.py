"""Issue 11.4: a commit that fails (a full disk) halts trading, is logged once, and stops the
daemon with a non-zero exit; nothing is retried in a storm and no traceback reaches stderr."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bot.events import NewsItem, Side
from bot.orders import Order, OrderStatus
from bot.store import Store, StoreError, StoreWriteError

from .store_daemon import log_records, logged, replay_files, start_daemon, wait_for, write_config

T = datetime(2024, 1, 1, tzinfo=UTC)


def full_store(path: Path, **options: Any) -> Store:
    """A store whose file cannot grow any more: SQLite answers SQLITE_FULL as on a full disk."""
    store = Store(f"sqlite:///{path}", **options)

    @sa.event.listens_for(store.engine, "connect")
    def _cap(dbapi_connection: Any, _: Any) -> None:
        pages = dbapi_connection.execute("PRAGMA page_count").fetchone()[0]
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")

    store.engine.dispose()  # every connection from now on has the cap
    return store


def news(n: int) -> NewsItem:
    return NewsItem(f"n{n}", "s", "a long enough title to need new pages " * 20, T)


def test_a_failed_commit_is_reported_once_and_never_retried(tmp_path: Path) -> None:
    store = full_store(tmp_path / "s.sqlite", durable=True, commit_every=10_000)
    failures: list[StoreError] = []
    store.on_failure(failures.append)
    for n in range(200):
        store.record_news(news(n))
    store.flush()  # the failure goes to the handler, not to the caller (a timer callback)
    assert len(failures) == 1 and isinstance(failures[0], StoreWriteError)
    assert "the disk is full" in str(failures[0]) and "200 queued rows not written" in str(
        failures[0]
    )
    assert "\n" not in str(failures[0])
    assert store.failed
    store.flush()
    store.pending_news()
    order = Order("c1", "BTCUSDT", Side.BUY, Decimal("1"), T, status=OrderStatus.CREATED)
    with pytest.raises(StoreWriteError):  # the engine must not send what is not recorded
        store.record_order(order)
    assert len(failures) == 1  # once, whatever was tried after
    store.end_run(T)  # nothing more is written, and saying so again is not an error
    store.close()
    assert Store(f"sqlite:///{tmp_path / 's.sqlite'}").orders(account="default") == []


def test_without_a_handler_the_failure_is_raised_as_one_line(tmp_path: Path) -> None:
    store = full_store(tmp_path / "s.sqlite", durable=False, commit_every=10_000)
    for n in range(200):
        store.record_news(news(n))
    with pytest.raises(StoreWriteError, match="the disk is full") as caught:
        store.flush()
    assert "\n" not in str(caught.value)
    with pytest.raises(StoreWriteError):  # and again, without touching the database
        store.flush()


@contextlib.contextmanager
def tiny_filesystem(where: Path, size: str) -> Iterator[Path]:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a tmpfs needs root (CI runs as root); the store-level tests cover the rest")
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill_up(folder: Path) -> None:
    with contextlib.suppress(OSError), (folder / "filler").open("wb") as handle:
        while True:  # until the disk is full (the suppressed OSError, closing included)
            handle.write(b"\0" * 65536)
            handle.flush()


@pytest.mark.slow
def test_the_daemon_on_a_full_disk_halts_logs_once_and_exits_non_zero(tmp_path: Path) -> None:
    news_file, bars = replay_files(tmp_path)
    config = write_config(tmp_path)
    log = tmp_path / "daemon.log"
    with tiny_filesystem(tmp_path / "data", "3m") as data:
        db = data / "lorabot" / "lorabot.sqlite"
        daemon = start_daemon(tmp_path, config, data, log, news_file, bars)
        try:
            wait_for(lambda: logged(log, "daemon starting"), 60, "the daemon started")
            wait_for(lambda: _fills(db) > 0, 60, "the daemon traded")
            fill_up(data)
            filled = time.monotonic()
            assert daemon.wait(timeout=60) == 3
            assert time.monotonic() - filled < 30
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()
    text = log.read_text()
    assert "Traceback" not in text
    errors = [r for r in log_records(log) if r.get("level") in ("error", "critical")]
    assert [r["event"] for r in errors] == ["store commit failed: trading halted, stopping"]
    assert "the disk is full" in errors[0]["error"]
    last = text.strip().splitlines()[-1]
    assert last.startswith("lorabot: error: stopped: store ") and "disk is full" in last


def _fills(db: Path) -> int:
    if not db.exists():
        return 0
    with contextlib.closing(sqlite3.connect(db, timeout=5)) as connection:
        try:
            return int(connection.execute("select count(*) from fills").fetchone()[0])
        except sqlite3.OperationalError:
            return 0
