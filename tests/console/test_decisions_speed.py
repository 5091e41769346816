"""With 100,000 decision records the first page of /api/v1/decisions answers in under 100 ms,
filtered or not: a paged, indexed query (the newest rows by (account, ts), the next page by the
last row's time and id), never a scan of the table."""

from __future__ import annotations

import json
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.clock import LiveClock
from bot.console.app import ConsoleContext, build_app
from bot.console.metrics import ConsoleMetrics
from bot.console.queries import ConsoleQueries
from bot.console.server import ConsoleServer
from bot.console.state import ConsoleState
from tests.console.daemon import request
from tests.console.seed import seed_decisions

N = 100_000


@pytest.mark.slow
def test_the_first_page_of_100000_decisions_answers_in_under_100_ms(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    seed_decisions(url, "paper", N, datetime(2026, 6, 1, tzinfo=UTC))
    context = ConsoleContext(
        ConsoleState(30), ConsoleQueries(url, "paper"), ConsoleMetrics(), LiveClock(), {},
        tmp_path / "KILL", tmp_path, None, False,
    )  # fmt: skip
    server = ConsoleServer(build_app(context), "127.0.0.1:0")
    server.start()
    base = f"http://127.0.0.1:{server.port}/api/v1/decisions"
    timings: dict[str, float] = {}
    try:
        for name, query in {
            "newest": "?limit=50",
            "outcome": "?limit=50&outcome=order",
            "source": "?limit=50&source=bybit",
            "both": "?limit=50&outcome=order&source=cointelegraph",
        }.items():
            request(base + query)  # the first touch reads the pages from disk
            samples = []
            for _ in range(7):
                began = time.perf_counter()
                status, body, _ = request(base + query)
                samples.append(time.perf_counter() - began)
                assert status == 200
            page = json.loads(body)
            assert len(page["decisions"]) == 50
            assert page["decisions"][0]["id"] == max(d["id"] for d in page["decisions"])
            timings[name] = statistics.median(samples)
        newest = json.loads(request(base + "?limit=1")[1])["decisions"][0]
        assert newest["id"] == f"seed-d{N - 1:07d}"
        assert newest["headline"] == f"Seeded headline number {N - 1}"
        cursor = json.loads(request(base + "?limit=50")[1])["next"]
        began = time.perf_counter()
        older = json.loads(request(f"{base}?limit=50&before={cursor}")[1])["decisions"]
        timings["second page"] = time.perf_counter() - began
        assert older[0]["id"] == f"seed-d{N - 51:07d}"
    finally:
        server.stop()
    print({k: f"{v * 1000:.1f} ms" for k, v in timings.items()})
    assert max(timings.values()) < 0.100, timings
