"""One log line for every order sent, every answer the venue gives it and every fill.

A trader learns of a trade from the log the moment it happens, not from the next heartbeat. It is
a bus subscriber like the store's journal, so the engine stays free of logging on its hot path;
the daemon logs at info, a replay at debug (a backtest of thousands of fills would otherwise
flood the terminal; `[log] level = "debug"` shows them).
"""

from __future__ import annotations

from typing import Any

from bot.bus import Bus
from bot.events import Fill, OrderRequest, OrderStatus, OrderUpdate
from bot.log import get_logger

log = get_logger("bot.orders")

_ANSWERS = {
    OrderStatus.ACCEPTED: "order acknowledged",
    OrderStatus.UNTRIGGERED: "order acknowledged (conditional)",
    OrderStatus.TRIGGERED: "order triggered",
    OrderStatus.REJECTED: "order rejected",
    OrderStatus.CANCELLED: "order cancelled",
    OrderStatus.EXPIRED: "order expired",
    OrderStatus.FILLED: "order filled",
}


class TradeLog:
    def __init__(self, level: str = "info") -> None:
        self._emit: Any = getattr(log, level)

    def attach(self, bus: Bus) -> None:
        bus.subscribe(OrderRequest, self.on_request)
        bus.subscribe(OrderUpdate, self.on_update)
        bus.subscribe(Fill, self.on_fill)

    def on_request(self, request: OrderRequest) -> None:
        self._emit(
            "order sent",
            client_order_id=request.client_order_id,
            symbol=request.symbol,
            side=request.side.value,
            qty=str(request.qty),
            order_type=request.order_type.value,
            price=None if request.price is None else str(request.price),
            reduce_only=request.reduce_only,
            cause=request.reason,
        )

    def on_update(self, update: OrderUpdate) -> None:
        event = _ANSWERS.get(update.status)
        if event is None:  # submitted / partially filled: the fills say more
            return
        fields: dict[str, Any] = {"client_order_id": update.client_order_id}
        if update.venue_order_id:
            fields["venue_order_id"] = update.venue_order_id
        if update.reason:
            fields["reason"] = update.reason
        if update.status is OrderStatus.REJECTED:
            log.warning(event, **fields)
        else:
            self._emit(event, **fields)

    def on_fill(self, fill: Fill) -> None:
        self._emit(
            "fill",
            client_order_id=fill.client_order_id,
            exec_id=fill.exec_id,
            symbol=fill.symbol,
            side=fill.side.value,
            qty=str(fill.qty),
            price=str(fill.price),
            fee=str(fill.fee),
            liquidity=fill.liquidity.value,
        )
