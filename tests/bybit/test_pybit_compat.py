"""The official client, pybit, against the simulator: its HTTP and WebSocket classes, unmodified.

pybit is synchronous, so each scenario runs in a worker thread while the simulator serves on the
test's event loop. Its WebSocket URLs are module constants, pointed at the simulator here (the
REST endpoint is an attribute set after construction).
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal as D
from typing import Any, TypeVar

import pybit.unified_trading as unified
import pytest
from pybit.exceptions import InvalidRequestError
from pybit.unified_trading import HTTP, WebSocket

from adapters.bybit.sim import Simulator
from tests.bybit.harness import sim_config


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    """The suite's simulator, answering websocket requests after a network-like 50 ms (see
    `SimConfig.request_latency`: pybit loses the race with an instant loopback answer)."""
    simulator = Simulator(sim_config(request_latency=0.05))
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


def client(sim: Simulator, secret: str = "sim-secret") -> HTTP:
    http = HTTP(api_key="sim-key", api_secret=secret, max_retries=1, retry_codes={-1})
    http.endpoint = sim.url
    return http


async def test_pybit_http_trades_and_reads_the_account(sim: Simulator) -> None:
    def scenario() -> dict[str, Any]:
        http = client(sim)
        out: dict[str, Any] = {}
        out["time"] = http.get_server_time()["result"]
        out["klines"] = http.get_kline(category="linear", symbol="BTCUSDT", interval="60", limit=5)[
            "result"
        ]["list"]
        out["instrument"] = http.get_instruments_info(category="linear", symbol="BTCUSDT")[
            "result"
        ]["list"][0]
        out["market"] = http.place_order(
            category="linear",
            symbol="BTCUSDT",
            side="Buy",
            orderType="Market",
            qty="0.010",
            orderLinkId="pb-1",
        )
        ticker = http.get_tickers(category="linear", symbol="BTCUSDT")["result"]["list"][0]
        below = D(ticker["bid1Price"]) - D(1000)
        http.place_order(
            category="linear",
            symbol="BTCUSDT",
            side="Buy",
            orderType="Limit",
            qty="0.010",
            price=str(below),
            orderLinkId="pb-2",
        )
        out["open"] = http.get_open_orders(category="linear", symbol="BTCUSDT")["result"]["list"]
        http.amend_order(
            category="linear",
            symbol="BTCUSDT",
            orderLinkId="pb-2",
            qty="0.020",
            price=str(below - D(1)),
        )
        out["amended"] = http.get_open_orders(category="linear", orderLinkId="pb-2")["result"][
            "list"
        ][0]
        out["cancel"] = http.cancel_order(category="linear", symbol="BTCUSDT", orderLinkId="pb-2")
        out["history"] = http.get_order_history(category="linear")["result"]["list"]
        out["executions"] = http.get_executions(category="linear")["result"]["list"]
        out["positions"] = http.get_positions(category="linear", symbol="BTCUSDT")["result"]["list"]
        out["wallet"] = http.get_wallet_balance(accountType="UNIFIED")["result"]["list"][0]
        return out

    out = await _blocking(scenario)
    assert abs(int(out["time"]["timeSecond"]) - time.time()) < 5
    assert len(out["klines"]) == 5
    assert int(out["klines"][0][0]) > int(out["klines"][-1][0])  # newest first, as Bybit
    assert out["instrument"]["priceFilter"]["tickSize"] == "0.1"
    assert out["instrument"]["lotSizeFilter"]["minOrderQty"] == "0.001"
    assert out["instrument"]["lotSizeFilter"]["minNotionalValue"] == "5"
    assert out["market"]["retCode"] == 0 and out["market"]["result"]["orderLinkId"] == "pb-1"
    assert [o["orderLinkId"] for o in out["open"]] == ["pb-2"]
    assert out["amended"]["qty"] == "0.020"
    assert out["cancel"]["retCode"] == 0
    statuses = {o["orderLinkId"]: o["orderStatus"] for o in out["history"]}
    assert statuses == {"pb-1": "Filled", "pb-2": "Cancelled"}
    assert [e["orderLinkId"] for e in out["executions"]] == ["pb-1"]
    assert D(out["positions"][0]["size"]) == D("0.01") and out["positions"][0]["side"] == "Buy"
    usdt = next(c for c in out["wallet"]["coin"] if c["coin"] == "USDT")
    assert D(usdt["walletBalance"]) < D("100000")  # the taker fee was paid
    assert 10_000 < float(out["klines"][0][4]) < 1_000_000  # BTC in the tens of thousands


async def test_pybit_signatures_are_checked(sim: Simulator) -> None:
    def wrong_secret() -> None:
        client(sim, secret="wrong").get_positions(category="linear", symbol="BTCUSDT")

    with pytest.raises(InvalidRequestError, match="10004"):
        await _blocking(wrong_secret)

    def wrong_key() -> None:
        http = HTTP(api_key="nobody", api_secret="sim-secret", max_retries=1)
        http.endpoint = sim.url
        http.get_wallet_balance(accountType="UNIFIED")

    with pytest.raises(InvalidRequestError, match="10003"):
        await _blocking(wrong_key)

    def bad_order() -> None:
        client(sim).place_order(
            category="linear", symbol="BTCUSDT", side="Buy", orderType="Market", qty="0.0001"
        )

    with pytest.raises(InvalidRequestError, match="10001"):
        await _blocking(bad_order)


T = TypeVar("T")

# pybit signs the private websocket's auth to expire 1 s after it is made, and Bybit (and the
# simulator) refuse an expired one; on a loaded CI machine the frame can take longer than that.
AUTH_EXPIRE_S = 10


async def _blocking(scenario: Callable[[], T], timeout: float = 60) -> T:
    """Run pybit's blocking `scenario` on a daemon thread, bounded by `timeout`.

    Not `asyncio.to_thread`: when pybit's websocket cannot connect, its `subscribe` waits
    forever, and a stuck executor thread would hang the event loop's shutdown, and so the whole
    test run, instead of failing this test."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()

    def succeed(result: T) -> None:
        if not done.done():
            done.set_result(result)

    def fail(error: BaseException) -> None:
        if not done.done():
            done.set_exception(error)

    def run() -> None:
        try:
            result = scenario()
        except BaseException as error:  # handed to the awaiting test as it is
            loop.call_soon_threadsafe(fail, error)
        else:
            loop.call_soon_threadsafe(succeed, result)

    threading.Thread(target=run, name="pybit-scenario", daemon=True).start()
    try:
        return await asyncio.wait_for(done, timeout)
    except TimeoutError:
        raise AssertionError(f"pybit scenario still running after {timeout:.0f} s") from None


