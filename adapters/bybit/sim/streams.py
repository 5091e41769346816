"""The simulator's websockets: Bybit v5's public streams and the authenticated private one.

Public streams (`/v5/public/{linear,spot}`) push klines, trades and tickers on every market tick;
the private stream (`/v5/private`) authenticates like Bybit (`GET/realtime{expires}` signed) and
pushes order, execution, position and wallet updates as the exchange makes them. Armed
websocket faults (silences, malformed frames, delays, dropped/duplicated/reordered executions)
are applied here.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import itertools
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from adapters.bybit import intervals
from adapters.bybit.signing import ws_auth_signature
from adapters.bybit.sim.accounts import Account
from adapters.bybit.sim.rest_api import ticker_record
from bot.log import get_logger

if TYPE_CHECKING:
    from adapters.bybit.sim.server import Simulator

log = get_logger(__name__)

PRIVATE_TOPICS = ("order", "execution", "position", "wallet")


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


class Streams:
    """Every websocket connection of one simulator, and the market ticks that feed them."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.connections: list[_Conn] = []
        self._held: _Push | None = None
        self._ids = itertools.count(1)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/v5/public/{category}", self._ws_public),
            web.get("/v5/private", self._ws_private),
        ]

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
            delay = self.sim.faults.take_ws_delay(conn.kind)
            if delay:
                await asyncio.sleep(delay)
            if self.sim.faults.take_malformed(conn.kind):
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
                    if self.sim.config.request_latency > 0:
                        await asyncio.sleep(self.sim.config.request_latency)
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
        if self.sim.faults.ws_rejected():
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
            if not self.sim.faults.silenced("public"):
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
            return (
                parts[1] in intervals.CODES and self.sim.market.get(category, parts[2]) is not None
            )
        if len(parts) == 2 and parts[0] in ("publicTrade", "tickers"):
            return self.sim.market.get(category, parts[1]) is not None
        return False

    def _initial_push(self, conn: _Conn, topic: str) -> None:
        parts = topic.split(".")
        market = self.sim.market.get(conn.category, parts[-1])
        if market is None:
            return
        now = self.sim.market.now_ms()
        if parts[0] == "tickers":
            self._send(
                conn,
                {
                    "topic": topic,
                    "type": "snapshot",
                    "data": ticker_record(
                        self.sim.market, self.sim.config.depth_lots, market, delta=False
                    ),
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
        if self.sim.faults.ws_rejected():
            raise web.HTTPServiceUnavailable(text="simulated outage")
        conn = await self._open_ws(request, "private", "private")
        return await self._serve(conn, self._private_op)

    def _private_op(self, conn: _Conn, data: dict[str, Any]) -> None:
        op = data.get("op")
        req_id = data.get("req_id", "")
        if op == "ping":
            if not self.sim.faults.silenced("private"):
                self._send(
                    conn,
                    {
                        "req_id": req_id,
                        "op": "pong",
                        "args": [str(self.sim.now_ms())],
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
            conn.account = self.sim.account
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
        if key != self.sim.account.api_key:
            return 10003, "Invalid apikey"
        try:
            expires_ms = int(expires)
        except (TypeError, ValueError):
            return 10001, "Params Error"
        if expires_ms <= self.sim.now_ms():
            return 10002, "Params Error: request expired"
        expected = ws_auth_signature(self.sim.account.api_secret, expires_ms)
        if not hmac.compare_digest(expected, str(signature)):
            return 10004, "Invalid sign"
        return None

    def _on_private(self, account: Account, topic: str, record: dict[str, Any]) -> None:
        faults = self.sim.faults
        if topic == "execution" and faults.drop_executions > 0:
            faults.drop_executions -= 1
            return
        message = json.dumps(
            {
                "id": uuid.uuid4().hex,
                "topic": topic,
                "creationTime": self.sim.now_ms(),
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
        if self.sim.faults.silenced("private"):
            return
        wanted = (push.topic, f"{push.topic}.{push.category}")
        for conn in self.connections:
            if conn.kind != "private" or conn.account is not push.account:
                continue
            if wanted[0] in conn.topics or wanted[1] in conn.topics:
                conn.queue.put_nowait(push.message)

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.sim.config.tick_interval)
            try:
                self._tick()
            except Exception:
                log.exception("simulator tick failed")

    def _tick(self) -> None:
        now = self.sim.market.now_ms()
        trades = {
            key: self.sim.market.generate_trades(m, now)
            for key, m in self.sim.market.symbols.items()
        }
        self.sim.exchange.on_tick()
        publics = [c for c in self.connections if c.kind == "public"]
        if not publics or self.sim.faults.silenced("public"):
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
        market = self.sim.market.get(category, parts[-1])
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
                        "data": ticker_record(
                            self.sim.market, self.sim.config.depth_lots, market, delta=delta
                        ),
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
