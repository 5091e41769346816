"""The simulator's own admin API under `/sim/...` (not Bybit's): prices, faults, state, drops,
announcements.

A test or a user with the simulator in another process steers it here, e.g. `POST /sim/fault`
with `{"name": "rest_delay", "path": "/v5/order/create", "seconds": 3.5, "process_first":
false}` (see faults.py for every fault's JSON form).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from adapters.bybit.sim.server import Simulator


class Admin:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/sim/price", self._admin_price),
            web.post("/sim/fault", self._admin_fault),
            web.post("/sim/drop", self._admin_drop),
            web.get("/sim/state", self._admin_state),
            web.post("/sim/announcement", self._admin_announcement),
        ]

    def state(self) -> dict[str, Any]:
        account = self.sim.account
        return {
            "coins": {coin: str(value) for coin, value in account.coins.items()},
            "positions": {
                name: {
                    "size": str(p.size),
                    "avgPrice": str(p.avg),
                    "cumRealisedPnl": str(p.cum_realised),
                    "leverage": str(account.leverage_of(name)),
                    "stopLoss": str(p.stop_loss),
                    "takeProfit": str(p.take_profit),
                    "trailingStop": str(p.trailing_stop),
                }
                for name, p in account.positions.items()
            },
            "marginMode": account.margin_mode,
            "orders": [o.record() for o in account.orders.values()],
            "executions": len(account.executions),
            "prices": {
                f"{cat}:{name}": str(
                    m.instrument.round_price(m.path.price(self.sim.market.now_ms()))
                )
                for (cat, name), m in self.sim.market.symbols.items()
            },
        }

    async def _admin_price(self, request: web.Request) -> web.Response:
        data = await request.json()
        self.sim.set_price(str(data["symbol"]), float(data["price"]))
        return web.json_response({"ok": True})

    async def _admin_fault(self, request: web.Request) -> web.Response:
        try:
            self.sim.faults.apply(await request.json())
        except (ValueError, KeyError) as error:
            return web.json_response({"ok": False, "error": str(error)}, status=400)
        return web.json_response({"ok": True})

    async def _admin_drop(self, request: web.Request) -> web.Response:
        data = await request.json()
        return web.json_response({"dropped": self.sim.drop_connections(str(data.get("kind")))})

    async def _admin_state(self, request: web.Request) -> web.Response:
        return web.json_response(self.state())

    async def _admin_announcement(self, request: web.Request) -> web.Response:
        try:
            item = self.sim.announcements.add_from_json(await request.json())
        except ValueError as error:
            return web.json_response({"ok": False, "error": str(error)}, status=400)
        return web.json_response({"ok": True, "item": item.record()})