def _collect(
    messages: queue.Queue[dict[str, Any]], wanted: set[str], timeout: float
) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    seen: set[str] = set()
    while time.monotonic() < deadline and not wanted <= seen:
        try:
            message = messages.get(timeout=0.1)
        except queue.Empty:
            continue
        got.append(message)
        topic = message["topic"]
        seen.add(
            topic.split(".")[0]
            if "." not in topic or topic.startswith(("order", "execution", "position", "wallet"))
            else topic
        )
        if message["topic"].startswith("kline") and message["data"][0]["confirm"]:
            seen.add("confirmed-kline")
    return got


async def test_pybit_websocket_receives_klines_trades_and_tickers(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(unified, "PUBLIC_WSS", f"{sim.ws_public_url}/{{CHANNEL_TYPE}}")

    def scenario() -> list[dict[str, Any]]:
        messages: queue.Queue[dict[str, Any]] = queue.Queue()
        ws = WebSocket(testnet=False, channel_type="linear")
        try:
            ws.kline_stream(interval=1, symbol="BTCUSDT", callback=messages.put)
            ws.trade_stream(symbol="BTCUSDT", callback=messages.put)
            ws.ticker_stream(symbol="BTCUSDT", callback=messages.put)
            wanted = {
                "kline.1.BTCUSDT",
                "publicTrade.BTCUSDT",
                "tickers.BTCUSDT",
                "confirmed-kline",
            }
            return _collect(messages, wanted, 6)
        finally:
            ws.exit()

    got = await _blocking(scenario)
    topics = {m["topic"] for m in got}
    assert topics == {"kline.1.BTCUSDT", "publicTrade.BTCUSDT", "tickers.BTCUSDT"}
    assert any(m["data"][0]["confirm"] for m in got if m["topic"].startswith("kline"))
    ticker = next(m for m in got if m["topic"] == "tickers.BTCUSDT")
    assert ticker["data"]["bid1Price"] and ticker["data"]["lastPrice"]  # pybit merged deltas


async def test_pybit_private_websocket_sees_orders_placed_over_rest(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(unified, "PRIVATE_WSS", sim.ws_private_url)

    def scenario() -> list[dict[str, Any]]:
        messages: queue.Queue[dict[str, Any]] = queue.Queue()
        ws = WebSocket(
            testnet=False,
            channel_type="private",
            api_key="sim-key",
            api_secret="sim-secret",
            private_auth_expire=AUTH_EXPIRE_S,
        )
        try:
            ws.order_stream(callback=messages.put)
            ws.execution_stream(callback=messages.put)
            ws.position_stream(callback=messages.put)
            ws.wallet_stream(callback=messages.put)
            time.sleep(0.3)  # the subscriptions are acknowledged
            client(sim).place_order(
                category="linear",
                symbol="BTCUSDT",
                side="Sell",
                orderType="Market",
                qty="0.020",
                orderLinkId="pw-1",
            )
            return _collect(messages, {"order", "execution", "position", "wallet"}, 5)
        finally:
            ws.exit()

    got = await _blocking(scenario)
    by_topic = {m["topic"]: m["data"][0] for m in got}
    assert by_topic["order"]["orderLinkId"] == "pw-1"
    assert by_topic["order"]["orderStatus"] == "Filled"
    assert by_topic["execution"]["execQty"] == "0.020"
    assert by_topic["position"]["side"] == "Sell" and by_topic["position"]["size"] == "0.020"
    assert any(c["coin"] == "USDT" for c in by_topic["wallet"]["coin"])


async def test_pybit_private_websocket_auth_is_checked(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(unified, "PRIVATE_WSS", sim.ws_private_url)
    replies: list[dict[str, Any]] = []

    def scenario() -> None:
        ws = WebSocket(
            testnet=False,
            channel_type="private",
            api_key="sim-key",
            api_secret="wrong",
            private_auth_expire=AUTH_EXPIRE_S,
            callback_function=replies.append,
        )
        try:
            deadline = time.monotonic() + 3
            while not replies and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            ws.exit()

    await _blocking(scenario)
    assert replies and replies[0]["op"] == "auth" and replies[0]["success"] is False
    assert replies[0]["ret_msg"] == "Invalid sign"


async def test_pybit_sets_leverage_margin_mode_and_a_positions_protective_levels(
    sim: Simulator,
) -> None:
    """pybit's `set_leverage`, `set_margin_mode`, `get_account_info` and `set_trading_stop`
    drive the simulator as they drive Bybit, "not modified" answers included."""

    def scenario() -> dict[str, Any]:
        http = client(sim)
        out: dict[str, Any] = {}
        out["leverage"] = http.set_leverage(
            category="linear", symbol="BTCUSDT", buyLeverage="7", sellLeverage="7"
        )
        try:
            http.set_leverage(
                category="linear", symbol="BTCUSDT", buyLeverage="7", sellLeverage="7"
            )
        except InvalidRequestError as error:
            out["leverage_again"] = error.status_code
        out["mode"] = http.set_margin_mode(setMarginMode="ISOLATED_MARGIN")
        out["info"] = http.get_account_info()["result"]
        http.place_order(
            category="linear", symbol="BTCUSDT", side="Buy", orderType="Market", qty="0.010"
        )
        position = http.get_positions(category="linear", symbol="BTCUSDT")["result"]["list"][0]
        entry = D(position["avgPrice"])
        out["entry"] = entry
        out["stop"] = http.set_trading_stop(
            category="linear",
            symbol="BTCUSDT",
            positionIdx=0,
            tpslMode="Full",
            stopLoss=str((entry * D("0.97")).quantize(D("0.1"))),
            takeProfit=str((entry * D("1.03")).quantize(D("0.1"))),
            trailingStop="900",
            slTriggerBy="LastPrice",
            tpTriggerBy="LastPrice",
        )
        try:
            http.set_trading_stop(
                category="linear",
                symbol="BTCUSDT",
                positionIdx=0,
                tpslMode="Full",
                trailingStop="900",
            )
        except InvalidRequestError as error:
            out["stop_again"] = error.status_code
        out["position"] = http.get_positions(category="linear", symbol="BTCUSDT")["result"]["list"][
            0
        ]
        return out

    out = await _blocking(scenario)
    assert out["leverage"]["retCode"] == 0 and out["leverage_again"] == 110043
    assert out["mode"]["retCode"] == 0 and out["info"]["marginMode"] == "ISOLATED_MARGIN"
    assert out["stop"]["retCode"] == 0 and out["stop_again"] == 34040
    position, entry = out["position"], out["entry"]
    assert position["leverage"] == "7" and position["tradeMode"] == 1
    assert D(position["stopLoss"]) == (entry * D("0.97")).quantize(D("0.1"))
    assert D(position["takeProfit"]) == (entry * D("1.03")).quantize(D("0.1"))
    assert D(position["trailingStop"]) == 900
    assert D(position["liqPrice"]) < entry  # isolated at 7x: about 14% below the entry
