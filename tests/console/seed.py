"""A store with many decision records (and their headlines), written in bulk, for the
console's paging and speed tests."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa

from bot.store import Store
from bot.store.buffer import TABLES

OUTCOMES = ["hold"] * 6 + ["below threshold"] * 2 + ["within band", "order"]
SOURCES = ["coindesk", "cointelegraph", "bybit", "decrypt"]


def seed_decisions(url: str, account: str, n: int, end: datetime) -> None:
    """`n` decisions for `account`, one a minute up to `end`, each with its news item."""
    store = Store(url, account=account)
    store.open_account(account, "paper", Decimal("10000"), end - timedelta(minutes=n + 1))
    store.close()
    engine = sa.create_engine(url)
    news, decisions = TABLES["news"], TABLES["decisions"]
    chunk = 10_000
    with engine.begin() as connection:
        for start in range(0, n, chunk):
            news_rows, decision_rows = [], []
            for i in range(start, min(n, start + chunk)):
                ts = end - timedelta(minutes=n - i)
                source = SOURCES[i % len(SOURCES)]
                news_rows.append(
                    {"id": f"seed-n{i}", "source": source, "title": f"Seeded headline number {i}",
                     "received": ts, "signal_status": "done"}
                )  # fmt: skip
                decision_rows.append(
                    {"id": f"seed-d{i:07d}", "account": account, "run_id": "seed", "ts": ts,
                     "trigger": "news", "symbol": "BTCUSDT", "outcome": OUTCOMES[i % len(OUTCOMES)],
                     "reason": "seeded", "news_id": f"seed-n{i}", "received": ts,
                     "label": "bullish", "confidence": 0.7, "composite_label": "bullish",
                     "composite_confidence": 0.6, "target_before": Decimal("0"),
                     "target_after": Decimal("0.1"), "risk": "ok", "order_id": "",
                     "source": source}
                )  # fmt: skip
            connection.execute(news.insert(), news_rows)
            connection.execute(decisions.insert(), decision_rows)
    engine.dispose()
