"""Builders shared by the core tests: events at chosen times, a replay engine in one call."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from adapters.model.scripted import ScriptedModel
from bot.assemble import Parts
from bot.assemble import replay_parts as assemble_replay_parts
from bot.config import Settings
from bot.events import Bar, Label, NewsItem
from bot.replay import play, prefetch
from bot.signals import SignalCache
from bot.store import Store
from bot.symbols import SymbolTable

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def bar(
    i: int,
    close: str | Decimal,
    *,
    open_: str | Decimal | None = None,
    minutes: int = 15,
    symbol: str = "BTCUSDT",
    start: datetime = T0,
    high: str | None = None,
    low: str | None = None,
) -> Bar:
    c = Decimal(close)
    o = Decimal(open_) if open_ is not None else c
    h = Decimal(high) if high is not None else max(o, c) + Decimal("10")
    lo = Decimal(low) if low is not None else min(o, c) - Decimal("10")
    ts_open = start + timedelta(minutes=minutes * i)
    return Bar(symbol, ts_open, ts_open + timedelta(minutes=minutes), o, h, lo, c, Decimal("1"))


def news(
    ident: str,
    title: str,
    at: datetime,
    *,
    symbols: tuple[str, ...] = ("BTCUSDT",),
    source: str = "test",
    stale: bool = False,
) -> NewsItem:
    return NewsItem(
        id=ident,
        source=source,
        title=title,
        received=at,
        published=at,
        symbols=symbols,
        stale=stale,
    )


def settings(**sections: dict[str, object]) -> Settings:
    base = Settings().with_overrides(
        # the engine's tests size on the share vote (a lone signal is full size), which keeps
        # their quantities simple; the default evidence vote: tests/core/test_evidence_default.py
        strategy={"half_life": 0, "reevaluate_interval": 0, "aggregation": "share"},
        engine={"snapshot_interval": 0},
    )
    return base.with_overrides(**sections) if sections else base


def replay_parts(
    tmp_path: Path,
    answers: dict[str, tuple[Label, float]],
    config: Settings | None = None,
    traded: tuple[str, ...] = ("BTCUSDT",),
) -> Parts:
    config = config or settings()
    store = Store(
        f"sqlite:///{tmp_path / 'store.sqlite'}", account="test", run_id="r1", durable=False
    )
    return assemble_replay_parts(
        config,
        store=store,
        symbols=SymbolTable.from_settings(config),
        traded=traded,
        id_prefix="t",
        model=ScriptedModel(answers),
        cache=SignalCache(),
    )


def drive(parts: Parts, events: list[object]) -> None:
    """Replay events through the parts (prefetching the model's answers first), with the one
    replay driver every backtest uses."""
    texts = [e.text for e in events if isinstance(e, NewsItem)]
    prefetch(parts, texts)
    play(parts, events)  # type: ignore[arg-type]
