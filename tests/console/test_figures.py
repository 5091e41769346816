"""The console's pure parts: the equity panel's figures and the redacted configuration."""

from __future__ import annotations

import json

from bot.config import Settings
from bot.console.equity import MAX_POINTS, equity_summary
from bot.console.redact import redacted_config


def test_drawdown_and_daily_pnl() -> None:
    points = [
        ("2026-03-01T10:00:00Z", "10000"),
        ("2026-03-01T12:00:00Z", "11000"),
        ("2026-03-01T23:00:00Z", "9900"),  # 10% below the peak
        ("2026-03-02T09:00:00Z", "10450"),
        ("2026-03-03T09:00:00Z", "10450"),
    ]
    summary = equity_summary(list(reversed(points)))  # any order in: sorted by time
    assert summary["max_drawdown"] == -0.1
    assert summary["drawdown"] == round((10450 - 11000) / 11000, 6)
    assert summary["daily"] == [
        {"day": "2026-03-02", "pnl": "550"},
        {"day": "2026-03-03", "pnl": "0"},
    ]
    assert [p["equity"] for p in summary["points"]] == [e for _, e in points]


def test_a_long_series_is_thinned_and_keeps_its_last_point() -> None:
    points = [
        (f"2026-03-01T00:00:{i // 100:02d}.{i % 100:02d}Z", str(10000 + i)) for i in range(5000)
    ]
    drawn = equity_summary(points)["points"]
    assert len(drawn) <= MAX_POINTS + 1 and drawn[-1]["equity"] == "14999"
    assert equity_summary([]) == {"points": [], "drawdown": 0.0, "max_drawdown": 0.0, "daily": []}


def test_the_configuration_shown_has_no_password_and_no_secret_named_value() -> None:
    settings = Settings().with_overrides(
        store={"url": "postgresql://bot:hunter2pass@db.example/lorabot"}
    )
    shown = json.dumps(redacted_config(settings))
    assert "hunter2pass" not in shown and "db.example" in shown
    assert '"api_key_env": "BYBIT_API_KEY"' in shown  # a variable's name is no secret
    assert redacted_config(settings)["api"]["listen"] == "127.0.0.1:8080"
