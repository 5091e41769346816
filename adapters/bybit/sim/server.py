"""The simulator's server: Bybit v5 REST and websockets on one aiohttp port.

Paths are Bybit's own (`/v5/...`, websockets on `/v5/public/{linear,spot}` and `/v5/private`).
The parts, along their seams: `rest_api.py` (REST handlers, authentication, rate limits),
`streams.py` (public and private websockets, the market tick), `admin.py` (`/sim/...`, the
simulator's own API for prices, faults and state, not part of Bybit's). This module holds the
configuration and the lifecycle that ties them to one port.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aiohttp import web

from adapters.bybit.sim.accounts import Account
from adapters.bybit.sim.admin import Admin
from adapters.bybit.sim.announcements import Announcements
from adapters.bybit.sim.exchange import Exchange
from adapters.bybit.sim.faults import Faults
from adapters.bybit.sim.market import Market, SimInstrument, default_instruments
from adapters.bybit.sim.rest_api import RestApi
from adapters.bybit.sim.streams import Streams
from bot.log import get_logger

log = get_logger(__name__)


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
        self.faults = Faults()
        self.announcements = Announcements(self.now_ms)
        self.requests: list[tuple[str, str]] = []  # (method, path) of every REST call
        self.rest = RestApi(self)
        self.streams = Streams(self)
        self.admin = Admin(self)
        self.exchange.on_private = self.streams._on_private
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
        self._ticker_task = asyncio.create_task(self.streams._tick_loop(), name="sim-ticker")
        log.info("bybit simulator listening", url=self.url)

    async def stop(self) -> None:
        if self._ticker_task is not None:
            self._ticker_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker_task
        for conn in list(self.streams.connections):
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
        app.add_routes([*self.rest.routes(), *self.streams.routes(), *self.admin.routes()])
        return app

    # -- what tests and the admin API steer ------------------------------------------------------

    @property
    def limiter(self) -> Any:
        return self.rest.limiter

    @property
    def connections(self) -> list[Any]:
        return self.streams.connections

    def drop_connections(self, kind: str) -> int:
        """Cut every websocket of `kind` without a close frame (a network failure)."""
        return self.streams.drop_connections(kind)

    def set_price(self, symbol: str, price: float) -> None:
        self.market.set_price(symbol, price)

    def state(self) -> dict[str, Any]:
        return self.admin.state()
