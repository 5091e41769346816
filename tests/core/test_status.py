"""`lorabot status` shows the account's truth (issue 13): the venue's word at the last
reconciliation for a live account, and the decision records behind the trades."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

from bot.events import Decision, Fill, Label, Outcome, Side
from bot.store import Store

ROOT = Path(__file__).resolve().parents[2]
T = datetime(2024, 3, 1, tzinfo=UTC)


def status(tmp_path: Path, db: Path, *args: str) -> dict[str, object]:
    config = tmp_path / "config.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{db}"\n[news]\nfeeds = []\n')
    result = subprocess.run(
        [sys.executable, "-m", "bot", "status", "--json", "--config", str(config), *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT), "XDG_DATA_HOME": str(tmp_path / "data")},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def fill(n: int, side: Side, qty: str, price: str, at: datetime) -> Fill:
    return Fill(at, f"c{n}", f"e{n}", "BTCUSDT", side, D(qty), D(price), D("0"))


def test_a_live_account_shows_the_venue_position_not_the_sum_of_its_fills(tmp_path: Path) -> None:
    db = tmp_path / "live.sqlite"
    store = Store(f"sqlite:///{db}", account="live-demo-linear", run_id="r1", durable=True)
    store.open_account("live-demo-linear", "live", D("100000"), T)
    store.record_fill(fill(1, Side.BUY, "0.2", "60000", T))
    # the trader closed the position on the venue's web page; the restart's reconciliation saw it
    store.record_reconciliation(T + timedelta(hours=1), {"BTCUSDT": (D("0"), D("0"))}, D("99990"))
    store.record_fill(fill(2, Side.BUY, "0.1", "61000", T + timedelta(hours=2)))
    store.close()
    (account,) = status(tmp_path, db)["accounts"]  # type: ignore[misc]
    assert account["source"] == "venue"
    assert account["reconciled_at"] == "2024-03-01T01:00:00Z"
    assert [(p["symbol"], p["qty"]) for p in account["positions"]] == [("BTCUSDT", "0.1")]
    assert account["cash"] == "93890.00"  # the venue's 99,990 less the later 0.1 x 61,000


def test_a_paper_account_is_the_sum_of_its_fills(tmp_path: Path) -> None:
    db = tmp_path / "paper.sqlite"
    store = Store(f"sqlite:///{db}", account="paper", run_id="r1", durable=True)
    store.open_account("paper", "paper", D("10000"), T)
    store.record_fill(fill(1, Side.BUY, "0.1", "60000", T))
    store.close()
    (account,) = status(tmp_path, db)["accounts"]  # type: ignore[misc]
    assert account["source"] == "fills" and account["reconciled_at"] is None
    assert account["positions"][0]["qty"] == "0.1" and account["cash"] == "4000.00"


def test_status_lists_the_last_decisions_newest_first(tmp_path: Path) -> None:
    db = tmp_path / "paper.sqlite"
    store = Store(f"sqlite:///{db}", account="paper", run_id="r1", durable=False)
    store.open_account("paper", "paper", D("10000"), T)
    for n, outcome in enumerate([Outcome.ORDER, Outcome.BELOW_THRESHOLD, Outcome.STALE]):
        store.record_decision(
            Decision(
                id=f"d{n}",
                ts=T + timedelta(minutes=n),
                trigger="news",
                symbol="BTCUSDT",
                outcome=outcome,
                reason=f"reason {n}",
                news_id=f"n{n}",
                label=Label.BULLISH,
                confidence=0.9,
                order_id="c1" if outcome is Outcome.ORDER else "",
            )
        )
    store.close()
    (account,) = status(tmp_path, db, "--decisions", "2")["accounts"]  # type: ignore[misc]
    assert [(d["id"], d["outcome"]) for d in account["decisions"]] == [
        ("d2", "stale"),
        ("d1", "below threshold"),
    ]
    # and as a table
    config = tmp_path / "config.toml"
    result = subprocess.run(
        [sys.executable, "-m", "bot", "status", "--decisions", "3", "--config", str(config)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
        timeout=60,
    )
    assert result.returncode == 0 and "last decisions" in result.stdout
    assert "below threshold" in result.stdout and "c1" in result.stdout
