"""The simulator's accounts: orders, executions and positions as records, and what they are worth.

`Valuation` is Bybit's UNIFIED account arithmetic the simulator needs (mark prices, unrealised
PnL, initial margin of positions and open orders, coins locked by spot orders) and the position
and wallet records built from it, as Bybit's REST and private stream send them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from adapters.bybit.sim.market import Market, SymbolMarket

ZERO = Decimal(0)
FEE_QUANTUM = Decimal("0.00000001")
OPEN_STATUSES = ("New", "PartiallyFilled", "Untriggered")


def _s(value: Decimal) -> str:
    """Plain decimal text without exponent or trailing zeros, as Bybit writes numbers."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


class SimError(Exception):
    """A Bybit error answer: retCode and retMsg."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass
class SimOrder:
    order_id: str
    link_id: str
    category: str
    symbol: str
    side: str
    order_type: str
    qty: Decimal
    price: Decimal | None
    time_in_force: str
    reduce_only: bool
    created_ms: int
    last_price_on_created: Decimal
    status: str = "New"
    cum_qty: Decimal = ZERO
    cum_value: Decimal = ZERO
    cum_fee: Decimal = ZERO
    updated_ms: int = 0
    reject_reason: str = "EC_NoError"
    cancel_type: str = "UNKNOWN"
    # Set on the orders the venue creates itself: a position's TP/SL/trailing stop, liquidation.
    stop_order_type: str = ""
    create_type: str = "CreateByUser"
    trigger_price: Decimal | None = None
    exec_type: str = "Trade"

    @property
    def leaves(self) -> Decimal:
        return self.qty - self.cum_qty if self.status in OPEN_STATUSES else ZERO

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def record(self) -> dict[str, Any]:
        avg = (self.cum_value / self.cum_qty) if self.cum_qty else None
        leaves = self.leaves
        return {
            "category": self.category,
            "symbol": self.symbol,
            "orderId": self.order_id,
            "orderLinkId": self.link_id,
            "blockTradeId": "",
            "side": self.side,
            "orderType": self.order_type,
            "price": str(self.price) if self.price is not None else "0",
            "qty": str(self.qty),
            "orderIv": "",
            "timeInForce": self.time_in_force,
            "orderStatus": self.status,
            "cancelType": self.cancel_type,
            "rejectReason": self.reject_reason,
            "avgPrice": _s(avg.quantize(Decimal("0.00000001"))) if avg else "",
            "leavesQty": str(leaves),
            "leavesValue": _s(leaves * (self.price or avg or ZERO)),
            "cumExecQty": str(self.cum_qty),
            "cumExecValue": _s(self.cum_value),
            "cumExecFee": _s(self.cum_fee),
            "positionIdx": 0,
            "isLeverage": "",
            "lastPriceOnCreated": str(self.last_price_on_created),
            "reduceOnly": self.reduce_only,
            "closeOnTrigger": bool(self.stop_order_type),
            "triggerPrice": str(self.trigger_price) if self.trigger_price is not None else "",
            "takeProfit": "",
            "stopLoss": "",
            "tpTriggerBy": "",
            "slTriggerBy": "",
            "triggerDirection": 0,
            "triggerBy": "LastPrice" if self.stop_order_type else "",
            "tpslMode": "Full" if self.stop_order_type else "",
            "tpLimitPrice": "",
            "slLimitPrice": "",
            "stopOrderType": self.stop_order_type,
            "placeType": "",
            "smpType": "None",
            "smpGroup": 0,
            "smpOrderId": "",
            "feeCurrency": "",
            "createType": self.create_type,
            "createdTime": str(self.created_ms),
            "updatedTime": str(self.updated_ms or self.created_ms),
        }


@dataclass
class SimExecution:
    exec_id: str
    order: SimOrder
    qty: Decimal
    price: Decimal
    fee: Decimal
    fee_rate: Decimal
    fee_currency: str
    is_maker: bool
    closed_size: Decimal
    leaves_qty: Decimal
    mark: Decimal
    time_ms: int
    seq: int

    def record(self) -> dict[str, Any]:
        order = self.order
        return {
            "category": order.category,
            "symbol": order.symbol,
            "execId": self.exec_id,
            "execPrice": str(self.price),
            "execQty": str(self.qty),
            "execType": order.exec_type,
            "execValue": _s(self.qty * self.price),
            "execFee": _s(self.fee),
            "feeRate": str(self.fee_rate),
            "feeCurrency": self.fee_currency,
            "isMaker": self.is_maker,
            "orderId": order.order_id,
            "orderLinkId": order.link_id,
            "orderPrice": str(order.price) if order.price is not None else "0",
            "orderQty": str(order.qty),
            "orderType": order.order_type,
            "stopOrderType": order.stop_order_type or "UNKNOWN",
            "side": order.side,
            "leavesQty": str(self.leaves_qty),
            "closedSize": str(self.closed_size),
            "markPrice": str(self.mark),
            "indexPrice": "",
            "underlyingPrice": "",
            "blockTradeId": "",
            "tradeIv": "",
            "markIv": "",
            "isLeverage": "",
            "createType": order.create_type,
            "execTime": str(self.time_ms),
            "seq": self.seq,
        }


@dataclass
class SimPosition:
    symbol: str
    size: Decimal = ZERO  # signed
    avg: Decimal = ZERO
    cum_realised: Decimal = ZERO
    cur_realised: Decimal = ZERO
    created_ms: int = 0
    updated_ms: int = 0
    seq: int = 0
    # The protective levels (`/v5/position/trading-stop`; zero: none). The trailing stop is a
    # distance; `trail_extreme` is the best last price since it became active.
    stop_loss: Decimal = ZERO
    take_profit: Decimal = ZERO
    trailing_stop: Decimal = ZERO
    active_price: Decimal = ZERO
    trail_extreme: Decimal | None = None

    def clear_levels(self) -> None:
        """Bybit cancels a position's TP/SL orders when the position closes."""
        self.stop_loss = self.take_profit = self.trailing_stop = self.active_price = ZERO
        self.trail_extreme = None


