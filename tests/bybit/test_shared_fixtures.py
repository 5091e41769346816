"""Every Bybit message in ../shared/data/bybit of a kind lorabot consumes parses without loss.

Those files come from another project's tests and some were edited by hand (`ws_public_trade.json`
has the topic `trade.linear.BTCUSDT` where v5 sends `publicTrade.BTCUSDT`), so they are examples,
not the specification: what is checked is that every field lorabot reads comes through exactly.
The kinds lorabot deliberately ignores are listed in IGNORED with the reason; a file that is in
neither list fails the test, so a new fixture is never silently skipped.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from adapters.bybit.errors import ClockSkew, CredentialsError
from adapters.bybit.fields import SIDES, STATUS, ms_to_dt
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
from adapters.bybit.ws import (
    SubscriptionRefused,
    WsConnection,
    check_auth,
    check_subscription,
    is_pong,
)

IGNORED = {
    "http_get_account_info.json": "account settings: lorabot reads the wallet, not the mode",
    "http_get_fee_rate.json": "fees come with each execution (execFee)",
    "http_get_funding_history.json": "funding moves cash; reconciliation reads the wallet",
    "http_get_orderbook.json": "lorabot trades on bars, trades and tickers, not the book",
    "ws_orderbook_delta.json": "no order book topic is subscribed",
    "ws_orderbook_snapshot.json": "no order book topic is subscribed",
    "http_get_instruments_option.json": "options are not a supported category",
    "http_get_instruments_option_symbol_id.json": "options are not a supported category",
    "ws_ticker_option.json": "options are not a supported category",
    "ws_account_execution_fast.json": "execution.fast lacks fees; lorabot takes `execution`",
    "ws_account_execution_fast_envelope_id.json": "execution.fast is not subscribed",
    "ws_order_response.json": "orders go over REST; the websocket trade API is not used",
    "http_get_user_escrow_sub_members.json": "sub-account management",
    "http_get_user_query_api.json": "API key management",
    "http_get_user_sub_apikeys.json": "API key management",
    "http_get_user_sub_members.json": "sub-account management",
    "http_get_user_sub_members_paged.json": "sub-account management",
    "http_post_user_update_master_api.json": "API key management",
    "http_post_user_update_sub_api.json": "API key management",
}


def load(path: Path) -> Any:
    return json.loads(path.read_text())


def records(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The entries of a websocket push or REST list; a bare record is itself."""
    if "data" in message:
        data = message["data"]
        return data if isinstance(data, list) else [data]
    if "result" in message:
        return list(message["result"]["list"])
    return [message]


def category_of(message: dict[str, Any]) -> str:
    result = message.get("result") or {}
    return str(result.get("category") or "linear")


def check_kline(message: dict[str, Any], name: str) -> None:
    if "result" in message:
        for row in message["result"]["list"]:
            bar = kline_from_rest(message["result"]["symbol"], "1", row)
            assert [bar.open, bar.high, bar.low, bar.close, bar.volume] == [D(v) for v in row[1:6]]
            assert bar.ts_open == ms_to_dt(row[0])
        return
    symbol = message["topic"].rsplit(".", 1)[-1]
    for item in message["data"]:
        confirmed, bar = kline_from_ws(symbol, item)
        assert confirmed is item["confirm"]
        assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == tuple(
            D(item[k]) for k in ("open", "high", "low", "close", "volume")
        )
        assert bar.ts_open == ms_to_dt(item["start"]) and bar.ts == ms_to_dt(item["end"] + 1)


def check_trades(message: dict[str, Any], name: str) -> None:
    trades = trades_from_ws(message["data"])
    for trade, item in zip(trades, message["data"], strict=True):
        assert (trade.symbol, trade.price, trade.qty, trade.side, trade.trade_id) == (
            item["s"],
            D(item["p"]),
            D(item["v"]),
            SIDES[item["S"]],
            item["i"],
        )
        assert trade.ts == ms_to_dt(item["T"])


def check_ticker(message: dict[str, Any], name: str) -> None:
    ticker = TickerBook().apply(message)
    data = message["data"]
    assert (ticker.symbol, ticker.last, ticker.bid, ticker.ask, ticker.mark) == (
        data["symbol"],
        D(data["lastPrice"]),
        D(data["bid1Price"]),
        D(data["ask1Price"]),
        D(data["markPrice"]),
    )
    assert ticker.ts == ms_to_dt(message["ts"])


def check_instruments(message: dict[str, Any], name: str) -> None:
    category = "spot" if "spot" in name else "inverse" if "inverse" in name else "linear"
    for item in records(message):
        instrument = instrument_from_info(category, item)
        lot = item["lotSizeFilter"]
        assert instrument.symbol == item["symbol"]
        assert instrument.tick_size == D(item["priceFilter"]["tickSize"])
        assert instrument.min_qty == D(lot["minOrderQty"])
        step = lot["basePrecision"] if category == "spot" else lot["qtyStep"]
        assert instrument.qty_step == D(step)
        minimum = lot.get("minOrderAmt") if category == "spot" else lot.get("minNotionalValue")
        assert instrument.min_notional == D(minimum or 0)


