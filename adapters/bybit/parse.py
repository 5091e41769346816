"""Bybit v5 payloads -> lorabot events, at the edge and nowhere else.

Bybit sends every number as a string; each one becomes a `Decimal` straight from that string, so
no price or quantity ever passes through a binary float. Timestamps are epoch milliseconds and
become aware UTC datetimes. A payload missing a field lorabot needs raises `ParseError` naming
the field and the message kind; callers log it and drop that message, never the connection.

The order-status table is the one place Bybit's order lifecycle meets `bot.orders`:
Created -> submitted, New -> accepted, Untriggered, Triggered, PartiallyFilled, Filled,
Cancelled / Deactivated / PartiallyFilledCanceled -> cancelled, Rejected.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from adapters.bybit import intervals
from adapters.bybit.fields import (
    ORDER_TYPES,
    SIDES,
    STATUS,
    TIME_IN_FORCE,
    TRADE_EXEC_TYPES,
    ZERO,
    ParseError,
    base_of,
    dec,
    field_of,
    ms_to_dt,
    opt_dec,
    protective_of,
    quote_of,
)
from bot.events import (
    Bar,
    Fill,
    Liquidity,
    OrderType,
    OrderUpdate,
    Side,
    Ticker,
    TimeInForce,
    Trade,
)
from bot.orders import Order, OrderStatus
from bot.protocols import Protection
from bot.symbols import Instrument

NO_PROTECTION = Protection()

# -- market data ---------------------------------------------------------------------------------


def topic_symbol(topic: str) -> str:
    """`kline.1.BTCUSDT` -> BTCUSDT, `publicTrade.BTCUSDT` -> BTCUSDT."""
    return topic.rsplit(".", 1)[-1]


def kline_from_ws(symbol: str, item: Mapping[str, Any]) -> tuple[bool, Bar]:
    """(confirmed, bar) from one entry of a `kline.{interval}.{symbol}` push."""
    try:
        start = int(item["start"])
        end = int(item["end"])
        bar = Bar(
            symbol=symbol,
            ts_open=datetime.fromtimestamp(start / 1000, UTC),
            ts=datetime.fromtimestamp((end + 1) / 1000, UTC),
            open=Decimal(item["open"]),
            high=Decimal(item["high"]),
            low=Decimal(item["low"]),
            close=Decimal(item["close"]),
            volume=Decimal(item["volume"]),
        )
        return bool(item["confirm"]), bar
    except KeyError as error:
        raise ParseError(f"kline: field {error.args[0]!r} is missing") from None
    except (InvalidOperation, TypeError, ValueError) as error:
        raise ParseError(f"kline: {error}") from None


def kline_from_rest(symbol: str, interval: str, row: list[Any]) -> Bar:
    """One row of `/v5/market/kline`: [start, open, high, low, close, volume, turnover]."""
    try:
        start = int(row[0])
        return Bar(
            symbol=symbol,
            ts_open=datetime.fromtimestamp(start / 1000, UTC),
            ts=datetime.fromtimestamp(intervals.next_open_ms(interval, start) / 1000, UTC),
            open=Decimal(row[1]),
            high=Decimal(row[2]),
            low=Decimal(row[3]),
            close=Decimal(row[4]),
            volume=Decimal(row[5]),
        )
    except (IndexError, InvalidOperation, TypeError, ValueError) as error:
        raise ParseError(f"kline row {row!r}: {error}") from None


def trades_from_ws(data: list[Mapping[str, Any]]) -> list[Trade]:
    """Entries of a `publicTrade.{symbol}` push: T time, s symbol, S side, v size, p price, i id."""
    trades = []
    try:
        for item in data:
            trades.append(
                Trade(
                    symbol=item["s"],
                    ts=datetime.fromtimestamp(int(item["T"]) / 1000, UTC),
                    price=Decimal(item["p"]),
                    qty=Decimal(item["v"]),
                    side=SIDES[item["S"]],
                    trade_id=str(item["i"]),
                )
            )
    except KeyError as error:
        raise ParseError(f"publicTrade: field or side {error.args[0]!r} is unknown") from None
    except (InvalidOperation, TypeError, ValueError) as error:
        raise ParseError(f"publicTrade: {error}") from None
    return trades


def trade_from_rest(item: Mapping[str, Any]) -> Trade:
    """One entry of `/v5/market/recent-trade`."""
    try:
        return Trade(
            symbol=item["symbol"],
            ts=ms_to_dt(item["time"]),
            price=Decimal(item["price"]),
            qty=Decimal(item["size"]),
            side=SIDES[item["side"]],
            trade_id=str(item["execId"]),
        )
    except KeyError as error:
        raise ParseError(f"recent-trade: field or side {error.args[0]!r} is unknown") from None
    except (InvalidOperation, TypeError, ValueError) as error:
        raise ParseError(f"recent-trade: {error}") from None


class TickerBook:
    """Linear tickers arrive as one snapshot and then deltas holding only changed fields; spot
    tickers are always snapshots. This keeps the merged state per symbol."""

    def __init__(self) -> None:
        self.state: dict[str, dict[str, Any]] = {}

    def apply(self, message: Mapping[str, Any]) -> Ticker:
        data = message.get("data")
        if not isinstance(data, dict) or "symbol" not in data:
            raise ParseError("tickers: 'data' is not an object with a symbol")
        symbol = data["symbol"]
        if message.get("type") == "delta" and symbol in self.state:
            merged = self.state[symbol]
            merged.update(data)
        else:
            merged = dict(data)
            self.state[symbol] = merged
        ts = message.get("ts")
        if ts is None:
            raise ParseError("tickers: field 'ts' is missing")
        return Ticker(
            symbol=symbol,
            ts=datetime.fromtimestamp(int(ts) / 1000, UTC),
            last=opt_dec(merged.get("lastPrice")),
            bid=opt_dec(merged.get("bid1Price")),
            ask=opt_dec(merged.get("ask1Price")),
            mark=opt_dec(merged.get("markPrice")),
        )


# -- instruments ---------------------------------------------------------------------------------


def instrument_from_info(category: str, item: Mapping[str, Any]) -> Instrument:
    """One entry of `/v5/market/instruments-info` as the rules every order goes through.

    Derivatives step quantities by `qtyStep` and name a minimum notional `minNotionalValue`;
    spot steps by `basePrecision` and names it `minOrderAmt`. The maximum is the market-order
    maximum where Bybit gives one, since that is the smaller and lorabot trades at market.
    """
    kind = f"instruments-info ({category})"
    symbol = field_of(item, "symbol", kind)
    price_filter = field_of(item, "priceFilter", kind)
    lot = field_of(item, "lotSizeFilter", kind)
    tick = dec(field_of(price_filter, "tickSize", kind), "priceFilter.tickSize")
    if category == "spot":
        step = dec(field_of(lot, "basePrecision", kind), "lotSizeFilter.basePrecision")
        min_notional = opt_dec(lot.get("minOrderAmt")) or ZERO
        max_qty = opt_dec(lot.get("maxMarketOrderQty")) or opt_dec(lot.get("maxOrderQty"))
    else:
        step = dec(field_of(lot, "qtyStep", kind), "lotSizeFilter.qtyStep")
        min_notional = opt_dec(lot.get("minNotionalValue")) or ZERO
        max_qty = opt_dec(lot.get("maxMktOrderQty")) or opt_dec(lot.get("maxOrderQty"))
    return Instrument(
        symbol=symbol,
        category=category,
        tick_size=tick,
        qty_step=step,
        min_qty=dec(field_of(lot, "minOrderQty", kind), "lotSizeFilter.minOrderQty"),
        min_notional=min_notional,
        max_qty=max_qty,
    )


# -- orders, executions, positions, wallet -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VenueOrder:
    """An order as Bybit reports it (private `order` topic, /v5/order/realtime, /history)."""

    category: str
    symbol: str
    order_id: str
    link_id: str
    side: Side
    order_type: OrderType
    venue_status: str
    status: OrderStatus
    qty: Decimal
    price: Decimal | None
    cum_exec_qty: Decimal
    cum_exec_fee: Decimal
    avg_price: Decimal | None
    time_in_force: TimeInForce
    reduce_only: bool
    reason: str
    created: datetime
    updated: datetime
    protective: str = ""  # the exit reason when a position's TP/SL/trailing stop created it

    @property
    def client_order_id(self) -> str:
        """Orders placed outside lorabot have no link id: they are named by the venue's id."""
        return self.link_id or f"bybit:{self.order_id}"

    def to_update(self) -> OrderUpdate:
        return OrderUpdate(
            ts=self.updated,
            client_order_id=self.client_order_id,
            status=self.status,
            venue_order_id=self.order_id,
            filled_qty=self.cum_exec_qty,
            avg_price=self.avg_price,
            reason=self.reason,
            price=self.price,
            qty=self.qty,
        )

    def to_order(self) -> Order:
        """An `Order` as the venue sees it (for `VenueState.open_orders`)."""
        return Order(
            client_order_id=self.client_order_id,
            symbol=self.symbol,
            side=self.side,
            qty=self.qty,
            created=self.created,
            order_type=self.order_type,
            price=self.price,
            time_in_force=self.time_in_force,
            reduce_only=self.reduce_only,
            status=self.status,
            venue_order_id=self.order_id,
            filled_qty=self.cum_exec_qty,
            avg_price=self.avg_price,
            fees=self.cum_exec_fee,
            reason=self.reason,
            updated=self.updated,
        )


