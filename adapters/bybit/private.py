"""Bybit's private websocket: HMAC auth, then the order, execution, position and wallet topics.

Messages are parsed here and handed to a `PrivateHandler` (the broker) on the event-loop thread,
in the order they arrived. The auth signature uses the venue clock, like REST signing, so a fast
or slow host clock does not make `expires` look stale to Bybit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from adapters.bybit.fields import ParseError
from adapters.bybit.parse import (
    Execution,
    VenueOrder,
    VenuePosition,
    Wallet,
    execution_from_venue,
    order_from_venue,
    position_from_venue,
    wallet_from_venue,
)
from adapters.bybit.signing import VenueClock, ws_auth_signature
from adapters.bybit.ws import WsConnection
from bot.config import BybitConfig
from bot.log import get_logger

log = get_logger(__name__)

TOPICS = ("order", "execution", "position", "wallet")
AUTH_EXPIRY_MS = 10_000


class PrivateHandler(Protocol):
    def on_venue_order(self, order: VenueOrder) -> None: ...

    def on_execution(self, execution: Execution) -> None: ...

    def on_position(self, position: VenuePosition) -> None: ...

    def on_wallet(self, wallet: Wallet) -> None: ...

    async def on_private_connected(self, reconnected: bool) -> None: ...


class BybitPrivateStream:
    def __init__(
        self,
        config: BybitConfig,
        url: str,
        api_key: str,
        api_secret: str,
        clock: VenueClock,
        handler: PrivateHandler,
        resync_clock: Callable[[], Awaitable[Any]],
    ) -> None:
        self.category = config.category
        self._key = api_key
        self._secret = api_secret
        self._clock = clock
        self._handler = handler
        self.unreadable = 0
        self.connection = WsConnection(
            "private",
            url,
            TOPICS,
            on_message=self._on_message,
            on_connected=handler.on_private_connected,
            auth_args=self._auth_args,
            on_auth_expired=resync_clock,
            secrets=(api_key, api_secret),
            ping_interval=config.ping_interval,
            silence_timeout=config.silence_timeout,
            connect_timeout=config.connect_timeout,
            reconnect_initial=config.reconnect_initial,
            reconnect_max=config.reconnect_max,
        )

    async def run(self) -> None:
        await self.connection.run()

    async def _auth_args(self) -> list[Any]:
        expires = self._clock.now_ms() + AUTH_EXPIRY_MS
        return [self._key, expires, ws_auth_signature(self._secret, expires)]

    async def _on_message(self, data: dict[str, Any]) -> None:
        topic = str(data["topic"]).split(".")[0]
        items = data.get("data")
        if not isinstance(items, list):
            self.unreadable += 1
            log.warning("bybit private: 'data' is not a list", topic=topic)
            return
        handler = self._handler
        for item in items:
            try:
                if topic == "order":
                    order = order_from_venue(item)
                    if order.category in ("", self.category):
                        handler.on_venue_order(order)
                elif topic == "execution":
                    execution = execution_from_venue(item)
                    if execution.category in ("", self.category):
                        handler.on_execution(execution)
                elif topic == "position":
                    position = position_from_venue(item)
                    if position.category in ("", self.category):
                        handler.on_position(position)
                elif topic == "wallet":
                    handler.on_wallet(wallet_from_venue(item))
            except ParseError as error:
                self.unreadable += 1
                log.warning(
                    "bybit private: unreadable record skipped", topic=topic, error=str(error)
                )
