"""The simulator's position settings: protective levels, leverage, margin mode, liquidation.

- `POST /v5/position/trading-stop` (Full mode, LastPrice triggers, market exits): the levels
  are stored on the position; an absent key keeps a level, "0" cancels it; a level on the wrong
  side of the last price, a level off the tick or a flat position is 10001, nothing changed is
  34040 ("not modified"), as Bybit answers.
- Every market tick the last price is checked against them: a long's stop-loss triggers at or
  below it, its take-profit at or above; the trailing stop follows the best last price since it
  was set (or since `activePrice` was reached) at its distance. A trigger creates the closing
  order as Bybit does: no orderLinkId, `stopOrderType` StopLoss / TakeProfit / TrailingStop,
  `createType` CreateByStopLoss / CreateByTakeProfit / CreateByTrailingStop, reduce-only market,
  reported Triggered, then its executions (carrying the same two fields), then Filled.
- `POST /v5/position/set-leverage` (1..100, buy = sell; 110043 when unchanged) and
  `POST /v5/account/set-margin-mode` (ISOLATED_MARGIN / REGULAR_MARGIN; PORTFOLIO_MARGIN is
  3400045 here), read back by `GET /v5/account/info` and the position list's `leverage`.
- Liquidation uses them: an isolated position when the last price reaches
  `entry x (1 - 1/leverage + mmr)` (a long), a cross account when its equity at the marks falls
  to the positions' maintenance margin; the close is a `BustTrade` execution of an order with
  `createType` CreateByTakeOverPassThrough.

Simplification: the untriggered TP/SL conditional orders Bybit lists are not listed here; the
levels live on the position (which is where `/v5/position/list` reports them on Bybit too).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from adapters.bybit.sim.accounts import (
    ZERO,
    Account,
    SimError,
    SimOrder,
    SimPosition,
    decimal_param,
    liquidation_price,
    maintenance_rate,
)
from adapters.bybit.sim.market import SymbolMarket

if TYPE_CHECKING:
    from adapters.bybit.sim.exchange import Exchange

MAX_LEVERAGE = Decimal(100)
MARGIN_MODES = ("ISOLATED_MARGIN", "REGULAR_MARGIN", "PORTFOLIO_MARGIN")
# level -> (stopOrderType, createType)
TRIGGERS = {
    "stop_loss": ("StopLoss", "CreateByStopLoss"),
    "take_profit": ("TakeProfit", "CreateByTakeProfit"),
    "trailing_stop": ("TrailingStop", "CreateByTrailingStop"),
}


class PositionRules:
    """Trading-stop, leverage and margin-mode endpoints, and what they trigger on each tick."""

    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self.market = exchange.market

    # -- endpoints ---------------------------------------------------------------------------

    def trading_stop(self, account: Account, params: Mapping[str, Any]) -> dict[str, Any]:
        category, market = self.exchange._symbol(params)
        if category != "linear":
            raise SimError(10001, "params error: trading-stop is for linear and inverse")
        mode = str(params.get("tpslMode") or "Full")
        if mode != "Full":
            raise SimError(10001, f"params error: tpslMode {mode!r}: the simulator has Full only")
        for key in ("tpTriggerBy", "slTriggerBy"):
            if str(params.get(key) or "LastPrice") != "LastPrice":
                raise SimError(10001, f"params error: {key}: the simulator triggers by LastPrice")
        position = account.positions.get(market.instrument.symbol)
        if position is None or position.size == 0:
            raise SimError(10001, "can not set tp/sl/ts for zero position")
        last = self._last(market)
        levels = {
            "stop_loss": decimal_param(params, "stopLoss", required=False),
            "take_profit": decimal_param(params, "takeProfit", required=False),
            "trailing_stop": decimal_param(params, "trailingStop", required=False),
            "active_price": decimal_param(params, "activePrice", required=False),
        }
        current = {
            "stop_loss": position.stop_loss,
            "take_profit": position.take_profit,
            "trailing_stop": position.trailing_stop,
            "active_price": position.active_price,
        }
        new = {k: current[k] if v is None else v for k, v in levels.items()}
        self._check_levels(market, position, last, new, current)
        if new == current:
            raise SimError(34040, "not modified")
        if new["trailing_stop"] != current["trailing_stop"] or (
            new["active_price"] != current["active_price"]
        ):
            position.trail_extreme = None if new["active_price"] else last
        position.stop_loss = new["stop_loss"]
        position.take_profit = new["take_profit"]
        position.trailing_stop = new["trailing_stop"]
        position.active_price = new["active_price"]
        position.updated_ms = self.exchange.clock_ms()
        self.exchange._push_account(account, market)
        return {}

    def _check_levels(
        self,
        market: SymbolMarket,
        position: SimPosition,
        last: Decimal,
        new: dict[str, Decimal],
        current: dict[str, Decimal],
    ) -> None:
        tick = market.instrument.tick_size
        long = position.size > 0
        side = "Buy" if long else "Sell"
        for key, value in new.items():
            if value < 0:
                raise SimError(10001, f"params error: {key} cannot be less than 0")
            if value and value % tick != 0:
                raise SimError(10001, f"params error: {key} {value} is not a multiple of {tick}")
        stop, target = new["stop_loss"], new["take_profit"]
        if stop and stop != current["stop_loss"] and (stop >= last if long else stop <= last):
            relation = "lower" if long else "higher"
            raise SimError(
                10001,
                f"StopLoss:{stop} set for {side} position should {relation} than "
                f"base_price:{last}??LastPrice",
            )
        if (
            target
            and target != current["take_profit"]
            and (target <= last if long else target >= last)
        ):
            relation = "higher" if long else "lower"
            raise SimError(
                10001,
                f"TakeProfit:{target} set for {side} position should be {relation} than "
                f"base_price:{last}??LastPrice",
            )

    def set_leverage(self, account: Account, params: Mapping[str, Any]) -> dict[str, Any]:
        category, market = self.exchange._symbol(params)
        if category != "linear":
            raise SimError(10001, "params error: set-leverage is for linear and inverse")
        buy = decimal_param(params, "buyLeverage")
        sell = decimal_param(params, "sellLeverage")
        assert buy is not None and sell is not None
        if buy != sell:
            raise SimError(10001, "params error: buy leverage must equal sell leverage")
        if not Decimal(1) <= buy <= MAX_LEVERAGE or buy % Decimal("0.01") != 0:
            raise SimError(10001, f"params error: leverage {buy} invalid (1..{MAX_LEVERAGE})")
        symbol = market.instrument.symbol
        if account.leverage_of(symbol) == buy:
            raise SimError(110043, "Set leverage not modified")
        account.leverages[symbol] = buy
        position = account.positions.get(symbol)
        if position is not None:
            position.updated_ms = self.exchange.clock_ms()
            self.exchange._push_account(account, market)
        return {}

    def set_margin_mode(self, account: Account, params: Mapping[str, Any]) -> dict[str, Any]:
        mode = str(params.get("setMarginMode") or "")
        if mode not in MARGIN_MODES:
            raise SimError(10001, f"params error: setMarginMode {mode!r} invalid")
        if mode == "PORTFOLIO_MARGIN":
            raise SimError(3400045, "Set margin mode failed")
        account.margin_mode = mode
        return {"reasons": []}

    def account_info(self, account: Account, params: Mapping[str, Any]) -> dict[str, Any]:
        now = str(self.exchange.clock_ms())
        return {
            "marginMode": account.margin_mode,
            "unifiedMarginStatus": 5,
            "isMasterTrader": False,
            "spotHedgingStatus": "OFF",
            "updatedTime": now,
            "dcpStatus": "OFF",
            "timeWindow": 10,
            "smpGroup": 0,
        }

    # -- the market moves ----------------------------------------------------------------------

    def on_tick(self) -> None:
        for account in self.exchange.accounts.values():
            for symbol, position in list(account.positions.items()):
                market = self.market.get("linear", symbol)
                if market is None or position.size == 0:
                    continue
                last = self._last(market)
                triggered = self._triggered(position, last)
                if triggered is not None:
                    level, price = triggered
                    stop_type, create_type = TRIGGERS[level]
                    self.close(account, market, position, stop_type, create_type, price)
                elif self._liquidated(account, position, market, last):
                    self.close(
                        account,
                        market,
                        position,
                        "",
                        "CreateByTakeOverPassThrough",
                        None,
                        "BustTrade",
                    )

    def _triggered(self, position: SimPosition, last: Decimal) -> tuple[str, Decimal] | None:
        """The level the last price reached, if any (the stop first: the pessimistic one)."""
        long = position.size > 0
        distance = position.trailing_stop
        if distance:
            active = position.trail_extreme is not None or (
                last >= position.active_price if long else last <= position.active_price
            )
            if active:
                extreme = position.trail_extreme if position.trail_extreme is not None else last
                position.trail_extreme = max(extreme, last) if long else min(extreme, last)
        stops = []
        if position.stop_loss:
            stops.append(("stop_loss", position.stop_loss))
        if distance and position.trail_extreme is not None:
            trail = position.trail_extreme - distance if long else position.trail_extreme + distance
            stops.append(("trailing_stop", trail))
        for level, price in sorted(stops, key=lambda s: s[1], reverse=long):
            if last <= price if long else last >= price:
                return level, price
        target = position.take_profit
        if target and (last >= target if long else last <= target):
            return "take_profit", target
        return None

    def _liquidated(
        self, account: Account, position: SimPosition, market: SymbolMarket, last: Decimal
    ) -> bool:
        level = liquidation_price(account, position)
        if level is not None:
            return last <= level if position.size > 0 else last >= level
        if account.margin_mode == "ISOLATED_MARGIN":
            return False
        valuation = self.exchange.valuation
        equity = account.coins.get("USDT", ZERO) + valuation.unrealised(account)
        maintenance = sum(
            (
                abs(p.size) * valuation.mark(m) * maintenance_rate(s)
                for s, p in account.positions.items()
                if p.size and (m := self.market.get("linear", s)) is not None
            ),
            ZERO,
        )
        return equity <= maintenance

    def close(
        self,
        account: Account,
        market: SymbolMarket,
        position: SimPosition,
        stop_type: str,
        create_type: str,
        trigger: Decimal | None,
        exec_type: str = "Trade",
    ) -> SimOrder:
        """The venue's own reduce-only market order for the whole position, swept at once."""
        exchange = self.exchange
        now = exchange.clock_ms()
        order = SimOrder(
            order_id=self.market.new_id(),
            link_id="",
            category="linear",
            symbol=position.symbol,
            side="Sell" if position.size > 0 else "Buy",
            order_type="Market",
            qty=abs(position.size),
            price=None,
            time_in_force="IOC",
            reduce_only=True,
            created_ms=now,
            last_price_on_created=self._last(market),
            status="Triggered",
            updated_ms=now,
            stop_order_type=stop_type,
            create_type=create_type,
            trigger_price=trigger,
            exec_type=exec_type,
        )
        account.orders[order.order_id] = order
        exchange._push_order(account, order)
        bid, ask = market.quotes(self.market.now_ms())
        exchange._sweep(account, market, order, bid, ask)
        if order.cum_qty < order.qty:
            exchange._finish_unfilled(order)
        exchange._push_order(account, order)
        exchange._push_account(account, market)
        return order

    def _last(self, market: SymbolMarket) -> Decimal:
        if market.last_price is not None:
            return market.last_price
        return self.exchange.valuation.mark(market)
