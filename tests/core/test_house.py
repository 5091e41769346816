"""The seams of the house (issue 12): the strategy decides, the store journals, the engine
routes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs

from bot.bus import Bus
from bot.config import Settings
from bot.events import (
    Fill,
    Label,
    OrderRequest,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
    Signal,
)
from bot.orders import Order, OrderError
from bot.protocols import VenueState
from bot.symbols import SymbolTable
from bot.trade_log import TradeLog
from strategies.vote_strategy import VoteStrategy

from .helpers import bar, drive, news, replay_parts, settings

T = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def plain_logging() -> None:
    """Another test may have configured a level filter (setup_logging): start from defaults."""
    structlog.reset_defaults()


BULL = "Bitcoin rallies on huge inflows"


def signal(label: Label, confidence: float, at: datetime = T, stale: bool = False) -> Signal:
    probs = [(1 - confidence) / 2] * 3
    probs[label] = confidence
    return Signal(
        ts=at,
        symbol="BTCUSDT",
        label=label,
        confidence=confidence,
        probs=(probs[0], probs[1], probs[2]),
        model_id="m",
        source="s",
        news_id="n",
        published=at,
        received=at,
        stale=stale,
    )


def strategy(**overrides: object) -> VoteStrategy:
    config = Settings().with_overrides(strategy={"half_life": 0, **overrides})
    return VoteStrategy(config.strategy)


def test_the_strategy_decides_with_no_engine() -> None:
    vote = strategy()
    instrument = SymbolTable.from_settings(Settings()).instrument("BTCUSDT")
    kwargs = {"instrument": instrument, "equity": D("10000"), "current": D(0)}
    assert vote.evaluate("BTCUSDT", T, price=D("40000"), **kwargs).outcome == "hold"
    assert vote.on_signal(signal(Label.BULLISH, 0.9))
    assert vote.evaluate("BTCUSDT", T, price=None, **kwargs).outcome == "no price"
    evaluation = vote.evaluate("BTCUSDT", T, price=D("40000"), **kwargs)
    assert evaluation.outcome == "target" and evaluation.target is not None
    # the default evidence vote: 0.9 / (1 + prior 0.25) = 0.72; 10000 x 0.5 x 0.72 / 40000
    assert evaluation.target.qty == D("0.090")
    same = vote.evaluate("BTCUSDT", T, price=D("40000"), **{**kwargs, "current": D("0.090")})
    assert same.outcome == "unchanged" and same.target is None
    near = vote.evaluate("BTCUSDT", T, price=D("40000"), **{**kwargs, "current": D("0.086")})
    assert near.outcome == "within band"
    # a stale signal is kept in the window but asks for no decision
    assert not vote.on_signal(signal(Label.BEARISH, 0.9, stale=True))


def test_an_empty_window_asks_for_no_revote_unless_below_threshold_means_flat() -> None:
    assert not strategy().wants_revote()
    assert strategy(below_threshold="flat").wants_revote()


def test_order_amend_goes_through_the_order_and_refuses_below_filled() -> None:
    order = Order("c1", "BTCUSDT", Side.BUY, D("1"), T)
    order.transition(OrderStatus.SUBMITTED, T)
    later = T + timedelta(seconds=1)
    assert order.amend(later, qty=D("2"), price=D("100"), venue_order_id="v1")
    assert (order.qty, order.price, order.venue_order_id, order.updated) == (
        D("2"),
        D("100"),
        "v1",
        later,
    )
    assert not order.amend(later, qty=D("2"), venue_order_id="v1")  # nothing new
    order.apply_fill(Fill(T, "c1", "e1", "BTCUSDT", Side.BUY, D("1.5"), D("100"), D("0")))
    with pytest.raises(OrderError, match=r"below the filled 1\.5"):
        order.amend(later, qty=D("1"))


def test_order_update_status_is_the_enum_and_unknown_words_fail_at_the_edge() -> None:
    update = OrderUpdate(T, "c1", "filled")  # type: ignore[arg-type]
    assert update.status is OrderStatus.FILLED
    with pytest.raises(ValueError, match="unknown order status 'Flled'"):
        OrderUpdate(T, "c1", "Flled")  # type: ignore[arg-type]


def test_the_store_journals_signals_fills_and_equity_from_the_bus(tmp_path: Path) -> None:
    parts = replay_parts(tmp_path, {BULL: (Label.BULLISH, 0.9)})
    bars = [bar(i, "40000") for i in range(6)]
    drive(parts, [bars[0], news("a", BULL, bars[0].ts + timedelta(minutes=1)), *bars[1:]])
    parts.engine.snapshot()
    parts.store.flush()
    assert parts.store.count("signals") == 1
    assert parts.store.count("fills") == 1
    assert parts.store.count("equity") == 1
    # the engine itself no longer writes them: without the journal nothing is kept
    bare = Bus(strict=True)
    assert bare.handlers(Signal) == []
    assert parts.store.record_signal in [h for h in parts.bus.handlers(Signal)]


def test_every_order_answer_and_fill_is_one_log_line(tmp_path: Path) -> None:
    parts = replay_parts(tmp_path, {BULL: (Label.BULLISH, 0.9)})
    TradeLog("info").attach(parts.bus)
    bars = [bar(i, "40000") for i in range(6)]
    with capture_logs() as logs:
        drive(parts, [bars[0], news("a", BULL, bars[0].ts + timedelta(minutes=1)), *bars[1:]])
    events = [entry["event"] for entry in logs if entry.get("client_order_id")]
    assert events == ["order sent", "order acknowledged", "fill"]
    sent = next(entry for entry in logs if entry["event"] == "order sent")
    assert sent["cause"] == "bullish 1.00" and sent["side"] == "buy"
    assert parts.bus.handlers(OrderRequest)  # OrderRequest has a subscriber now


def test_venue_cash_that_agrees_to_its_precision_is_not_adopted(tmp_path: Path) -> None:
    parts = replay_parts(tmp_path, {}, settings())
    engine = parts.engine
    engine.portfolio.cash = D("10000") / D(3) * D(3)  # 9999.99999...9 (28 digits)
    before = engine.portfolio.cash
    with capture_logs() as logs:
        engine.apply_venue_state(VenueState((), {}, D("10000.00000000")))
    assert engine.portfolio.cash == before
    assert not [e for e in logs if e["event"] == "venue cash differs; adopting it"]
    with capture_logs() as logs:
        engine.apply_venue_state(VenueState((), {}, D("10000.01")))
    assert engine.portfolio.cash == D("10000.01")
    assert [e for e in logs if e["event"] == "venue cash differs; adopting it"]


def test_an_order_on_the_venue_that_lorabot_did_not_place_is_named_once(tmp_path: Path) -> None:
    parts = replay_parts(tmp_path, {}, settings())
    foreign = Order("", "BTCUSDT", Side.SELL, D("0.5"), T, venue_order_id="v-9")
    with capture_logs() as logs:
        parts.engine.apply_venue_state(VenueState((foreign,), {}, None))
        parts.engine.apply_venue_state(VenueState((foreign,), {}, None))
    warned = [e for e in logs if e["event"] == "an order on the venue that lorabot did not place"]
    assert len(warned) == 1 and warned[0]["venue_order_id"] == "v-9"


def test_the_engine_revives_an_order_it_had_settled_as_never_placed(tmp_path: Path) -> None:
    """Issue 11.2: a venue report for an order given up as never placed is followed, not
    dropped as stale: the order ends as the venue says, with its fills."""
    parts = replay_parts(tmp_path, {}, settings())
    engine = parts.engine
    parts.clock.advance_to(T)  # type: ignore[attr-defined]
    order = Order("lb-1", "BTCUSDT", Side.BUY, D("0.1"), T, order_type=OrderType.LIMIT)
    order.price = D("40000")
    engine.orders[order.client_order_id] = order
    engine.open_orders["BTCUSDT"][order.client_order_id] = order
    order.transition(OrderStatus.SUBMITTED, T)
    publish = parts.bus.publish
    publish(OrderUpdate(T, "lb-1", OrderStatus.REJECTED, reason="never placed", provisional=True))
    assert order.status is OrderStatus.REJECTED and "lb-1" not in engine.open_orders["BTCUSDT"]
    publish(OrderUpdate(T, "lb-1", OrderStatus.ACCEPTED, venue_order_id="v-1"))
    assert order.status is OrderStatus.ACCEPTED and "lb-1" in engine.open_orders["BTCUSDT"]
    publish(Fill(T, "lb-1", "e-1", "BTCUSDT", Side.BUY, D("0.1"), D("40000"), D("0")))
    assert order.status is OrderStatus.FILLED and engine.portfolio.qty("BTCUSDT") == D("0.1")
