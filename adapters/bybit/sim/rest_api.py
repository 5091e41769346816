"""The simulator's REST side: Bybit v5's market and private endpoints, with Bybit's envelope.

Answers use Bybit's envelope (`retCode`, `retMsg`, `result`, `retExtInfo`, `time`); private calls
are authenticated exactly as Bybit does (HMAC of timestamp + key + recv window + query string or
body; 10002 outside the window, 10003 unknown key, 10004 bad signature), and order entry is rate
limited per key with Bybit's `X-Bapi-Limit-*` headers and 10006. Armed REST faults (errors,
delays) are applied here.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import web

from adapters.bybit import intervals
from adapters.bybit.signing import rest_signature
from adapters.bybit.sim.accounts import Account, SimError, SimOrder, SimPosition
from adapters.bybit.sim.market import Market, SymbolMarket
from bot.log import get_logger

if TYPE_CHECKING:
    from adapters.bybit.sim.server import Simulator

log = get_logger(__name__)

ORDER_PATHS = ("/v5/order/create", "/v5/order/amend", "/v5/order/cancel", "/v5/order/cancel-all")


FUNDING_RATE = "0.0001"  # the flat rate the tickers report and the funding history answers


def ticker_record(
    markets: Market, depth_lots: int, market: SymbolMarket, delta: bool
) -> dict[str, Any]:
    """A ticker as Bybit sends it (REST `tickers` and the websocket's snapshot or delta)."""
    now = markets.now_ms()
    bid, ask = market.quotes(now)
    instrument = market.instrument
    last = market.last_price or instrument.round_price(market.path.price(now))
    mark = instrument.round_price(market.path.price(now))
    depth = str(instrument.min_qty * depth_lots)
    if instrument.category == "spot":
        prev = instrument.round_price(market.path.price(now - 86_400_000))
        return {
            "symbol": instrument.symbol,
            "lastPrice": str(last),
            "highPrice24h": str(max(last, prev)),
            "lowPrice24h": str(min(last, prev)),
            "prevPrice24h": str(prev),
            "volume24h": "12345.678",
            "turnover24h": str((Decimal("12345.678") * last).quantize(Decimal("0.0001"))),
            "price24hPcnt": str(((last - prev) / prev).quantize(Decimal("0.0001"))),
            "usdIndexPrice": str(mark),
        }
    record: dict[str, Any] = {
        "symbol": instrument.symbol,
        "lastPrice": str(last),
        "markPrice": str(mark),
        "indexPrice": str(mark),
        "bid1Price": str(bid),
        "bid1Size": depth,
        "ask1Price": str(ask),
        "ask1Size": depth,
    }
    if not delta:
        prev = instrument.round_price(market.path.price(now - 86_400_000))
        record.update(
            {
                "tickDirection": "PlusTick",
                "price24hPcnt": str(((last - prev) / prev).quantize(Decimal("0.000001"))),
                "prevPrice24h": str(prev),
                "highPrice24h": str(max(last, prev)),
                "lowPrice24h": str(min(last, prev)),
                "prevPrice1h": str(instrument.round_price(market.path.price(now - 3_600_000))),
                "openInterest": "50000",
                "openInterestValue": str(Decimal(50000) * mark),
                "turnover24h": "1000000000",
                "volume24h": "20000",
                "nextFundingTime": str((now // 28_800_000 + 1) * 28_800_000),
                "fundingRate": FUNDING_RATE,
                "fundingIntervalHour": "8",
            }
        )
    return record


class _RateLimiter:
    """Per-key fixed one-second windows, reported like Bybit's headers."""

    def __init__(self, per_second: int) -> None:
        self.per_second = per_second
        self._windows: dict[str, tuple[int, int]] = {}

    def take(self, key: str, now_ms: int) -> tuple[bool, int, int]:
        """(allowed, remaining, reset_ms)."""
        window = now_ms // 1000
        start, used = self._windows.get(key, (window, 0))
        if start != window:
            start, used = window, 0
        reset = (window + 1) * 1000
        if self.per_second and used >= self.per_second:
            return False, 0, reset
        used += 1
        self._windows[key] = (start, used)
        return True, max(0, self.per_second - used), reset


class RestApi:
    """The `/v5/...` REST handlers of one simulator (its market, account and faults)."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.limiter = _RateLimiter(sim.config.order_rate_limit)

    def routes(self) -> list[web.RouteDef]:
        get, post = web.get, web.post
        exchange = self.sim.exchange
        return [
            get("/v5/market/time", self._time),
            get("/v5/market/kline", self._public(self._kline)),
            get("/v5/market/funding/history", self._public(self._funding_history)),
            get("/v5/market/instruments-info", self._public(self._instruments)),
            get("/v5/market/tickers", self._public(self._tickers)),
            get("/v5/market/recent-trade", self._public(self._recent_trades)),
            get("/v5/announcements/index", self._public(self.sim.announcements.page)),
            post("/v5/order/create", self._private(exchange.create_order)),
            post("/v5/order/amend", self._private(exchange.amend_order)),
            post("/v5/order/cancel", self._private(exchange.cancel_order)),
            post("/v5/order/cancel-all", self._private(exchange.cancel_all)),
            get("/v5/order/realtime", self._private(self._open_orders)),
            get("/v5/order/history", self._private(self._order_history)),
            get("/v5/execution/list", self._private(self._executions)),
            get("/v5/position/list", self._private(self._positions)),
            get("/v5/account/wallet-balance", self._private(self._wallet)),
            get("/v5/account/fee-rate", self._private(self._fee_rate)),
            post("/v5/position/trading-stop", self._private(exchange.positions.trading_stop)),
            post("/v5/position/set-leverage", self._private(exchange.positions.set_leverage)),
            post("/v5/account/set-margin-mode", self._private(exchange.positions.set_margin_mode)),
            get("/v5/account/info", self._private(exchange.positions.account_info)),
        ]

    def _answer(
        self,
        result: Any = None,
        code: int = 0,
        message: str = "OK",
        headers: dict[str, str] | None = None,
        status: int = 200,
    ) -> web.Response:
        body = {
            "retCode": code,
            "retMsg": message if code or message != "OK" else "OK",
            "result": result if result is not None else {},
            "retExtInfo": {},
            "time": self.sim.now_ms(),
        }
        return web.Response(
            text=json.dumps(body), status=status, content_type="application/json", headers=headers
        )

    def _public(self, handler: Callable[[dict[str, str]], Any]) -> Callable[[web.Request], Any]:
        async def endpoint(request: web.Request) -> web.Response:
            self.sim.requests.append((request.method, request.path))
            fault = self.sim.faults.take_rest_error(request.path)
            if fault is not None:
                return self._fault_answer(fault.code, fault.message, fault.http_status)
            delay = self.sim.faults.take_rest_delay(request.path)
            if delay is not None:
                await asyncio.sleep(delay.seconds)
            try:
                return self._answer(handler(dict(request.query)))
            except SimError as error:
                return self._answer(code=error.code, message=error.message)

        return endpoint

    def _fault_answer(self, code: int, message: str, http_status: int) -> web.Response:
        if http_status != 200:
            return web.Response(text=message or f"HTTP {http_status}", status=http_status)
        headers = {}
        if code in (10006, 10018):
            reset = self.sim.now_ms() + 200
            headers = {
                "X-Bapi-Limit": "10",
                "X-Bapi-Limit-Status": "0",
                "X-Bapi-Limit-Reset-Timestamp": str(reset),
            }
        return self._answer(
            code=code, message=message or _DEFAULT_MESSAGES.get(code, "error"), headers=headers
        )

    def _authenticate(self, request: web.Request, payload: str) -> Account:
        key = request.headers.get("X-BAPI-API-KEY", "")
        if key != self.sim.account.api_key:
            raise SimError(10003, "API key is invalid.")
        stamp = request.headers.get("X-BAPI-TIMESTAMP", "")
        window_text = request.headers.get("X-BAPI-RECV-WINDOW", "5000")
        if not stamp.isdigit() or not window_text.isdigit():
            raise SimError(10002, "invalid request, please check your timestamp and recv_window")
        timestamp, window = int(stamp), int(window_text)
        now = self.sim.now_ms()
        if not now - window <= timestamp < now + 1000:
            raise SimError(
                10002,
                "invalid request, please check your server timestamp or recv_window param. "
                f"req_timestamp[{timestamp}],server_timestamp[{now}],recv_window[{window}]",
            )
        expected = rest_signature(self.sim.account.api_secret, timestamp, key, window, payload)
        if not hmac.compare_digest(expected, request.headers.get("X-BAPI-SIGN", "")):
            raise SimError(10004, f"error sign! origin_string[{stamp}{key}{window}{payload}]")
        return self.sim.account

    def _private(
        self, handler: Callable[[Account, dict[str, Any]], Any]
    ) -> Callable[[web.Request], Any]:
        async def endpoint(request: web.Request) -> web.Response:
            self.sim.requests.append((request.method, request.path))
            if request.method == "POST":
                payload = await request.text()
            else:
                payload = request.rel_url.raw_query_string
            fault = self.sim.faults.take_rest_error(request.path)
            if fault is not None:
                return self._fault_answer(fault.code, fault.message, fault.http_status)
            delay = self.sim.faults.take_rest_delay(request.path)
            if delay is not None and not delay.process_first:
                await asyncio.sleep(delay.seconds)
            headers: dict[str, str] = {}
            try:
                account = self._authenticate(request, payload)
                if request.path in ORDER_PATHS:
                    allowed, remaining, reset = self.limiter.take(
                        account.api_key, self.sim.now_ms()
                    )
                    headers = {
                        "X-Bapi-Limit": str(self.limiter.per_second),
                        "X-Bapi-Limit-Status": str(remaining),
                        "X-Bapi-Limit-Reset-Timestamp": str(reset),
                    }
                    if not allowed:
                        raise SimError(10006, "Too many visits!")
                if request.method == "POST":
                    try:
                        params = json.loads(payload) if payload else {}
                    except ValueError:
                        raise SimError(10001, "params error: the body is not JSON") from None
                    if not isinstance(params, dict):
                        raise SimError(10001, "params error: the body is not a JSON object")
                else:
                    params = dict(request.query)
                result = handler(account, params)
                response = self._answer(result, headers=headers)
            except SimError as error:
                response = self._answer(code=error.code, message=error.message, headers=headers)
            if delay is not None and delay.process_first:
                await asyncio.sleep(delay.seconds)
            return response

        return endpoint

    async def _time(self, request: web.Request) -> web.Response:
        self.sim.requests.append((request.method, request.path))
        now_ns = time.time_ns() + self.sim.config.clock_skew_ms * 1_000_000
        return self._answer({"timeSecond": str(now_ns // 1_000_000_000), "timeNano": str(now_ns)})

    def _symbol_market(
        self, query: dict[str, str], default_category: str = "linear"
    ) -> tuple[str, SymbolMarket]:
        category = query.get("category") or default_category
        symbol = query.get("symbol", "")
        market = self.sim.market.get(category, symbol)
        if market is None:
            raise SimError(10001, f"Illegal category or symbol ({category} {symbol})")
        return category, market

    def _kline(self, query: dict[str, str]) -> dict[str, Any]:
        category, market = self._symbol_market(query)
        try:
            interval = intervals.normalise(query.get("interval", ""))
        except ValueError:
            raise SimError(10001, "Invalid period!") from None
        limit = max(1, min(1000, int(query.get("limit") or 200)))
        now = self.sim.market.now_ms()
        end = min(int(query["end"]), now) if query.get("end") else now
        start = int(query["start"]) if query.get("start") else None
        opens: list[int] = []
        cursor = intervals.open_ms(interval, end)
        step = intervals.fixed_ms(interval)
        while len(opens) < limit and (start is None or cursor >= start):
            opens.append(cursor)
            cursor = cursor - step if step else intervals.open_ms(interval, cursor - 1)
        rows = [market.path.kline(interval, o, now).rest() for o in opens]  # newest first
        return {"category": category, "symbol": market.instrument.symbol, "list": rows}

    def _funding_history(self, query: dict[str, str]) -> dict[str, Any]:
        """Settlements every 8 hours (00:00, 08:00, 16:00 UTC) in [startTime, endTime], newest
        first, at most `limit` (200), each at the simulator's flat rate."""
        category, market = self._symbol_market(query)
        if category == "spot":
            raise SimError(10001, "Illegal category")
        limit = max(1, min(200, int(query.get("limit") or 200)))
        end = min(int(query.get("endTime") or 2**62), self.sim.market.now_ms())
        start = int(query.get("startTime") or 0)
        step = 8 * 3_600_000
        cursor = end - end % step
        rows: list[dict[str, str]] = []
        while cursor >= start and len(rows) < limit:
            rows.append({"symbol": market.instrument.symbol, "fundingRate": FUNDING_RATE,
                         "fundingRateTimestamp": str(cursor)})  # fmt: skip
            cursor -= step
        return {"category": category, "list": rows}

    def _instruments(self, query: dict[str, str]) -> dict[str, Any]:
        category = query.get("category", "")
        if category not in ("linear", "spot", "inverse", "option"):
            raise SimError(10001, "params error: category is required")
        symbol = query.get("symbol")
        items = [
            m.instrument.info()
            for (cat, name), m in self.sim.market.symbols.items()
            if cat == category and symbol in (None, name)
        ]
        return {"category": category, "list": items, "nextPageCursor": ""}

    def _tickers(self, query: dict[str, str]) -> dict[str, Any]:
        category = query.get("category", "linear")
        symbol = query.get("symbol")
        items = [
            ticker_record(self.sim.market, self.sim.config.depth_lots, m, delta=False)
            for (cat, name), m in self.sim.market.symbols.items()
            if cat == category and symbol in (None, name)
        ]
        return {"category": category, "list": items}

    def _recent_trades(self, query: dict[str, str]) -> dict[str, Any]:
        category, market = self._symbol_market(query)
        maximum = 60 if category == "spot" else 1000
        limit = max(1, min(maximum, int(query.get("limit") or (60 if category == "spot" else 500))))
        trades = list(market.trades)[-limit:][::-1]  # newest first
        return {"category": category, "list": [t.rest(category) for t in trades]}

    @staticmethod
    def _page(items: list[dict[str, Any]], params: dict[str, Any], maximum: int) -> dict[str, Any]:
        limit = max(1, min(maximum, int(params.get("limit") or 20)))
        offset = int(params.get("cursor") or 0) if str(params.get("cursor") or "0").isdigit() else 0
        page = items[offset : offset + limit]
        cursor = str(offset + limit) if offset + limit < len(items) else ""
        return {"list": page, "nextPageCursor": cursor}

    def _orders(self, account: Account, params: dict[str, Any], open_only: bool) -> list[SimOrder]:
        category = str(params.get("category") or "")
        if category not in ("linear", "spot"):
            raise SimError(10001, "params error: category is required")
        orders = [o for o in account.orders.values() if o.category == category]
        if params.get("symbol"):
            orders = [o for o in orders if o.symbol == params["symbol"]]
        if params.get("orderId"):
            orders = [o for o in orders if o.order_id == params["orderId"]]
        elif params.get("orderLinkId"):
            orders = [o for o in orders if o.link_id == params["orderLinkId"]]
        elif open_only:
            orders = [o for o in orders if o.is_open]
        return sorted(orders, key=lambda o: o.created_ms, reverse=True)

    def _open_orders(self, account: Account, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("category") == "linear" and not any(
            params.get(k) for k in ("symbol", "settleCoin", "baseCoin", "orderId", "orderLinkId")
        ):
            raise SimError(
                10001,
                "Missing some parameters that must be filled in, symbol or settleCoin or baseCoin",
            )
        open_only = str(params.get("openOnly", "0")) == "0"
        orders = self._orders(account, params, open_only)
        if not open_only:
            orders = [o for o in orders if not o.is_open]
        result = self._page([o.record() for o in orders], params, 50)
        result["category"] = params.get("category")
        return result

    def _order_history(self, account: Account, params: dict[str, Any]) -> dict[str, Any]:
        orders = self._orders(account, params, open_only=False)
        result = self._page([o.record() for o in orders], params, 50)
        result["category"] = params.get("category")
        return result

    def _executions(self, account: Account, params: dict[str, Any]) -> dict[str, Any]:
        category = str(params.get("category") or "")
        found = [e for e in account.executions if e.order.category == category]
        if params.get("symbol"):
            found = [e for e in found if e.order.symbol == params["symbol"]]
        if params.get("orderId"):
            found = [e for e in found if e.order.order_id == params["orderId"]]
        if params.get("orderLinkId"):
            found = [e for e in found if e.order.link_id == params["orderLinkId"]]
        if params.get("startTime"):
            found = [e for e in found if e.time_ms >= int(params["startTime"])]
        if params.get("endTime"):
            found = [e for e in found if e.time_ms <= int(params["endTime"])]
        records = [e.record() for e in sorted(found, key=lambda e: e.seq, reverse=True)]
        for record in records:
            record.pop("category", None)
        result = self._page(records, params, 100)
        result["category"] = category
        return result

    def _positions(self, account: Account, params: dict[str, Any]) -> dict[str, Any]:
        category = params.get("category")
        if category != "linear":
            raise SimError(10001, f"params error: category {category!r} has no positions")
        symbol = params.get("symbol")
        if not symbol and not params.get("settleCoin") and not params.get("baseCoin"):
            raise SimError(
                10001,
                "Missing some parameters that must be filled in, symbol or settleCoin or baseCoin",
            )
        positions = [
            p
            for name, p in sorted(account.positions.items())
            if (symbol and name == symbol) or (not symbol and p.size != 0)
        ]
        if symbol and not positions and self.sim.market.get("linear", symbol):
            positions = [
                SimPosition(symbol, created_ms=self.sim.now_ms(), updated_ms=self.sim.now_ms())
            ]
        records = [self.sim.exchange.position_record(account, p) for p in positions]
        result = self._page(records, params, 200)
        result["category"] = category
        return result

    def _wallet(self, account: Account, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("accountType") != "UNIFIED":
            raise SimError(10001, "accountType only support UNIFIED")
        return {"list": [self.sim.exchange.wallet_record(account)]}

    def _fee_rate(self, account: Account, params: dict[str, Any]) -> dict[str, Any]:
        category = str(params.get("category") or "linear")
        maker, taker = self.sim.exchange.fees.get(category, (Decimal(0), Decimal(0)))
        return {
            "list": [
                {"symbol": name, "makerFeeRate": str(maker), "takerFeeRate": str(taker)}
                for (cat, name) in self.sim.market.symbols
                if cat == category and params.get("symbol") in (None, name)
            ]
        }


_DEFAULT_MESSAGES = {
    10000: "Server Timeout",
    10002: "invalid request, please check your server timestamp or recv_window param",
    10006: "Too many visits!",
    10016: "Server error",
    110007: "ab not enough for new order",
    110001: "Order does not exist.",
}
