"""Shared test helpers.

`../shared/data` (public data sets, Bybit fixtures, real bars) is optional: tests that need it take
the `shared_data` fixture, which skips with a clear reason when the folder is absent, so a lone
clone still passes. The project's own fixtures live in tests/fixtures/.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import structlog

import bot.log  # noqa: F401  (configures the stderr logger factory once)

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def shared_data_dir() -> Path:
    return Path(os.environ.get("LORABOT_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture
def shared_data() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"public data folder {path} is absent (set LORABOT_SHARED_DATA to use it)")
    return path


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture(autouse=True)
def _isolated_dirs(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No test touches the user's real data or cache folders."""
    base = tmp_path_factory.mktemp("xdg")
    monkeypatch.setenv("XDG_DATA_HOME", str(base / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(base / "cache"))
    # ONNX graphs are keyed by model id: one export per test session, not one per test
    monkeypatch.setenv("LORABOT_ONNX_CACHE", str(tmp_path_factory.getbasetemp() / "onnx-graphs"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _no_default_feeds(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The built-in defaults poll public news sites; a test must pin its own feeds, never those.

    A lookup of one of their hosts is refused (no network is tried) and fails the test that made
    it. Subprocesses are not covered: their configs set `[[news.feeds]]` or `feeds = []`.
    """
    from bot.config import default_feeds

    hosts = {urlsplit(feed.url).hostname for feed in default_feeds()}
    real = socket.getaddrinfo
    reached: list[str] = []

    def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name in hosts:
            reached.append(name)
            raise OSError(f"test tried the network: {name} is a default news feed's host")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)
    yield
    if reached:
        pytest.fail(
            f"the test polled the default news feeds ({', '.join(sorted(set(reached)))}): "
            "pin its own with [[news.feeds]] or feeds = []"
        )


_STRUCTLOG_DEFAULTS = structlog.get_config()


@pytest.fixture(autouse=True)
def structlog_as_at_start() -> Iterator[None]:
    """Every test starts with the logging configuration a fresh process has: a command test that
    called `setup_logging("warning")` must not hide another test's info lines (capture_logs)."""
    structlog.configure(**_STRUCTLOG_DEFAULTS)
    yield
