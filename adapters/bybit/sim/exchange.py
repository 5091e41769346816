"""The simulator's matching engine and accounts (UNIFIED, one-way mode).

Orders are checked against the instrument's real filters and the account's balance with Bybit's
error codes; market orders sweep a synthetic book (one tick between levels, `depth_lots` minimum
quantities per level), so a large order fills in several executions; resting limit orders fill
as maker, one level per tick, when the market trades through their price. Linear positions carry
an average price and realised PnL; spot moves coin balances. Fees are Bybit's non-VIP rates; spot
fees are charged in the quote coin (Bybit charges a buy's fee in the base coin: a simplification
that keeps the simulator's cash arithmetic in one currency).

Every change is reported through `on_private(account, topic, record)`: an execution first, then
the order, then the position and the wallet, as Bybit's private streams do.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from adapters.bybit.sim.market import Market, SimInstrument, SymbolMarket

ZERO = Decimal(0)
FEE_QUANTUM = Decimal("0.00000001")
OPEN_STATUSES = ("New", "PartiallyFilled", "Untriggered")
MAX_LEVELS = 100


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
            "closeOnTrigger": False,
            "triggerPrice": "",
            "takeProfit": "",
            "stopLoss": "",
            "tpTriggerBy": "",
            "slTriggerBy": "",
            "triggerDirection": 0,
            "triggerBy": "",
            "tpslMode": "",
            "tpLimitPrice": "",
            "slLimitPrice": "",
            "stopOrderType": "",
            "placeType": "",
            "smpType": "None",
            "smpGroup": 0,
            "smpOrderId": "",
            "feeCurrency": "",
            "createType": "CreateByUser",
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
            "execType": "Trade",
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
            "stopOrderType": "UNKNOWN",
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
            "createType": "CreateByUser",
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


OnPrivate = Callable[[Account, str, dict[str, Any]], None]


def _dec(params: Mapping[str, Any], key: str, required: bool = True) -> Decimal | None:
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


class Exchange:
    """Accounts and matching; synchronous (the server calls it from its one event loop)."""

    def __init__(
        self,
        market: Market,
        accounts: list[Account],
        *,
        clock_ms: Callable[[], int],
        fees: Mapping[str, tuple[Decimal, Decimal]] | None = None,
        depth_lots: int = 50,
    ) -> None:
        self.market = market
        self.accounts = {account.api_key: account for account in accounts}
        self.clock_ms = clock_ms
        # category -> (maker, taker)
        self.fees = dict(
            fees
            or {
                "linear": (Decimal("0.0002"), Decimal("0.00055")),
                "spot": (Decimal("0.001"), Decimal("0.001")),
            }
        )
        self.depth_lots = depth_lots
        self._seq = itertools.count(1_000_000)
        self.on_private: OnPrivate = lambda account, topic, record: None

    # -- helpers ---------------------------------------------------------------------------------

    def _symbol(self, params: Mapping[str, Any]) -> tuple[str, SymbolMarket]:
        category = str(params.get("category") or "")
        if category not in ("linear", "spot"):
            raise SimError(10001, f"params error: category {category!r} is not supported")
        symbol = str(params.get("symbol") or "")
        market = self.market.get(category, symbol)
        if market is None:
            raise SimError(10001, f"params error: symbol invalid ({symbol!r} on {category})")
        return category, market

    def _find(self, account: Account, params: Mapping[str, Any]) -> SimOrder | None:
        category = str(params.get("category") or "")
        order_id = params.get("orderId")
        link_id = params.get("orderLinkId")
        if order_id:
            order = account.orders.get(str(order_id))
            return order if order is not None and order.category == category else None
        if link_id:
            found = account.by_link.get((category, str(link_id)))
            return account.orders.get(found) if found else None
        raise SimError(10001, "params error: orderId or orderLinkId is required")

    def mark(self, market: SymbolMarket, now_ms: int | None = None) -> Decimal:
        return market.instrument.round_price(market.path.price(now_ms or self.market.now_ms()))

    def _unrealised(self, account: Account) -> Decimal:
        total = ZERO
        for symbol, position in account.positions.items():
            if position.size:
                market = self.market.get("linear", symbol)
                if market is not None:
                    total += (self.mark(market) - position.avg) * position.size
        return total

    def _position_im(self, account: Account) -> Decimal:
        return sum(
            (abs(p.size) * p.avg / account.leverage for p in account.positions.values()), ZERO
        )

    def _order_im(self, account: Account) -> Decimal:
        return sum(
            (
                o.leaves * (o.price or ZERO) / account.leverage
                for o in account.orders.values()
                if o.is_open and o.category == "linear" and not o.reduce_only
            ),
            ZERO,
        )

    def available_usdt(self, account: Account) -> Decimal:
        balance = account.coins.get("USDT", ZERO)
        return (
            balance
            + self._unrealised(account)
            - self._position_im(account)
            - self._order_im(account)
        )

    def _locked(self, account: Account, coin: str) -> Decimal:
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

    # -- order entry -----------------------------------------------------------------------------

    def create_order(self, account: Account, params: Mapping[str, Any]) -> dict[str, Any]:
        category, market = self._symbol(params)
        instrument = market.instrument
        side = params.get("side")
        if side not in ("Buy", "Sell"):
            raise SimError(10001, f"params error: side {side!r} invalid")
        order_type = params.get("orderType")
        if order_type not in ("Market", "Limit"):
            raise SimError(10001, f"params error: orderType {order_type!r} invalid")
        qty = _dec(params, "qty")
        assert qty is not None
        link_id = str(params.get("orderLinkId") or "")
        if len(link_id) > 36:
            raise SimError(10001, "params error: orderLinkId is longer than 36 characters")
        if link_id and (category, link_id) in account.by_link:
            raise SimError(110072, "OrderLinkedID is duplicate")
        now_market = self.market.now_ms()
        bid, ask = market.quotes(now_market)
        price = _dec(params, "price", required=order_type == "Limit")
        if order_type == "Market":
            price = None
        elif price is not None:
            self._check_price(instrument, price)
        reference = price if price is not None else (ask if side == "Buy" else bid)
        self._check_qty(instrument, qty, reference)
        tif = str(params.get("timeInForce") or ("IOC" if order_type == "Market" else "GTC"))
        if tif not in ("GTC", "IOC", "FOK", "PostOnly"):
            raise SimError(10001, f"params error: timeInForce {tif!r} invalid")
        if order_type == "Market":
            tif = "IOC"
        reduce_only = str(params.get("reduceOnly", "")).lower() in ("true", "1")
        if category == "spot" and str(params.get("marketUnit") or "baseCoin") != "baseCoin":
            raise SimError(10001, "params error: the simulator supports marketUnit=baseCoin only")
        self._check_balance(account, category, instrument, side, qty, reference, reduce_only)
        now = self.clock_ms()
        order = SimOrder(
            order_id=self.market.new_id(),
            link_id=link_id,
            category=category,
            symbol=instrument.symbol,
            side=side,
            order_type=order_type,
            qty=qty,
            price=price,
            time_in_force=tif,
            reduce_only=reduce_only,
            created_ms=now,
            last_price_on_created=market.last_price or self.mark(market, now_market),
            updated_ms=now,
        )
        account.orders[order.order_id] = order
        if link_id:
            account.by_link[(category, link_id)] = order.order_id
        self._enter(account, market, order)
        return {"orderId": order.order_id, "orderLinkId": order.link_id}

    def _check_price(self, instrument: SimInstrument, price: Decimal) -> None:
        if price <= 0:
            raise SimError(10001, "params error: price must be positive")
        if price % instrument.tick_size != 0:
            if instrument.category == "spot":
                raise SimError(170134, "Order price decimal too long.")
            raise SimError(
                10001,
                f"params error: price {price} is not a multiple of the tick "
                f"size {instrument.tick_size}",
            )

    def _check_qty(self, instrument: SimInstrument, qty: Decimal, price: Decimal) -> None:
        spot = instrument.category == "spot"
        if qty <= 0 or qty < instrument.min_qty:
            if spot:
                raise SimError(170136, "Order quantity is lower than the minimum.")
            raise SimError(10001, "The number of contracts exceeds minimum limit allowed")
        if qty % instrument.qty_step != 0:
            if spot:
                raise SimError(170137, "Order volume decimal too long")
            raise SimError(10001, f"Qty invalid: {qty} is not a multiple of {instrument.qty_step}")
        if qty > instrument.max_qty:
            raise SimError(10001, "The number of contracts exceeds maximum limit allowed")
        if qty * price < instrument.min_notional:
            if spot:
                raise SimError(170140, "Order value exceeded lower limit.")
            raise SimError(
                110094, f"Order does not meet minimum order value {instrument.min_notional}USDT"
            )

    def _check_balance(
        self,
        account: Account,
        category: str,
        instrument: SimInstrument,
        side: str,
        qty: Decimal,
        price: Decimal,
        reduce_only: bool,
    ) -> None:
        _, taker = self.fees[category]
        if category == "spot":
            if side == "Buy":
                coin = instrument.quote_coin
                need = qty * price * (1 + taker)
            else:
                coin = instrument.base_coin
                need = qty
            free = account.coins.get(coin, ZERO) - self._locked(account, coin)
            if need > free:
                raise SimError(170131, "Insufficient balance.")
            return
        position = account.positions.get(instrument.symbol)
        current = position.size if position else ZERO
        sign = 1 if side == "Buy" else -1
        increase = qty if current * sign >= 0 else max(ZERO, qty - abs(current))
        if reduce_only and (current == 0 or current * sign > 0 or qty > abs(current)):
            raise SimError(110017, "Reduce-only rule not satisfied")
        if increase == 0:
            return
        need = increase * price / account.leverage + qty * price * taker
        if need > self.available_usdt(account):
            raise SimError(110007, "ab not enough for new order")

    def _enter(self, account: Account, market: SymbolMarket, order: SimOrder) -> None:
        bid, ask = market.quotes(self.market.now_ms())
        marketable = order.price is None or (
            order.price >= ask if order.side == "Buy" else order.price <= bid
        )
        if order.time_in_force == "PostOnly" and marketable:
            order.status, order.cancel_type = "Cancelled", "UNKNOWN"
            order.reject_reason = "EC_PostOnlyWillTakeLiquidity"
            self._push_order(account, order)
            return
        if order.time_in_force == "FOK" and marketable:
            fillable = self._sweepable(market, order, bid, ask)
            if fillable < order.qty:
                order.status, order.reject_reason = "Cancelled", "EC_FOKNotFullyFilled"
                self._push_order(account, order)
                return
        if not marketable:
            if order.time_in_force in ("IOC", "FOK"):
                order.status, order.reject_reason = "Cancelled", "EC_NoImmediateQtyToFill"
            self._push_order(account, order)
            return
        self._sweep(account, market, order, bid, ask)
        if order.is_open and order.time_in_force in ("IOC", "FOK"):
            self._finish_unfilled(order)
        self._push_order(account, order)
        self._push_account(account, market)

    def _levels(
        self, market: SymbolMarket, order: SimOrder, bid: Decimal, ask: Decimal
    ) -> list[tuple[Decimal, Decimal]]:
        tick = market.instrument.tick_size
        depth = market.instrument.min_qty * self.depth_lots
        levels = []
        for level in range(MAX_LEVELS):
            price = ask + tick * level if order.side == "Buy" else bid - tick * level
            if order.price is not None and (
                price > order.price if order.side == "Buy" else price < order.price
            ):
                break
            if price <= 0:
                break
            levels.append((price, depth))
        return levels

    def _sweepable(
        self, market: SymbolMarket, order: SimOrder, bid: Decimal, ask: Decimal
    ) -> Decimal:
        return sum((qty for _, qty in self._levels(market, order, bid, ask)), ZERO)

    def _sweep(
        self, account: Account, market: SymbolMarket, order: SimOrder, bid: Decimal, ask: Decimal
    ) -> None:
        for price, depth in self._levels(market, order, bid, ask):
            remaining = order.qty - order.cum_qty
            if remaining <= 0:
                break
            self._fill(account, market, order, min(remaining, depth), price, is_maker=False)

    def _finish_unfilled(self, order: SimOrder) -> None:
        if order.category == "spot" and order.cum_qty > 0:
            order.status = "PartiallyFilledCanceled"
        else:
            order.status = "Cancelled"
        order.cancel_type = "UNKNOWN"
        order.updated_ms = self.clock_ms()

    def _fill(
        self,
        account: Account,
        market: SymbolMarket,
        order: SimOrder,
        qty: Decimal,
        price: Decimal,
        *,
        is_maker: bool,
    ) -> None:
        instrument = market.instrument
        maker, taker = self.fees[order.category]
        rate = maker if is_maker else taker
        fee = (qty * price * rate).quantize(FEE_QUANTUM, rounding=ROUND_HALF_UP)
        now = self.clock_ms()
        closed = ZERO
        if order.category == "linear":
            closed = self._apply_position(
                account, instrument.symbol, order.side, qty, price, fee, now
            )
        else:
            base, quote = instrument.base_coin, instrument.quote_coin
            value = qty * price
            if order.side == "Buy":
                account.coins[base] = account.coins.get(base, ZERO) + qty
                account.coins[quote] = account.coins.get(quote, ZERO) - value - fee
            else:
                account.coins[base] = account.coins.get(base, ZERO) - qty
                account.coins[quote] = account.coins.get(quote, ZERO) + value - fee
        order.cum_qty += qty
        order.cum_value += qty * price
        order.cum_fee += fee
        order.status = "Filled" if order.cum_qty >= order.qty else "PartiallyFilled"
        order.updated_ms = now
        execution = SimExecution(
            exec_id=self.market.new_id(),
            order=order,
            qty=qty,
            price=price,
            fee=fee,
            fee_rate=rate,
            fee_currency=instrument.quote_coin,
            is_maker=is_maker,
            closed_size=closed,
            leaves_qty=order.qty - order.cum_qty,
            mark=self.mark(market),
            time_ms=now,
            seq=next(self._seq),
        )
        account.executions.append(execution)
        self.on_private(account, "execution", execution.record())

    def _apply_position(
        self,
        account: Account,
        symbol: str,
        side: str,
        qty: Decimal,
        price: Decimal,
        fee: Decimal,
        now: int,
    ) -> Decimal:
        position = account.positions.setdefault(symbol, SimPosition(symbol, created_ms=now))
        sign = 1 if side == "Buy" else -1
        realised = ZERO
        closed = ZERO
        if position.size == 0 or (position.size > 0) == (sign > 0):
            new_size = position.size + sign * qty
            position.avg = (abs(position.size) * position.avg + qty * price) / abs(new_size)
            position.size = new_size
        else:
            closed = min(qty, abs(position.size))
            realised = (price - position.avg) * closed * (1 if position.size > 0 else -1)
            position.size += sign * closed
            rest = qty - closed
            if position.size == 0:
                position.avg = ZERO
            if rest > 0:
                position.size = sign * rest
                position.avg = price
        position.cum_realised += realised - fee
        position.cur_realised = realised - fee
        position.updated_ms = now
        position.seq = next(self._seq)
        account.coins["USDT"] = account.coins.get("USDT", ZERO) + realised - fee
        account.cum_realised["USDT"] = account.cum_realised.get("USDT", ZERO) + realised
        return closed

    # -- amend and cancel ------------------------------------------------------------------------

    def amend_order(self, account: Account, params: Mapping[str, Any]) -> dict[str, Any]:
        _, market = self._symbol(params)
        order = self._find(account, params)
        if order is None or not order.is_open:
            raise SimError(110001, "order not exists or too late to amend")
        qty = _dec(params, "qty", required=False)
        price = _dec(params, "price", required=False)
        if qty is None and price is None:
            raise SimError(10001, "params error: nothing to amend (qty or price)")
        if price is not None:
            if order.order_type != "Limit":
                raise SimError(10001, "params error: a market order has no price to amend")
            self._check_price(market.instrument, price)
        if qty is not None:
            if qty <= order.cum_qty:
                raise SimError(10001, "params error: qty must exceed the filled quantity")
            self._check_qty(market.instrument, qty, price or order.price or ZERO)
        if qty is not None:
            order.qty = qty
        if price is not None:
            order.price = price
        order.updated_ms = self.clock_ms()
        self._push_order(account, order)
        bid, ask = market.quotes(self.market.now_ms())
        if order.price is not None and (
            order.price >= ask if order.side == "Buy" else order.price <= bid
        ):
            self._sweep(account, market, order, bid, ask)
            self._push_order(account, order)
            self._push_account(account, market)
        return {"orderId": order.order_id, "orderLinkId": order.link_id}

    def cancel_order(self, account: Account, params: Mapping[str, Any]) -> dict[str, Any]:
        self._symbol(params)
        order = self._find(account, params)
        if order is None or not order.is_open:
            raise SimError(110001, "Order does not exist.")
        self._cancel(account, order, "CancelByUser")
        return {"orderId": order.order_id, "orderLinkId": order.link_id}

    def cancel_all(self, account: Account, params: Mapping[str, Any]) -> dict[str, Any]:
        category = str(params.get("category") or "")
        symbol = params.get("symbol")
        done = []
        for order in list(account.orders.values()):
            if order.is_open and order.category == category and symbol in (None, order.symbol):
                self._cancel(account, order, "CancelByUser")
                done.append({"orderId": order.order_id, "orderLinkId": order.link_id})
        return {"list": done, "success": "1"}

    def _cancel(self, account: Account, order: SimOrder, cancel_type: str) -> None:
        if order.category == "spot" and order.cum_qty > 0:
            order.status = "PartiallyFilledCanceled"
        else:
            order.status = "Cancelled"
        order.cancel_type = cancel_type
        order.updated_ms = self.clock_ms()
        self._push_order(account, order)

    # -- the market moves --------------------------------------------------------------------------

    def on_tick(self) -> None:
        """Fill resting limit orders the market has traded through, one level per tick."""
        now_market = self.market.now_ms()
        for account in self.accounts.values():
            touched: dict[str, SymbolMarket] = {}
            for order in list(account.orders.values()):
                if not order.is_open or order.price is None:
                    continue
                market = self.market.get(order.category, order.symbol)
                if market is None:
                    continue
                bid, ask = market.quotes(now_market)
                crossed = order.price >= ask if order.side == "Buy" else order.price <= bid
                if not crossed:
                    continue
                depth = market.instrument.min_qty * self.depth_lots
                qty = min(order.qty - order.cum_qty, depth)
                self._fill(account, market, order, qty, order.price, is_maker=True)
                self._push_order(account, order)
                touched[order.symbol + order.category] = market
            for market in touched.values():
                self._push_account(account, market)

    # -- reports -----------------------------------------------------------------------------------

    def _push_order(self, account: Account, order: SimOrder) -> None:
        self.on_private(account, "order", order.record())

    def _push_account(self, account: Account, market: SymbolMarket) -> None:
        if market.instrument.category == "linear":
            position = account.positions.get(market.instrument.symbol)
            if position is not None:
                self.on_private(
                    account, "position", self.position_record(account, position, ws=True)
                )
        self.on_private(account, "wallet", self.wallet_record(account))

    def position_record(
        self, account: Account, position: SimPosition, ws: bool = False
    ) -> dict[str, Any]:
        market = self.market.get("linear", position.symbol)
        mark = self.mark(market) if market else position.avg
        size = abs(position.size)
        side = "Buy" if position.size > 0 else "Sell" if position.size < 0 else ""
        unrealised = (mark - position.avg) * position.size if position.size else ZERO
        record: dict[str, Any] = {
            "category": "linear",
            "symbol": position.symbol,
            "side": side,
            "size": str(size),
            "positionIdx": 0,
            "tradeMode": 0,
            "positionValue": _s(size * position.avg),
            "riskId": 1,
            "riskLimitValue": "2000000",
            "markPrice": str(mark),
            "leverage": str(account.leverage),
            "autoAddMargin": 0,
            "positionBalance": _s(size * position.avg / account.leverage),
            "positionIM": _s(size * position.avg / account.leverage),
            "positionMM": _s(size * position.avg * Decimal("0.005")),
            "liqPrice": "",
            "bustPrice": "",
            "tpslMode": "Full",
            "takeProfit": "0",
            "stopLoss": "0",
            "trailingStop": "0",
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
        unrealised = self._unrealised(account)
        position_im = self._position_im(account)
        order_im = self._order_im(account)
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
            locked = self._locked(account, coin)
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
