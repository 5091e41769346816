from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D

from bot.events import Fill, Side
from bot.portfolio import Portfolio

T = datetime(2024, 1, 1, tzinfo=UTC)


def f(side: Side, qty: str, price: str, fee: str = "0", n: int = 0) -> Fill:
    return Fill(T, "c", f"e{n}-{side}-{qty}-{price}", "BTCUSDT", side, D(qty), D(price), D(fee))


def test_long_round_trip() -> None:
    p = Portfolio(D("10000"))
    p.apply_fill(f(Side.BUY, "1", "100", "0.1"))
    p.mark("BTCUSDT", D("110"))
    assert p.equity == D("10009.9")
    effect = p.apply_fill(f(Side.SELL, "1", "120", "0.12"))
    assert effect.realised_pnl == D("20") and effect.position_qty == 0
    assert p.cash == D("10019.78") and p.equity == p.cash and p.fees == D("0.22")


def test_short_add_reduce_and_flip() -> None:
    p = Portfolio(D("1000"))
    p.apply_fill(f(Side.SELL, "2", "100"))
    p.apply_fill(f(Side.SELL, "2", "110", n=1))
    assert p.positions["BTCUSDT"].avg_price == D("105")
    effect = p.apply_fill(f(Side.BUY, "1", "95", n=2))
    assert effect.realised_pnl == D("10") and p.qty("BTCUSDT") == D("-3")
    effect = p.apply_fill(f(Side.BUY, "5", "100", n=3))  # closes 3 (gain 15), opens 2 long
    assert effect.realised_pnl == D("15")
    assert p.qty("BTCUSDT") == D("2") and p.positions["BTCUSDT"].avg_price == D("100")
    p.mark("BTCUSDT", D("100"))
    assert p.equity == D("1000") + D("25")


def test_rebuilt_from_fills_is_identical() -> None:
    fills = [f(Side.BUY, "1", "100", "0.05"), f(Side.SELL, "0.5", "90", "0.02", n=1)]
    a = Portfolio(D("500"))
    for x in fills:
        a.apply_fill(x)
    b = Portfolio.from_fills(D("500"), fills)
    assert (a.cash, a.qty("BTCUSDT"), a.realised_pnl) == (b.cash, b.qty("BTCUSDT"), b.realised_pnl)