def _reason(status: str, item: Mapping[str, Any]) -> str:
    """Why an order ended, in words, from Bybit's rejectReason / cancelType."""
    reject = str(item.get("rejectReason") or "")
    cancel = str(item.get("cancelType") or "")
    if status == "Rejected":
        return f"rejected by Bybit: {reject or 'no reason given'}"
    if status in ("Cancelled", "PartiallyFilledCanceled", "Deactivated"):
        details = [d for d in (cancel, reject) if d and d not in ("UNKNOWN", "EC_NoError")]
        label = {
            "Deactivated": "deactivated before it triggered",
            "PartiallyFilledCanceled": "partially filled, the rest cancelled",
        }.get(status, "cancelled")
        return f"{label} ({', '.join(details)})" if details else label
    return ""


def order_from_venue(item: Mapping[str, Any], category: str = "") -> VenueOrder:
    kind = "order"
    venue_status = str(field_of(item, "orderStatus", kind))
    status = STATUS.get(venue_status)
    if status is None:
        raise ParseError(f"order: unknown orderStatus {venue_status!r}")
    side = SIDES.get(str(field_of(item, "side", kind)))
    if side is None:
        raise ParseError(f"order: unknown side {item.get('side')!r}")
    order_type = ORDER_TYPES.get(str(field_of(item, "orderType", kind)))
    if order_type is None:
        raise ParseError(f"order: unknown orderType {item.get('orderType')!r}")
    cum_qty = dec(field_of(item, "cumExecQty", kind), "cumExecQty")
    avg = opt_dec(item.get("avgPrice"))
    if avg is not None and (avg == 0 or cum_qty == 0):
        avg = None
    price = opt_dec(item.get("price"))
    if price is not None and price == 0:
        price = None
    updated = ms_to_dt(item.get("updatedTime") or field_of(item, "createdTime", kind))
    return VenueOrder(
        category=str(item.get("category") or category),
        symbol=str(field_of(item, "symbol", kind)),
        order_id=str(field_of(item, "orderId", kind)),
        link_id=str(item.get("orderLinkId") or ""),
        side=side,
        order_type=order_type,
        venue_status=venue_status,
        status=status,
        qty=dec(field_of(item, "qty", kind), "qty"),
        price=price,
        cum_exec_qty=cum_qty,
        cum_exec_fee=opt_dec(item.get("cumExecFee")) or ZERO,
        avg_price=avg,
        time_in_force=TIME_IN_FORCE.get(str(item.get("timeInForce") or "GTC"), TimeInForce.GTC),
        reduce_only=bool(item.get("reduceOnly", False)),
        reason=_reason(venue_status, item),
        created=ms_to_dt(field_of(item, "createdTime", kind)),
        updated=updated,
        protective=protective_of(item),
    )


