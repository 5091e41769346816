"""The simulator's server: Bybit v5 REST and websockets on one aiohttp port.

Paths are Bybit's own (`/v5/...`, websockets on `/v5/public/{linear,spot}` and `/v5/private`),
answers use Bybit's envelope (`retCode`, `retMsg`, `result`, `retExtInfo`, `time`), private REST
calls are authenticated exactly as Bybit does (HMAC of timestamp + key + recv window + query
string or body; 10002 outside the window, 10003 unknown key, 10004 bad signature), and order
entry is rate limited per key with Bybit's `X-Bapi-Limit-*` headers and 10006. `/sim/...` is the
simulator's own admin API (prices, faults, state) and not part of Bybit's.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import itertools
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aiohttp import WSMsgType, web

from adapters.bybit import intervals
from adapters.bybit.signing import rest_signature, ws_auth_signature
from adapters.bybit.sim.exchange import Account, Exchange, SimError, SimOrder, SimPosition
from adapters.bybit.sim.faults import Faults
from adapters.bybit.sim.market import Market, SimInstrument, SymbolMarket, default_instruments
from bot.log import get_logger

log = get_logger(__name__)

PRIVATE_TOPICS = ("order", "execution", "position", "wallet")
ORDER_PATHS = ("/v5/order/create", "/v5/order/amend", "/v5/order/cancel", "/v5/order/cancel-all")


@dataclass
class SimConfig:
    host: str = "127.0.0.1"
    port: int = 8765
    api_key: str = "sim-key"
    api_secret: str = "sim-secret"
    seed: int = 1
    speed: float = 1.0  # market time per wall-clock time
    tick_interval: float = 0.25  # seconds between market updates
    clock_skew_ms: int = 0  # the simulator's clock minus the host's
    balance: Decimal = Decimal("100000")  # USDT in the funded UNIFIED account
    leverage: Decimal = Decimal(10)
    order_rate_limit: int = 10  # order-entry calls per second per key (Bybit's default); 0: off
    depth_lots: int = 50  # minimum quantities per synthetic book level
    # Seconds before a websocket request (subscribe, auth, ping) is acted on, as a network round
    # trip would take. pybit records a subscription only after sending it, so an answer faster
    # than that thread (loopback on a loaded machine) finds no record and pybit drops the socket.
    request_latency: float = 0.0
    instruments: list[SimInstrument] = field(default_factory=default_instruments)


@dataclass
class _Conn:
    kind: str
    category: str
    ws: web.WebSocketResponse
    request: web.Request
    conn_id: str
    queue: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    topics: set[str] = field(default_factory=set)
    account: Account | None = None
    kline_opens: dict[str, int] = field(default_factory=dict)  # topic -> bar open last pushed


@dataclass(frozen=True)
class _Push:
    account: Account
    topic: str
    category: str
    message: str


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


class Simulator:
    """Start with `await sim.start()`; `sim.url` is then the REST base (and websocket host)."""

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        self.market = Market(self.config.instruments, self.config.seed, self.config.speed)
        self.account = Account(
            self.config.api_key,
            self.config.api_secret,
            {"USDT": self.config.balance},
            leverage=self.config.leverage,
        )
        self.exchange = Exchange(
            self.market, [self.account], clock_ms=self.now_ms, depth_lots=self.config.depth_lots
        )
        self.exchange.on_private = self._on_private
        self.faults = Faults()
        self.limiter = _RateLimiter(self.config.order_rate_limit)
        self.connections: list[_Conn] = []
        self.requests: list[tuple[str, str]] = []  # (method, path) of every REST call
        self._held: _Push | None = None
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._ticker_task: asyncio.Task[None] | None = None
        self.port = self.config.port
        self.app = self._build_app()

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    @property
    def ws_public_url(self) -> str:
        return f"ws://{self.config.host}:{self.port}/v5/public"

    @property
    def ws_private_url(self) -> str:
        return f"ws://{self.config.host}:{self.port}/v5/private"

    def now_ms(self) -> int:
        return int(time.time() * 1000) + self.config.clock_skew_ms

    async def start(self) -> None:
        # A test venue: on stop, give open handlers (websockets) 2 s, not aiohttp's default 60 s,
        # so Ctrl-C ends it at once.
        self._runner = web.AppRunner(
            self.app, access_log=None, handle_signals=False, shutdown_timeout=2.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        await site.start()
        if self.config.port == 0:
            addresses = self._runner.addresses
            if addresses:
                self.port = int(addresses[0][1])
        self._ticker_task = asyncio.create_task(self._tick_loop(), name="sim-ticker")
        log.info("bybit simulator listening", url=self.url)

    async def stop(self) -> None:
        if self._ticker_task is not None:
            self._ticker_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker_task
        for conn in list(self.connections):
            conn.queue.put_nowait(None)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.ws.close(), 0.5)
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=1024 * 1024)
        get, post = web.get, web.post
        app.add_routes(
            [
                get("/v5/market/time", self._time),
                get("/v5/market/kline", self._public(self._kline)),
                get("/v5/market/instruments-info", self._public(self._instruments)),
                get("/v5/market/tickers", self._public(self._tickers)),
                get("/v5/market/recent-trade", self._public(self._recent_trades)),
                post("/v5/order/create", self._private(self.exchange.create_order)),
                post("/v5/order/amend", self._private(self.exchange.amend_order)),
                post("/v5/order/cancel", self._private(self.exchange.cancel_order)),
                post("/v5/order/cancel-all", self._private(self.exchange.cancel_all)),
                get("/v5/order/realtime", self._private(self._open_orders)),
                get("/v5/order/history", self._private(self._order_history)),
                get("/v5/execution/list", self._private(self._executions)),
                get("/v5/position/list", self._private(self._positions)),
                get("/v5/account/wallet-balance", self._private(self._wallet)),
                get("/v5/account/fee-rate", self._private(self._fee_rate)),
                get("/v5/public/{category}", self._ws_public),
                get("/v5/private", self._ws_private),
                post("/sim/price", self._admin_price),
                post("/sim/fault", self._admin_fault),
                post("/sim/drop", self._admin_drop),
                get("/sim/state", self._admin_state),
            ]
        )
        return app

    # -- envelopes -----------------------------------------------------------------------------

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
            "time": self.now_ms(),
        }
        return web.Response(
            text=json.dumps(body), status=status, content_type="application/json", headers=headers
        )

    def _public(self, handler: Callable[[dict[str, str]], Any]) -> Callable[[web.Request], Any]:
        async def endpoint(request: web.Request) -> web.Response:
            self.requests.append((request.method, request.path))
            fault = self.faults.take_rest_error(request.path)
            if fault is not None:
                return self._fault_answer(fault.code, fault.message, fault.http_status)
            delay = self.faults.take_rest_delay(request.path)
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
            reset = self.now_ms() + 200
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
        if key != self.account.api_key:
            raise SimError(10003, "API key is invalid.")
        stamp = request.headers.get("X-BAPI-TIMESTAMP", "")
        window_text = request.headers.get("X-BAPI-RECV-WINDOW", "5000")
        if not stamp.isdigit() or not window_text.isdigit():
            raise SimError(10002, "invalid request, please check your timestamp and recv_window")
        timestamp, window = int(stamp), int(window_text)
        now = self.now_ms()
        if not now - window <= timestamp < now + 1000:
            raise SimError(
                10002,
                "invalid request, please check your server timestamp or recv_window param. "
                f"req_timestamp[{timestamp}],server_timestamp[{now}],recv_window[{window}]",
            )
        expected = rest_signature(self.account.api_secret, timestamp, key, window, payload)
        if not hmac.compare_digest(expected, request.headers.get("X-BAPI-SIGN", "")):
            raise SimError(10004, f"error sign! origin_string[{stamp}{key}{window}{payload}]")
        return self.account

    def _private(
        self, handler: Callable[[Account, dict[str, Any]], Any]
    ) -> Callable[[web.Request], Any]:
        async def endpoint(request: web.Request) -> web.Response:
            self.requests.append((request.method, request.path))
            if request.method == "POST":
                payload = await request.text()
            else:
                payload = request.rel_url.raw_query_string
            fault = self.faults.take_rest_error(request.path)
            if fault is not None:
                return self._fault_answer(fault.code, fault.message, fault.http_status)
            delay = self.faults.take_rest_delay(request.path)
            if delay is not None and not delay.process_first:
                await asyncio.sleep(delay.seconds)
            headers: dict[str, str] = {}
            try:
                account = self._authenticate(request, payload)
                if request.path in ORDER_PATHS:
                    allowed, remaining, reset = self.limiter.take(account.api_key, self.now_ms())
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

    # -- market endpoints ------------------------------------------------------------------------

    async def _time(self, request: web.Request) -> web.Response:
        self.requests.append((request.method, request.path))
        now_ns = time.time_ns() + self.config.clock_skew_ms * 1_000_000
        return self._answer({"timeSecond": str(now_ns // 1_000_000_000), "timeNano": str(now_ns)})

    def _symbol_market(
        self, query: dict[str, str], default_category: str = "linear"
    ) -> tuple[str, SymbolMarket]:
        category = query.get("category") or default_category
        symbol = query.get("symbol", "")
        market = self.market.get(category, symbol)
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
        now = self.market.now_ms()
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

    def _instruments(self, query: dict[str, str]) -> dict[str, Any]:
        category = query.get("category", "")
        if category not in ("linear", "spot", "inverse", "option"):
            raise SimError(10001, "params error: category is required")
        symbol = query.get("symbol")
        items = [
            m.instrument.info()
            for (cat, name), m in self.market.symbols.items()
            if cat == category and symbol in (None, name)
        ]
        return {"category": category, "list": items, "nextPageCursor": ""}

    def _ticker_record(self, market: SymbolMarket, delta: bool) -> dict[str, Any]:
        now = self.market.now_ms()
        bid, ask = market.quotes(now)
        instrument = market.instrument
        last = market.last_price or instrument.round_price(market.path.price(now))
        mark = instrument.round_price(market.path.price(now))
        depth = str(instrument.min_qty * self.config.depth_lots)
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
                    "fundingRate": "0.0001",
                    "fundingIntervalHour": "8",
                }
            )
        return record

    def _tickers(self, query: dict[str, str]) -> dict[str, Any]:
        category = query.get("category", "linear")
        symbol = query.get("symbol")
        items = [
            self._ticker_record(m, delta=False)
            for (cat, name), m in self.market.symbols.items()
            if cat == category and symbol in (None, name)
        ]
        return {"category": category, "list": items}

    def _recent_trades(self, query: dict[str, str]) -> dict[str, Any]:
        category, market = self._symbol_market(query)
        maximum = 60 if category == "spot" else 1000
        limit = max(1, min(maximum, int(query.get("limit") or (60 if category == "spot" else 500))))
        trades = list(market.trades)[-limit:][::-1]  # newest first
        return {"category": category, "list": [t.rest(category) for t in trades]}

    # -- account endpoints -----------------------------------------------------------------------

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
        if symbol and not positions and self.market.get("linear", symbol):
            positions = [SimPosition(symbol, created_ms=self.now_ms(), updated_ms=self.now_ms())]
        records = [self.exchange.position_record(account, p) for p in positions]
        result = self._page(records, params, 200)
        result["category"] = category
        return result

    def _wallet(self, account: Account, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("accountType") != "UNIFIED":
            raise SimError(10001, "accountType only support UNIFIED")
        return {"list": [self.exchange.wallet_record(account)]}

    def _fee_rate(self, account: Account, params: dict[str, Any]) -> dict[str, Any]:
        category = str(params.get("category") or "linear")
        maker, taker = self.exchange.fees.get(category, (Decimal(0), Decimal(0)))
        return {
            "list": [
                {"symbol": name, "makerFeeRate": str(maker), "takerFeeRate": str(taker)}
                for (cat, name) in self.market.symbols
                if cat == category and params.get("symbol") in (None, name)
            ]
        }

    # -- websockets -----------------------------------------------------------------------------

    async def _open_ws(self, request: web.Request, kind: str, category: str) -> _Conn:
        ws = web.WebSocketResponse(autoping=True, heartbeat=None, max_msg_size=1024 * 1024)
        await ws.prepare(request)
        conn = _Conn(kind, category, ws, request, f"sim-{uuid.uuid4().hex[:16]}-{next(self._ids)}")
        self.connections.append(conn)
        return conn

    async def _writer(self, conn: _Conn) -> None:
        while True:
            text = await conn.queue.get()
            if text is None:
                return
            delay = self.faults.take_ws_delay(conn.kind)
            if delay:
                await asyncio.sleep(delay)
            if self.faults.take_malformed(conn.kind):
                await conn.ws.send_str('{"topic": "broken", "data": [')
            await conn.ws.send_str(text)

    async def _serve(
        self, conn: _Conn, handle: Callable[[_Conn, dict[str, Any]], None]
    ) -> web.WebSocketResponse:
        writer = asyncio.create_task(self._writer(conn))
        try:
            async for message in conn.ws:
                if message.type is not WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(message.data)
                except ValueError:
                    self._send(
                        conn,
                        {
                            "success": False,
                            "ret_msg": "error:invalid json",
                            "conn_id": conn.conn_id,
                            "op": "",
                        },
                    )
                    continue
                if isinstance(data, dict):
                    if self.config.request_latency > 0:
                        await asyncio.sleep(self.config.request_latency)
                    handle(conn, data)
        finally:
            conn.queue.put_nowait(None)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer
            if conn in self.connections:
                self.connections.remove(conn)
        return conn.ws

    def _send(self, conn: _Conn, payload: dict[str, Any]) -> None:
        conn.queue.put_nowait(json.dumps(payload))

    async def _ws_public(self, request: web.Request) -> web.StreamResponse:
        category = request.match_info["category"]
        if category not in ("linear", "spot"):
            raise web.HTTPNotFound(text=f"no public stream for {category!r} in the simulator")
        if self.faults.ws_rejected():
            raise web.HTTPServiceUnavailable(text="simulated outage")
        conn = await self._open_ws(request, "public", category)
        return await self._serve(conn, self._public_op)

    def _public_op(self, conn: _Conn, data: dict[str, Any]) -> None:
        op = data.get("op")
        req_id = data.get("req_id", "")
        base = (
            {"conn_id": conn.conn_id, "req_id": req_id}
            if conn.category != "spot"
            else {"conn_id": conn.conn_id, **({"req_id": req_id} if req_id else {})}
        )
        if op == "ping":
            if not self.faults.silenced("public"):
                self._send(conn, {"success": True, "ret_msg": "pong", **base, "op": "ping"})
            return
        args = data.get("args") or []
        if op == "subscribe":
            bad = [t for t in args if not self._valid_public_topic(conn.category, str(t))]
            if bad or not args:
                self._send(
                    conn,
                    {
                        "success": False,
                        "ret_msg": f"error:handler not found,topic:{','.join(bad)}",
                        **base,
                        "op": "subscribe",
                    },
                )
                return
            conn.topics.update(str(t) for t in args)
            ok = "subscribe" if conn.category == "spot" else ""
            self._send(conn, {"success": True, "ret_msg": ok, **base, "op": "subscribe"})
            for topic in args:
                self._initial_push(conn, str(topic))
        elif op == "unsubscribe":
            conn.topics.difference_update(str(t) for t in args)
            self._send(conn, {"success": True, "ret_msg": "", **base, "op": "unsubscribe"})
        else:
            self._send(
                conn,
                {"success": False, "ret_msg": f"error:unknown op {op!r}", **base, "op": op or ""},
            )

    def _valid_public_topic(self, category: str, topic: str) -> bool:
        parts = topic.split(".")
        if len(parts) == 3 and parts[0] == "kline":
            return parts[1] in intervals.CODES and self.market.get(category, parts[2]) is not None
        if len(parts) == 2 and parts[0] in ("publicTrade", "tickers"):
            return self.market.get(category, parts[1]) is not None
        return False

    def _initial_push(self, conn: _Conn, topic: str) -> None:
        parts = topic.split(".")
        market = self.market.get(conn.category, parts[-1])
        if market is None:
            return
        now = self.market.now_ms()
        if parts[0] == "tickers":
            self._send(
                conn,
                {
                    "topic": topic,
                    "type": "snapshot",
                    "data": self._ticker_record(market, delta=False),
                    "cs": next(self._ids),
                    "ts": now,
                },
            )
        elif parts[0] == "kline":
            interval = parts[1]
            conn.kline_opens[topic] = intervals.open_ms(interval, now)
            kline = market.path.kline(interval, intervals.open_ms(interval, now), now)
            self._send(
                conn,
                {"topic": topic, "data": [kline.ws(interval, now)], "ts": now, "type": "snapshot"},
            )

    async def _ws_private(self, request: web.Request) -> web.StreamResponse:
        if self.faults.ws_rejected():
            raise web.HTTPServiceUnavailable(text="simulated outage")
        conn = await self._open_ws(request, "private", "private")
        return await self._serve(conn, self._private_op)

    def _private_op(self, conn: _Conn, data: dict[str, Any]) -> None:
        op = data.get("op")
        req_id = data.get("req_id", "")
        if op == "ping":
            if not self.faults.silenced("private"):
                self._send(
                    conn,
                    {
                        "req_id": req_id,
                        "op": "pong",
                        "args": [str(self.now_ms())],
                        "conn_id": conn.conn_id,
                    },
                )
            return
        args = data.get("args") or []
        if op == "auth":
            reply = {"req_id": req_id, "op": "auth", "conn_id": conn.conn_id}
            failure = self._check_ws_auth(args)
            if failure:
                code, message = failure
                self._send(conn, {"success": False, "ret_msg": message, "retCode": code, **reply})
                return
            conn.account = self.account
            self._send(conn, {"success": True, "ret_msg": "", **reply})
        elif op == "subscribe":
            reply = {"req_id": req_id, "op": "subscribe", "conn_id": conn.conn_id}
            if conn.account is None:
                self._send(conn, {"success": False, "ret_msg": "Request not authorized", **reply})
                return
            bad = [t for t in args if str(t).split(".")[0] not in PRIVATE_TOPICS]
            if bad or not args:
                self._send(
                    conn,
                    {
                        "success": False,
                        "ret_msg": f"error:handler not found,topic:{','.join(bad)}",
                        **reply,
                    },
                )
                return
            conn.topics.update(str(t) for t in args)
            self._send(conn, {"success": True, "ret_msg": "", **reply})
        else:
            self._send(
                conn,
                {
                    "success": False,
                    "ret_msg": f"error:unknown op {op!r}",
                    "req_id": req_id,
                    "op": op or "",
                    "conn_id": conn.conn_id,
                },
            )

    def _check_ws_auth(self, args: list[Any]) -> tuple[int, str] | None:
        if len(args) != 3:
            return 10001, "Params Error"
        key, expires, signature = args
        if key != self.account.api_key:
            return 10003, "Invalid apikey"
        try:
            expires_ms = int(expires)
        except (TypeError, ValueError):
            return 10001, "Params Error"
        if expires_ms <= self.now_ms():
            return 10002, "Params Error: request expired"
        expected = ws_auth_signature(self.account.api_secret, expires_ms)
        if not hmac.compare_digest(expected, str(signature)):
            return 10004, "Invalid sign"
        return None

    # -- pushes ------------------------------------------------------------------------------------

    def _on_private(self, account: Account, topic: str, record: dict[str, Any]) -> None:
        faults = self.faults
        if topic == "execution" and faults.drop_executions > 0:
            faults.drop_executions -= 1
            return
        message = json.dumps(
            {
                "id": uuid.uuid4().hex,
                "topic": topic,
                "creationTime": self.now_ms(),
                "data": [record],
            }
        )
        push = _Push(account, topic, str(record.get("category", "")), message)
        copies = 1
        if topic == "execution" and faults.duplicate_executions > 0:
            faults.duplicate_executions -= 1
            copies = 2
        for _ in range(copies):
            if faults.reorder_private > 0 and self._held is None:
                faults.reorder_private -= 1
                self._held = push  # it goes out after the next message
                continue
            self._deliver(push)
            if self._held is not None:
                held, self._held = self._held, None
                self._deliver(held)

    def _deliver(self, push: _Push) -> None:
        if self.faults.silenced("private"):
            return
        wanted = (push.topic, f"{push.topic}.{push.category}")
        for conn in self.connections:
            if conn.kind != "private" or conn.account is not push.account:
                continue
            if wanted[0] in conn.topics or wanted[1] in conn.topics:
                conn.queue.put_nowait(push.message)

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.tick_interval)
            try:
                self._tick()
            except Exception:
                log.exception("simulator tick failed")

    def _tick(self) -> None:
        now = self.market.now_ms()
        trades = {
            key: self.market.generate_trades(m, now) for key, m in self.market.symbols.items()
        }
        self.exchange.on_tick()
        publics = [c for c in self.connections if c.kind == "public"]
        if not publics or self.faults.silenced("public"):
            return
        cache: dict[tuple[str, str, int], str | None] = {}
        for conn in publics:
            for topic in sorted(conn.topics):
                for text in self._topic_messages(conn, topic, now, trades, cache):
                    conn.queue.put_nowait(text)

    def _topic_messages(
        self,
        conn: _Conn,
        topic: str,
        now: int,
        trades: dict[tuple[str, str], list[Any]],
        cache: dict[tuple[str, str, int], str | None],
    ) -> list[str]:
        """This tick's messages for one subscription (built once per tick and topic)."""
        category = conn.category
        parts = topic.split(".")
        market = self.market.get(category, parts[-1])
        if market is None:
            return []

        def once(key: int, build: Callable[[], str | None]) -> str | None:
            if (category, topic, key) not in cache:
                cache[(category, topic, key)] = build()
            return cache[(category, topic, key)]

        if parts[0] == "publicTrade":
            made = trades.get((category, parts[-1])) or []
            text = once(
                0,
                lambda: (
                    json.dumps(
                        {
                            "topic": topic,
                            "type": "snapshot",
                            "ts": now,
                            "data": [t.ws() for t in made],
                        }
                    )
                    if made
                    else None
                ),
            )
            return [text] if text else []
        if parts[0] == "tickers":
            delta = category != "spot"
            text = once(
                0,
                lambda: json.dumps(
                    {
                        "topic": topic,
                        "type": "delta" if delta else "snapshot",
                        "data": self._ticker_record(market, delta=delta),
                        "cs": next(self._ids),
                        "ts": now,
                    }
                ),
            )
            return [text] if text else []
        interval = parts[1]
        current = intervals.open_ms(interval, now)
        texts: list[str] = []
        cursor = conn.kline_opens.get(topic, current)
        while cursor < current:  # each bar that closed while this connection was subscribed
            opened = cursor
            text = once(
                opened,
                lambda opened=opened: json.dumps(
                    {  # type: ignore[misc]
                        "topic": topic,
                        "data": [market.path.kline(interval, opened, now).ws(interval, now)],
                        "ts": now,
                        "type": "snapshot",
                    }
                ),
            )
            if text:
                texts.append(text)
            cursor = intervals.next_open_ms(interval, cursor)
        conn.kline_opens[topic] = current
        text = once(
            -1,
            lambda: json.dumps(
                {
                    "topic": topic,
                    "data": [market.path.kline(interval, current, now).ws(interval, now)],
                    "ts": now,
                    "type": "snapshot",
                }
            ),
        )
        if text:
            texts.append(text)
        return texts

    # -- test and admin controls -----------------------------------------------------------------

    def drop_connections(self, kind: str) -> int:
        """Cut every websocket of `kind` without a close frame (a network failure)."""
        dropped = 0
        for conn in list(self.connections):
            if conn.kind == kind:
                transport = conn.request.transport
                if transport is not None:
                    transport.abort()
                dropped += 1
        return dropped

    def set_price(self, symbol: str, price: float) -> None:
        self.market.set_price(symbol, price)

    def state(self) -> dict[str, Any]:
        account = self.account
        return {
            "coins": {coin: str(value) for coin, value in account.coins.items()},
            "positions": {
                name: {
                    "size": str(p.size),
                    "avgPrice": str(p.avg),
                    "cumRealisedPnl": str(p.cum_realised),
                }
                for name, p in account.positions.items()
            },
            "orders": [o.record() for o in account.orders.values()],
            "executions": len(account.executions),
            "prices": {
                f"{cat}:{name}": str(m.instrument.round_price(m.path.price(self.market.now_ms())))
                for (cat, name), m in self.market.symbols.items()
            },
        }

    async def _admin_price(self, request: web.Request) -> web.Response:
        data = await request.json()
        self.set_price(str(data["symbol"]), float(data["price"]))
        return web.json_response({"ok": True})

    async def _admin_fault(self, request: web.Request) -> web.Response:
        try:
            self.faults.apply(await request.json())
        except (ValueError, KeyError) as error:
            return web.json_response({"ok": False, "error": str(error)}, status=400)
        return web.json_response({"ok": True})

    async def _admin_drop(self, request: web.Request) -> web.Response:
        data = await request.json()
        return web.json_response({"dropped": self.drop_connections(str(data.get("kind")))})

    async def _admin_state(self, request: web.Request) -> web.Response:
        return web.json_response(self.state())


_DEFAULT_MESSAGES = {
    10000: "Server Timeout",
    10002: "invalid request, please check your server timestamp or recv_window param",
    10006: "Too many visits!",
    10016: "Server error",
    110007: "ab not enough for new order",
    110001: "Order does not exist.",
}
