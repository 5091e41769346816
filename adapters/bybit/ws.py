"""One Bybit v5 websocket kept alive: connect, authenticate, subscribe, ping, reconnect.

Native asyncio (aiohttp) rather than pybit's `WebSocket`, whose callbacks run on a
websocket-client thread, which reconnects on its own without telling anyone (so a gap cannot be
filled), and which raises from that thread on a bad auth. Here:

- a ping (`{"op": "ping"}`) goes out every `ping_interval`; any message, pong included, proves
  the connection alive, and `silence_timeout` without one closes it (a half-open TCP connection
  otherwise looks healthy for minutes);
- a lost connection is retried with jittered exponential backoff (`reconnect_initial` doubling
  to `reconnect_max`), the same topics are subscribed again, and `on_connected(reconnected=True)`
  lets the owner fill what it missed;
- a frame that is not JSON is logged, counted and skipped; it never ends the connection;
- a refused subscription is a configuration error (`SubscriptionRefused`, a `UserError`); bad
  credentials are fatal (`CredentialsError`); an expired auth resyncs the clock and retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from adapters.bybit import errors
from bot.errors import UserError
from bot.log import get_logger
from bot.protocols import LinkState

log = get_logger(__name__)

MAX_ARGS_PER_REQUEST = 10  # Bybit's spot limit; linear allows more, 10 is safe everywhere
MAX_MESSAGE = 16 * 1024 * 1024

OnMessage = Callable[[dict[str, Any]], Awaitable[None]]
OnConnected = Callable[[bool], Awaitable[None]]
AuthArgs = Callable[[], Awaitable[list[Any]]]


class SubscriptionRefused(UserError):
    """Bybit refused a topic (an unknown symbol or interval for this category)."""


class _ConnectionLost(Exception):
    pass


def is_pong(reply: dict[str, Any]) -> bool:
    """Public streams answer a ping with op "ping" and ret_msg "pong"; the private one with op
    "pong"."""
    return reply.get("op") == "pong" or (
        reply.get("op") == "ping" and reply.get("ret_msg") == "pong"
    )


def check_auth(reply: dict[str, Any], url: str, secrets: Sequence[str] = ()) -> None:
    """Raise for a refused auth: an expired signature resyncs the clock, anything else is fatal.

    `secrets` are masked out of the venue's message (it may echo what was signed)."""
    if reply.get("success"):
        return
    message = errors.redact(
        str(reply.get("ret_msg") or reply.get("retMsg") or "auth refused"), secrets
    )
    code = int(reply.get("retCode") or 0)
    if code == 10002 or "expire" in message.lower() or "timestamp" in message.lower():
        raise errors.ClockSkew(10002, message, f"auth {url}")
    raise errors.CredentialsError(
        code or 10003, f"websocket auth refused: {message}", f"auth {url}"
    )


def check_subscription(reply: dict[str, Any], topics: Sequence[str], url: str) -> None:
    if not reply.get("success"):
        message = reply.get("ret_msg") or "no reason given"
        raise SubscriptionRefused(
            f"Bybit refused the subscription to {', '.join(topics)} on {url}: {message}"
        )


@dataclass
class WsStats:
    messages: int = 0
    malformed: int = 0
    ignored: int = 0
    handler_errors: int = 0
    connects: int = 0
    reconnects: int = 0
    silences: int = 0
    last_error: str | None = None


