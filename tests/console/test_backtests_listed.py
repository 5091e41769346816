"""Past backtests' report.html are listed and served by the console, and nothing else of the
data folder is."""

from __future__ import annotations

import json
import os
from pathlib import Path

from bot.clock import LiveClock
from bot.console.app import ConsoleContext, build_app
from bot.console.metrics import ConsoleMetrics
from bot.console.queries import ConsoleQueries
from bot.console.server import ConsoleServer
from bot.console.state import ConsoleState
from bot.store import Store
from tests.console.daemon import request


def test_reports_are_listed_newest_first_and_opened(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    Store(url).close()
    runs = tmp_path / "backtests"
    for age, name in enumerate(["new-run", "old-run"]):
        (runs / name).mkdir(parents=True)
        report = runs / name / "report.html"
        report.write_text(f"<html>{name}</html>")
        os.utime(report, (1_700_000_000 - age * 100, 1_700_000_000 - age * 100))
    (runs / "unfinished").mkdir()
    (tmp_path / "secret.txt").write_text("not for the web")
    context = ConsoleContext(
        ConsoleState(30), ConsoleQueries(url, "paper"), ConsoleMetrics(), LiveClock(), {},
        tmp_path / "KILL", runs, None, False,
    )  # fmt: skip
    server = ConsoleServer(build_app(context), "127.0.0.1:0")
    server.start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        listed = json.loads(request(base + "/api/v1/backtests")[1])["backtests"]
        assert [r["name"] for r in listed] == ["new-run", "old-run"]
        status, body, _ = request(base + listed[1]["url"])
        assert status == 200 and body == b"<html>old-run</html>"
        assert request(base + "/backtests/..%2F/secret.txt")[0] == 404
        assert request(base + "/backtests/new-run/..%2F..%2Fsecret.txt")[0] == 404
        assert request(base + "/backtests/new-run/missing.html")[0] == 404
    finally:
        server.stop()
