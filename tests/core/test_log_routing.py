"""The standard library's logging, `warnings` and Python's own last-resort reports go through the
same renderer as lorabot's events (issue 13.6): a JSON log has no line a JSON reader cannot parse,
and a terminal gets readable lines rather than `ERROR:asyncio:...`."""

from __future__ import annotations

import gc
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.log import get_logger, setup_logging

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "bot" / "sample"


@pytest.fixture
def json_logs() -> Iterator[None]:
    hooks = (warnings.showwarning, sys.unraisablehook, threading.excepthook)
    setup_logging("info", "json")
    try:
        yield
    finally:
        setup_logging("info", "auto")
        warnings.showwarning, sys.unraisablehook, threading.excepthook = hooks


def _lines(text: str) -> list[dict[str, Any]]:
    parsed = []
    for line in text.splitlines():
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"not a JSON line: {line!r}")
    return parsed


class _Dies:
    def __del__(self) -> None:
        raise ValueError("closing failed")


def test_library_logs_warnings_and_ignored_exceptions_are_json_events(
    json_logs: None, capsys: pytest.CaptureFixture[str]
) -> None:
    get_logger("bot.test").info("ours", n=1)
    logging.getLogger("asyncio").error("Unclosed client session")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("the old way is going away", DeprecationWarning, stacklevel=1)
    _Dies()
    gc.collect()
    worker = threading.Thread(target=lambda: 1 / 0, name="worker")
    worker.start()
    worker.join()
    captured = capsys.readouterr()
    assert captured.out == ""
    events = {event["event"]: event for event in _lines(captured.err)}
    assert events["ours"]["n"] == 1
    assert events["Unclosed client session"]["logger"] == "asyncio"
    assert events["Unclosed client session"]["level"] == "error"
    warned = events["the old way is going away"]
    assert warned["logger"] == "py.warnings" and warned["category"] == "DeprecationWarning"
    assert warned["where"].endswith(".py:" + warned["where"].rsplit(":", 1)[1])
    assert "ValueError: closing failed" in events["exception ignored"]["exception"]
    assert "ZeroDivisionError" in events["thread worker crashed"]["exception"]


def test_a_terminal_gets_readable_library_lines(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("info", "console")
    try:
        logging.getLogger("aiohttp.client").warning("a library speaks")
    finally:
        setup_logging("info", "auto")
    err = capsys.readouterr().err
    assert "a library speaks" in err and "[aiohttp.client]" in err
    assert "WARNING:aiohttp" not in err


@pytest.mark.slow
def test_every_stderr_line_of_a_paper_daemon_is_json(tmp_path: Path) -> None:
    """`-X dev` turns on asyncio's debug mode, whose slow-callback reports are stdlib log lines
    (they were printed raw as `WARNING:asyncio:Executing <Task ...> took 0.6 seconds`)."""
    config = tmp_path / "config.toml"
    config.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "store.sqlite"}"\n'
        f'cache_dir = "{tmp_path / "cache"}"\n'
        '[model]\nbackend = "lexicon"\n[news]\nfeeds = []\n[log]\nformat = "json"\n',
        encoding="utf-8",
    )
    err_path = tmp_path / "stderr.txt"
    with err_path.open("w", encoding="utf-8") as err_file:
        daemon = subprocess.Popen(
            [
                *(
                    sys.executable,
                    "-X",
                    "dev",
                    "-W",
                    "always",
                    "-m",
                    "bot",
                    "run",
                    "--mode",
                    "paper",
                ),
                *("--config", str(config), "--speed", "1000"),
                *("--replay-news", str(SAMPLE / "news.jsonl")),
                *("--replay-bars", str(SAMPLE / "bars_btcusdt_15m.csv")),
            ],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT), "XDG_DATA_HOME": str(tmp_path / "data")},
            stdout=subprocess.DEVNULL,
            stderr=err_file,
        )
        try:
            deadline = time.monotonic() + 60
            while "daemon starting" not in err_path.read_text(encoding="utf-8"):
                assert daemon.poll() is None and time.monotonic() < deadline, err_path.read_text()
                time.sleep(0.1)
            time.sleep(3)  # bars and news played out at 1000x, the model answering
            daemon.send_signal(signal.SIGINT)
            daemon.wait(timeout=30)
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()
    err = err_path.read_text(encoding="utf-8")
    assert daemon.returncode == 0, err[-2000:]
    events = _lines(err)
    names = [event["event"] for event in events]
    assert "daemon starting" in names and "daemon stopped" in names, err[-2000:]


def test_the_log_file_gets_every_line_as_json_whatever_stderr_gets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`[log] file` used to receive only the libraries' lines, in the stdlib's plain format."""
    log_file = tmp_path / "logs" / "lorabot.log"
    setup_logging("info", "console", file=str(log_file))
    try:
        get_logger("bot.test").info("ours", api_key="k-123")
        logging.getLogger("aiohttp.client").warning("theirs")
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.warn("warned", UserWarning, stacklevel=1)
    finally:
        setup_logging("info", "auto")
    events = _lines(log_file.read_text(encoding="utf-8"))
    assert [event["event"] for event in events] == ["ours", "theirs", "warned"]
    assert events[0]["api_key"] == "***" and events[1]["logger"] == "aiohttp.client"
    err = capsys.readouterr().err
    assert "ours" in err and "theirs" in err and not err.lstrip().startswith("{")
