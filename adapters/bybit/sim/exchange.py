"""The simulator's matching engine (UNIFIED accounts, one-way mode; the account records and
their valuation are in accounts.py).

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
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from adapters.bybit.sim.accounts import (
    FEE_QUANTUM,
    ZERO,
    Account,
    OnPrivate,
    SimError,
    SimExecution,
    SimOrder,
    SimPosition,
    Valuation,
    decimal_param,
)
from adapters.bybit.sim.market import Market, SimInstrument, SymbolMarket
from adapters.bybit.sim.position_rules import PositionRules

MAX_LEVELS = 100


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
        self.valuation = Valuation(market)
        self.position_record = self.valuation.position_record
        self.wallet_record = self.valuation.wallet_record
        self._seq = itertools.count(1_000_000)
        self.on_private: OnPrivate = lambda account, topic, record: None
        self.positions = PositionRules(self)  # TP/SL, leverage, margin mode, liquidation

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
        qty = decimal_param(params, "qty")
        assert qty is not None
        link_id = str(params.get("orderLinkId") or "")
        if len(link_id) > 36:
            raise SimError(10001, "params error: orderLinkId is longer than 36 characters")
        if link_id and (category, link_id) in account.by_link:
            raise SimError(110072, "OrderLinkedID is duplicate")
        now_market = self.market.now_ms()
        bid, ask = market.quotes(now_market)
        price = decimal_param(params, "price", required=order_type == "Limit")
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
            last_price_on_created=market.last_price or self.valuation.mark(market, now_market),
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
            free = account.coins.get(coin, ZERO) - self.valuation.locked(account, coin)
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
        need = increase * price / account.leverage_of(instrument.symbol) + qty * price * taker
        if need > self.valuation.available_usdt(account):
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
            mark=self.valuation.mark(market),
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
                position.clear_levels()
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
        qty = decimal_param(params, "qty", required=False)
        price = decimal_param(params, "price", required=False)
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
        self.positions.on_tick()

    # -- reports -----------------------------------------------------------------------------------

    def _push_order(self, account: Account, order: SimOrder) -> None:
        self.on_private(account, "order", order.record())

    def _push_account(self, account: Account, market: SymbolMarket) -> None:
        if market.instrument.category == "linear":
            position = account.positions.get(market.instrument.symbol)
            if position is not None:
                self.on_private(
                    account, "position", self.valuation.position_record(account, position, ws=True)
                )
        self.on_private(account, "wallet", self.valuation.wallet_record(account))