def check_orders(message: dict[str, Any], name: str) -> None:
    for item in records(message):
        order = order_from_venue(item, category_of(message))
        assert order.status is STATUS[item["orderStatus"]]
        assert (order.order_id, order.link_id, order.symbol) == (
            item["orderId"],
            item["orderLinkId"],
            item["symbol"],
        )
        assert order.side is SIDES[item["side"]]
        assert order.qty == D(item["qty"]) and order.cum_exec_qty == D(item["cumExecQty"])
        assert order.cum_exec_fee == D(item["cumExecFee"])
        assert order.price == (D(item["price"]) if item["price"] and D(item["price"]) else None)
        avg = item.get("avgPrice")
        if avg and D(avg) and D(item["cumExecQty"]):
            assert order.avg_price == D(avg)
        assert order.updated == ms_to_dt(item["updatedTime"])
        assert order.to_update().status == order.status.value
        if order.status.value in ("rejected", "cancelled"):
            assert order.reason


def check_executions(message: dict[str, Any], name: str) -> None:
    for item in records(message):
        execution = execution_from_venue(item, category_of(message))
        assert (execution.exec_id, execution.order_id, execution.link_id) == (
            item["execId"],
            item["orderId"],
            item["orderLinkId"],
        )
        assert (execution.qty, execution.price, execution.fee) == (
            D(item["execQty"]),
            D(item["execPrice"]),
            D(item["execFee"]),
        )
        assert execution.is_maker is item["isMaker"] and execution.ts == ms_to_dt(item["execTime"])
        assert execution.is_trade  # Trade and AdlTrade both move the position
        fill = execution.to_fill()
        assert fill.qty == execution.qty and fill.exec_id == execution.exec_id


def check_positions(message: dict[str, Any], name: str) -> None:
    for item in records(message):
        position = position_from_venue(item, category_of(message))
        size = D(item["size"])
        assert position.qty == (-size if item["side"] == "Sell" else size)
        price = item.get("avgPrice") or item.get("entryPrice")
        assert position.avg_price == (D(price) if size else D(0))
        assert position.realised_pnl == D(item["cumRealisedPnl"])


def check_wallet(message: dict[str, Any], name: str) -> None:
    for item in records(message):
        wallet = wallet_from_venue(item)
        assert {c: wallet.balance(c) for c in wallet.coins} == {
            c["coin"]: D(c["walletBalance"]) for c in item["coin"]
        }
        assert wallet.total_equity == D(item["totalEquity"])


def check_auth_reply(message: dict[str, Any], name: str) -> None:
    if message["success"]:
        check_auth(message, "wss://x")
    else:
        with pytest.raises((CredentialsError, ClockSkew)):
            check_auth(message, "wss://x")


async def _route(reply: dict[str, Any]) -> dict[str, Any]:
    """A reply without req_id still reaches the pending request of its op."""

    async def nothing(data: dict[str, Any]) -> None:
        pass

    connection = WsConnection(
        "t",
        "ws://x",
        [],
        on_message=nothing,
        ping_interval=1,
        silence_timeout=1,
        connect_timeout=1,
        reconnect_initial=1,
        reconnect_max=1,
    )
    future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
    connection._pending["subscribe-1"] = future
    connection._control(reply)
    return await asyncio.wait_for(future, 1)


def check_subscription_reply(message: dict[str, Any], name: str) -> None:
    routed = asyncio.run(_route(message))
    assert routed is message
    if message["success"]:
        check_subscription(message, ["orderbook.1.BTCUSDT"], "wss://x")
    else:
        with pytest.raises(SubscriptionRefused, match=r"invalid\.topic"):
            check_subscription(message, ["invalid.topic.BTCUSDT"], "wss://x")
    assert not is_pong(message)


def check_recent_trades(message: dict[str, Any], name: str) -> None:
    for item in records(message):
        trade = trade_from_rest(item)
        assert (trade.trade_id, trade.price, trade.qty, trade.side) == (
            item["execId"],
            D(item["price"]),
            D(item["size"]),
            SIDES[item["side"]],
        )
        assert trade.ts == ms_to_dt(item["time"])


CONSUMED: list[tuple[str, Callable[[dict[str, Any], str], None]]] = [
    ("ws_kline", check_kline),
    ("http_get_klines", check_kline),
    ("ws_public_trade", check_trades),
    ("http_get_trades_recent", check_recent_trades),
    ("ws_ticker_linear", check_ticker),
    ("http_get_instruments_", check_instruments),
    ("ws_account_order", check_orders),
    ("http_get_order", check_orders),
    ("ws_account_execution", check_executions),
    ("http_get_executions", check_executions),
    ("ws_account_position", check_positions),
    ("http_get_positions", check_positions),
    ("ws_account_wallet", check_wallet),
    ("http_get_wallet_balance", check_wallet),
    ("ws_auth_", check_auth_reply),
    ("ws_subscription_", check_subscription_reply),
]


def checker(name: str) -> Callable[[dict[str, Any], str], None] | None:
    for prefix, check in CONSUMED:
        if name.startswith(prefix):
            return check
    return None


@pytest.mark.shared_data
def test_every_shared_bybit_fixture_is_parsed_or_deliberately_ignored(shared_data: Path) -> None:
    folder = shared_data / "bybit"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    files = sorted(folder.glob("*.json"))
    assert files, f"no fixtures in {folder}"
    parsed = []
    for path in files:
        if path.name in IGNORED:
            continue
        check = checker(path.name)
        assert check is not None, f"{path.name}: neither parsed nor listed in IGNORED"
        check(load(path), path.name)
        parsed.append(path.name)
    assert len(parsed) + len(IGNORED) == len(files)
    assert len(parsed) >= 40