@dataclass(frozen=True, slots=True)
class Execution:
    """One execution (private `execution` topic or /v5/execution/list)."""

    category: str
    symbol: str
    exec_id: str
    order_id: str
    link_id: str
    side: Side
    qty: Decimal
    price: Decimal
    fee: Decimal
    fee_currency: str
    is_maker: bool
    exec_type: str
    ts: datetime
    leaves_qty: Decimal | None
    protective: str = ""  # the exit reason when a position's TP/SL/trailing stop caused it

    @property
    def is_trade(self) -> bool:
        return self.exec_type in TRADE_EXEC_TYPES

    @property
    def client_order_id(self) -> str:
        return self.link_id or f"bybit:{self.order_id}"

    def to_fill(self, client_order_id: str | None = None) -> Fill:
        """The lorabot `Fill`. A spot fee charged in the base coin is valued in the quote coin
        at the execution price, because lorabot counts cash and fees in the quote currency."""
        fee, currency = self.fee, self.fee_currency
        quote = quote_of(self.symbol)
        if currency and currency != quote and currency == base_of(self.symbol):
            fee, currency = fee * self.price, quote
        return Fill(
            ts=self.ts,
            client_order_id=client_order_id or self.client_order_id,
            exec_id=self.exec_id,
            symbol=self.symbol,
            side=self.side,
            qty=self.qty,
            price=self.price,
            fee=fee,
            liquidity=Liquidity.MAKER if self.is_maker else Liquidity.TAKER,
            fee_currency=currency or quote,
        )


