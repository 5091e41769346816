"""The engine end to end in replay: signals become targets, orders, fills and positions."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D
from pathlib import Path

from bot.events import Fill, Label, OrderRequest
from bot.orders import OrderStatus
from strategies.vote_strategy import VoteStrategy

from .helpers import T0, bar, drive, news, replay_parts, settings

BULL = "Bitcoin rallies on huge inflows"
BEAR = "Bitcoin crashes after hack"
FLAT = "Bitcoin drifts sideways"
ANSWERS = {BULL: (Label.BULLISH, 0.9), BEAR: (Label.BEARISH, 0.8), FLAT: (Label.NEUTRAL, 0.9)}


def collect(parts: object, kind: type) -> list[object]:
    seen: list[object] = []
    parts.bus.subscribe(kind, seen.append)  # type: ignore[attr-defined]
    return seen


def test_long_then_short_then_flat(tmp_path: Path) -> None:
    config = settings(strategy={"half_life": 0, "reevaluate_interval": 0, "window": "1h"})
    parts = replay_parts(tmp_path, ANSWERS, config)
    fills = collect(parts, Fill)
    bars = [bar(i, str(40000 + 10 * i)) for i in range(30)]
    events: list[object] = [*bars[:2], news("a", BULL, bars[1].ts + timedelta(minutes=1))]
    events += bars[2:10]
    events += [news("b", BEAR, bars[9].ts + timedelta(minutes=1))]
    events += [*bars[10:20], news("c", FLAT, bars[19].ts + timedelta(minutes=1)), *bars[20:]]
    drive(parts, events)
    # one bullish signal: composite share 1.0 -> 10000 x 0.5 / 40010, down to the lot: 0.124
    assert fills[0].side.value == "buy" and fills[0].qty == D("0.124")  # type: ignore[attr-defined]
    assert fills[0].ts == bars[3].ts_open  # decided at 00:31, inside bar 2: fills at bar 3
    assert fills[0].price == D("40038.1")  # type: ignore[attr-defined]  # 40030 + 2 bps, tick up
    # the bearish item alone in its window flips to a short of about the same size...
    assert fills[1].side.value == "sell" and fills[1].qty > D("0.24")  # type: ignore[attr-defined]
    # ...and the neutral one closes it: flat
    assert fills[2].side.value == "buy" and len(fills) == 3  # type: ignore[attr-defined]
    assert parts.engine.portfolio.qty("BTCUSDT") == 0
    assert parts.store.count("fills") == 3
    assert all(o.status is OrderStatus.FILLED for o in parts.engine.orders.values())
    realised = parts.engine.portfolio.realised_pnl
    assert realised != 0


def test_bearish_vote_goes_short_on_linear(tmp_path: Path) -> None:
    parts = replay_parts(tmp_path, ANSWERS)
    fills = collect(parts, Fill)
    bars = [bar(i, "40000") for i in range(6)]
    drive(parts, [bars[0], news("b", BEAR, bars[0].ts + timedelta(minutes=1)), *bars[1:]])
    assert [f.side.value for f in fills] == ["sell"]  # type: ignore[attr-defined]
    assert parts.engine.portfolio.qty("BTCUSDT") == D("-0.125")


def test_spot_is_long_only(tmp_path: Path) -> None:
    config = settings(
        symbols={
            "BTCUSDT": {
                "category": "spot",
                "tick_size": "0.01",
                "qty_step": "0.0001",
                "min_qty": "0.0001",
            }
        }
    )
    parts = replay_parts(tmp_path, ANSWERS, config)
    requests = collect(parts, OrderRequest)
    bars = [bar(i, "40000") for i in range(6)]
    drive(parts, [bars[0], news("b", BEAR, bars[0].ts + timedelta(minutes=1)), *bars[1:]])
    assert requests == []


def test_stale_news_never_trades_but_is_recorded(tmp_path: Path) -> None:
    parts = replay_parts(tmp_path, ANSWERS)
    requests = collect(parts, OrderRequest)
    bars = [bar(i, "40000") for i in range(4)]
    drive(parts, [bars[0], news("s", BULL, bars[0].ts, stale=True), *bars[1:]])
    assert requests == []
    assert parts.store.count("signals") == 1


def test_no_trade_on_a_stale_price(tmp_path: Path) -> None:
    parts = replay_parts(tmp_path, ANSWERS)
    requests = collect(parts, OrderRequest)
    old = bar(0, "40000")
    drive(parts, [old, news("a", BULL, old.ts + timedelta(hours=1))])
    assert requests == []
    assert any("no fresh price" in reason for reason in parts.engine.refusals)


def test_kill_switch_flattens_and_blocks(tmp_path: Path) -> None:
    parts = replay_parts(tmp_path, ANSWERS)
    bars = [bar(i, "40000") for i in range(8)]
    drive(parts, [bars[0], news("a", BULL, bars[0].ts + timedelta(minutes=1)), *bars[1:3]])
    assert parts.engine.portfolio.qty("BTCUSDT") > 0
    parts.engine.set_kill_switch(True)
    drive(parts, [*bars[3:5], news("b", BEAR, bars[4].ts + timedelta(minutes=1)), *bars[5:]])
    assert parts.engine.portfolio.qty("BTCUSDT") == 0


def test_market_wide_news_moves_every_traded_symbol(tmp_path: Path) -> None:
    config = settings(
        strategy={"half_life": 0, "reevaluate_interval": 0, "market_wide_weight": 1.0}
    )
    parts = replay_parts(tmp_path, ANSWERS, config)
    bars = [bar(i, "40000") for i in range(4)]
    drive(
        parts, [bars[0], news("m", BULL, bars[0].ts + timedelta(minutes=1), symbols=()), *bars[1:]]
    )
    signals = parts.store.signals(limit=5)
    assert [s.symbol for s in signals] == [None]
    assert parts.engine.portfolio.qty("BTCUSDT") > 0


def test_timer_reevaluation_flattens_after_the_window_under_flat_policy(tmp_path: Path) -> None:
    config = settings(
        strategy={
            "half_life": 0,
            "reevaluate_interval": "15m",
            "window": "1h",
            "below_threshold": "flat",
        }
    )
    parts = replay_parts(tmp_path, ANSWERS, config)
    bars = [bar(i, "40000") for i in range(12)]
    drive(parts, [bars[0], news("a", BULL, bars[0].ts + timedelta(minutes=1)), *bars[1:]])
    assert parts.engine.portfolio.qty("BTCUSDT") == 0
    assert parts.store.count("fills") == 2


def test_feed_weights_reach_the_vote_and_explicit_weights_win(tmp_path: Path) -> None:
    config = settings(
        news={
            "feeds": [
                {"url": "https://a.example/rss", "name": "loud", "weight": 3.0},
                {"url": "https://b.example/rss", "name": "quiet", "weight": 0.5},
            ]
        },
        strategy={"half_life": 0, "reevaluate_interval": 0, "source_weights": {"quiet": 2.0}},
    )
    parts = replay_parts(tmp_path, ANSWERS, config)
    strategy = parts.engine.strategy
    assert isinstance(strategy, VoteStrategy)
    assert strategy.vote_params.source_weights == {"loud": 3.0, "quiet": 2.0}


def test_an_amend_reported_by_the_venue_updates_the_order(tmp_path: Path) -> None:
    from bot.events import OrderUpdate, Side
    from bot.orders import Order

    parts = replay_parts(tmp_path, ANSWERS)
    parts.clock.advance_to(T0)  # type: ignore[attr-defined]
    order = Order("x1", "BTCUSDT", Side.BUY, D("1"), T0, status=OrderStatus.ACCEPTED)
    parts.engine.orders["x1"] = order
    parts.engine.open_orders["BTCUSDT"]["x1"] = order
    parts.bus.publish(OrderUpdate(T0, "x1", "accepted", qty=D("2"), price=D("39000")))
    assert (order.qty, order.price) == (D("2"), D("39000"))
    parts.bus.publish(Fill(T0, "x1", "e1", "BTCUSDT", Side.BUY, D("1.5"), D("39000"), D("0")))
    assert order.status is OrderStatus.PARTIALLY_FILLED and order.filled_qty == D("1.5")
    parts.bus.publish(OrderUpdate(T0, "x1", "partially_filled", qty=D("1")))  # below filled
    assert order.qty == D("2")
