"""The dashboard in a real headless browser: Debian's `chromium` (installed by `make test`),
driven by Playwright through `executable_path` (Playwright's own browser download is not
possible here), `--no-sandbox` as root. Against a running `lorabot run --mode paper
--replay-news ... --replay-bars ... --speed ...` whose store already holds 100,000 decision
records, it sees the equity chart drawn, finds a known headline in the decision log with its
outcome, sees the page update without a reload when the next headline arrives, measures the
first render (under a second), and saves a screenshot in the test's folder (and, with
LORABOT_SCREENSHOT_DIR set, there too: that is how bench/screenshots/dashboard.png is made)."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.console.daemon import start, wait_decisions
from tests.console.seed import seed_decisions

pytestmark = pytest.mark.slow

CHROMIUM = next(
    (p for p in (shutil.which("chromium"), shutil.which("chromium-browser")) if p), None
)
KNOWN = "Bitcoin surges as ETF inflows jump"


def test_the_dashboard_in_chromium(tmp_path: Path) -> None:
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (make test installs it with apt)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    store = tmp_path / "xdg" / "lorabot" / "lorabot.sqlite"
    store.parent.mkdir(parents=True)
    seed_decisions(f"sqlite:///{store}", "paper", 100_000, datetime.now(UTC) - timedelta(hours=1))
    daemon = start(tmp_path, bars=480, args=("--speed", "1"))
    try:
        wait_decisions(daemon, 2)
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
            )
            page = browser.new_page(viewport={"width": 1400, "height": 1500})
            page.goto(daemon.url + "/")
            page.wait_for_function("document.body.dataset.renderedMs !== undefined", timeout=15000)
            rendered_ms = int(page.evaluate("document.body.dataset.renderedMs"))
            page.wait_for_function(
                "Number(document.getElementById('equity-chart').dataset.points) >= 2"
            )
            curve = page.locator("#equity-chart path.curve")
            assert curve.count() == 1 and len(curve.get_attribute("d") or "") > 20
            row = page.locator("#decisions tbody tr", has_text=KNOWN).first
            row.wait_for(timeout=15000)
            assert row.get_attribute("data-outcome") == "order"
            assert "order" in row.locator("td").nth(8).inner_text()
            live = "#decisions tbody tr:not([data-id^='seed-'])"
            before = page.locator(live).count()
            page.evaluate("window.__sameDocument = true")
            page.wait_for_function(
                f'document.querySelectorAll("{live}").length > {before}', timeout=20000
            )
            assert page.evaluate("window.__sameDocument === true")  # updated, not reloaded
            assert page.locator("#decisions tbody tr.fresh").count() >= 1
            assert page.locator("#live").inner_text() == "live"
            page.wait_for_timeout(600)  # let the highlight fade a little for the picture
            shot = tmp_path / "dashboard.png"
            page.screenshot(path=str(shot), full_page=True)
            browser.close()
    finally:
        daemon.stop()
    assert shot.stat().st_size > 10_000
    print(f"dashboard first render: {rendered_ms} ms over 100,000 stored decisions")
    assert rendered_ms < 1000
    target = os.environ.get("LORABOT_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(target) / "dashboard.png")