def execution_from_venue(item: Mapping[str, Any], category: str = "") -> Execution:
    kind = "execution"
    side = SIDES.get(str(field_of(item, "side", kind)))
    if side is None:
        raise ParseError(f"execution: unknown side {item.get('side')!r}")
    symbol = str(field_of(item, "symbol", kind))
    cat = str(item.get("category") or category)
    fee_currency = str(item.get("feeCurrency") or "")
    if not fee_currency and cat != "spot":
        fee_currency = quote_of(symbol)
    return Execution(
        category=cat,
        symbol=symbol,
        exec_id=str(field_of(item, "execId", kind)),
        order_id=str(field_of(item, "orderId", kind)),
        link_id=str(item.get("orderLinkId") or ""),
        side=side,
        qty=dec(field_of(item, "execQty", kind), "execQty"),
        price=dec(field_of(item, "execPrice", kind), "execPrice"),
        fee=opt_dec(item.get("execFee")) or ZERO,
        fee_currency=fee_currency,
        is_maker=bool(item.get("isMaker", False)),
        exec_type=str(item.get("execType") or "Trade"),
        ts=ms_to_dt(field_of(item, "execTime", kind)),
        leaves_qty=opt_dec(item.get("leavesQty")),
        protective=protective_of(item),
    )


@dataclass(frozen=True, slots=True)
class VenuePosition:
    category: str
    symbol: str
    qty: Decimal  # signed: negative is short
    avg_price: Decimal
    mark: Decimal | None
    unrealised_pnl: Decimal
    realised_pnl: Decimal
    updated: datetime | None
    protection: Protection = NO_PROTECTION
    leverage: Decimal | None = None


def _level(item: Mapping[str, Any], key: str) -> Decimal | None:
    """A protective level: Bybit writes "0" or "" for none."""
    value = opt_dec(item.get(key))
    return value if value else None


def position_from_venue(item: Mapping[str, Any], category: str = "") -> VenuePosition:
    """REST calls the entry price `avgPrice`, the websocket `entryPrice`; side "" means flat."""
    kind = "position"
    size = dec(field_of(item, "size", kind), "size")
    side = str(item.get("side") or "")
    if side == "Sell":
        size = -size
    elif side not in ("Buy", "", "None"):
        raise ParseError(f"position: unknown side {side!r}")
    avg = opt_dec(item.get("avgPrice"))
    if avg is None:
        avg = opt_dec(item.get("entryPrice"))
    updated = item.get("updatedTime")
    return VenuePosition(
        category=str(item.get("category") or category),
        symbol=str(field_of(item, "symbol", kind)),
        qty=size,
        avg_price=avg if avg is not None and size != 0 else ZERO,
        mark=opt_dec(item.get("markPrice")),
        unrealised_pnl=opt_dec(item.get("unrealisedPnl")) or ZERO,
        realised_pnl=opt_dec(item.get("cumRealisedPnl")) or ZERO,
        updated=ms_to_dt(updated) if updated else None,
        protection=Protection(
            _level(item, "stopLoss"), _level(item, "takeProfit"), _level(item, "trailingStop")
        ),
        leverage=opt_dec(item.get("leverage")),
    )


@dataclass(frozen=True, slots=True)
class CoinBalance:
    coin: str
    wallet_balance: Decimal
    equity: Decimal
    available: Decimal | None
    unrealised_pnl: Decimal | None


@dataclass(frozen=True, slots=True)
class Wallet:
    account_type: str
    total_equity: Decimal | None
    total_wallet_balance: Decimal | None
    coins: dict[str, CoinBalance]

    def balance(self, coin: str) -> Decimal:
        found = self.coins.get(coin)
        return found.wallet_balance if found else ZERO


def wallet_from_venue(item: Mapping[str, Any]) -> Wallet:
    """One account of `/v5/account/wallet-balance` or of a `wallet` push."""
    kind = "wallet"
    coins = {}
    for entry in field_of(item, "coin", kind):
        coin = str(field_of(entry, "coin", kind))
        coins[coin] = CoinBalance(
            coin=coin,
            wallet_balance=dec(field_of(entry, "walletBalance", kind), f"{coin}.walletBalance"),
            equity=opt_dec(entry.get("equity")) or ZERO,
            available=opt_dec(entry.get("availableToWithdraw")),
            unrealised_pnl=opt_dec(entry.get("unrealisedPnl")),
        )
    return Wallet(
        account_type=str(item.get("accountType") or "UNIFIED"),
        total_equity=opt_dec(item.get("totalEquity")),
        total_wallet_balance=opt_dec(item.get("totalWalletBalance")),
        coins=coins,
    )
