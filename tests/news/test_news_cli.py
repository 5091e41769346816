"""`lorabot news` end to end: real feeds on 127.0.0.1, the real store, the configured model."""

from __future__ import annotations

import logging
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import structlog
from click.testing import CliRunner, Result
from newsfeed_server import FeedServer, fixture_bytes, rss, threaded_server

from adapters.files import read_news
from bot.cli import cli
from bot.commands.news import format_line
from bot.events import Label, NewsItem
from bot.protocols import Prediction

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The command configures logging onto the runner's stderr, which closes after the call."""
    config = structlog.get_config()
    handlers = logging.getLogger().handlers[:]
    level = logging.getLogger().level
    yield
    structlog.configure(**config)
    root = logging.getLogger()
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def feeds() -> Iterator[FeedServer]:
    with threaded_server() as (server, _loop):
        yield server


def _config(tmp_path: Path, *urls: str, extra: str = "") -> Path:
    lines = [
        "[news]",
        'poll_interval = "100ms"',
        'timeout = "500ms"',
        'backoff_initial = "100ms"',
        'backoff_max = "1s"',
        "jitter = 0",
        f'store_url = "sqlite:///{tmp_path / "news.sqlite"}"',
        extra,
    ]
    for url in urls:
        lines += ["[[news.feeds]]", f'url = "{url}"', 'name = "wire"']
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, ["news", *args], catch_exceptions=False)


def test_format_line_shows_time_source_label_symbols_flags_and_full_title() -> None:
    item = NewsItem(
        id="x",
        source="coindesk",
        title="Bitcoin " + "very " * 40 + "long title",
        received=datetime(2024, 5, 6, 10, 30, tzinfo=UTC),
        published=datetime(2024, 5, 6, 10, 15, tzinfo=UTC),
        symbols=("BTCUSDT", "ETHUSDT"),
        stale=True,
    )
    prediction = Prediction(Label.BULLISH, 0.8234, (0.1, 0.0766, 0.8234), "lexicon")
    line = format_line(item, prediction)
    assert line.startswith("2024-05-06 10:15:00Z  coindesk        bullish 0.82  BTCUSDT,ETHUSDT")
    assert line.endswith("[stale] " + item.title)
    assert "\n" not in line
    assert "bullish" not in format_line(item)


def test_once_prints_new_items_labelled_and_names_failed_feeds(
    feeds: FeedServer, tmp_path: Path
) -> None:
    good = feeds.feed("/rss", fixture_bytes("rss2.xml"))
    down = feeds.status("/down", 500)
    page = feeds.feed("/page", fixture_bytes("page.html"), content_type="text/html")
    config = _config(tmp_path, good, down, page)
    result = _invoke("--once", "--config", str(config))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert lines[-1].endswith("Bitcoin rallies past $70,000 as ETF inflows surge")
    assert "  wire  " in lines[-1] and "BTCUSDT" in lines[-1]
    assert re.search(r" bullish [01]\.\d\d ", lines[-1])  # the model's label and confidence
    assert "[stale]" in lines[-1]  # published before this start: marked
    assert f"{down}: failed: HTTP 500 Internal Server Error" in result.stderr
    assert f"{page}: failed: not an RSS or Atom feed: got an HTML page" in result.stderr
    assert "3 new items from 3 feeds (2 failed)" in result.stderr
    # --once only looks: the same items are new the next time.
    again = _invoke("--once", "--config", str(config), "--no-model")
    assert again.stdout.splitlines()[-1].endswith("ETF inflows surge")
    assert "bullish" not in again.stdout


def test_once_with_feed_urls_and_json(feeds: FeedServer, tmp_path: Path) -> None:
    configured = feeds.feed("/rss", fixture_bytes("rss2.xml"))
    extra = feeds.feed("/atom", fixture_bytes("atom.xml"), content_type="application/atom+xml")
    config = _config(tmp_path, configured)
    result = _invoke("--config", str(config), "--once", "--feed", extra, "--json")
    assert result.exit_code == 0, result.output
    items = [NewsItem.from_json(line) for line in result.stdout.splitlines()]
    assert [item.title for item in items] == [
        "Ether options open interest hits record",
        "Solana outage halts block production",
    ]
    assert {item.source for item in items} == {"127.0.0.1"}
    assert feeds.hits("/rss") == 0


def test_once_exits_1_when_every_feed_failed(feeds: FeedServer, tmp_path: Path) -> None:
    slow = feeds.hang("/slow", 2)
    result = _invoke("--config", str(_config(tmp_path)), "--once", "--feed", slow)
    assert result.exit_code == 1
    assert f"{slow}: failed: timed out after 0.5s" in result.stderr
    assert result.stdout == ""


def test_once_record_appends_only_new_items(feeds: FeedServer, tmp_path: Path) -> None:
    url = feeds.feed("/rss", fixture_bytes("rss2.xml"))
    config = _config(tmp_path, url)
    out = tmp_path / "history.jsonl"
    first = _invoke("--config", str(config), "--once", "--record", str(out))
    assert first.exit_code == 0, first.output
    assert "3 appended to" in first.stderr
    second = _invoke("--config", str(config), "--once", "--record", str(out))
    assert second.stdout == "" and "0 appended to" in second.stderr
    # Not shown again, and not silently: the summary counts what an earlier run recorded.
    assert "0 new items from 1 feed; 3 seen by an earlier run, not shown;" in second.stderr
    assert len(read_news(out)) == 3
    # Recorded for history: a daemon sharing this store must not re-queue them for its model.
    with sqlite3.connect(tmp_path / "news.sqlite") as connection:
        statuses = connection.execute("select signal_status from news_items").fetchall()
    assert statuses == [("skipped",)] * 3


def test_no_feeds_is_a_clear_error(tmp_path: Path) -> None:
    config = _config(tmp_path, extra="feeds = []")  # the built-in defaults have feeds
    done = subprocess.run(
        [sys.executable, "-m", "bot", "news", "--once", "--config", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.strip().startswith("lorabot: error: no news feeds: add [[news.feeds]]")


def test_record_runs_until_sigterm_and_appends_as_items_appear(
    feeds: FeedServer, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    items = [{"title": "Old news on ether", "guid": "r1", "published": now - timedelta(hours=1)}]
    url = feeds.feed("/rss", lambda: rss(list(reversed(items))))
    out = tmp_path / "history.jsonl"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bot",
            "news",
            "--record",
            str(out),
            "--no-model",
            "--config",
            str(_config(tmp_path, url)),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "LORABOT_DEBUG": ""},
    )
    try:
        _wait_for_lines(out, 1, process)
        items.append({"title": "Bitcoin breaks out", "guid": "r2", "published": datetime.now(UTC)})
        _wait_for_lines(out, 2, process)
        time.sleep(0.3)  # a few more polls: nothing appended twice
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    recorded = read_news(out)
    assert [(item.title, item.stale) for item in recorded] == [
        ("Old news on ether", True),
        ("Bitcoin breaks out", False),
    ]
    assert "recorded 2 new items to" in stderr
    assert stdout.splitlines()[-1].endswith("  Bitcoin breaks out")


def _wait_for_lines(path: Path, count: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text(encoding="utf-8").splitlines()) >= count:
            return
        if process.poll() is not None:
            raise AssertionError(f"the recorder exited early: {process.communicate()[1]}")
        time.sleep(0.05)
    raise AssertionError(f"{path} did not reach {count} lines")
