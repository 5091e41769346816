"""Bybit v5 REST over aiohttp: signed with the venue's clock, typed errors, bounded and paced.

Why not pybit's `HTTP`: it is synchronous (requests), signs with the local clock, sleeps inside
its own thread on 10002/10006, and raises untyped exceptions; wrapping it would mean a thread per
call, a patched private method for the timestamp and string-matching its errors. This client is
~300 lines, native to the event loop (a `submit` never blocks it), and every reaction is
lorabot's own: see `errors.py` for the table. pybit remains the reference client the simulator
is tested against, and the signatures here are tested to equal pybit's.

Retry policy:
- a rate limit (10006 ...) waits for Bybit's `X-Bapi-Limit-Reset-Timestamp`, then retries;
- a clock error (10002) measures the offset to /v5/market/time again, then retries;
- network errors, timeouts and 5xx are retried only for reads. A write whose answer was lost may
  have happened, so it is raised as `NetworkError` and the caller reads the order back by its
  orderLinkId instead of sending it twice.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import aiohttp
from yarl import URL

from adapters.bybit import errors, intervals
from adapters.bybit.fields import ParseError
from adapters.bybit.parse import (
    Execution,
    VenueOrder,
    VenuePosition,
    Wallet,
    execution_from_venue,
    kline_from_rest,
    order_from_venue,
    position_from_venue,
    trade_from_rest,
    wallet_from_venue,
)
from adapters.bybit.rest_health import RestHealth
from adapters.bybit.signing import VenueClock, rest_signature
from bot.clock import Clock
from bot.config import BybitConfig
from bot.events import Bar, Trade
from bot.log import get_logger
from bot.protocols import LinkState

log = get_logger(__name__)

USER_AGENT = "lorabot/0.1 (bybit-v5)"
MAX_PAGES = 100


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot encode {type(value).__name__} in a Bybit request")


class BybitRest:
    """One REST client per process side (broker, streams, downloader); `close()` when done.

    `clock` is the run's injected clock: signatures are stamped from it plus the measured offset.
    """

    def __init__(
        self,
        config: BybitConfig,
        base_url: str,
        clock: Clock,
        *,
        api_key: str | None = None,
        api_secret: str | None = None,
    ) -> None:
        self.config = config
        self.base_url = base_url.rstrip("/")
        self._key = api_key
        self._secret = api_secret
        self.clock = VenueClock(clock)
        self._session: aiohttp.ClientSession | None = None
        self._slots = asyncio.Semaphore(config.rest_concurrency)
        self._sync_lock = asyncio.Lock()
        self._last_sync_local_ms = 0
        self.calls = 0
        self.retries = 0
        self.health = RestHealth()

    @property
    def has_keys(self) -> bool:
        return bool(self._key and self._secret)

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.config.rest_timeout),
                connector=aiohttp.TCPConnector(limit=self.config.rest_concurrency * 2),
                headers={"User-Agent": USER_AGENT},
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def __aenter__(self) -> BybitRest:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- transport -------------------------------------------------------------------------------

    async def request(
        self, method: str, path: str, params: Mapping[str, Any] | None = None, *,
        signed: bool = False, order: bool = False,
    ) -> dict[str, Any]:  # fmt: skip
        """The `result` of one call, retried per the policy above; raises a `BybitError`."""
        idempotent = method == "GET"
        try:
            result = await self._retried(method, path, params, signed, order, idempotent)
        except errors.BybitError as error:
            self.health.failed(path, error)
            raise
        self.health.answered()
        return result

    def link(self) -> LinkState:
        return self.health.link(self.base_url, self.calls)

    async def _retried(
        self, method: str, path: str, params: Mapping[str, Any] | None, signed: bool,
        order: bool, idempotent: bool,
    ) -> dict[str, Any]:  # fmt: skip
        attempts = self.config.rest_retries + 1
        delay = self.config.rest_backoff
        for attempt in range(1, attempts + 1):
            sent_ms = self.clock.local_ms()
            try:
                return await self._send(method, path, params or {}, signed=signed, order=order)
            except errors.RateLimited as error:
                if attempt == attempts:
                    raise
                wait = self._rate_limit_wait(error, delay)
                log.warning("bybit rate limited", path=path, code=error.code, wait_s=round(wait, 3))
            except errors.ClockSkew:
                if attempt == attempts:
                    raise
                await self.sync_clock(force=True, since_ms=sent_ms)
                wait = 0.0
            except errors.Transient as error:
                if not idempotent or attempt == attempts:
                    raise
                wait = delay * random.uniform(0.5, 1.0)
                log.warning("bybit request failed, retrying", path=path, error=str(error))
            self.retries += 1
            if wait > 0:
                await asyncio.sleep(wait)
            delay = min(delay * 2, self.config.rest_backoff_max)
        raise AssertionError("unreachable")  # pragma: no cover

    def _rate_limit_wait(self, error: errors.RateLimited, fallback: float) -> float:
        if error.reset_ms:
            wait = (error.reset_ms - self.clock.now_ms()) / 1000
            return min(max(wait, 0.01), self.config.rest_backoff_max)
        return min(fallback * random.uniform(0.5, 1.0), self.config.rest_backoff_max)

    async def _send(
        self, method: str, path: str, params: Mapping[str, Any], *, signed: bool, order: bool
    ) -> dict[str, Any]:
        """One call; every error it raises has the keys masked (see `errors.redact`)."""
        try:
            return await self._send_unmasked(method, path, params, signed=signed, order=order)
        except errors.BybitError as error:
            raise error.redacted((self._key, self._secret)) from None

    async def _send_unmasked(
        self, method: str, path: str, params: Mapping[str, Any], *, signed: bool, order: bool
    ) -> dict[str, Any]:
        session = self._ensure_session()
        query = ""
        body = ""
        clean = {k: v for k, v in params.items() if v is not None}
        if method == "GET":
            query = "&".join(f"{k}={_text(v)}" for k, v in clean.items())
        else:
            body = json.dumps(clean, separators=(",", ":"), default=_json_default)
        headers = {"Content-Type": "application/json"}
        if signed:
            if not self.has_keys:
                raise errors.CredentialsError(
                    10003, "this request needs API keys and none are configured", path
                )
            assert self._key is not None and self._secret is not None
            timestamp = self.clock.now_ms()
            window = self.config.recv_window
            headers.update(
                {
                    "X-BAPI-API-KEY": self._key,
                    "X-BAPI-TIMESTAMP": str(timestamp),
                    "X-BAPI-RECV-WINDOW": str(window),
                    "X-BAPI-SIGN-TYPE": "2",
                    "X-BAPI-SIGN": rest_signature(
                        self._secret, timestamp, self._key, window, query or body
                    ),
                }
            )
        url = URL(f"{self.base_url}{path}" + (f"?{query}" if query else ""), encoded=True)
        where = f"{method} {path}"
        self.calls += 1
        async with self._slots:
            try:
                async with session.request(
                    method, url, data=body or None, headers=headers
                ) as response:
                    text = await response.text()
                    status = response.status
                    reset = response.headers.get("X-Bapi-Limit-Reset-Timestamp", "")
            except TimeoutError:
                raise errors.NetworkError(
                    -1, f"no answer within {self.config.rest_timeout}s", where
                ) from None
            except aiohttp.ClientError as error:
                raise errors.NetworkError(-1, f"{type(error).__name__}: {error}", where) from None
        if status != 200:
            raise errors.from_http_status(status, text, where)
        try:
            payload = json.loads(text)
        except ValueError:
            raise errors.Transient(-2, f"answer is not JSON: {text[:120]!r}", where) from None
        if not isinstance(payload, dict):
            raise errors.Transient(-2, f"answer is not a JSON object: {text[:120]!r}", where)
        code = payload.get("retCode", payload.get("ret_code", 0))
        if code:
            message = str(payload.get("retMsg", payload.get("ret_msg", "")))
            if int(code) in (10006, 10018, 10429):
                raise errors.RateLimited(
                    int(code), message, where, int(reset) if reset.isdigit() else 0
                )
            raise errors.from_code(int(code), message, where, order=order)
        result = payload.get("result")
        if not isinstance(result, dict):
            result = {}
        if "time" in payload and "time" not in result:
            result["_time"] = payload["time"]
        return result

    # -- clock -------------------------------------------------------------------------------------

    async def sync_clock(self, force: bool = False, since_ms: int = 0) -> int:
        """Measure venue minus local time from /v5/market/time.

        Without `force`, at most once a second. With `since_ms` (when a request that failed with
        10002 was sent), a measurement that finished after it is reused: many requests failing
        together resync once.
        """
        async with self._sync_lock:
            now = self.clock.local_ms()
            if not force and self.clock.measured and now - self._last_sync_local_ms < 1000:
                return self.clock.offset_ms
            if since_ms and self.clock.measured and self._last_sync_local_ms > since_ms:
                return self.clock.offset_ms
            sent = self.clock.local_ms()
            result = await self._send("GET", "/v5/market/time", {}, signed=False, order=False)
            received = self.clock.local_ms()
            if result.get("timeNano"):
                venue = int(result["timeNano"]) // 1_000_000
            elif result.get("timeSecond"):
                venue = int(result["timeSecond"]) * 1000
            else:
                venue = int(result.get("_time", received))
            offset = self.clock.update(sent, venue, received)
            self._last_sync_local_ms = received
            if abs(offset) > 1000:
                log.warning("clock differs from bybit", offset_ms=offset)
            return offset

    # -- market data -------------------------------------------------------------------------------

    async def server_time_ms(self) -> int:
        result = await self.request("GET", "/v5/market/time")
        return (
            int(result["timeNano"]) // 1_000_000
            if "timeNano" in result
            else int(result["timeSecond"]) * 1000
        )

    async def kline_page(
        self,
        category: str,
        symbol: str,
        interval: str,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 1000,
    ) -> tuple[list[Bar], int | None]:
        """Bars in ascending order (Bybit answers newest first), and the venue's time if given."""
        result = await self.request(
            "GET",
            "/v5/market/kline",
            {
                "category": category,
                "symbol": symbol,
                "interval": interval,
                "start": start_ms,
                "end": end_ms,
                "limit": limit,
            },
        )
        rows = result.get("list") or []
        bars = sorted(
            (kline_from_rest(symbol, interval, row) for row in rows), key=lambda b: b.ts_open
        )
        venue_time = result.get("_time")
        return bars, int(venue_time) if venue_time is not None else None

    async def klines(
        self, category: str, symbol: str, interval: str, start_ms: int, end_ms: int
    ) -> list[Bar]:
        """Every bar opening in [start_ms, end_ms], paging forward 1000 at a time."""
        bars: list[Bar] = []
        cursor = start_ms
        step = intervals.fixed_ms(interval) or 31 * 86_400_000
        for _ in range(MAX_PAGES):
            if cursor > end_ms:
                break
            page_end = min(end_ms, cursor + step * 1000 - 1)
            page, _ = await self.kline_page(category, symbol, interval, cursor, page_end)
            page = [b for b in page if cursor <= b.ts_open.timestamp() * 1000 <= end_ms]
            bars.extend(page)
            cursor = page_end + 1
        return bars

    async def recent_trades(self, category: str, symbol: str, limit: int) -> list[Trade]:
        result = await self.request(
            "GET",
            "/v5/market/recent-trade",
            {"category": category, "symbol": symbol, "limit": limit},
        )
        trades = [trade_from_rest(item) for item in result.get("list") or []]
        return sorted(trades, key=lambda t: t.ts)

    async def instruments(self, category: str, symbol: str | None = None) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = ""
        for _ in range(MAX_PAGES):
            result = await self.request(
                "GET",
                "/v5/market/instruments-info",
                {"category": category, "symbol": symbol, "limit": 1000, "cursor": cursor or None},
            )
            items.extend(result.get("list") or [])
            cursor = str(result.get("nextPageCursor") or "")
            if not cursor or symbol:
                break
        return items

    # -- trading ---------------------------------------------------------------------------------

    async def place_order(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return await self.request("POST", "/v5/order/create", params, signed=True, order=True)

    async def amend_order(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return await self.request("POST", "/v5/order/amend", params, signed=True, order=True)

    async def cancel_order(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return await self.request("POST", "/v5/order/cancel", params, signed=True, order=True)

    async def _paged(
        self, path: str, params: Mapping[str, Any], limit: int, max_pages: int = MAX_PAGES
    ) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = ""
        for _ in range(max_pages):
            page = await self.request(
                "GET", path, {**params, "limit": limit, "cursor": cursor or None}, signed=True
            )
            items.extend(page.get("list") or [])
            cursor = str(page.get("nextPageCursor") or "")
            if not cursor or not page.get("list"):
                break
        return items

    @staticmethod
    def _parse_all(items: Sequence[dict[str, Any]], parser: Any, category: str) -> list[Any]:
        parsed = []
        for item in items:
            try:
                parsed.append(parser(item, category))
            except ParseError as error:
                log.warning("bybit: unreadable record skipped", error=str(error))
        return parsed

    async def open_orders(
        self,
        category: str,
        *,
        symbol: str | None = None,
        settle_coin: str | None = None,
        link_id: str | None = None,
        order_id: str | None = None,
    ) -> list[VenueOrder]:
        """Open orders (or, given an id, that order even if it closed recently)."""
        if category == "linear" and not (symbol or link_id or order_id or settle_coin):
            settle_coin = self.config.settle_coin
        items = await self._paged(
            "/v5/order/realtime",
            {
                "category": category,
                "symbol": symbol,
                "settleCoin": settle_coin if not (symbol or link_id or order_id) else None,
                "orderLinkId": link_id,
                "orderId": order_id,
            },
            limit=50,
        )
        return self._parse_all(items, order_from_venue, category)

    async def order_history(
        self, category: str, *, link_id: str | None = None, order_id: str | None = None
    ) -> list[VenueOrder]:
        items = await self._paged(
            "/v5/order/history",
            {"category": category, "orderLinkId": link_id, "orderId": order_id},
            limit=50,
            max_pages=5,
        )
        return self._parse_all(items, order_from_venue, category)

    async def find_order(
        self, category: str, *, link_id: str | None = None, order_id: str | None = None
    ) -> VenueOrder | None:
        """The venue's view of one order, open or closed; None if it never reached Bybit."""
        found = await self.open_orders(category, link_id=link_id, order_id=order_id)
        if not found:
            found = await self.order_history(category, link_id=link_id, order_id=order_id)
        return max(found, key=lambda o: (o.updated, o.cum_exec_qty)) if found else None

    async def executions(
        self,
        category: str,
        *,
        symbol: str | None = None,
        order_id: str | None = None,
        link_id: str | None = None,
        start_ms: int | None = None,
    ) -> list[Execution]:
        items = await self._paged(
            "/v5/execution/list",
            {
                "category": category,
                "symbol": symbol,
                "orderId": order_id,
                "orderLinkId": link_id if not order_id else None,
                "startTime": start_ms,
            },
            limit=100,
        )
        executions = self._parse_all(items, execution_from_venue, category)
        return sorted(executions, key=lambda e: e.ts)

    async def positions(
        self, category: str, *, symbol: str | None = None, settle_coin: str | None = None
    ) -> list[VenuePosition]:
        if category == "linear" and not symbol and not settle_coin:
            settle_coin = self.config.settle_coin
        items = await self._paged(
            "/v5/position/list",
            {"category": category, "symbol": symbol, "settleCoin": settle_coin},
            limit=200,
        )
        return self._parse_all(items, position_from_venue, category)

    async def wallet(self, account_type: str | None = None) -> Wallet:
        result = await self.request(
            "GET",
            "/v5/account/wallet-balance",
            {"accountType": account_type or self.config.account_type},
            signed=True,
        )
        accounts = result.get("list") or []
        if not accounts:
            raise errors.BybitError(0, "wallet-balance returned no account", "wallet-balance")
        try:
            return wallet_from_venue(accounts[0])
        except ParseError as error:
            raise errors.BybitError(0, f"unreadable wallet: {error}", "wallet-balance") from None
