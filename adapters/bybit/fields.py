"""Bybit's value encodings, and the tables that map its words to lorabot's.

Bybit sends every number as a string; `dec` makes a `Decimal` straight from it (a float is
refused, so nothing passes through binary floating point), and epoch milliseconds become aware
UTC datetimes. A value lorabot cannot read raises `ParseError` naming the field. The status
table is the one place Bybit's order lifecycle meets `bot.orders`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from bot.events import OrderType, Side, TimeInForce
from bot.orders import OrderStatus
from bot.symbols import QUOTES

ZERO = Decimal(0)


class ParseError(ValueError):
    """A venue payload lorabot cannot read; names the kind and the field."""


STATUS: dict[str, OrderStatus] = {
    "Created": OrderStatus.SUBMITTED,
    "New": OrderStatus.ACCEPTED,
    "Untriggered": OrderStatus.UNTRIGGERED,
    "Triggered": OrderStatus.TRIGGERED,
    "PartiallyFilled": OrderStatus.PARTIALLY_FILLED,
    "Filled": OrderStatus.FILLED,
    "Cancelled": OrderStatus.CANCELLED,
    "Deactivated": OrderStatus.CANCELLED,
    "PartiallyFilledCanceled": OrderStatus.CANCELLED,
    "Rejected": OrderStatus.REJECTED,
}

SIDES = {"Buy": Side.BUY, "Sell": Side.SELL}
VENUE_SIDE = {Side.BUY: "Buy", Side.SELL: "Sell"}
# The engine's own exits (max_hold live; every level on spot) are STOP orders whose level the bar
# already reached: on the venue they are reduce-only market orders, sent at once.
VENUE_ORDER_TYPE = {OrderType.MARKET: "Market", OrderType.LIMIT: "Limit", OrderType.STOP: "Market"}
ORDER_TYPES = {"Market": OrderType.MARKET, "Limit": OrderType.LIMIT}
TIME_IN_FORCE = {t.value: t for t in TimeInForce}

# Execution types that are real trades of an order. Funding and settlement also arrive on the
# execution topic but move cash, not the position; reconciliation picks them up from the wallet.
TRADE_EXEC_TYPES = frozenset({"Trade", "AdlTrade", "BustTrade", "BlockTrade", "MovePosition"})

# The orders Bybit creates itself from a position's protective levels (`stopOrderType`, with
# `createType` as the fallback: CreateByStopLoss...), and the exit reason lorabot records for each.
PROTECTIVE_STOP_TYPES = {
    "StopLoss": "stop_loss",
    "PartialStopLoss": "stop_loss",
    "TakeProfit": "take_profit",
    "PartialTakeProfit": "take_profit",
    "TrailingStop": "trailing_stop",
}
PROTECTIVE_CREATE_TYPES = {
    "CreateByStopLoss": "stop_loss",
    "CreateByPartialStopLoss": "stop_loss",
    "CreateByTakeProfit": "take_profit",
    "CreateByPartialTakeProfit": "take_profit",
    "CreateByTrailingStop": "trailing_stop",
}


def protective_of(item: Mapping[str, Any]) -> str:
    """ "stop_loss" / "take_profit" / "trailing_stop" for an order (or its execution) that a
    position's protective level created; "" for any other."""
    stop_type = str(item.get("stopOrderType") or "")
    create_type = str(item.get("createType") or "")
    return PROTECTIVE_STOP_TYPES.get(stop_type) or PROTECTIVE_CREATE_TYPES.get(create_type, "")


def ms_to_dt(value: Any) -> datetime:
    try:
        return datetime.fromtimestamp(int(value) / 1000, UTC)
    except (TypeError, ValueError) as error:
        raise ParseError(f"{value!r} is not a millisecond timestamp") from error


def dec(value: Any, field: str = "value") -> Decimal:
    if isinstance(value, Decimal):
        return value
    if value is None or value == "" or isinstance(value, float):
        raise ParseError(f"{field}: expected a decimal string, got {value!r}")
    try:
        return Decimal(value)
    except InvalidOperation as error:
        raise ParseError(f"{field}: {value!r} is not a decimal") from error


def opt_dec(value: Any) -> Decimal | None:
    """Optional decimal: Bybit writes 'not set' as "", null or sometimes "0"."""
    if value is None or value == "":
        return None
    try:
        return Decimal(value)
    except (InvalidOperation, TypeError):
        return None


def field_of(item: Mapping[str, Any], key: str, kind: str) -> Any:
    try:
        return item[key]
    except KeyError:
        raise ParseError(f"{kind}: field {key!r} is missing") from None
    except TypeError:
        raise ParseError(f"{kind}: expected an object, got {type(item).__name__}") from None


def quote_of(symbol: str) -> str:
    for quote in QUOTES:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return quote
    return "USDT"


def base_of(symbol: str) -> str:
    quote = quote_of(symbol)
    return symbol[: -len(quote)] if symbol.endswith(quote) else symbol
