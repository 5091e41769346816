from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

from adapters.paper import PaperBroker
from bot.clock import ReplayClock
from bot.config import Settings
from bot.events import Fill, OrderType, OrderUpdate, Side, Trade
from bot.orders import Order
from bot.symbols import SymbolTable

from .helpers import T0, bar


def make() -> tuple[PaperBroker, ReplayClock, list[object]]:
    settings = Settings()
    clock = ReplayClock(T0)
    broker = PaperBroker(settings.paper, SymbolTable.from_settings(settings), clock)
    out: list[object] = []
    broker.bind(out.append)
    return broker, clock, out


def order(
    side: Side, qty: str, kind: OrderType = OrderType.MARKET, price: str | None = None
) -> Order:
    return Order(
        "c1", "BTCUSDT", side, D(qty), T0, order_type=kind, price=D(price) if price else None
    )


def test_market_order_fills_at_next_bar_open_with_slippage_and_taker_fee() -> None:
    broker, clock, out = make()
    broker.on_market(bar(0, "40000"))
    clock.advance_to(T0 + timedelta(minutes=20))  # decided inside bar 1
    broker.submit(order(Side.BUY, "0.1"))
    broker.on_market(bar(1, "40100", open_="40000"))  # opened before the decision: no fill
    assert [type(e) for e in out] == [OrderUpdate]
    broker.on_market(bar(2, "40500", open_="40200"))
    fill = out[-1]
    assert isinstance(fill, Fill)
    assert fill.ts == T0 + timedelta(minutes=30)
    assert fill.price == D("40208.1")  # 40200 * 1.0002 = 40208.04, rounded up to the tick
    assert fill.fee == (D("0.1") * D("40208.1") * D("0.00055")).quantize(D("0.00000001"))


def test_sell_slippage_rounds_down() -> None:
    broker, _, out = make()
    broker.submit(order(Side.SELL, "0.1"))
    broker.on_market(bar(0, "100", open_="40200"))
    assert out[-1].price == D("40191.9")  # type: ignore[attr-defined]


def test_limit_order_fills_when_a_bar_trades_through_it() -> None:
    broker, _, out = make()
    broker.submit(order(Side.BUY, "0.1", OrderType.LIMIT, "39900"))
    broker.on_market(bar(0, "40000", open_="40000", low="39950"))
    assert not any(isinstance(e, Fill) for e in out)
    broker.on_market(bar(1, "39950", open_="40000", low="39800"))
    fill = out[-1]
    assert isinstance(fill, Fill) and fill.price == D("39900") and fill.liquidity.value == "maker"


def test_orders_under_minimums_are_rejected_and_cancel_works() -> None:
    broker, _, out = make()
    broker.on_market(Trade("BTCUSDT", T0, D("40000"), D("1"), Side.BUY))
    broker.submit(order(Side.BUY, "0.0001"))
    assert out[-1].status == "rejected" and "below the minimum" in out[-1].reason  # type: ignore[attr-defined]
    resting = order(Side.BUY, "0.1", OrderType.LIMIT, "1000")
    broker.submit(resting)
    broker.cancel(resting)
    assert out[-1].status == "cancelled"  # type: ignore[attr-defined]
    assert broker.open_orders() == []


def test_live_trade_fills_market_order() -> None:
    broker, clock, out = make()
    broker.submit(order(Side.SELL, "0.01"))
    clock.advance_to(T0 + timedelta(seconds=1))
    broker.on_market(Trade("BTCUSDT", T0 + timedelta(seconds=1), D("40000"), D("1"), Side.BUY))
    assert isinstance(out[-1], Fill) and out[-1].price == D("39992.0")
