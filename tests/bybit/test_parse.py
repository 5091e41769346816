"""Bybit v5 payloads (the project's own fixtures, in Bybit's documented shapes) -> events."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from adapters.bybit import intervals
from adapters.bybit.fields import STATUS, ParseError
from adapters.bybit.parse import (
    TickerBook,
    execution_from_venue,
    instrument_from_info,
    kline_from_rest,
    kline_from_ws,
    order_from_venue,
    position_from_venue,
    trade_from_rest,
    trades_from_ws,
    wallet_from_venue,
)
from bot.events import Liquidity, OrderType, Side, TimeInForce
from bot.orders import OrderStatus

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "bybit"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, UTC)


def test_confirmed_kline_is_a_bar_closing_at_end_plus_one_ms() -> None:
    item = load("ws_kline_confirmed.json")["data"][0]
    confirmed, bar = kline_from_ws("BTCUSDT", item)
    assert confirmed
    assert bar.ts_open == datetime(2024, 1, 1, tzinfo=UTC)
    assert bar.ts == datetime(2024, 1, 1, 0, 1, tzinfo=UTC)
    assert (bar.open, bar.high, bar.low, bar.close) == (
        D("42283.5"),
        D("42311.9"),
        D("42270.0"),
        D("42300.1"),
    )
    assert bar.volume == D("101.873")
    assert not kline_from_ws("BTCUSDT", load("ws_kline_forming.json")["data"][0])[0]


def test_rest_klines_carry_open_time_and_close_from_the_interval() -> None:
    rows = load("rest_kline.json")["result"]["list"]
    bars = [kline_from_rest("BTCUSDT", "60", row) for row in rows]
    assert [b.ts_open for b in bars] == [ms(1704070800000), ms(1704067200000)]
    assert bars[1].ts == ms(1704070800000)
    assert bars[0].close == D("42455.5") and bars[1].volume == D("1021.873")
    with pytest.raises(ParseError):
        kline_from_rest("BTCUSDT", "60", ["1704067200000", "1"])


def test_public_trades_parse_side_size_price_and_id() -> None:
    message = load("ws_public_trade.json")
    trades = trades_from_ws(message["data"])
    assert [(t.side, t.qty, t.price) for t in trades] == [
        (Side.BUY, D("0.012"), D("42300.2")),
        (Side.SELL, D("0.500"), D("42300.1")),
    ]
    assert trades[0].trade_id == "3c0a1b2d-8e5f-5a6b-9c7d-1e2f3a4b5c6d"
    assert trades[0].ts == ms(1704067260498)
    rest = trade_from_rest(load("rest_recent_trade.json")["result"]["list"][0])
    assert (rest.trade_id, rest.side, rest.qty) == ("2100000000061349121", Side.SELL, D("0.004"))
    with pytest.raises(ParseError):
        trades_from_ws([{"T": 1, "s": "BTCUSDT", "S": "Hold", "v": "1", "p": "1", "i": "x"}])


def test_linear_ticker_deltas_merge_into_the_snapshot() -> None:
    book = TickerBook()
    first = book.apply(load("ws_ticker_linear_snapshot.json"))
    assert (first.last, first.bid, first.ask, first.mark) == (
        D("42300.1"),
        D("42300.0"),
        D("42300.1"),
        D("42301.05"),
    )
    second = book.apply(load("ws_ticker_linear_delta.json"))
    assert (second.last, second.bid, second.ask, second.mark) == (
        D("42300.1"),
        D("42301.5"),
        D("42301.6"),
        D("42301.05"),
    )
    assert second.ts == ms(1704067260200)


def test_spot_ticker_has_last_price_and_no_book() -> None:
    ticker = TickerBook().apply(load("ws_ticker_spot.json"))
    assert ticker.symbol == "ETHUSDT" and ticker.last == D("2283.14")
    assert ticker.bid is None and ticker.ask is None


def test_instrument_rules_from_linear_and_spot_info() -> None:
    linear = instrument_from_info(
        "linear", load("rest_instruments_linear.json")["result"]["list"][0]
    )
    assert (linear.tick_size, linear.qty_step, linear.min_qty, linear.min_notional) == (
        D("0.10"),
        D("0.001"),
        D("0.001"),
        D("5"),
    )
    assert linear.max_qty == D("119.000")  # the market-order maximum
    assert linear.round_price(D("42300.17"), 1) == D("42300.10")
    assert linear.round_price(D("42300.11"), -1) == D("42300.20")
    assert linear.round_qty(D("0.0129")) == D("0.012")
    assert linear.check(D("0.0001"), D("42000")) is not None
    assert "notional" in (linear.check(D("0.001"), D("4000")) or "")
    assert linear.check(D("0.010"), D("42000")) is None
    spot = instrument_from_info("spot", load("rest_instruments_spot.json")["result"]["list"][0])
    assert (spot.qty_step, spot.min_qty, spot.min_notional, spot.can_short) == (
        D("0.00001"),
        D("0.00062"),
        D("5"),
        False,
    )
    with pytest.raises(ParseError, match="tickSize"):
        instrument_from_info("linear", {"symbol": "X", "priceFilter": {}, "lotSizeFilter": {}})


@pytest.mark.parametrize(
    ("venue", "expected"),
    [
        ("Created", OrderStatus.SUBMITTED),
        ("New", OrderStatus.ACCEPTED),
        ("Untriggered", OrderStatus.UNTRIGGERED),
        ("Triggered", OrderStatus.TRIGGERED),
        ("PartiallyFilled", OrderStatus.PARTIALLY_FILLED),
        ("Filled", OrderStatus.FILLED),
        ("Cancelled", OrderStatus.CANCELLED),
        ("Deactivated", OrderStatus.CANCELLED),
        ("PartiallyFilledCanceled", OrderStatus.CANCELLED),
        ("Rejected", OrderStatus.REJECTED),
    ],
)
def test_every_bybit_order_status_maps_onto_the_state_machine(
    venue: str, expected: OrderStatus
) -> None:
    assert STATUS[venue] is expected


def test_order_lifecycle_reports() -> None:
    orders = [order_from_venue(item) for item in load("ws_order_lifecycle.json")["data"]]
    assert [o.status for o in orders] == [
        OrderStatus.SUBMITTED,
        OrderStatus.ACCEPTED,
        OrderStatus.PARTIALLY_FILLED,
        OrderStatus.FILLED,
    ]
    filled = orders[-1]
    assert filled.client_order_id == "lb-0001" and filled.order_id == "1321003749386327552"
    assert (filled.side, filled.order_type, filled.time_in_force) == (
        Side.BUY,
        OrderType.LIMIT,
        TimeInForce.GTC,
    )
    assert (filled.qty, filled.price, filled.cum_exec_qty, filled.avg_price) == (
        D("0.100"),
        D("42000.0"),
        D("0.100"),
        D("42000.0"),
    )
    assert filled.cum_exec_fee == D("0.84")
    assert orders[0].avg_price is None  # "" with nothing filled
    update = filled.to_update()
    assert update.status == "filled" and update.filled_qty == D("0.100")
    assert update.venue_order_id == "1321003749386327552"
    order = orders[1].to_order()
    assert order.status is OrderStatus.ACCEPTED and order.qty == D("0.100")


def test_order_endings_carry_their_reason() -> None:
    orders = {
        o.venue_status: o
        for o in (order_from_venue(item) for item in load("ws_order_endings.json")["data"])
    }
    assert orders["Cancelled"].reason == "cancelled (CancelByUser)"
    assert "EC_PostOnlyWillTakeLiquidity" in orders["Rejected"].reason
    spot = orders["PartiallyFilledCanceled"]
    assert spot.category == "spot" and spot.price is None and spot.cum_exec_qty == D("0.050")
    assert spot.reason.startswith("partially filled, the rest cancelled")
    assert orders["Deactivated"].status is OrderStatus.CANCELLED
    assert orders["Untriggered"].status is OrderStatus.UNTRIGGERED
    with pytest.raises(ParseError, match="orderStatus"):
        order_from_venue({**load("ws_order_endings.json")["data"][0], "orderStatus": "Weird"})


def test_executions_become_fills_and_funding_is_not_a_trade() -> None:
    items = load("ws_execution.json")["data"]
    trade, funding, spot = (execution_from_venue(item) for item in items)
    assert trade.is_trade and not funding.is_trade
    fill = trade.to_fill()
    assert fill.client_order_id == "lb-0001"
    assert fill.exec_id == "7e2ae69c-4edf-5800-a352-893d52b446aa"
    assert (fill.side, fill.qty, fill.price, fill.fee) == (
        Side.BUY,
        D("0.040"),
        D("42000.0"),
        D("0.336"),
    )
    assert fill.liquidity is Liquidity.MAKER and fill.fee_currency == "USDT"
    assert fill.ts == ms(1704067261000)
    # A spot buy's fee is charged in the base coin; lorabot counts it in the quote coin.
    spot_fill = spot.to_fill()
    assert spot_fill.fee == D("0.00005") * D("2283.14") and spot_fill.fee_currency == "USDT"
    assert spot_fill.liquidity is Liquidity.TAKER


def test_positions_are_signed_and_read_both_price_names() -> None:
    ws = position_from_venue(load("ws_position.json")["data"][0])
    assert (ws.qty, ws.avg_price, ws.realised_pnl) == (D("-0.250"), D("42150.3"), D("-5.79"))
    rest = [
        position_from_venue(item, "linear")
        for item in load("rest_positions.json")["result"]["list"]
    ]
    assert [(p.symbol, p.qty, p.avg_price) for p in rest] == [
        ("BTCUSDT", D("0.100"), D("42000")),
        ("ETHUSDT", D("0"), D("0")),
    ]


def test_wallet_balances_per_coin() -> None:
    for wallet in (
        wallet_from_venue(load("rest_wallet.json")["result"]["list"][0]),
        wallet_from_venue(load("ws_wallet.json")["data"][0]),
    ):
        assert wallet.balance("USDT") == D("9999.16")
        assert wallet.balance("ETH") == D("0.04995")
        assert wallet.balance("BTC") == D("0")
        assert wallet.total_equity == D("10143.305")


@pytest.mark.parametrize(
    ("code", "ts", "open_", "next_"),
    [
        ("1", "2024-01-01T00:00:42Z", "2024-01-01T00:00:00Z", "2024-01-01T00:01:00Z"),
        ("60", "2024-01-01T05:59:59Z", "2024-01-01T05:00:00Z", "2024-01-01T06:00:00Z"),
        ("D", "2024-03-01T12:00:00Z", "2024-03-01T00:00:00Z", "2024-03-02T00:00:00Z"),
        ("W", "2024-01-03T12:00:00Z", "2024-01-01T00:00:00Z", "2024-01-08T00:00:00Z"),  # Monday
        ("M", "2024-02-15T00:00:00Z", "2024-02-01T00:00:00Z", "2024-03-01T00:00:00Z"),
        ("M", "2024-12-31T00:00:00Z", "2024-12-01T00:00:00Z", "2025-01-01T00:00:00Z"),
    ],
)
def test_interval_boundaries(code: str, ts: str, open_: str, next_: str) -> None:
    def to_ms(text: str) -> int:
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)

    assert intervals.open_ms(code, to_ms(ts)) == to_ms(open_)
    assert intervals.next_open_ms(code, to_ms(open_)) == to_ms(next_)


def test_interval_aliases() -> None:
    assert intervals.normalise("1h") == "60"
    assert intervals.normalise("1d") == "D"
    assert intervals.normalise("1M") == "M"
    with pytest.raises(ValueError, match="unknown kline interval"):
        intervals.normalise("7")