@dataclass
class Account:
    api_key: str
    api_secret: str
    coins: dict[str, Decimal]
    leverage: Decimal = Decimal(10)
    orders: dict[str, SimOrder] = field(default_factory=dict)
    by_link: dict[tuple[str, str], str] = field(default_factory=dict)
    executions: list[SimExecution] = field(default_factory=list)
    positions: dict[str, SimPosition] = field(default_factory=dict)
    cum_realised: dict[str, Decimal] = field(default_factory=dict)
    leverages: dict[str, Decimal] = field(default_factory=dict)  # set-leverage, per symbol
    margin_mode: str = "REGULAR_MARGIN"  # account-wide on a UTA: REGULAR_MARGIN is cross

    def leverage_of(self, symbol: str) -> Decimal:
        return self.leverages.get(symbol, self.leverage)


OnPrivate = Callable[[Account, str, dict[str, Any]], None]

# Bybit's lowest risk-limit tier per symbol (lorabot's `maintenance_margin_rate` defaults).
MAINTENANCE_RATES = {"BTCUSDT": Decimal("0.005"), "ETHUSDT": Decimal("0.01")}


def maintenance_rate(symbol: str) -> Decimal:
    return MAINTENANCE_RATES.get(symbol, Decimal("0.01"))


def liquidation_price(account: Account, position: SimPosition) -> Decimal | None:
    """Where an isolated position is liquidated: its margin (notional / leverage) is used up
    down to the maintenance margin. Cross margin is decided on the whole account (see
    `PositionRules.liquidations`), so it has no price per position here."""
    if account.margin_mode != "ISOLATED_MARGIN" or not position.size:
        return None
    step = 1 / account.leverage_of(position.symbol)
    mmr = maintenance_rate(position.symbol)
    if position.size > 0:
        return position.avg * (1 - step + mmr)
    return position.avg * (1 + step - mmr)


def decimal_param(params: Mapping[str, Any], key: str, required: bool = True) -> Decimal | None:
    value = params.get(key)
    if value is None or value == "":
        if required:
            raise SimError(10001, f"params error: {key} is required")
        return None
    if isinstance(value, float):
        value = repr(value)
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        raise SimError(10001, f"params error: {key} {value!r} is not a number") from None
    if not result.is_finite():
        raise SimError(10001, f"params error: {key} is invalid")
    return result


