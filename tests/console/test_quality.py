"""Signal quality so far: each signal's later price move, credited to its label per horizon."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bot.console.quality import SignalQuality
from bot.events import Label, Signal

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def signal(label: Label, at: timedelta, symbol: str | None = "BTCUSDT") -> Signal:
    return Signal(
        ts=T0 + at, symbol=symbol, label=label, confidence=0.9, probs=(0.05, 0.05, 0.9),
        model_id="m", source="test", news_id=f"n{at}", published=None, received=T0 + at,
    )  # fmt: skip


def test_moves_are_signed_by_the_label_and_credited_once_per_horizon() -> None:
    prices = {"BTCUSDT": Decimal("100")}
    quality = SignalQuality(prices.get)
    quality.on_signal(signal(Label.BULLISH, timedelta(0)))
    quality.on_signal(signal(Label.BEARISH, timedelta(seconds=30)))
    quality.on_signal(signal(Label.BULLISH, timedelta(seconds=40), symbol=None))  # market-wide
    prices["BTCUSDT"] = Decimal("101")
    quality.tick(T0 + timedelta(seconds=59))
    assert quality.table() == []  # no horizon has passed
    quality.tick(T0 + timedelta(seconds=61))
    quality.tick(T0 + timedelta(seconds=62))  # credited once, not once a tick
    assert quality.table() == [
        {"label": "bullish", "horizon_s": 60, "n": 1, "mean_bps": 100.0, "hit_rate": 1.0}
    ]
    quality.tick(T0 + timedelta(minutes=6))  # the bearish one's minute, both five minutes
    rows = {(r["label"], r["horizon_s"]): r for r in quality.table()}
    assert rows[("bearish", 60)] == {
        "label": "bearish", "horizon_s": 60, "n": 1, "mean_bps": -100.0, "hit_rate": 0.0,
    }  # fmt: skip
    assert rows[("bullish", 300)]["n"] == 1 and rows[("bearish", 300)]["n"] == 1
    assert ("bullish", 3600) not in rows