class WsConnection:
    """Runs until cancelled (or until a fatal error, which it raises)."""

    def __init__(
        self,
        name: str,
        url: str,
        topics: Sequence[str],
        *,
        on_message: OnMessage,
        ping_interval: float,
        silence_timeout: float,
        connect_timeout: float,
        reconnect_initial: float,
        reconnect_max: float,
        on_connected: OnConnected | None = None,
        auth_args: AuthArgs | None = None,
        on_auth_expired: Callable[[], Awaitable[Any]] | None = None,
        secrets: Sequence[str] = (),
    ) -> None:
        self.name = name
        self.url = url
        self.topics = list(topics)
        self._on_message = on_message
        self._on_connected = on_connected
        self._auth_args = auth_args
        self._on_auth_expired = on_auth_expired
        self._secrets = tuple(secrets)
        self.ping_interval = ping_interval
        self.silence_timeout = silence_timeout
        self.connect_timeout = connect_timeout
        self.reconnect_initial = reconnect_initial
        self.reconnect_max = reconnect_max
        self.stats = WsStats()
        self.ready = asyncio.Event()  # set while subscribed
        self._req_ids = itertools.count(1)
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._last_rx = 0.0
        self._in_handler = False
        self._ws: aiohttp.ClientWebSocketResponse | None = None

    def link(self, name: str) -> LinkState:
        """This connection as the console shows it: up while subscribed."""
        stats = self.stats
        return LinkState(
            name=name,
            target=self.url,
            up=self.ready.is_set(),
            connects=stats.connects,
            reconnects=stats.reconnects,
            messages=stats.messages,
            errors=stats.malformed + stats.handler_errors,
            last_error=stats.last_error,
        )

    # -- lifecycle -----------------------------------------------------------------------------

    async def run(self) -> None:
        failures = 0
        reconnected = False
        async with aiohttp.ClientSession() as session:
            while True:
                try:
                    await self._connect_once(session, reconnected)
                    failures = 0  # the connection was up; the next outage starts afresh
                except (UserError, asyncio.CancelledError):
                    raise
                except errors.ClockSkew as error:
                    log.warning(
                        "bybit websocket auth expired, resyncing clock",
                        stream=self.name,
                        error=str(error),
                    )
                    if self._on_auth_expired is not None:
                        await self._on_auth_expired()
                except (aiohttp.ClientError, OSError, TimeoutError, _ConnectionLost) as error:
                    self.stats.last_error = f"{type(error).__name__}: {error}"
                    log.warning(
                        "bybit websocket lost",
                        stream=self.name,
                        url=self.url,
                        error=f"{type(error).__name__}: {error}",
                    )
                    failures += 1
                self.ready.clear()
                self._fail_pending()
                reconnected = True
                self.stats.reconnects += 1
                delay = min(self.reconnect_max, self.reconnect_initial * 2 ** max(failures - 1, 0))
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))

    async def _connect_once(self, session: aiohttp.ClientSession, reconnected: bool) -> None:
        timeout = aiohttp.ClientWSTimeout(ws_receive=None, ws_close=1.0)
        ws = await asyncio.wait_for(
            session.ws_connect(
                self.url, autoping=True, heartbeat=None, max_msg_size=MAX_MESSAGE, timeout=timeout
            ),
            self.connect_timeout,
        )
        self._ws = ws
        self.stats.connects += 1
        loop = asyncio.get_running_loop()
        self._last_rx = loop.time()
        reader = asyncio.create_task(self._read(ws), name=f"{self.name}-reader")
        keepalive = asyncio.create_task(self._keepalive(ws), name=f"{self.name}-keepalive")
        try:
            handshake = asyncio.create_task(self._handshake(ws))
            done, _ = await asyncio.wait(
                {handshake, reader},
                timeout=self.connect_timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if handshake not in done:
                handshake.cancel()
                if reader in done:
                    reader.result()
                    raise _ConnectionLost("closed during the handshake")
                raise _ConnectionLost(f"no auth/subscribe answer within {self.connect_timeout}s")
            handshake.result()
            self.ready.set()
            log.info(
                "bybit websocket subscribed",
                stream=self.name,
                url=self.url,
                topics=len(self.topics),
                reconnected=reconnected,
            )
            if self._on_connected is not None:
                try:
                    await self._on_connected(reconnected)
                except (UserError, asyncio.CancelledError):
                    raise
                except Exception:
                    log.exception("bybit websocket: resync after connect failed", stream=self.name)
            done, _ = await asyncio.wait({reader, keepalive}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
            raise _ConnectionLost("closed by the server")
        finally:
            self.ready.clear()
            for task in (reader, keepalive):
                task.cancel()
            await asyncio.gather(reader, keepalive, return_exceptions=True)
            self._ws = None
            if not ws.closed:
                with contextlib.suppress(TimeoutError, aiohttp.ClientError, OSError):
                    await asyncio.wait_for(ws.close(), 1.0)

    # -- handshake -----------------------------------------------------------------------------

    async def _request(
        self, ws: aiohttp.ClientWebSocketResponse, op: str, args: list[Any]
    ) -> dict[str, Any]:
        req_id = f"{op}-{next(self._req_ids)}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = future
        try:
            await ws.send_str(json.dumps({"req_id": req_id, "op": op, "args": args}))
            return await future
        finally:
            self._pending.pop(req_id, None)

    async def _handshake(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        if self._auth_args is not None:
            reply = await self._request(ws, "auth", await self._auth_args())
            check_auth(reply, self.url, self._secrets)
        for start in range(0, len(self.topics), MAX_ARGS_PER_REQUEST):
            chunk = self.topics[start : start + MAX_ARGS_PER_REQUEST]
            check_subscription(await self._request(ws, "subscribe", chunk), chunk, self.url)

    def _fail_pending(self) -> None:
        for future in self._pending.values():
            if not future.done():
                future.cancel()
        self._pending.clear()

    # -- receive and keepalive ---------------------------------------------------------------------

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        loop = asyncio.get_running_loop()
        loads = json.loads
        stats = self.stats
        on_message = self._on_message
        text_type = aiohttp.WSMsgType.TEXT
        binary_type = aiohttp.WSMsgType.BINARY
        while True:
            message = await ws.receive()
            kind = message.type
            if kind is text_type or kind is binary_type:
                self._last_rx = loop.time()
                try:
                    data = loads(message.data)
                except ValueError:
                    stats.malformed += 1
                    log.warning(
                        "bybit websocket: malformed frame skipped",
                        stream=self.name,
                        frame=str(message.data)[:120],
                    )
                    continue
                if not isinstance(data, dict):
                    stats.malformed += 1
                    continue
                if "topic" in data:
                    stats.messages += 1
                    self._in_handler = True
                    try:
                        await on_message(data)
                    except asyncio.CancelledError:
                        raise
                    except Exception:
                        stats.handler_errors += 1
                        log.exception(
                            "bybit websocket: message handler failed",
                            stream=self.name,
                            topic=data.get("topic"),
                        )
                    finally:
                        # Time spent blocked in the handler (back-pressure) is not silence.
                        self._in_handler = False
                        self._last_rx = loop.time()
                else:
                    self._control(data)
            elif kind in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSING,
                aiohttp.WSMsgType.CLOSED,
            ):
                return
            elif kind is aiohttp.WSMsgType.ERROR:
                raise _ConnectionLost(f"websocket error: {ws.exception()}")

    def _control(self, data: dict[str, Any]) -> None:
        op = data.get("op")
        if is_pong(data):
            return
        req_id = str(data.get("req_id") or "")
        future = self._pending.get(req_id)
        if future is None and op in ("auth", "subscribe"):
            # Some replies come without req_id: hand them to the oldest request of that op.
            future = next((f for key, f in self._pending.items() if key.startswith(f"{op}-")), None)
        if future is not None and not future.done():
            future.set_result(data)
            return
        self.stats.ignored += 1
        log.debug("bybit websocket: unhandled control message", stream=self.name, message=data)

    async def _keepalive(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        loop = asyncio.get_running_loop()
        step = max(0.01, min(self.ping_interval, self.silence_timeout) / 4)
        last_ping = loop.time()
        while True:
            await asyncio.sleep(step)
            now = loop.time()
            if self._in_handler:
                self._last_rx = now
            elif now - self._last_rx >= self.silence_timeout:
                self.stats.silences += 1
                raise _ConnectionLost(f"silent for {self.silence_timeout}s")
            if now - last_ping >= self.ping_interval:
                last_ping = now
                await ws.send_str(
                    json.dumps({"req_id": f"ping-{next(self._req_ids)}", "op": "ping"})
                )

    async def close(self) -> None:
        """Close the current connection (the run loop reconnects unless cancelled)."""
        ws = self._ws
        if ws is not None and not ws.closed:
            await ws.close()