class Valuation:
    """What an account holds and owes at the market's current marks."""

    def __init__(self, market: Market) -> None:
        self.market = market

    def mark(self, market: SymbolMarket, now_ms: int | None = None) -> Decimal:
        return market.instrument.round_price(market.path.price(now_ms or self.market.now_ms()))

    def unrealised(self, account: Account) -> Decimal:
        total = ZERO
        for symbol, position in account.positions.items():
            if position.size:
                market = self.market.get("linear", symbol)
                if market is not None:
                    total += (self.mark(market) - position.avg) * position.size
        return total

    def position_im(self, account: Account) -> Decimal:
        return sum(
            (abs(p.size) * p.avg / account.leverage_of(s) for s, p in account.positions.items()),
            ZERO,
        )

    def order_im(self, account: Account) -> Decimal:
        return sum(
            (
                o.leaves * (o.price or ZERO) / account.leverage_of(o.symbol)
                for o in account.orders.values()
                if o.is_open and o.category == "linear" and not o.reduce_only
            ),
            ZERO,
        )

    def available_usdt(self, account: Account) -> Decimal:
        balance = account.coins.get("USDT", ZERO)
        return (
            balance + self.unrealised(account) - self.position_im(account) - self.order_im(account)
        )

    def locked(self, account: Account, coin: str) -> Decimal:
        locked = ZERO
        for order in account.orders.values():
            if not order.is_open or order.category != "spot":
                continue
            market = self.market.get("spot", order.symbol)
            if market is None:
                continue
            if order.side == "Buy" and coin == market.instrument.quote_coin:
                locked += order.leaves * (order.price or ZERO)
            elif order.side == "Sell" and coin == market.instrument.base_coin:
                locked += order.leaves
        return locked

    def position_record(
        self, account: Account, position: SimPosition, ws: bool = False
    ) -> dict[str, Any]:
        market = self.market.get("linear", position.symbol)
        mark = self.mark(market) if market else position.avg
        size = abs(position.size)
        side = "Buy" if position.size > 0 else "Sell" if position.size < 0 else ""
        unrealised = (mark - position.avg) * position.size if position.size else ZERO
        leverage = account.leverage_of(position.symbol)
        liquidation = liquidation_price(account, position) if size else None
        record: dict[str, Any] = {
            "category": "linear",
            "symbol": position.symbol,
            "side": side,
            "size": str(size),
            "positionIdx": 0,
            "tradeMode": 1 if account.margin_mode == "ISOLATED_MARGIN" else 0,
            "positionValue": _s(size * position.avg),
            "riskId": 1,
            "riskLimitValue": "2000000",
            "markPrice": str(mark),
            "leverage": _s(leverage),
            "autoAddMargin": 0,
            "positionBalance": _s(size * position.avg / leverage),
            "positionIM": _s(size * position.avg / leverage),
            "positionMM": _s(size * position.avg * maintenance_rate(position.symbol)),
            "liqPrice": _s(liquidation) if liquidation is not None else "",
            "bustPrice": "",
            "tpslMode": "Full",
            "takeProfit": _s(position.take_profit),
            "stopLoss": _s(position.stop_loss),
            "trailingStop": _s(position.trailing_stop),
            "activePrice": _s(position.active_price),
            "unrealisedPnl": _s(unrealised),
            "curRealisedPnl": _s(position.cur_realised),
            "cumRealisedPnl": _s(position.cum_realised),
            "sessionAvgPrice": "",
            "positionStatus": "Normal",
            "adlRankIndicator": 2 if size else 0,
            "isReduceOnly": False,
            "mmrSysUpdatedTime": "",
            "leverageSysUpdatedTime": "",
            "createdTime": str(position.created_ms),
            "updatedTime": str(position.updated_ms),
            "seq": position.seq,
        }
        record["entryPrice" if ws else "avgPrice"] = _s(position.avg)
        return record

    def wallet_record(self, account: Account) -> dict[str, Any]:
        unrealised = self.unrealised(account)
        position_im = self.position_im(account)
        order_im = self.order_im(account)
        coins = []
        total_equity = ZERO
        total_wallet = ZERO
        for coin, balance in sorted(account.coins.items()):
            upl = unrealised if coin == "USDT" else ZERO
            equity = balance + upl
            price = Decimal(1)
            if coin != "USDT":
                market = self.market.get("spot", f"{coin}USDT")
                price = self.mark(market) if market else ZERO
            usd = equity * price
            total_equity += usd
            total_wallet += balance * price
            locked = self.locked(account, coin)
            coins.append(
                {
                    "coin": coin,
                    "equity": _s(equity),
                    "usdValue": _s(usd),
                    "walletBalance": _s(balance),
                    "locked": _s(locked),
                    "spotHedgingQty": "0",
                    "borrowAmount": "0",
                    "accruedInterest": "0",
                    "availableToWithdraw": "",
                    "availableToBorrow": "",
                    "totalOrderIM": _s(order_im) if coin == "USDT" else "0",
                    "totalPositionIM": _s(position_im) if coin == "USDT" else "0",
                    "totalPositionMM": "0",
                    "unrealisedPnl": _s(upl),
                    "cumRealisedPnl": _s(account.cum_realised.get(coin, ZERO)),
                    "bonus": "0",
                    "marginCollateral": True,
                    "collateralSwitch": True,
                    "spotBorrow": "0",
                }
            )
        return {
            "accountType": "UNIFIED",
            "accountIMRate": "0",
            "accountMMRate": "0",
            "accountLTV": "0",
            "totalEquity": _s(total_equity),
            "totalWalletBalance": _s(total_wallet),
            "totalMarginBalance": _s(total_wallet + unrealised),
            "totalAvailableBalance": _s(total_wallet + unrealised - position_im - order_im),
            "totalPerpUPL": _s(unrealised),
            "totalInitialMargin": _s(position_im + order_im),
            "totalMaintenanceMargin": "0",
            "coin": coins,
        }
